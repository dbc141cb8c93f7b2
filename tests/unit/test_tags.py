"""The tag log: per-clone chains, the merge rule, and reads that never fail."""

from __future__ import annotations

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
    line["when"] = "2999-01-01T00:00:00.000+00:00"  # a colleague's clock far ahead
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


def test_repair_keeps_valid_lines_in_order_and_sets_the_rest_aside(tmp_path: Path) -> None:
    ours, theirs = _two_clones(tmp_path)
    (tmp_path / tags.TAGS_FILE).write_bytes(ours + b"garbage\n" + theirs)
    report = tags.repair(tmp_path)
    assert report.kept == 3 and [p.line for p in report.moved] == [3]
    assert _log(tmp_path) == ours + theirs
    assert b"garbage" in (tmp_path / "tags.jsonl.damaged").read_bytes()
    assert tags.repair(tmp_path).aside is None  # nothing left to repair


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
            tags.repair(dot)
            assert not tags.read_log(dot).problems
