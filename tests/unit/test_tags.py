"""The tag log: per-clone chains, the merge rule, and reads that never fail."""

from __future__ import annotations

import datetime
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeflow.lineage import tags

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
A, B = "a" * 32, "b" * 32


def _log(dot: Path) -> bytes:
    return (dot / tags.TAGS_FILE).read_bytes()


def _two_clones(dot: Path) -> tuple[bytes, bytes]:
    """Clone 1 and clone 2 each move ``production`` once from a shared base line."""
    tags.move(dot, "1111111111111111", "m.pkl", "production", A, "one@x")
    base = _log(dot)
    tags.move(dot, "1111111111111111", "m.pkl", "production", B, "one@x")
    ours = _log(dot)[len(base):]
    (dot / tags.TAGS_FILE).write_bytes(base)
    tags.move(dot, "2222222222222222", "m.pkl", "production", A, "two@x")
    theirs = _log(dot)[len(base):]
    return base + ours, theirs


def test_merged_moves_resolve_the_same_in_any_order(tmp_path: Path) -> None:
    ours, theirs = _two_clones(tmp_path)
    one = tags.parse_log((ours + theirs).decode())
    two = tags.parse_log((ours[:ours.index(b"\n") + 1] + theirs
                          + ours[ours.index(b"\n") + 1:]).decode())
    assert not one.problems and not two.problems
    assert len(one.moves) == 3
    winner = max(one.moves[1:], key=lambda m: (m.when, m.id))
    assert one.tags_of("m.pkl") == two.tags_of("m.pkl") == {"production": winner.hash}


def test_a_new_move_wins_even_with_a_clock_behind(tmp_path: Path) -> None:
    tags.move(tmp_path, "1111111111111111", "m.pkl", "production", A, "one@x")
    line = json.loads(_log(tmp_path))
    ahead = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=12)
    line["when"] = ahead.isoformat(timespec="milliseconds")  # a colleague's clock ahead
    line["id"] = tags.entry_id(line)
    (tmp_path / tags.TAGS_FILE).write_text(json.dumps(line) + "\n")
    moved = tags.move(tmp_path, "2222222222222222", "m.pkl", "production", B, "two@x")
    assert moved.when > line["when"] and moved.previous == A
    assert tags.tags_of(tmp_path, "m.pkl") == {"production": B}


def test_a_fork_of_one_chain_reads_both_branches(tmp_path: Path) -> None:
    """One clone tagging on two git branches forks its own chain: both sides stay valid."""
    tags.move(tmp_path, "1111111111111111", "m.pkl", "production", A, "one@x")
    base = _log(tmp_path)
    tags.move(tmp_path, "1111111111111111", "m.pkl", "staging", A, "one@x")
    side = _log(tmp_path)[len(base):]
    (tmp_path / tags.TAGS_FILE).write_bytes(base)
    tags.move(tmp_path, "1111111111111111", "m.pkl", "production", B, "one@x")
    (tmp_path / tags.TAGS_FILE).write_bytes(_log(tmp_path) + side)
    log = tags.read_log(tmp_path)
    assert not log.problems and len(log.moves) == 3


def test_an_edited_line_is_skipped_alone(tmp_path: Path) -> None:
    chain = "1111111111111111"
    for oid in (A, B, A):
        tags.move(tmp_path, chain, "m.pkl", "production", oid, "one@x")
    lines = _log(tmp_path).decode().splitlines()
    middle = json.loads(lines[1])
    middle["user"] = "someone-else@x"
    lines[1] = json.dumps(middle)
    log = tags.parse_log("\n".join(lines))
    assert [p.line for p in log.problems] == [2]
    assert "edited" in log.problems[0].reason
    assert [m.line for m in log.moves] == [1, 3]
    removed = tags.parse_log("\n".join([lines[0], lines[2]]))
    assert [p.line for p in removed.problems] == [2] and "removed" in removed.problems[0].reason
    # repair sets the edited line aside; a repair entry keeps the line after it valid
    (tmp_path / tags.TAGS_FILE).write_text("\n".join(lines) + "\n")
    report = tags.repair(tmp_path, "9999999999999999", "fixer@x")
    assert report.kept == 2 and [p.line for p in report.moved] == [2]
    after = tags.read_log(tmp_path)
    assert not after.problems and len(after.moves) == 2
    assert after.tags_of("m.pkl") == {"production": A}
    moved = tags.move(tmp_path, "9999999999999999", "m.pkl", "production", B, "fixer@x")
    assert moved.seq == 2  # after its own repair entry
    assert not tags.read_log(tmp_path).problems


def test_repair_keeps_valid_lines_in_order_and_sets_the_rest_aside(tmp_path: Path) -> None:
    ours, theirs = _two_clones(tmp_path)
    (tmp_path / tags.TAGS_FILE).write_bytes(ours + b"garbage\n" + theirs)
    report = tags.repair(tmp_path, "9999999999999999", "fixer@x")
    assert report.kept == 3 and [p.line for p in report.moved] == [3]
    assert _log(tmp_path) == ours + theirs
    assert b"garbage" in (tmp_path / "state" / "tags.jsonl.damaged").read_bytes()
    again = tags.repair(tmp_path, "9999999999999999", "fixer@x")
    assert again.aside is None  # nothing left to repair


_BASE: list[bytes] = []


def _merged_log() -> bytes:
    """Two clones' moves after a union merge (made once: each write is fsynced)."""
    if not _BASE:
        with tempfile.TemporaryDirectory() as d:
            ours, theirs = _two_clones(Path(d))
            _BASE.append(ours + theirs)
    return _BASE[0]


@SETTINGS
@given(junk=st.binary(max_size=200), where=st.integers(min_value=0), whole_line=st.booleans())
def test_any_bytes_anywhere_never_make_a_read_raise(junk: bytes, where: int,
                                                     whole_line: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        dot = Path(d)
        data = _merged_log()
        if whole_line:
            cuts = [0] + [i + 1 for i, c in enumerate(data) if c == 0x0A]
            at = cuts[where % len(cuts)]
            junk = junk.replace(b"\n", b"") + b"\n"
        else:
            at = where % (len(data) + 1)
        (dot / tags.TAGS_FILE).write_bytes(data[:at] + junk + data[at:])
        log = tags.read_log(dot)
        log.current  # noqa: B018 - computing it must not raise either
        if whole_line:  # an inserted line never hides a valid one
            assert len(log.moves) >= 3
        if where % 4 == 0:  # writing after the damage works too (fsynced: not every time)
            tags.move(dot, "3333333333333333", "m.pkl", "production", A, "three@x")
            assert tags.read_log(dot).tags_of("m.pkl") == {"production": A}
            tags.repair(dot, "9999999999999999", "fixer@x")
            assert not tags.read_log(dot).problems


def _signed(body: dict[str, object]) -> str:
    body = {k: v for k, v in body.items() if k != "id"}
    body["id"] = tags.entry_id(body)
    return json.dumps(body)


def test_a_line_naming_an_unsafe_path_is_skipped_alone(tmp_path: Path) -> None:
    # A crafted line (a valid id, a path such as ../x or .git/hooks/x) is a damaged
    # line: skipped with its reason; the line after it in its chain still reads.
    tags.move(tmp_path, "1111111111111111", "m.pkl", "production", A, "one@x")
    good = _log(tmp_path).decode().strip()
    when = "2020-01-01T00:00:00.000+00:00"
    for bad in ("../escaped", "/etc/passwd", ".git/hooks/pre-commit", "a\x07b"):
        first = json.loads(_signed({"chain": "2222222222222222", "seq": 1, "prev": None,
                                    "path": bad, "name": "staging", "hash": B,
                                    "when": when}))
        second = _signed({"chain": "2222222222222222", "seq": 2, "prev": first["id"],
                          "path": "m.pkl", "name": "staging", "hash": B, "when": when})
        log = tags.parse_log("\n".join([good, json.dumps(first), second]))
        assert [p.line for p in log.problems] == [2], bad
        assert "path" in log.problems[0].reason
        assert [m.line for m in log.moves] == [1, 3]
        assert all(m.path == "m.pkl" for m in log.moves)


def test_a_legacy_line_naming_an_unsafe_path_is_skipped() -> None:
    line = json.dumps({"path": "../x", "name": "production", "hash": A, "prev": None})
    log = tags.parse_log(line)
    assert not log.moves and "path" in log.problems[0].reason


@SETTINGS
@given(path=st.text(max_size=30))
def test_any_tag_path_is_skipped_or_safe(path: str) -> None:
    from pipeflow.files import safepath

    line = _signed({"chain": "1111111111111111", "seq": 1, "prev": None, "path": path,
                    "name": "production", "hash": A, "when": "2020-01-01T00:00:00.000+00:00"})
    log = tags.parse_log(line)
    assert all(safepath.problem(m.path) is None for m in log.moves)
