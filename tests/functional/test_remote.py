"""Remotes through fsspec (a local folder URL): push, a colleague's clone, pull."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import Project
from tests.functional.helpers import chain, runs


def _published(project: Project, tmp_path: Path) -> Path:
    chain(project)
    store = tmp_path / "remote-store"
    assert project.run("remote", "add", "origin", str(store)).code == 0
    assert project.run("repro").code == 0
    res = project.run("push", "--json")
    assert res.code == 0, res.text
    body = json.loads(res.out)
    assert body["objects"] >= 3 and body["records"] == 3
    runs(project)
    project.git("add", "-A")
    project.git("commit", "-qm", "pipeline")
    return store


def test_remote_config_is_committed_and_listed(project: Project, tmp_path: Path) -> None:
    project.run("init")
    assert project.run("remote", "add", "origin", str(tmp_path / "r")).code == 0
    assert "origin" in project.read(".pipeflow/config")
    listed = json.loads(project.run("remote", "list", "--json").out)["remotes"]
    assert listed == [{"name": "origin", "url": str(tmp_path / "r"), "default": True}]
    assert project.run("remote", "add", "origin", "/x").code == 2
    assert project.run("remote", "modify", "origin", "key", "abc").code == 2  # a secret
    assert project.run("remote", "modify", "origin", "key", "abc", "--local").code == 0
    assert "abc" not in project.read(".pipeflow/config")
    bad = project.run("remote", "add", "s3", "s3://AKIA:hunter2@bucket/x")
    assert bad.code == 2 and "hunter2" not in bad.text
    assert project.run("remote", "remove", "origin").code == 0
    assert project.run("push").code == 2


def test_a_colleague_pulls_and_runs_nothing(project: Project, tmp_path: Path) -> None:
    _published(project, tmp_path)
    second = push_again = project.run("push", "--json")
    assert json.loads(push_again.out)["objects"] == 0  # nothing new to send
    assert second.code == 0
    clone = tmp_path / "colleague"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    other = Project(clone)
    assert not (clone / "models/model.txt").exists()
    res = other.run("pull")
    assert res.code == 0, res.text
    assert other.read("models/model.txt") == project.read("models/model.txt")
    assert other.run("status", "--check").code == 0
    res = other.run("repro")
    assert res.code == 0 and "up to date" in res.out
    assert not (clone / "runs.log").exists()
    body = json.loads(other.run("versions", "models/model.txt", "--json").out)
    assert len(body["versions"]) == 1
    # the run cache travels too: a param edit and its revert in the clone
    other.params({"prep": {"n": 3}, "train": {"lr": 0.05, "epochs": 2}, "eval": {"k": 1}})
    assert other.run("status", "--check").code == 0


def test_corrupt_remote_object_is_rejected(project: Project, tmp_path: Path) -> None:
    store = _published(project, tmp_path)
    oid = project.lock()["stages"]["train"]["outs"][0]["hash"]
    (store / "objects" / oid[:2] / oid[2:]).write_text("evil\n")
    clone = tmp_path / "colleague"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    other = Project(clone)
    res = other.run("pull")
    assert res.code == 1
    assert "did not match their hash and were rejected" in res.err
    assert oid[:12] in res.err
    obj = clone / ".pipeflow/cache/objects" / oid[:2] / oid[2:]
    assert not obj.exists()


def test_unreachable_remote_is_a_clear_error(project: Project, tmp_path: Path) -> None:
    chain(project)
    project.run("repro")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    project.run("remote", "add", "bad", str(blocker / "store"))
    res = project.run("push")
    assert res.code == 1
    assert "remote 'bad'" in res.err and str(blocker) in res.err
    assert "Traceback" not in res.text


def test_push_targets_sends_only_their_objects(project: Project, tmp_path: Path) -> None:
    chain(project)
    store = tmp_path / "r"
    project.run("remote", "add", "origin", str(store))
    project.run("repro")
    runs(project)
    assert project.run("push", "train").code == 0
    sent = {p.parent.name + p.name for p in (store / "objects").glob("*/*")}
    assert sent == {project.lock()["stages"]["train"]["outs"][0]["hash"]}
    shutil.rmtree(store)


def test_status_remote_and_repro_pull(project: Project, tmp_path: Path) -> None:
    chain(project)
    store = tmp_path / "r"
    project.run("remote", "add", "origin", str(store))
    project.run("repro")
    res = project.run("status", "--remote")
    assert "not pushed: " in res.out and "models/model.txt" in res.out
    assert project.run("status", "--remote", "--check").code == 1
    project.run("push")
    assert project.run("status", "--remote", "--check").code == 0
    assert "the remote has everything" in project.run("status", "--remote").out
    body = json.loads(project.run("status", "--remote", "--json").out)
    assert body["not_pushed"] == {"paths": [], "records": 0}
    # a second version pushed; the clone reverts to it with --pull: no rerun
    project.params({"prep": {"n": 3}, "train": {"lr": 0.5, "epochs": 2}, "eval": {"k": 1}})
    project.run("repro")
    project.run("push")
    runs(project)
    project.params({"prep": {"n": 3}, "train": {"lr": 0.05, "epochs": 2}, "eval": {"k": 1}})
    project.run("repro")  # back to lr 0.05 (run cache), then commit that state
    # the team trusts its remote's unsigned run cache (the default is not to)
    assert project.run("remote", "modify", "origin", "trust_run_cache", "true").code == 0
    project.git("add", "-A")
    project.git("commit", "-qm", "lr 0.05")
    clone = tmp_path / "c"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    other = Project(clone)
    other.params({"prep": {"n": 3}, "train": {"lr": 0.5, "epochs": 2}, "eval": {"k": 1}})
    res = other.run("repro", "--pull")
    assert res.code == 0, res.text
    assert not (clone / "runs.log").exists() or "train" not in other.read("runs.log")
    assert other.read("models/model.txt").startswith("lr=0.5")


def test_an_older_version_comes_from_the_remote(project: Project, tmp_path: Path) -> None:
    store = _published(project, tmp_path)
    project.params({"prep": {"n": 3}, "train": {"lr": 0.3, "epochs": 2}, "eval": {"k": 1}})
    project.run("repro")
    project.run("tag", "models/model.txt@v1", "production")
    project.run("push")
    runs(project)
    project.git("add", "-A")
    project.git("commit", "-qm", "lr 0.3")
    clone = tmp_path / "c2"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    other = Project(clone)
    assert other.run("pull").code == 0
    assert other.read("models/model.txt").startswith("lr=0.3")
    res = other.run("checkout", "models/model.txt@production")
    assert res.code == 0, res.text
    assert other.read("models/model.txt").startswith("lr=0.05")
    assert store.is_dir()
