"""The registry as a team uses it: two users with their own keys in two clones of one
bare origin, promotions from both sides merged by git, a protected alias that only a
trusted key moves (issue 14, items 2 and 6)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.functional.helpers import commit
from tests.functional.helpers_registry import (
    MODEL,
    PATH,
    as_json,
    labels,
    model_with_versions,
    ok,
    user_key,
)


def _as(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """The next commands run as the user whose config folder is ``folder``."""
    monkeypatch.setenv("PIPEFLOW_CONFIG_DIR", str(folder))


def _team(project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> tuple[Project, Project, Path, Path]:
    """Alice owns the project (protected production*, her key trusted); Bob clones it
    and has a key of his own, not trusted."""
    alice_cfg, bob_cfg = tmp_path / "alice-cfg", tmp_path / "bob-cfg"
    alice_key = user_key(alice_cfg, "alice")
    user_key(bob_cfg, "bob")
    _as(monkeypatch, alice_cfg)
    model_with_versions(project)
    with (project.root / ".pipeflow" / "config").open("a") as f:
        f.write(f'registry:\n  protected: ["production*"]\nkeys:\n  trusted:\n'
                f'    alice: "{alice_key}"\n')
    commit(project, "protect production")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    project.git("remote", "add", "origin", str(origin))
    project.git("push", "-q", "-u", "origin", "main")
    ok(project, "remote", "add", "store", str(tmp_path / "store"))
    ok(project, "push")
    bob = Project(tmp_path / "bob")
    subprocess.run(["git", "clone", "-q", str(origin), str(bob.root)], check=True)
    bob.git("config", "user.email", "bob@example.com")
    ok(bob, "remote", "add", "store", str(tmp_path / "store"), "--local")
    ok(bob, "pull")
    return project, bob, alice_cfg, bob_cfg


def _aliases(p: Project) -> dict[str, str]:
    return {a["alias"]: a["hash"] for a in as_json(p, "aliases")["aliases"]}


def test_promotions_from_two_clones_merge_through_git_and_agree(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob, alice_cfg, bob_cfg = _team(project, tmp_path, monkeypatch)
    v = labels(alice)
    ok(alice, "promote", f"{MODEL}@v1", "production", "--note", "first release")
    ok(alice, "promote", f"{MODEL}@v3", "canary")
    commit(alice, "alice promotes")
    _as(monkeypatch, bob_cfg)
    ok(bob, "promote", f"{MODEL}@v2", "staging")  # not protected: bob's key will do
    commit(bob, "bob stages v2")
    bob.git("push", "-q", "origin", "main")
    _as(monkeypatch, alice_cfg)
    alice.git("pull", "-q", "--no-rebase", "origin", "main")  # a real merge of the log
    alice.git("push", "-q", "origin", "main")
    _as(monkeypatch, bob_cfg)
    bob.git("pull", "-q", "--no-rebase", "origin", "main")
    expected = {"production": v["v1"], "canary": v["v3"], "staging": v["v2"]}
    assert _aliases(alice) == _aliases(bob) == expected
    history = as_json(bob, "aliases", "--history")["history"]
    by_alias = {m["alias"]: m for m in history}
    assert (by_alias["production"]["user"], by_alias["production"]["signature"],
            by_alias["production"]["signer"]) == ("alice", "trusted", "alice")
    assert by_alias["production"]["note"] == "first release"
    assert (by_alias["staging"]["user"], by_alias["staging"]["signature"]) == (
        "bob", "untrusted")


def test_a_protected_alias_refuses_an_untrusted_key_and_ignores_a_forged_move(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob, alice_cfg, bob_cfg = _team(project, tmp_path, monkeypatch)
    v = labels(alice)
    ok(alice, "promote", f"{MODEL}@v1", "production")
    commit(alice, "ship v1")
    alice.git("push", "-q", "origin", "main")
    _as(monkeypatch, bob_cfg)
    bob.git("pull", "-q", "--no-rebase", "origin", "main")
    log_before = bob.read(".pipeflow/tags.jsonl")
    for args in (("promote", f"{MODEL}@v2", "production-eu"),
                 ("rollback", "production"), ("tag", "delete", MODEL, "production")):
        res = bob.run(*args)
        assert res.code == 2, res.text
        assert "is protected" in res.err and "your key 'bob' is not in keys.trusted" in res.err
    monkeypatch.setenv("PIPEFLOW_CONFIG_DIR", str(tmp_path / "nobody"))
    res = bob.run("promote", f"{MODEL}@v2", "production")
    assert res.code == 2 and "you have no signing key" in res.err
    assert bob.read(".pipeflow/tags.jsonl") == log_before
    # Bob forces the move into the file by hand (his own key, or none at all) ...
    from pipeflow.lineage import tags
    from pipeflow.signing.keys import load_signer

    dot = bob.root / ".pipeflow"
    tags.move(dot, "b" * 16, PATH, "production", v["v3"], "bob",
              signer=load_signer(bob_cfg / "signing-key.json"))
    tags.move(dot, "b" * 16, PATH, "production", v["v2"], "alice")
    commit(bob, "forged")
    bob.git("push", "-q", "origin", "main")
    # ... and the alias keeps its last valid target, in his clone and in Alice's.
    _as(monkeypatch, alice_cfg)
    alice.git("pull", "-q", "--no-rebase", "origin", "main")
    for p in (alice, bob):
        res = p.run("aliases", "--json")
        assert res.code == 0, res.text
        assert _aliases(p) == {"production": v["v1"]}
        assert res.err.count("move of protected alias 'production'") == 2
        assert "signed by an untrusted key (claims 'bob')" in res.err
        assert "unsigned, not by a trusted key" in res.err
    ok(alice, "checkout", f"{MODEL}@production")
    assert "lr=0.1" in alice.read(PATH)
    refused = [m for m in as_json(alice, "aliases", "--history")["history"] if m["refused"]]
    assert [m["to"] for m in refused] == [v["v3"], v["v2"]]
    # a trusted key still moves it
    ok(alice, "promote", f"{MODEL}@v3", "production")
    assert _aliases(alice) == {"production": v["v3"]}


def test_a_signed_move_removed_by_hand_is_reported_by_verify(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone with git write access only deletes Alice's signed rollback: the alias
    goes back with nothing to skip, but git history still witnesses the entry."""
    alice, bob, _alice_cfg, bob_cfg = _team(project, tmp_path, monkeypatch)
    v = labels(alice)
    ok(alice, "promote", f"{MODEL}@v1", "production")
    ok(alice, "promote", f"{MODEL}@v2", "production")
    ok(alice, "rollback", "production", "--note", "v2 is bad")
    commit(alice, "roll back")
    alice.git("push", "-q", "origin", "main")
    _as(monkeypatch, bob_cfg)
    bob.git("pull", "-q", "--no-rebase", "origin", "main")
    log = bob.root / ".pipeflow" / "tags.jsonl"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:-1]))
    commit(bob, "nothing to see")
    assert _aliases(bob) == {"production": v["v2"]}  # the chain alone cannot tell
    res = bob.run("verify")
    assert res.code == 1, res.text
    assert "rollback of 'production' of models/model.txt" in res.text
    assert "is no longer in .pipeflow/tags.jsonl: a line was removed by hand" in res.text
    # verify --repair's own removals are not reported
    ok(alice, "promote", f"{MODEL}@v3", "canary")
    commit(alice, "canary")
    assert alice.run("verify").code == 0, alice.run("verify").text


def test_a_rollback_merged_with_a_colleagues_move_never_returns_to_what_it_undid(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob, alice_cfg, bob_cfg = _team(project, tmp_path, monkeypatch)
    v = labels(alice)
    ok(alice, "promote", f"{MODEL}@v1", "canary")
    commit(alice, "canary v1")
    alice.git("push", "-q", "origin", "main")
    _as(monkeypatch, bob_cfg)
    bob.git("pull", "-q", "--no-rebase", "origin", "main")
    _as(monkeypatch, alice_cfg)
    ok(alice, "promote", f"{MODEL}@v3", "canary")  # v3 turns out broken ...
    _as(monkeypatch, bob_cfg)
    ok(bob, "promote", f"{MODEL}@v2", "canary")  # ... while Bob, not pulled, ships v2
    commit(bob, "canary v2")
    bob.git("push", "-q", "origin", "main")
    _as(monkeypatch, alice_cfg)
    assert ok(alice, "rollback", "canary").startswith("rolled back: canary -> clf v1")
    commit(alice, "roll back v3")
    alice.git("pull", "-q", "--no-rebase", "origin", "main")
    (now,) = as_json(alice, "aliases")["aliases"]
    assert (now["hash"], now["rollback_to"]) == (v["v1"], "v2")  # the latest move decides
    ok(alice, "rollback", "canary")
    assert _aliases(alice) == {"canary": v["v2"]}
    ok(alice, "rollback", "canary")
    assert _aliases(alice) == {"canary": v["v1"]}  # never back to the broken v3


def test_an_unsigned_repair_entry_cannot_remove_a_signed_protected_move_unseen(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from pipeflow.lineage import tags

    alice, bob, _alice_cfg, bob_cfg = _team(project, tmp_path, monkeypatch)
    ok(alice, "promote", f"{MODEL}@v3", "production")
    commit(alice, "ship v3")
    alice.git("push", "-q", "origin", "main")
    _as(monkeypatch, bob_cfg)
    bob.git("pull", "-q", "--no-rebase", "origin", "main")
    log = bob.root / ".pipeflow" / "tags.jsonl"
    lines = log.read_text().splitlines()
    signed = json.loads(lines[-1])
    # Bob, with no trusted key, removes the move and writes a repair entry excusing it
    marker = {"chain": "b" * 16, "seq": 1, "prev": None, "kind": "repair",
              "removed": [signed["id"]], "user": "bob", "when": signed["when"]}
    marker["id"] = tags.entry_id(marker)
    log.write_text("\n".join([*lines[:-1], json.dumps(marker)]) + "\n")
    commit(bob, "tidy")
    assert "production" not in _aliases(bob)
    res = bob.run("verify")
    assert res.code == 1, res.text
    assert "move of 'production' of models/model.txt" in res.text
    assert "set aside by a repair entry no trusted key signed" in res.text


def test_a_signed_move_copied_from_another_project_does_not_count(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alice's key is trusted in two projects; a move she signed in the other one,
    appended to this project's log by someone with git access, moves nothing here."""
    alice_cfg = tmp_path / "alice-cfg"
    alice_key = user_key(alice_cfg, "alice")
    _as(monkeypatch, alice_cfg)
    model_with_versions(project)
    assert project.run("keys", "trust", "alice", alice_key).code == 0  # gives an id
    with (project.root / ".pipeflow" / "config").open("a") as f:
        f.write('  protected: ["production*"]\n')
    other = Project(tmp_path / "other")
    other.root.mkdir()
    other.git("init", "-q", "-b", "main")
    model_with_versions(other, (0.5,))
    assert other.run("keys", "trust", "alice", alice_key).code == 0
    ok(project, "promote", f"{MODEL}@v1", "production")
    ok(other, "promote", f"{MODEL}@v1", "production")  # newer: it would decide
    v = labels(project)
    copied = (other.root / ".pipeflow" / "tags.jsonl").read_text().splitlines()[-1]
    with (project.root / ".pipeflow" / "tags.jsonl").open("a") as f:
        f.write(copied + "\n")
    res = project.run("aliases", "--json")
    assert res.code == 0, res.text
    assert _aliases(project) == {"production": v["v1"]}
    assert "signed for another project (registry.project)" in res.err


def test_verify_says_when_the_alias_log_history_is_too_large_to_check(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeflow.lineage import taghistory

    model_with_versions(project, (0.1,))
    ok(project, "promote", f"{MODEL}@v1", "production")
    commit(project, "promote")
    assert project.run("verify").code == 0
    monkeypatch.setattr(taghistory, "_MAX_HISTORY_BYTES", 10)
    res = project.run("verify")
    assert res.code == 1, res.text
    assert "cannot check that no entry was removed from .pipeflow/tags.jsonl" in res.text
