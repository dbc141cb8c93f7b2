"""gc keeps what locks, tags and recent runs need; never deletes run records."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import GIT_ENV, Project
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
    dry = json.loads(project.run("gc", "--workspace", "--keep-days", "0", "--grace", "0",
                                 "--dry", "--json").out)
    assert v1 in dry["removed"] and v2 not in dry["removed"] and v3 not in dry["removed"]
    assert v1 in _objects(project)  # dry deletes nothing
    res = project.run("gc", "--workspace", "--rev", "HEAD", "--keep-days", "0", "--grace", "0")
    assert res.code == 0, res.text
    assert {v1, v2, v3} <= _objects(project)  # HEAD's lock needs v1
    project.run("gc", "--workspace", "--keep-days", "0", "--grace", "0")
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
    res = project.run("gc", "--workspace", "--keep-days", "0", "--grace", "0", "--remote",
                      "origin", "--yes", "--json")
    assert res.code == 0, res.text
    assert len(json.loads(res.out)["remote_removed"]) >= 1


# a team: a bare git origin, a folder remote, several clones --------------------------

DAY = 86400.0


@dataclass(frozen=True)
class Team:
    origin: Path
    store: Path
    alice: Project


def _folder_pipeline(p: Project, n: int = 3) -> None:
    """prepare (a file) -> images (a folder of two files)."""
    p.params({"n": n})
    p.write("data/raw.txt", "a\nb\nc\n")
    p.spec({
        "prepare": {"cmd": "head -n ${n} data/raw.txt > data/prepared.txt",
                    "deps": ["data/raw.txt"], "params": ["n"], "outs": ["data/prepared.txt"]},
        "images": {"cmd": "mkdir -p images && cp data/prepared.txt images/a.txt && "
                          "echo n=${n} > images/b.txt",
                   "deps": ["data/prepared.txt"], "params": ["n"], "outs": ["images"]},
    })


def _team(project: Project, tmp_path: Path) -> Team:
    """Alice ran the pipeline, pushed data to the remote and code to the origin."""
    origin, store = tmp_path / "origin.git", tmp_path / "store"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    _folder_pipeline(project)
    assert project.run("remote", "add", "origin", str(store)).code == 0
    assert project.run("repro").code == 0
    assert project.run("push").code == 0
    project.git("add", "-A")
    project.git("commit", "-qm", "pipeline")
    project.git("remote", "add", "origin", str(origin))
    project.git("push", "-q", "origin", "main")
    return Team(origin, store, project)


def _clone(team: Team, tmp_path: Path, name: str, branch: str = "main") -> Project:
    dest = tmp_path / name
    subprocess.run(["git", "clone", "-q", "-b", branch, str(team.origin), str(dest)],
                   check=True)
    return Project(dest)


def _age(folder: Path, seconds: float, pattern: str = "**/*") -> None:
    """Make files look written ``seconds`` ago (a push of yesterday, an old temp)."""
    when = time.time() - seconds
    for path in folder.glob(pattern):
        if path.is_file():
            os.utime(path, (when, when))


def _remote_files(store: Path) -> set[str]:
    return {p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()}


def _pulls_cleanly(team: Team, tmp_path: Path, name: str, branch: str = "main") -> None:
    fresh = _clone(team, tmp_path, name, branch)
    res = fresh.run("pull")
    assert res.code == 0, res.text
    assert fresh.run("status", "--check").code == 0


def _manifest(p: Project) -> str:
    return str(p.lock()["stages"]["images"]["outs"][0]["hash"])


def _lose_the_manifest(p: Project, how: str) -> None:
    if how == "one-target-pulled":
        assert p.run("pull", "prepare").code == 0
    else:
        assert p.run("pull").code == 0
        shutil.rmtree(p.root / ".pipeflow/cache")
    oid = _manifest(p)
    assert not (p.root / ".pipeflow/cache/objects" / oid[:2] / oid[2:]).exists()


@pytest.mark.parametrize("how", ["one-target-pulled", "cache-deleted"])
def test_gc_remote_from_a_partial_cache_keeps_the_folders_files(
        project: Project, tmp_path: Path, how: str) -> None:
    team = _team(project, tmp_path)
    _age(team.store, DAY)  # pushed yesterday: the grace period is not what saves them
    before = _remote_files(team.store)
    carol = _clone(team, tmp_path, "carol")
    _lose_the_manifest(carol, how)
    res = carol.run("gc", "--workspace", "--remote", "origin", "--yes", "--json")
    assert res.code == 0, res.text
    assert _remote_files(team.store) == before
    _pulls_cleanly(team, tmp_path, "dave")
    assert json.loads(res.out)["manifests_fetched"] == 1  # now in carol's cache too
    oid = _manifest(carol)
    assert (carol.root / ".pipeflow/cache/objects" / oid[:2] / oid[2:]).exists()


def test_local_gc_fetches_a_missing_manifest_before_judging_its_files(
        project: Project, tmp_path: Path) -> None:
    team = _team(project, tmp_path)
    carol = _clone(team, tmp_path, "carol")
    assert carol.run("pull").code == 0
    cache = carol.root / ".pipeflow/cache/objects"
    oid = _manifest(carol)
    (cache / oid[:2] / oid[2:]).unlink()
    _age(cache, DAY)
    files = _objects(carol)
    res = carol.run("gc", "--workspace", "--keep-days", "0")
    assert res.code == 0, res.text
    assert _objects(carol) == files | {oid}  # nothing lost, the manifest is back


def test_gc_refuses_when_a_folder_manifest_is_nowhere(project: Project,
                                                       tmp_path: Path) -> None:
    team = _team(project, tmp_path)
    oid = _manifest(team.alice)
    (team.store / "objects" / oid[:2] / oid[2:]).unlink()
    carol = _clone(team, tmp_path, "carol")
    assert carol.run("pull", "prepare").code == 0
    _age(team.store, DAY)
    before = _remote_files(team.store)
    local = _objects(carol)
    res = carol.run("gc", "--workspace", "--remote", "origin", "--yes")
    assert res.code == 1, res.text
    assert "images" in res.err and oid[:12] in res.err and "Nothing was deleted" in res.err
    assert _remote_files(team.store) == before
    assert _objects(carol) == local
    res = carol.run("gc", "--workspace", "--remote", "origin", "--yes", "--grace", "2d")
    assert res.code == 0 and "no object was old" in res.err  # nothing could go anyway


def _bob_pushes_a_new_version(team: Team, tmp_path: Path) -> Project:
    """Bob reruns with other params on his own branch (Alice never merges it)."""
    bob = _clone(team, tmp_path, "bob")
    assert bob.run("pull").code == 0
    bob.git("checkout", "-q", "-b", "bob")
    _folder_pipeline(bob, n=2)
    assert bob.run("repro").code == 0
    bob.git("add", "-A")
    bob.git("commit", "-qm", "n=2")
    bob.git("push", "-q", "origin", "bob")
    return bob


def test_gc_remote_keeps_what_a_colleague_just_pushed(project: Project,
                                                       tmp_path: Path) -> None:
    team = _team(project, tmp_path)
    bob = _bob_pushes_a_new_version(team, tmp_path)
    assert bob.run("push").code == 0
    alice = team.alice
    res = alice.run("gc", "--workspace", "--remote", "origin", "--yes")  # right after
    assert res.code == 0, res.text
    _pulls_cleanly(team, tmp_path, "fresh-bob", "bob")
    _age(team.store, DAY)  # a day later: bob's runs, read from the remote, keep them
    res = alice.run("gc", "--workspace", "--remote", "origin", "--yes", "--json")
    assert res.code == 0, res.text
    body = json.loads(res.out)
    assert body["remote"]["removed"] == [] and body["remote"]["kept_by"]["run"] >= 3
    _pulls_cleanly(team, tmp_path, "fresh-bob-2", "bob")
    res = alice.run("gc", "--workspace", "--remote", "origin", "--yes", "--keep-days", "0",
                    "--json")  # what only bob's runs kept may go now
    assert res.code == 0 and len(json.loads(res.out)["remote"]["removed"]) >= 3


@pytest.mark.parametrize("grace", ["default", "0"])
def test_a_push_racing_a_gc_loses_nothing_thanks_to_the_grace_period(
        project: Project, tmp_path: Path, grace: str) -> None:
    team = _team(project, tmp_path)
    bob = _bob_pushes_a_new_version(team, tmp_path)
    pause = tmp_path / "push-paused"
    env = {**os.environ, **GIT_ENV, "PIPEFLOW_FAULTS": f"push.records:pause={pause}"}
    push = subprocess.Popen([sys.executable, "-m", "pipeflow", "push"], cwd=bob.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not pause.exists():  # bob's objects are up, his records not yet
            assert push.poll() is None, "push ended without reaching push.records"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        records_before = {p.name for p in (team.store / "runs").rglob("*.json")}
        args = ["gc", "--workspace", "--remote", "origin", "--yes"]
        res = team.alice.run(*args, *(["--grace", grace] if grace != "default" else []))
        assert res.code == 0, res.text
        assert {p.name for p in (team.store / "runs").rglob("*.json")} == records_before
    finally:
        pause.unlink(missing_ok=True)
        out, err = push.communicate(timeout=60)
    assert push.returncode == 0, out + err
    fresh = _clone(team, tmp_path, "fresh-bob", "bob")
    res = fresh.run("pull")
    if grace == "default":
        assert res.code == 0, res.text
        assert fresh.run("status", "--check").code == 0
    else:  # without the grace period the same race loses bob's data
        assert res.code != 0 and "missing" in res.text


def test_old_temporary_files_go_young_ones_stay(project: Project, tmp_path: Path) -> None:
    team = _team(project, tmp_path)
    p = team.alice
    cache = p.root / ".pipeflow/cache"
    chain_dir = next((cache / "runs").iterdir())
    ours = [cache / "objects/ab/.cdef.123-abcdef-0.pftmp",
            cache / "tmp" / f"{'ab' * 16}.123-0a1b2c3d.part",
            chain_dir / ".00000009-abc.json.77.0a1b2c3d.tmp",
            p.root / ".pipeline.lock.77.0a1b2c3d.tmp",
            p.root / ".pipeflow/.config.77.0a1b2c3d.tmp",
            p.root / "data/.prepared.txt.9-ab-1.pftmp"]
    remote = [team.store / "objects/ab/cdef.tmp-0a1b2c3d",
              team.store / "runs" / chain_dir.name / "00000009-abc.json.tmp-1a2b3c4d"]
    # not names pipeflow makes, even in its own folders
    users = [p.root / ".notes.tmp", cache / "tmp/notes.txt", chain_dir / ".draft.tmp"]
    old = [*ours, *remote, *users]
    young = [cache / "objects/ab/.cdef.123-abcdef-1.pftmp",
             cache / "tmp" / f"{'cd' * 16}.123-9f8e7d6c.part",
             team.store / "objects/ab/cdef.tmp-9f8e7d6c"]
    for f in old + young:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("half written")
    for f in old:
        _age(f.parent, 3 * 3600, f.name)
    res = p.run("gc", "--workspace", "--remote", "origin", "--yes", "--json")
    assert res.code == 0, res.text
    body = json.loads(res.out)
    assert len(body["temps_removed"]) == len(ours)
    assert len(body["remote"]["temps_removed"]) == len(remote)
    assert not any(f.exists() for f in ours + remote)
    assert all(f.exists() for f in [*young, *users])
    assert p.run("status", "--check").code == 0


def test_text_report_says_removed_for_temporary_upload_files(project: Project,
                                                           tmp_path: Path) -> None:
    team = _team(project, tmp_path)
    stale = team.store / "objects/ab/cdef.tmp-0a1b2c3d"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("half uploaded")
    _age(stale.parent, 3 * 3600, stale.name)
    res = team.alice.run("gc", "--workspace", "--remote", "origin", "--yes")
    assert res.code == 0, res.text
    assert "; removed 1 temporary upload file(s)" in res.out, res.out
    assert not stale.exists()


def test_dry_run_says_why_objects_stay_and_grace_comes_from_option_or_config(
        project: Project) -> None:
    _three_versions(project)
    v1 = json.loads(project.run("versions", "models/model.txt", "--json").out)["versions"][0]
    res = project.run("gc", "--workspace", "--keep-days", "0", "--dry")
    assert res.code == 0 and "by lock" in res.out and "by grace" in res.out
    assert "would remove 0 object(s)" in res.out
    res = project.run("gc", "--workspace", "--keep-days", "0", "--grace", "0", "--dry")
    assert f"would remove {v1['hash']}" in res.out and "by grace" not in res.out
    bad = project.run("gc", "--workspace", "--grace", "30")
    assert bad.code == 2 and "unit" in bad.err
    project.write(".pipeflow/config.local", "gc:\n  grace: 0\n")  # this machine's choice
    assert v1["hash"] in json.loads(project.run(
        "gc", "--workspace", "--keep-days", "0", "--dry", "--json").out)["removed"]
    project.write(".pipeflow/config.local", "")
    project.write(".pipeflow/config", "gc:\n  grace: 0\n")  # a repository's: refused
    bad = project.run("gc", "--workspace", "--keep-days", "0", "--dry")
    assert bad.code == 2 and "only lengthen" in bad.err and "config.local" in bad.err
    project.write(".pipeflow/config", "gc:\n  grace: 3h\n")
    assert project.run("gc", "--workspace", "--dry").code == 0
    project.write(".pipeflow/config", "gc:\n  grace: soon\n")
    bad = project.run("gc", "--workspace")
    assert bad.code == 2 and "gc.grace" in bad.err and ".pipeflow/config" in bad.err


def test_a_stray_file_in_the_cache_is_not_an_object(project: Project) -> None:
    """A name in a shard folder that is no object id (someone's file, a copy gone
    wrong) is neither collected nor 'repaired': gc and verify leave it, as they do on
    a remote."""
    chain(project)
    assert project.run("repro").code == 0
    stray = project.root / ".pipeflow/cache/objects/ab" / ("A" * 30)
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("not pipeflow's\n")
    gc = project.run("gc", "--workspace", "--grace", "0")
    assert gc.code == 0, gc.text
    verify = project.run("verify")
    assert verify.code == 0, verify.text
    assert stray.read_text() == "not pipeflow's\n"
