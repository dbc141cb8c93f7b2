"""A lock or spec cannot make pipeflow write into the user's Python environment
(issue 11): a ``.pth`` file pulled into a git-ignored ``.venv`` would run whenever the
venv is used (and made ``status`` run it once the venv looked trusted again)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Project
from tests.functional.helpers import commit
from tests.functional.test_hostile_cache import clone, published, snapshot

PTH = "lib/python3.11/site-packages/zz.pth"


def _make_env(folder: Path, kind: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "venv":
        (folder / "pyvenv.cfg").write_text("home = /usr/bin\n")
    else:
        (folder / "conda-meta").mkdir()
    (folder / "lib/python3.11/site-packages").mkdir(parents=True)


@pytest.mark.parametrize(("env", "kind"), [(".venv", "venv"), ("envs/py", "conda")])
def test_pull_refuses_a_lock_source_inside_the_users_environment(
        project: Project, tmp_path: Path, env: str, kind: str) -> None:
    origin = published(project, tmp_path)
    marker = tmp_path / "MARKER"
    project.write(".gitignore", f"{env}/\n")
    project.write(f"{env}/{PTH}", f"import os; open({str(marker)!r}, 'w').write('ran')\n")
    assert project.run("add", f"{env}/{PTH}").code == 0  # no environment there
    assert project.run("push").code == 0
    commit(project, "a source inside the victim's env")
    project.git("push", "-q")
    victim = clone(origin, tmp_path / "victim")
    _make_env(victim.root / env, kind)  # the victim's own, git-ignored environment
    before = snapshot(victim.root / env)
    for args in (("pull",), ("checkout",), ("repro", "--pull")):
        res = victim.run(*args)
        assert res.code == 2, (args, res.text)
        assert f"{env}/{PTH}" in res.err and "Python environment" in res.err, res.err
        assert "Traceback" not in res.text
    assert snapshot(victim.root / env) == before
    assert not marker.exists()


def test_add_refuses_a_file_inside_an_environment(project: Project) -> None:
    assert project.run("init").code == 0
    _make_env(project.root / ".venv", "venv")
    project.write(f".venv/{PTH}", "import os\n")
    res = project.run("add", f".venv/{PTH}")
    assert res.code == 2 and "Python environment '.venv'" in res.err, res.text
    res = project.run("add", ".venv")
    assert res.code == 2 and "Python environment '.venv'" in res.err, res.text
    assert "sources" not in (project.lock() if (project.root / "pipeline.lock").exists()
                             else {})


def test_a_spec_output_inside_an_environment_is_a_spec_error(project: Project) -> None:
    assert project.run("init").code == 0
    _make_env(project.root / ".venv", "venv")
    project.spec({"make": {"cmd": f"echo x > .venv/{PTH}", "outs": [f".venv/{PTH}"]}})
    before = snapshot(project.root / ".venv")
    res = project.run("repro")
    assert res.code == 2 and "stage 'make'" in res.err and "Python environment" in res.err, \
        res.text
    assert snapshot(project.root / ".venv") == before


def _stage_venv(project: Project, marker: Path) -> None:
    """A folder that is a virtualenv whose bin/python runs a script (the attacker's)."""
    project.write("tools/venv/pyvenv.cfg", "home = /usr/bin\nversion = 3.11.7\n")
    python = project.write("tools/venv/bin/python",
                           f"#!/bin/sh\necho ran >> {marker}\nexec /usr/bin/python3 \"$@\"\n")
    python.chmod(0o755)


def test_pull_never_writes_a_folder_that_is_an_environment(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review 2 #2: a folder source holding pyvenv.cfg and bin/python, written by pull,
    later dropped from the lock, would count as a venv made here and run in status."""
    from pipeflow.files import workspace_fs

    origin = published(project, tmp_path)
    marker = tmp_path / "MARKER"
    _stage_venv(project, marker)
    with monkeypatch.context() as patched:  # the attacker's pipeflow, check removed
        patched.setattr(workspace_fs, "ENV_MARKERS", ())
        assert project.run("add", "tools/venv").code == 0
    assert project.run("push").code == 0
    project.spec({"make": {"cmd": "tools/venv/bin/python -c 'print(1)' > out/model.txt",
                           "deps": ["data.txt"], "outs": ["out/model.txt"]}})
    import shutil

    shutil.rmtree(project.root / "tools/venv")
    commit(project, "A: tools as source data")
    project.git("push", "-q")
    victim = clone(origin, tmp_path / "victim")
    for args in (("pull",), ("checkout",), ("checkout", "tools/venv")):
        res = victim.run(*args)
        assert res.code == 2, (args, res.text)
        assert "'tools/venv'" in res.err and "tools/venv/pyvenv.cfg" in res.err, res.err
        assert "Traceback" not in res.text
        assert not (victim.root / "tools/venv").exists()
    # commit B drops the entry: the folder is still never written, status runs nothing
    lock = project.lock()
    added = str(lock["sources"].pop("tools/venv")["hash"])
    import yaml

    project.write("pipeline.lock", yaml.safe_dump(lock, sort_keys=False))
    commit(project, "B")
    project.git("push", "-q")
    victim.git("pull", "-q")
    res = victim.run("checkout", f"tools/venv@{added[:8]}")
    assert res.code == 2 and "tools/venv/pyvenv.cfg" in res.err, res.text
    assert not (victim.root / "tools/venv").exists()
    victim.run("status")
    assert not marker.exists()


def test_a_stage_building_a_venv_as_its_output_still_runs(project: Project) -> None:
    """Only a checkout from the cache refuses an environment; the stage that builds
    one runs, reruns (its old output removed) and stores it."""
    import shutil

    assert project.run("init").code == 0
    project.write("req.txt", "one\n")
    # (outputs holding symlinks are not supported yet: a venv of copies, without lib64)
    project.spec({"env": {"cmd": "python3 -m venv --copies --without-pip build/venv && "
                                 "rm -f build/venv/lib64 && cp req.txt build/venv/",
                          "deps": ["req.txt"], "outs": ["build/venv"]}})
    for text in ("one\n", "two\n"):
        project.write("req.txt", text)
        res = project.run("repro")
        assert res.code == 0, res.text
        assert (project.root / "build/venv/req.txt").read_text() == text
    shutil.rmtree(project.root / "build/venv")
    res = project.run("checkout")
    assert res.code == 2 and "build/venv/pyvenv.cfg" in res.err, res.text
    assert not (project.root / "build/venv").exists()
