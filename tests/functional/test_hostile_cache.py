"""A cloned repository cannot place or reach pipeflow's own state (issue 11).

- the committed ``.pipeflow/config`` cannot put the cache outside the project (``~``,
  ``/x``, ``../..``, another project's cache): only ``config.local`` can;
- sweeps and gc remove only names pipeflow makes, and gc searches only the cache's
  own folders, never the rest of the folder a cache sits in.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.functional.helpers import commit

OLD = 1_577_836_800  # 2020-01-01: older than any grace period


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` with its content's hash (a folder: 'dir')."""
    seen = {}
    for here, dirs, files in os.walk(folder):
        for d in dirs:
            seen[os.path.relpath(os.path.join(here, d), folder)] = "dir"
        for f in files:
            path = os.path.join(here, f)
            seen[os.path.relpath(path, folder)] = hashlib.sha256(
                Path(path).read_bytes()).hexdigest()
    return seen


def canary(folder: Path) -> Path:
    """A user's folder: a plain file in ``tmp/`` and a ``.NAME.tmp`` draft, both old."""
    for rel, text in (("tmp/thesis.tex", "thesis"), ("docs/.report.tmp", "report"),
                      ("file.txt", "precious")):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.utime(path, (OLD, OLD))
    return folder


def published(attacker: Project, tmp_path: Path) -> Path:
    """The attacker's project: one source and one stage, pushed to a folder remote and
    a bare git origin. Returns the origin."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    assert attacker.run("init").code == 0
    attacker.write("data.txt", "hello\n")
    attacker.spec({"make": {"cmd": "mkdir -p out && cp data.txt out/model.txt",
                            "deps": ["data.txt"], "outs": ["out/model.txt"]}})
    assert attacker.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    assert attacker.run("add", "data.txt").code == 0
    assert attacker.run("repro").code == 0
    assert attacker.run("push").code == 0
    commit(attacker, "init")
    attacker.git("remote", "add", "origin", str(origin))
    attacker.git("push", "-q", "-u", "origin", "main")
    return origin


def clone(origin: Path, where: Path) -> Project:
    subprocess.run(["git", "clone", "-q", str(origin), str(where)], check=True)
    return Project(where)


def set_committed_cache_dir(attacker: Project, value: str) -> None:
    text = attacker.read(".pipeflow/config").replace("dir: cache", f"dir: {value!r}")
    assert value in text
    attacker.write(".pipeflow/config", text)
    commit(attacker, f"cache in {value}")
    attacker.git("push", "-q")


@pytest.mark.parametrize("value", ["~", "HOME_ABS", "../..", "../../other/.pipeflow/cache",
                                   "../.git"])
def test_committed_cache_dir_outside_the_project_is_refused(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    home = canary(tmp_path / "home")
    monkeypatch.setenv("HOME", str(home))
    origin = published(project, tmp_path)
    set_committed_cache_dir(project, str(home) if value == "HOME_ABS" else value)
    victim = clone(origin, tmp_path / "victim")
    before, around = snapshot(home), snapshot(tmp_path / "other") if value else {}
    for args in (("pull",), ("gc", "--workspace", "--yes"), ("status",)):
        res = victim.run(*args)
        assert res.code == 2, (args, res.text)
        assert ".pipeflow/config" in res.err and "cache.dir" in res.err, res.err
        assert "config.local" in res.err and "Traceback" not in res.text
    assert snapshot(home) == before
    assert not (tmp_path / "objects").exists() and not (tmp_path / "runs").exists()
    assert not (victim.root / ".git/objects/runs").exists() and around == {}


def test_committed_cache_folder_linked_outside_is_refused(
        project: Project, tmp_path: Path) -> None:
    outside = canary(tmp_path / "outside")
    origin = published(project, tmp_path)
    (project.root / ".pipeflow/cache").rename(tmp_path / "attacker-cache")
    os.symlink(outside, project.root / ".pipeflow/cache")
    project.git("add", "-f", ".pipeflow/cache")
    commit(project, "cache is a link")
    project.git("push", "-q")
    victim = clone(origin, tmp_path / "victim")
    before = snapshot(outside)
    res = victim.run("pull")
    assert res.code == 2 and "symlink" in res.err and "cache.dir" in res.err, res.text
    assert victim.run("gc", "--workspace", "--yes").code == 2
    assert snapshot(outside) == before


def test_relative_cache_inside_the_project_and_local_choice_still_work(
        project: Project, tmp_path: Path) -> None:
    origin = published(project, tmp_path)
    set_committed_cache_dir(project, "../pfcache")
    victim = clone(origin, tmp_path / "victim")
    assert victim.run("pull").code == 0
    assert (victim.root / "pfcache/objects").is_dir()
    assert victim.read("out/model.txt") == "hello\n"
    # the machine's own choice: anywhere, from config.local
    mine = tmp_path / "big-disk"
    victim.write(".pipeflow/config.local", f"cache:\n  dir: {str(mine)!r}\n")
    assert victim.run("pull").code == 0 and (mine / "objects").is_dir()


def test_sweeps_and_gc_remove_only_pipeflow_names_in_the_cache_folder(
        project: Project, tmp_path: Path) -> None:
    """A user who points the cache at a folder holding other files (here by mistake: a
    home folder) loses none of them: not the plain files in ``tmp/``, not a
    ``.NAME.tmp`` anywhere, and gc walks only objects/, runs/, runcache/ and tmp/."""
    home = canary(tmp_path / "home")
    origin = published(project, tmp_path)
    victim = clone(origin, tmp_path / "victim")
    victim.write(".pipeflow/config.local", f"cache:\n  dir: {str(home)!r}\n")
    before = snapshot(home)
    assert victim.run("pull").code == 0
    res = victim.run("gc", "--workspace", "--yes")
    assert res.code == 0, res.text
    after = snapshot(home)
    assert {k: v for k, v in after.items() if k in before} == before
    assert {k.split("/")[0] for k in set(after) - set(before)} <= {
        "objects", "runs", "runcache", "tmp"}
    # and pipeflow's own leftovers there still go
    dead = home / "tmp" / f"{'ab' * 16}.999999-0a1b2c3d.part"
    dead.write_text("half")
    os.utime(dead, (OLD, OLD))
    assert victim.run("pull").code == 0 and not dead.exists()
    assert (home / "tmp/thesis.tex").read_text() == "thesis"


# --- pipeflow's own state committed into the repository ---------------------------


def committed_state(attacker: Project, tmp_path: Path) -> tuple[Path, str]:
    """The attacker runs ``make`` on data 'A', then on 'B', and force-adds their chain
    id and cache (records of both runs, pointers, objects) to git. Returns the origin
    and the attacker's chain id."""
    origin = published(attacker, tmp_path)
    attacker.spec({"make": {"cmd": "echo make >> runs.log && mkdir -p out && "
                                   "cp data.txt out/model.txt",
                            "deps": ["data.txt"], "outs": ["out/model.txt"]}})
    attacker.write(".gitignore", "runs.log\n")
    for text in ("A\n", "B\n"):
        attacker.write("data.txt", text)
        assert attacker.run("add", "data.txt").code == 0
        assert attacker.run("repro").code == 0
    attacker.git("add", "-f", ".pipeflow/chain", ".pipeflow/cache")
    commit(attacker, "per-clone files")
    attacker.git("push", "-q")
    return origin, attacker.read(".pipeflow/chain").strip()


def test_a_committed_chain_and_cache_are_not_this_clones_own(
        project: Project, tmp_path: Path) -> None:
    origin, theirs = committed_state(project, tmp_path)
    victim = clone(origin, tmp_path / "victim")
    res = victim.run("verify")
    assert res.code == 1 and "everything verified" not in res.out, res.text
    assert "committed-state" in res.out and "git rm -r --cached .pipeflow/cache " \
        ".pipeflow/chain" in res.out, res.out
    assert f"chain {theirs}" in res.out and "from git" in res.out
    lineage = victim.run("lineage", "out/model.txt")
    assert "came through git" in lineage.out, lineage.text
    status = victim.run("status")
    assert status.code == 0 and "tracked by git" in status.err, status.text
    assert "git rm -r --cached" in status.err
    # the run cache holds the attacker's run on 'A': the victim's 'A' runs anyway
    victim.write("data.txt", "A\n")
    assert victim.run("add", "data.txt").code == 0
    res = victim.run("repro")
    assert res.code == 0, res.text
    assert victim.read("runs.log").split() == ["make"], res.text
    assert "came through git" in res.err
    # and the victim's records go into a chain of its own
    mine = victim.read(".pipeflow/chain").strip()
    assert mine != theirs and len(mine) == 16
    assert (victim.root / ".pipeflow/cache/runs" / mine).is_dir()
    assert len(list((victim.root / ".pipeflow/cache/runs" / theirs).iterdir())) == len(
        list((project.root / ".pipeflow/cache/runs" / theirs).iterdir()))
    # once untracked (the hint's command), the clone's own chain is its own
    victim.git("rm", "-r", "-q", "--cached", ".pipeflow/cache", ".pipeflow/chain")
    assert "tracked by git" not in victim.run("status").err
    assert victim.read(".pipeflow/chain").strip() == mine
    res = victim.run("lineage", "out/model.txt")  # its run is this clone's own
    assert res.code == 0 and "came through git" not in res.out, res.text
    assert res.out.splitlines()[2].strip().startswith("command"), res.out
