"""Two clones of one project, one bare git origin, one folder remote: tags and version
labels survive ordinary git merges, pulls and fetches (issue 10, items 2 and 4)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import pipeflow
from tests.conftest import Project
from tests.functional.helpers import chain, commit

MODEL = "models/model.txt"


def _set_lr(p: Project, lr: float) -> None:
    p.params({"prep": {"n": 3}, "train": {"lr": lr, "epochs": 2}, "eval": {"k": 1}})


def _repro_commit(p: Project, message: str) -> None:
    res = p.run("repro")
    assert res.code == 0, res.text
    commit(p, message)


def _team(project: Project, tmp_path: Path) -> tuple[Project, Project]:
    """Alice (``project``) publishes v1 to a bare origin and a folder remote; Bob
    clones it and pulls the data."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    assert project.run("init").code == 0
    chain(project)
    assert project.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    _repro_commit(project, "v1")
    project.git("remote", "add", "origin", str(origin))
    project.git("push", "-q", "-u", "origin", "main")
    assert project.run("push").code == 0
    bob = Project(tmp_path / "bob")
    subprocess.run(["git", "clone", "-q", str(origin), str(bob.root)], check=True)
    assert bob.run("pull").code == 0
    return project, bob


def _labels(p: Project) -> dict[str, str]:
    """label -> hash, as `versions --json` shows them."""
    res = p.run("versions", MODEL, "--json")
    assert res.code == 0, res.text
    return {v["version"]: v["hash"] for v in json.loads(res.out)["versions"]}


def _tag_of(p: Project, name: str) -> str:
    res = p.run("versions", MODEL, "--json")
    assert res.code == 0, res.text
    (found,) = [v["hash"] for v in json.loads(res.out)["versions"] if name in v["tags"]]
    return str(found)


def test_two_promotions_merge_through_git_and_agree(project: Project, tmp_path: Path) -> None:
    alice, bob = _team(project, tmp_path)
    _set_lr(alice, 0.07)
    _repro_commit(alice, "v2")
    alice.git("push", "-q")
    assert alice.run("push").code == 0
    bob.git("pull", "-q", "--no-rebase", "--no-edit")
    assert bob.run("pull").code == 0
    v1, v2 = _labels(alice)["v1"], _labels(alice)["v2"]
    # both promote a different version, commit and push; Bob's push comes second
    assert alice.run("tag", f"{MODEL}@v1", "production").code == 0
    commit(alice, "promote v1")
    alice.git("push", "-q")
    assert bob.run("tag", f"{MODEL}@v2", "production").code == 0
    commit(bob, "promote v2")
    bob.git("pull", "-q", "--no-rebase", "--no-edit")  # a real merge: no conflict (union)
    assert "<<<<<<<" not in bob.read(".pipeflow/tags.jsonl")
    bob.git("push", "-q")
    alice.git("pull", "-q", "--no-rebase", "--no-edit")
    for clone in (alice, bob):
        assert len(clone.read(".pipeflow/tags.jsonl").splitlines()) == 2  # both moves kept
        assert _tag_of(clone, "production") == v2  # the later move wins, in both clones
        res = clone.run("verify")
        assert res.code == 0, res.text
        res = clone.run("checkout", f"{MODEL}@production")
        assert res.code == 0, res.text
        assert clone.read(MODEL).startswith("lr=0.07")
        with pipeflow.open(clone.root / MODEL, version="production") as f:
            assert f.read().startswith(b"lr=0.07")
    # and the merged log takes new moves
    res = alice.run("tag", f"{MODEL}@v1", "production")
    assert res.code == 0 and f"(was {v2[:8]})" in res.out, res.text
    assert _tag_of(alice, "production") == v1
    assert alice.run("verify").code == 0


def _tagged_twice(p: Project) -> Path:
    chain(p)
    _repro_commit(p, "v1")
    _set_lr(p, 0.07)
    _repro_commit(p, "v2")
    assert p.run("tag", f"{MODEL}@v1", "production").code == 0
    assert p.run("tag", f"{MODEL}@v2", "staging").code == 0
    assert p.run("tag", f"{MODEL}@v2", "production").code == 0
    return p.root / ".pipeflow/tags.jsonl"


def test_a_damaged_tag_log_reads_warns_verifies_and_repairs(project: Project) -> None:
    log = _tagged_twice(project)
    assert "/.pipeflow/tags.jsonl merge=union" in project.read(".gitattributes")  # by `tag`
    v1 = _labels(project)["v1"]
    lines = log.read_text().splitlines()
    edited = json.loads(lines[2])
    edited["hash"] = v1  # someone points production back at v1 by hand
    garbled = "{\"path\": \"models/model.txt\", \"na\x00"
    log.write_text("\n".join([lines[0], garbled, lines[1], json.dumps(edited)]) + "\n")
    res = project.run("versions", MODEL)
    assert res.code == 0, res.text
    assert "tags.jsonl:2: not a JSON line: skipped" in res.err
    assert "tags.jsonl:4: its content does not match its id" in res.err
    assert _tag_of(project, "production") == v1  # the edited line does not count
    assert _tag_of(project, "staging") != v1
    res = project.run("checkout", f"{MODEL}@staging")
    assert res.code == 0 and "tags.jsonl:2: not a JSON line" in res.err
    assert "tags.jsonl:2: not a JSON line" in project.run("lineage", f"{MODEL}@staging").err
    assert project.run("tag", f"{MODEL}@v2", "candidate").code == 0  # tag still writes
    res = project.run("verify")
    assert res.code == 1
    assert "[tags] .pipeflow/tags.jsonl:2: not a JSON line" in res.out
    assert "tags.jsonl:4: its content does not match its id" in res.out
    assert "edited after it was written" in res.out
    res = project.run("verify", "--repair")
    assert res.code == 0, res.text
    assert "moved 2 damaged line(s)" in res.err and "tags.jsonl.damaged" in res.err
    aside = [json.loads(line) for line in
             (project.root / ".pipeflow/state/tags.jsonl.damaged").read_text().splitlines()]
    assert [a["line"] for a in aside] == [2, 4]
    assert project.git("status", "--porcelain", "--ignored", "--", ".pipeflow/state").startswith(
        "!!")  # the set-aside lines are this clone's: git ignores them
    repaired = log.read_text().splitlines()
    assert len(repaired) == 4  # three moves, and a repair entry naming the edited line's id
    assert json.loads(repaired[-1])["removed"] == [edited["id"]]
    assert project.run("versions", MODEL).err == ""


def test_a_log_in_the_old_format_still_reads(project: Project) -> None:
    import hashlib

    chain(project)
    _repro_commit(project, "v1")
    oid = _labels(project)["v1"]
    first = json.dumps({"path": MODEL, "name": "production", "hash": oid, "previous": None,
                        "user": "old@example.com", "when": "2026-01-01T00:00:00.000+00:00",
                        "prev": None}, sort_keys=True, separators=(",", ":"))
    second = json.dumps({"path": MODEL, "name": "staging", "hash": oid, "previous": None,
                         "user": "old@example.com", "when": "2026-01-02T00:00:00.000+00:00",
                         "prev": hashlib.sha256(first.encode()).hexdigest()},
                        sort_keys=True, separators=(",", ":"))
    (project.root / ".pipeflow/tags.jsonl").write_text(first + "\n" + second + "\n")
    assert _tag_of(project, "production") == oid and _tag_of(project, "staging") == oid
    assert project.run("verify").code == 0
    _set_lr(project, 0.07)
    _repro_commit(project, "v2")
    res = project.run("tag", f"{MODEL}@v2", "production")
    assert res.code == 0 and f"(was {oid[:8]})" in res.out
    assert _tag_of(project, "production") == _labels(project)["v2"]
    assert project.run("verify").code == 0


def test_labels_keep_their_meaning_across_fetch_and_merge(
        project: Project, tmp_path: Path) -> None:
    alice, bob = _team(project, tmp_path)
    # Bob's version is produced first, Alice's later; neither has the other's yet
    _set_lr(bob, 0.09)
    _repro_commit(bob, "bob's model")
    assert bob.run("push").code == 0
    _set_lr(alice, 0.07)
    _repro_commit(alice, "alice's model")
    shown = _labels(alice)
    assert list(shown) == ["v1", "v2"]
    bob_version = _labels(bob)["v2"]
    assert alice.run("fetch").code == 0  # Bob's records arrive, and his version with them
    after = _labels(alice)
    assert {k: after[k] for k in shown} == shown
    assert after[f"local:{bob_version[:8]}"] == bob_version  # in no commit of this history
    bob.git("push", "-q", "origin", "main")
    # Alice merges Bob's work, keeping her lock: both changed the train stage, so the
    # lock's merge driver leaves it in conflict, and she takes her side
    pulled = subprocess.run(["git", "pull", "-q", "--no-rebase", "--no-edit"],
                            cwd=alice.root, capture_output=True, text=True)
    assert pulled.returncode != 0 and "pipeline.lock" in pulled.stdout + pulled.stderr
    conflicted = alice.git("diff", "--name-only", "--diff-filter=U").split()
    assert "pipeline.lock" in conflicted
    alice.git("checkout", "--ours", "--", *conflicted)
    alice.git("add", "--", *conflicted)
    alice.git("commit", "-q", "--no-edit")
    merged = _labels(alice)
    assert {k: merged[k] for k in shown} == shown
    _set_lr(alice, 0.09)  # Bob's params: his version comes back from the run cache
    _repro_commit(alice, "take bob's model")
    assert _labels(alice)["v3"] == bob_version
    alice.git("push", "-q")
    assert alice.run("push").code == 0
    # Bob fast-forwards onto Alice's history: both clones now show the same labels
    bob.git("pull", "-q", "--no-rebase", "--no-edit")
    res = bob.run("versions", MODEL)
    assert res.code == 0, res.text
    assert f"v2 of {MODEL} now names {shown['v2'][:8]}" in res.err  # never silently
    assert f"not recorded in this clone: v2 ({shown['v2'][:8]})" in res.out
    assert bob.run("fetch").code == 0
    body = json.loads(bob.run("versions", MODEL, "--json").out)
    assert body["not_fetched"] == []
    assert _labels(bob) == _labels(alice), (_labels(bob), _labels(alice))
    res = bob.run("checkout", f"{MODEL}@v2")
    assert res.code == 0 and bob.read(MODEL).startswith("lr=0.07")


def test_uncommitted_versions_are_local_until_committed(project: Project) -> None:
    chain(project)
    _repro_commit(project, "v1")
    _set_lr(project, 0.07)
    assert project.run("repro").code == 0
    body = json.loads(project.run("versions", MODEL, "--json").out)
    assert [(v["version"][:6], v["local"]) for v in body["versions"]] == [
        ("v1", False), ("local:", True)]
    local = body["versions"][1]
    assert local["version"] == f"local:{local['hash'][:8]}"
    assert f"* local  {local['hash'][:8]}" in project.run("versions", MODEL).out
    assert project.run("checkout", f"{MODEL}@{local['version']}").code == 0
    assert project.run("checkout", f"{MODEL}@{local['hash'][:8]}").code == 0
    assert project.run("lineage", f"{MODEL}@v2").code == 2
    commit(project, "v2")
    assert _labels(project)["v2"] == local["hash"]
    lineage = json.loads(project.run("lineage", MODEL, "--json").out)
    assert lineage["artifacts"][0]["version"] == "v2"


def test_outside_git_every_version_is_local(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    p = Project(root)
    chain(p)
    assert p.run("repro").code == 0
    res = p.run("versions", MODEL)
    assert res.code == 0, res.text
    assert "not in a git repository" in res.out
    body = json.loads(p.run("versions", MODEL, "--json").out)
    assert body["in_git"] is False and body["versions"][0]["local"] is True


def test_a_label_that_changes_meaning_is_never_silent(project: Project) -> None:
    chain(project)
    for lr in (0.05, 0.07, 0.09):
        _set_lr(project, lr)
        _repro_commit(project, f"lr {lr}")
    shown = _labels(project)
    assert list(shown) == ["v1", "v2", "v3"]
    project.git("checkout", "-q", "HEAD~1")  # looking at history changes nothing
    assert project.run("versions", MODEL).err == ""
    project.git("checkout", "-q", "main")
    assert project.run("versions", MODEL).err == ""
    project.git("reset", "-q", "--hard", "HEAD~1")  # v3 is no longer reached: not a change
    assert project.run("versions", MODEL).err == ""
    _set_lr(project, 0.11)
    _repro_commit(project, "another v3")
    res = project.run("versions", MODEL)
    assert res.code == 0
    assert f"v3 of {MODEL} now names" in res.err and f"it named {shown['v3'][:8]}" in res.err
    assert project.run("versions", MODEL).err == ""  # said once


def _merge_keeping_ours(p: Project) -> None:
    """``git pull --no-rebase`` of a colleague's lock change; both sides changed the
    train stage, so the lock is left in conflict and this clone keeps its own side."""
    pulled = subprocess.run(["git", "pull", "-q", "--no-rebase", "--no-edit"],
                            cwd=p.root, capture_output=True, text=True)
    assert pulled.returncode != 0, pulled.stdout + pulled.stderr
    conflicted = p.git("diff", "--name-only", "--diff-filter=U").split()
    assert "pipeline.lock" in conflicted
    p.git("checkout", "--ours", "--", *conflicted)
    p.git("add", "--", *conflicted)
    p.git("commit", "-q", "--no-edit")


def _entries(p: Project) -> dict[str, dict[str, object]]:
    """hash -> the version's entry in `versions --json`."""
    res = p.run("versions", MODEL, "--json")
    assert res.code == 0, res.text
    return {v["hash"]: v for v in json.loads(res.out)["versions"]}


def _bob_merges_alices_model(alice: Project, bob: Project) -> tuple[str, str]:
    """Alice commits and pushes lr 0.4; Bob commits lr 0.3, merges hers keeping his
    lock, and pushes. (Alice's model, Bob's model)."""
    _set_lr(alice, 0.4)
    _repro_commit(alice, "alice: lr 0.4")
    alice.git("push", "-q")
    assert alice.run("push").code == 0
    _set_lr(bob, 0.3)
    _repro_commit(bob, "bob: lr 0.3")
    _merge_keeping_ours(bob)
    bob.git("push", "-q")
    assert bob.run("push").code == 0
    return _labels(alice)["v2"], _labels(bob)["v2"]


def test_a_committed_version_off_the_first_parent_line_is_not_local(
        project: Project, tmp_path: Path) -> None:
    alice, bob = _team(project, tmp_path)
    hers, _his = _bob_merges_alices_model(alice, bob)
    alice.git("pull", "-q")  # a plain pull: it fast-forwards onto Bob's merge
    assert alice.git("rev-parse", "HEAD") == bob.git("rev-parse", "HEAD")
    res = alice.run("versions", MODEL)
    assert f"v2 of {MODEL} now names" in res.err and f"it named {hers[:8]}" in res.err
    assert bob.run("fetch").code == 0  # Bob gets the records of Alice's version
    for clone in (alice, bob):
        entry = _entries(clone)[hers]
        assert entry["local"] is False and entry["committed"] is True, entry
        assert entry["version"] == f"side:{hers[:8]}"
        assert f"  side  {hers[:8]}" in clone.run("versions", MODEL).out
        res = clone.run("checkout", f"{MODEL}@{hers[:8]}")
        assert res.code == 0 and clone.read(MODEL).startswith("lr=0.4"), res.text
        assert clone.run("checkout", f"{MODEL}@side:{hers[:8]}").code == 0
    # a version produced since the last commit is still local
    _set_lr(alice, 0.5)
    assert alice.run("repro").code == 0
    fresh = [e for e in _entries(alice).values() if e["current"]]
    assert len(fresh) == 1 and fresh[0]["local"] is True and fresh[0]["committed"] is False
    assert fresh[0]["version"] == f"local:{str(fresh[0]['hash'])[:8]}"


def test_pull_no_ff_keeps_your_numbering(project: Project, tmp_path: Path) -> None:
    alice, bob = _team(project, tmp_path)
    hers, his = _bob_merges_alices_model(alice, bob)
    alice.git("pull", "-q", "--no-ff", "--no-edit")  # a merge commit, not a fast-forward
    assert alice.git("rev-parse", "HEAD^2") == bob.git("rev-parse", "HEAD")
    assert alice.run("fetch").code == 0
    res = alice.run("versions", MODEL)
    assert res.code == 0 and res.err == "", res.text
    labels = _labels(alice)
    assert labels["v2"] == hers and labels["v3"] == his


def test_a_version_committed_on_another_branch_is_side_a_stashed_one_local(
        project: Project) -> None:
    chain(project)
    _repro_commit(project, "v1")
    project.git("checkout", "-q", "-b", "feature")
    _set_lr(project, 0.07)
    _repro_commit(project, "try lr 0.07")
    feature = _labels(project)["v2"]
    project.git("checkout", "-q", "main")
    _set_lr(project, 0.09)
    assert project.run("repro").code == 0
    project.git("stash", "-q")  # a stash is work in progress, not a commit
    entries = _entries(project)
    assert entries[feature]["version"] == f"side:{feature[:8]}"
    (stashed,) = [e for e in entries.values() if e["local"]]
    assert stashed["committed"] is False and stashed["hash"] != feature


def test_a_tag_named_like_a_hash_prefix_redirects_nothing(project: Project) -> None:
    """A crafted tag log line may name a tag after v1's hash prefix and point it at v2:
    `PATH@<prefix>` still names v1, and `tag` refuses such names itself."""
    from pipeflow.lineage import tags as tagfile

    _tagged_twice(project)
    labels = _labels(project)
    prefix = labels["v1"][:8]
    log = tagfile.read_log(project.root / ".pipeflow")
    body = tagfile._chained(log, "c0ffee00c0ffee00", {
        "path": MODEL, "name": prefix, "hash": labels["v2"], "previous": None,
        "user": "mallory", "when": "2026-01-01T00:00:00.000+00:00"})
    with (project.root / ".pipeflow/tags.jsonl").open("ab") as f:
        f.write(tagfile._line(body))
    res = project.run("checkout", f"{MODEL}@{prefix}")
    assert res.code == 0 and f"(v1, {prefix})" in res.out, res.text
    res = project.run("tag", f"{MODEL}@v2", "cafe1234")
    assert res.code == 2 and "hash prefix" in res.err, res.text
