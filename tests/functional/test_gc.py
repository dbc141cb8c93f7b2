"""gc keeps what locks, tags and recent runs need; never deletes run records."""

from __future__ import annotations

import json

from tests.conftest import Project
from tests.functional.helpers import chain


def _objects(p: Project) -> set[str]:
    return {f.parent.name + f.name for f in (p.root / ".pipeflow/cache/objects").glob("*/*")}


def _three_versions(p: Project) -> None:
    chain(p)
    p.run("repro")
    p.git("add", "-A")
    p.git("commit", "-qm", "v1")
    for lr in (0.07, 0.09):
        p.params({"prep": {"n": 3}, "train": {"lr": lr, "epochs": 2}, "eval": {"k": 1}})
        assert p.run("repro").code == 0


def test_gc_refuses_without_a_scope(project: Project) -> None:
    _three_versions(project)
    res = project.run("gc")
    assert res.code == 2
    assert "--workspace" in res.err and "--all-commits" in res.err


def test_gc_workspace_keeps_the_lock_tags_and_git_revisions(project: Project) -> None:
    _three_versions(project)
    versions = json.loads(project.run("versions", "models/model.txt", "--json").out)["versions"]
    v1, v2, v3 = (v["hash"] for v in versions)
    records = sorted((project.root / ".pipeflow/cache/runs").glob("*/*.json"))
    project.run("tag", f"models/model.txt@{v2[:8]}", "staging")  # v2, v3: local versions
    dry = json.loads(project.run("gc", "--workspace", "--keep-days", "0", "--dry", "--json").out)
    assert v1 in dry["removed"] and v2 not in dry["removed"] and v3 not in dry["removed"]
    assert v1 in _objects(project)  # dry deletes nothing
    res = project.run("gc", "--workspace", "--rev", "HEAD", "--keep-days", "0")
    assert res.code == 0, res.text
    assert {v1, v2, v3} <= _objects(project)  # HEAD's lock needs v1
    project.run("gc", "--workspace", "--keep-days", "0")
    assert v1 not in _objects(project)
    assert {v2, v3} <= _objects(project)
    assert sorted((project.root / ".pipeflow/cache/runs").glob("*/*.json")) == records
    listed = json.loads(project.run("versions", "models/model.txt", "--json").out)["versions"]
    assert [v["in_cache"] for v in listed] == [False, True, True]
    bad = project.run("checkout", "models/model.txt@v1")  # the committed one
    assert bad.code == 1 and "no longer in the cache" in bad.err


def test_recent_runs_are_kept_by_default(project: Project) -> None:
    _three_versions(project)
    before = _objects(project)
    assert project.run("gc", "--workspace").code == 0
    assert _objects(project) == before


def test_gc_remote_needs_confirmation(project: Project, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _three_versions(project)
    project.run("remote", "add", "origin", str(tmp_path / "r"))
    project.run("push")
    res = project.run("gc", "--workspace", "--remote", "origin")
    assert res.code == 2 and "--yes" in res.err
    res = project.run("gc", "--workspace", "--keep-days", "0", "--remote", "origin", "--yes",
                      "--json")
    assert res.code == 0, res.text
    assert len(json.loads(res.out)["remote_removed"]) >= 1
