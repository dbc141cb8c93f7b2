"""pipeline.lock through real git merges: two clones of one origin each rerun stages and
merge; the merge driver merges the lock stage by stage, and `repro` resolves what
both changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import GIT_ENV, Project


def _pipeline(p: Project, *, extra: bool = False) -> None:
    """Two independent stages a and b; a reads a.x and a.z, b reads b.y (keys far apart
    in params.yaml, so that git merges the params file's edits). ``extra`` adds a
    stage a2 (its lock entry goes between a's and b's)."""
    if not extra:
        p.params({"a": {"x": 1, "p1": 0, "p2": 0, "p3": 0, "z": 1},
                  "pad": {"q1": 0, "q2": 0, "q3": 0}, "b": {"y": 1}})
        p.write("data.txt", "data\n")
    more = {"a2": {"cmd": "mkdir -p out && cat data.txt > out/a2.txt", "deps": ["data.txt"],
                   "outs": ["out/a2.txt"]}} if extra else {}
    p.spec({**more,
        "a": {"cmd": "mkdir -p out && echo a ${a.x} ${a.z} > out/a.txt", "deps": ["data.txt"],
              "params": ["a.x", "a.z"], "outs": ["out/a.txt"]},
        "b": {"cmd": "mkdir -p out && echo b ${b.y} > out/b.txt", "deps": ["data.txt"],
              "params": ["b.y"], "outs": ["out/b.txt"]},
    })


def _set(p: Project, dotted: str, value: object) -> None:
    data = yaml.safe_load(p.read("params.yaml"))
    group, key = dotted.split(".")
    data[group][key] = value
    p.params(data)


def _commit(p: Project, message: str) -> None:
    p.git("add", "-A")
    p.git("commit", "-qm", message)


def _team(project: Project, tmp_path: Path) -> tuple[Project, Project]:
    """A bare origin, a shared folder remote and two clones (alice, bob) that pulled."""
    _pipeline(project)
    assert project.run("init").code == 0
    assert project.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    assert project.run("repro").code == 0
    assert project.run("push").code == 0
    _commit(project, "pipeline")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(project.root), str(origin)], check=True)
    clones = []
    for name in ("alice", "bob"):
        subprocess.run(["git", "clone", "-q", str(origin), str(tmp_path / name)], check=True)
        clone = Project(tmp_path / name)
        res = clone.run("pull")  # a writer: defines the merge driver in the fresh clone
        assert res.code == 0, res.text
        clones.append(clone)
    return clones[0], clones[1]


def _rerun(p: Project, dotted: str, value: object) -> None:
    _set(p, dotted, value)
    res = p.run("repro")
    assert res.code == 0, res.text
    assert p.run("push").code == 0
    _commit(p, f"{dotted} = {value}")


def _merge(p: Project) -> subprocess.CompletedProcess[str]:
    p.git("fetch", "-q", "origin")
    return subprocess.run(["git", "merge", "--no-edit", "origin/main"], cwd=p.root,
                          capture_output=True, text=True, env={**os.environ, **GIT_ENV})


@pytest.mark.parametrize("driver", [True, False], ids=["driver", "git-text-merge"])
def test_branches_rerunning_different_stages(
    project: Project, tmp_path: Path, driver: bool
) -> None:
    """Alice reruns a; Bob reruns b and adds a stage a2. Stage by stage nothing
    conflicts, but git's text merge conflicts (a's changed `run:` line and the new a2
    entry touch): the bug the driver fixes. Without it pipeflow still reads git's
    markers and `repro` resolves them."""
    alice, bob = _team(project, tmp_path)
    assert "merge.pipeflow.driver" in bob.git("config", "--list", "--local")
    _rerun(alice, "a.x", 2)
    alice.git("push", "-q", "origin", "main")
    _pipeline(bob, extra=True)
    _rerun(bob, "b.y", 3)
    if not driver:
        bob.git("config", "--local", "--remove-section", "merge.pipeflow")
    merged = _merge(bob)
    if not driver:
        assert merged.returncode != 0
        assert "CONFLICT (content): Merge conflict in pipeline.lock" in merged.stdout
        status = bob.run("status", "--json")
        assert status.code == 0, status.text
        words = {s["name"]: s["status"] for s in json.loads(status.out)["stages"]}
        assert "changed" in words.values()
        assert bob.run("fetch").code == 0
        assert bob.run("repro").code == 0
        assert "<<<<<<<" not in bob.read("pipeline.lock")
        assert bob.run("status", "--check").code == 0
        return
    assert merged.returncode == 0, merged.stdout + merged.stderr
    lock = bob.lock()["stages"]
    assert sorted(lock) == ["a", "a2", "b"]
    assert lock["a"]["params"]["params.yaml"]["a.x"] == 2
    assert lock["b"]["params"]["params.yaml"]["b.y"] == 3
    # alice's output of a comes from the shared remote: nothing reruns
    res = bob.run("pull")
    assert res.code == 0, res.text
    assert bob.read("out/a.txt") == "a 2 1\n" and bob.read("out/b.txt") == "b 3\n"
    assert bob.run("status", "--check").code == 0
    assert bob.git("log", "-1", "--format=%s").startswith("Merge")
    # and the other way round: alice merges bob's work
    bob.git("push", "-q", "origin", "main")
    assert _merge(alice).returncode == 0
    assert alice.read("pipeline.lock") == bob.read("pipeline.lock")
    assert alice.run("fetch").code == 0
    res = alice.run("repro", "--json")  # restores bob's outputs, runs nothing
    assert res.code == 0, res.text
    body = json.loads(res.out)
    assert body["ran"] == [] and sorted(body["restored"]) == ["a2", "b"]
    assert body["lock_changed"] is False
    assert alice.read("out/b.txt") == "b 3\n" and alice.read("out/a2.txt") == "data\n"
    assert alice.run("status", "--check").code == 0


def test_both_branches_change_one_stage_then_repro_resolves_it(
    project: Project, tmp_path: Path
) -> None:
    alice, bob = _team(project, tmp_path)
    _rerun(alice, "a.x", 2)
    alice.git("push", "-q", "origin", "main")
    _rerun(bob, "a.z", 5)
    merged = _merge(bob)
    assert merged.returncode != 0
    assert "CONFLICT" in merged.stdout and "pipeline.lock" in merged.stdout
    assert "both branches changed stage 'a'" in merged.stdout + merged.stderr
    text = bob.read("pipeline.lock")
    assert text.count("<<<<<<<") == 1 and "  b:" in text.split(">>>>>>>")[1]
    assert "params.yaml" not in bob.git("diff", "--name-only", "--diff-filter=U")

    status = bob.run("status", "--json")
    assert status.code == 0, status.text
    states = {s["name"]: s for s in json.loads(status.out)["stages"]}
    assert states["a"]["status"] == "changed"
    assert [r["message"] for r in states["a"]["reasons"]] == [
        "merge conflict in pipeline.lock: both branches changed it"]
    assert states["b"]["status"] == "up-to-date"
    text_status = bob.run("status")
    assert "merge conflict in pipeline.lock: both branches changed it" in text_status.out
    assert bob.run("status", "--check").code == 1

    # checkout (and so pull) restores what is not in conflict and says what it left;
    # versions lists without a current version for a path in conflict
    for args in (("checkout",), ("pull",)):
        left = bob.run(*args)
        assert left.code == 0, (args, left.text)
        assert "a: in merge conflict in pipeline.lock, left as it is" in left.text
    assert bob.run("versions", "out/a.txt").code == 0
    # every other reader of the lock stops with a clear error, never a traceback
    for args in (("lineage", "out/a.txt"), ("metrics", "show"), ("params", "diff"),
                 ("verify",), ("gc", "--workspace", "--yes")):
        other = bob.run(*args)
        assert other.code == 2, (args, other.text)
        assert "pipeline.lock has unresolved merge conflicts (stage 'a')" in other.err
        assert "run `pipeflow repro`" in other.err and "Traceback" not in other.text

    res = bob.run("repro")
    assert res.code == 0, res.text
    assert bob.read("out/a.txt") == "a 2 5\n"
    lock_text = bob.read("pipeline.lock")
    assert "<<<<<<<" not in lock_text and "=======" not in lock_text
    assert bob.lock()["stages"]["a"]["params"]["params.yaml"] == {"a.x": 2, "a.z": 5}
    assert bob.run("status", "--check").code == 0
    bob.git("add", "pipeline.lock")
    bob.git("commit", "-q", "--no-edit")
    assert bob.git("status", "--porcelain", "--untracked-files=no") == ""


def test_repro_of_another_stage_keeps_the_conflict(project: Project, tmp_path: Path) -> None:
    alice, bob = _team(project, tmp_path)
    _rerun(alice, "a.x", 2)
    alice.git("push", "-q", "origin", "main")
    _rerun(bob, "a.z", 5)
    assert _merge(bob).returncode != 0
    _set(bob, "b.y", 7)
    assert bob.run("repro", "b").code == 0
    text = bob.read("pipeline.lock")
    assert text.count("<<<<<<<") == 1 and "b.y: 7" in text
    assert bob.run("repro", "a").code == 0
    assert "<<<<<<<" not in bob.read("pipeline.lock")
    assert bob.run("status", "--check").code == 0


def test_a_resolution_that_matches_a_run_restores_from_the_run_cache(
    project: Project, tmp_path: Path
) -> None:
    alice, bob = _team(project, tmp_path)
    _rerun(alice, "a.x", 2)
    alice.git("push", "-q", "origin", "main")
    _rerun(bob, "a.x", 3)
    assert _merge(bob).returncode != 0
    # params.yaml conflicts too: bob takes alice's side of it, whose run is on the remote
    bob.git("checkout", "--theirs", "params.yaml")
    # alice's run reaches bob through the remote: he trusts its unsigned run cache
    assert bob.run("remote", "modify", "origin", "trust_run_cache", "true", "--local").code == 0
    assert bob.run("fetch").code == 0
    (bob.root / "out/a.txt").unlink()
    res = bob.run("repro", "--json")
    assert res.code == 0, res.text
    body = json.loads(res.out)
    assert body["ran"] == [] and body["restored"] == ["a"]  # alice's run, from the run cache
    assert bob.read("out/a.txt") == "a 2 1\n"
    assert "<<<<<<<" not in bob.read("pipeline.lock")
    assert bob.run("status", "--check").code == 0


def test_driver_found_on_path_when_its_interpreter_is_gone(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeflow.lock.mergedriver import install

    alice, bob = _team(project, tmp_path)
    install(bob.root, python=str(tmp_path / "deleted-venv/bin/python"))
    shim = tmp_path / "bin" / "pipeflow"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pipeflow "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}{os.environ['PATH']}")
    _rerun(alice, "a.x", 2)
    alice.git("push", "-q", "origin", "main")
    _pipeline(bob, extra=True)
    _rerun(bob, "b.y", 3)
    merged = _merge(bob)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "<<<<<<<" not in bob.read("pipeline.lock")


def test_install_from_the_console_script_is_idempotent(
    project: Project, tmp_path: Path
) -> None:
    _pipeline(project)
    first = project.cli("merge-driver", "install", "--json")
    assert first.code == 0, first.text
    body = json.loads(first.out)
    assert body["installed"] is True
    assert "-m pipeflow merge-driver run %O %A %B %P" in body["driver"]
    assert body["config"].endswith(".git/config")
    again = json.loads(project.cli("merge-driver", "install", "--json").out)
    assert again["installed"] is False and again["attributes_changed"] is False
    assert project.git("config", "merge.pipeflow.driver").strip() == body["driver"]
    assert "/pipeline.lock merge=pipeflow" in project.read(".gitattributes")
    assert "already defined" in project.cli("merge-driver", "install").out


def test_install_outside_git_is_a_usage_error(tmp_path: Path) -> None:
    folder = tmp_path / "nogit"
    folder.mkdir()
    (folder / ".pipeflow").mkdir()
    res = Project(folder).run("merge-driver", "install")
    assert res.code == 2 and "git" in res.err


def test_init_defines_the_driver_a_reader_never_writes_it_a_writer_does(
    project: Project, tmp_path: Path
) -> None:
    _pipeline(project)
    assert project.run("init").code == 0
    assert "pipeflow merge-driver run" in project.git("config", "merge.pipeflow.driver")
    assert project.run("repro").code == 0
    _commit(project, "pipeline")
    clone = tmp_path / "fresh"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    fresh = Project(clone)
    config = clone / ".git/config"
    before = config.read_bytes()
    assert fresh.run("status").code == 0
    assert config.read_bytes() == before  # status is a reader
    assert fresh.run("repro").code == 0
    assert "merge-driver run %O %A %B %P" in fresh.git("config", "merge.pipeflow.driver")
    # a definition of the user's own is left alone
    fresh.git("config", "merge.pipeflow.driver", "my-driver %O %A %B")
    assert fresh.run("checkout").code == 0
    assert fresh.git("config", "merge.pipeflow.driver").strip() == "my-driver %O %A %B"


def test_both_branches_record_a_new_source_version(project: Project, tmp_path: Path) -> None:
    project.write("raw.csv", "v1\n")
    _pipeline(project)
    assert project.run("init").code == 0
    assert project.run("add", "raw.csv").code == 0
    alice, bob = _team(project, tmp_path)
    for clone, text in ((alice, "alice\n"), (bob, "bob\n")):
        clone.write("raw.csv", text)
        assert clone.run("add", "raw.csv").code == 0
        _commit(clone, "new raw data")
    alice.git("push", "-q", "origin", "main")
    assert _merge(bob).returncode != 0
    status = bob.run("status", "--json")
    assert status.code == 0, status.text
    body = json.loads(status.out)
    assert body["up_to_date"] is False
    assert any("raw.csv" in w and "merge conflict" in w for w in body["warnings"])
    res = bob.run("repro")
    assert res.code == 0, res.text
    assert "merge conflict on raw.csv resolved: recorded the workspace's version (ours)" in res.out
    assert "<<<<<<<" not in bob.read("pipeline.lock")
    assert bob.run("status", "--check").code == 0


def test_a_source_in_conflict_missing_here_is_picked_by_checkout_at_version(
        project: Project, tmp_path: Path) -> None:
    """A clone with neither side's file: the error names both versions, checkout
    PATH@VERSION works on the conflicted lock, then repro records that one."""
    project.write("raw.csv", "v1\n")
    _pipeline(project)
    assert project.run("init").code == 0
    assert project.run("add", "raw.csv").code == 0
    alice, bob = _team(project, tmp_path)
    hashes = {}
    for clone, text in ((alice, "alice\n"), (bob, "bob\n")):
        clone.write("raw.csv", text)
        assert clone.run("add", "raw.csv").code == 0
        assert clone.run("push").code == 0
        hashes[text.strip()] = clone.lock()["sources"]["raw.csv"]["hash"]
        _commit(clone, "new raw data")
    alice.git("push", "-q", "origin", "main")
    assert _merge(bob).returncode != 0
    (bob.root / "raw.csv").unlink()
    res = bob.run("repro")
    assert res.code == 2
    for h in hashes.values():
        assert f"pipeflow checkout raw.csv@{h[:8]}" in res.err
    assert bob.run("fetch").code == 0  # alice's version comes from the remote
    assert bob.run("versions", "raw.csv").code == 0
    res = bob.run("checkout", f"raw.csv@{hashes['alice'][:8]}")
    assert res.code == 0, res.text
    assert bob.read("raw.csv") == "alice\n"
    res = bob.run("repro")
    assert res.code == 0, res.text
    assert "recorded the workspace's version (theirs)" in res.out
    assert bob.lock()["sources"]["raw.csv"]["hash"] == hashes["alice"]


def test_a_stage_one_branch_removed_keeps_status_check_failing_until_repro(
        project: Project, tmp_path: Path) -> None:
    alice, bob = _team(project, tmp_path)
    spec = yaml.safe_load(alice.read("pipeline.yaml"))
    del spec["stages"]["b"]
    alice.write("pipeline.yaml", yaml.safe_dump(spec, sort_keys=False))
    assert alice.run("repro").code == 0
    _commit(alice, "drop b")
    alice.git("push", "-q", "origin", "main")
    _rerun(bob, "b.y", 7)
    assert _merge(bob).returncode != 0  # the lock's entry for b: removed vs changed
    assert "<<<<<<<" in bob.read("pipeline.lock")
    res = bob.run("status", "--check")
    assert res.code == 1, res.text
    assert "stage 'b'" in res.text and "no longer in the pipeline" in res.text
    assert bob.run("repro").code == 0
    assert "<<<<<<<" not in bob.read("pipeline.lock")
    assert "b" not in bob.lock()["stages"]
    assert bob.run("status", "--check").code == 0


def test_two_branches_adding_a_stage_each_merge_without_conflict(
        project: Project, tmp_path: Path) -> None:
    """Each new stage's output goes to the same .gitignore: a union merge keeps both."""
    alice, bob = _team(project, tmp_path)
    for clone, name in ((alice, "lint"), (bob, "summary")):
        stages = yaml.safe_load(clone.read("pipeline.yaml"))["stages"]
        new = {name: {"cmd": f"echo {name} > {name}.txt", "outs": [f"{name}.txt"]}}
        # alice's stage first, bob's last: the spec's edits are far apart
        spec = {"stages": {**new, **stages} if name == "lint" else {**stages, **new}}
        clone.write("pipeline.yaml", yaml.safe_dump(spec, sort_keys=False))
        assert clone.run("repro").code == 0
        assert clone.run("push").code == 0
        _commit(clone, f"add {name}")
    alice.git("push", "-q", "origin", "main")
    merged = _merge(bob)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert {"/lint.txt", "/summary.txt"} <= set(bob.read(".gitignore").splitlines())
    assert bob.run("pull").code == 0
    assert bob.run("status", "--check").code == 0
