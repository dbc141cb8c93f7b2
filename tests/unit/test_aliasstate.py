"""The alias log's replay and protection (pipeflow.lineage.aliasstate), and its lines
under junk (hypothesis): a read never raises, whatever a clone or a remote wrote."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeflow.lineage import tags
from pipeflow.lineage.aliasstate import AliasPolicy, replay
from pipeflow.signing.keys import generate
from pipeflow.signing.signatures import TrustedKeys

HASHES = [c * 32 for c in "abcdef"]


def _log(tmp: Path, steps: list[tuple[str, int]], signer_path: Path | None = None) -> None:
    signer = generate("alice", path=signer_path) if signer_path else None
    for kind, n in steps:
        try:
            tags.move(tmp, "c" * 16, "m.pkl", "production", HASHES[n], "u", kind=kind,
                      signer=signer)
        except Exception:  # a delete of a deleted tag: a UsageError, nothing written
            continue


@given(st.lists(st.tuples(st.sampled_from(["move", "rollback", "delete"]),
                          st.integers(0, 5)), max_size=12))
@settings(max_examples=60, deadline=None)
def test_replay_matches_a_plain_stack(tmp_path_factory: object, steps: list[tuple[str, int]]
                                      ) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        dot = Path(folder)
        stack: list[str] = []
        for kind, n in steps:
            if kind == "delete":
                if not stack:
                    continue
                stack.clear()
            elif kind == "rollback":
                if stack:
                    stack.pop()
                if not stack or stack[-1] != HASHES[n]:
                    stack.append(HASHES[n])
            elif not stack or stack[-1] != HASHES[n]:
                stack.append(HASHES[n])
            tags.move(dot, "c" * 16, "m.pkl", "production",
                      None if kind == "delete" else HASHES[n], "u", kind=kind)
        state = replay(tags.read_log(dot).moves).get(("m.pkl", "production"))
        assert (state.target if state else None) == (stack[-1] if stack else None)
        assert (tags.read_log(dot).tags_of("m.pkl").get("production")
                == (stack[-1] if stack else None))


def test_protection_counts_only_trusted_signatures(tmp_path: Path) -> None:
    key = generate("alice", path=tmp_path / "key.json")
    other = generate("mallory", path=tmp_path / "other.json")
    dot = tmp_path / "dot"
    dot.mkdir()
    tags.move(dot, "c" * 16, "m.pkl", "production", HASHES[0], "alice", signer=key)
    tags.move(dot, "c" * 16, "m.pkl", "production", HASHES[1], "mallory", signer=other)
    tags.move(dot, "c" * 16, "m.pkl", "production", HASHES[2], "anyone")
    tags.move(dot, "c" * 16, "m.pkl", "staging", HASHES[3], "anyone")
    policy = AliasPolicy(("prod*",), TrustedKeys({"alice": key.public}))
    log = tags.read_log(dot, policy)
    assert log.tags_of("m.pkl") == {"production": HASHES[0], "staging": HASHES[3]}
    assert [r.verdict.status.value for r in log.refused] == ["untrusted", "unsigned"]
    # unprotected, every valid move counts
    assert tags.read_log(dot).tags_of("m.pkl")["production"] == HASHES[2]
    # a signed line edited afterwards: its id no longer matches, it is skipped as damage
    lines = (dot / "tags.jsonl").read_text().splitlines()
    body = json.loads(lines[0])
    body["hash"] = HASHES[5]
    body["id"] = tags.entry_id(body)  # a forger recomputes the id, not the signature
    (dot / "tags.jsonl").write_text("\n".join([json.dumps(body), *lines[1:]]) + "\n")
    log = tags.read_log(dot, policy)
    assert "production" not in log.tags_of("m.pkl")
    assert any(r.verdict.status.value == "invalid" for r in log.refused)


_entry = st.fixed_dictionaries(
    {"kind": st.sampled_from(["move", "rollback", "delete", "note", "repair", "x", 3]),
     "path": st.sampled_from(["m.pkl", "", "../x", 5]),
     "name": st.sampled_from(["production", "", None]),
     "hash": st.sampled_from([HASHES[0], "", None]),
     "text": st.text(max_size=5),
     "sig": st.one_of(st.none(), st.text(max_size=5),
                      st.fixed_dictionaries({"key": st.text(max_size=60),
                                             "name": st.text(max_size=5),
                                             "value": st.text(max_size=90)})),
     "chain": st.sampled_from(["c" * 16, "", "legacy"]),
     "seq": st.sampled_from([1, 2, 0, "1", True]),
     "when": st.sampled_from(["2026-01-01T00:00:00.000+00:00", "x", None])})


@given(st.lists(_entry, max_size=6), st.booleans())
@settings(max_examples=150, deadline=None)
def test_junk_lines_never_break_a_read(entries: list[dict[str, object]], fix_ids: bool) -> None:
    lines = []
    for body in entries:
        if fix_ids:
            body = {**body, "id": tags.entry_id(body)}
        lines.append(json.dumps(body))
    policy = AliasPolicy(("prod*",), TrustedKeys({}))
    log = tags.parse_log("\n".join(lines), policy)
    assert len(log.moves) + len(log.notes) + len(log.problems) + len(log.refused) \
        + len(log.markers) <= len(lines)
    for path in ("m.pkl",):
        log.tags_of(path)
        log.notes_of(path)
