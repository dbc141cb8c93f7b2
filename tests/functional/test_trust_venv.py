"""Issue 11, item 4 follow-up: `pipeflow trust venv` trusts only an environment, each
refusal says its own reason, a missing interpreter is named, and a trust can be
listed and taken back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.functional.helpers import commit

REAL_PYTHON = os.path.realpath(sys.executable)
WRITE_OUT = "-c \"open('out.txt','w').write('x')\""


def _venv(folder: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    (folder / ".gitignore").unlink(missing_ok=True)  # Python 3.13 ignores its venvs itself


def _stage(project: Project, python: str) -> None:
    project.spec({"train": {"cmd": f"{python} {WRITE_OUT}", "outs": ["out.txt"]}})


def test_trust_venv_refuses_what_is_not_an_environment(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "pyvenv.cfg").write_text("home = /usr/bin\n")  # even if it looks like one
    monkeypatch.setenv("HOME", str(home))
    project.write("pyvenv.cfg", "home = /usr/bin\n")  # a clone can ship this at its root
    project.write("data/x.txt", "x")
    _stage(project, "python3")
    cases = {"/": "it is /", ".": "it is the project root", "..": "above the project",
             str(home): "your home folder", "data": "neither a virtualenv nor a conda env",
             "nowhere": "not a folder"}
    for path, why in cases.items():
        res = project.cli("trust", "venv", path)
        assert res.code == 2, (path, res.text)
        assert why in res.err and "python3 -m venv" in res.err, (path, res.err)
        assert "Traceback" not in res.text
    listed = json.loads(project.cli("trust", "list", "--json").out)
    assert listed["trusted"] == []


def test_a_link_at_the_root_to_a_system_python_is_probed_with_no_trust(
    project: Project,
) -> None:
    (project.root / "python").symlink_to(REAL_PYTHON)
    _stage(project, "./python")
    assert project.run("repro").code == 0
    assert project.lock()["stages"]["train"]["env"]["python"].startswith("cpython-")
    status = project.cli("status")
    assert status.code == 0 and "trust venv" not in status.text, status.text


def test_a_pyvenv_cfg_at_the_root_is_never_trusted_nor_hinted(
    project: Project, tmp_path: Path
) -> None:
    # the link alone is harmless; a pyvenv.cfg beside it makes Python read the
    # project's lib/ (and run its .pth files): refused, and the hint never names `.`
    marker = tmp_path / "marker"
    (project.root / "python").symlink_to(REAL_PYTHON)
    project.write("pyvenv.cfg", f"home = {os.path.dirname(REAL_PYTHON)}\n")
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    project.write(f"lib/{version}/site-packages/evil.pth",
                  f"import pathlib; pathlib.Path({str(marker)!r}).touch()\n")
    _stage(project, "./python")
    commit(project, "hostile root venv")
    status = project.cli("status")
    assert not marker.exists()
    assert "python is beside a pyvenv.cfg" in status.err, status.err
    assert "trust venv ." not in status.text and "python3 -m venv .venv" in status.err


def test_a_venv_git_does_not_ignore_says_so(project: Project) -> None:
    _venv(project.root / ".venv")
    _stage(project, ".venv/bin/python")
    status = project.cli("status")
    assert "interpreter .venv/bin/python is in the virtualenv .venv, which git does not " \
           "ignore" in status.err, status.err
    assert "add `.venv/` to .gitignore (or run `pipeflow trust venv .venv`)" in status.err
    assert "came with the repository" not in status.text
    project.write(".gitignore", ".venv/\n")
    status = project.cli("status")
    assert "interpreter" not in status.err, status.err


def test_a_missing_venv_interpreter_is_named_with_how_to_make_it(project: Project) -> None:
    _venv(project.root / ".venv")
    project.write(".gitignore", ".venv/\n")
    _stage(project, ".venv/bin/python")
    assert project.run("repro").code == 0
    shutil.rmtree(project.root / ".venv")  # as in a fresh clone
    status = project.cli("status")
    assert ("interpreter .venv/bin/python does not exist, so the stage's python version and "
            "packages are unknown (make it: `python3 -m venv .venv`") in status.err, status.err
    assert status.err.count("does not exist") == 1


def test_trust_list_and_remove(project: Project) -> None:
    _venv(project.root / ".venv")  # not ignored: refused until trusted
    _stage(project, ".venv/bin/python")
    assert "git does not ignore" in project.cli("status").err
    res = project.cli("trust", "venv", ".venv")
    assert res.code == 0, res.text
    real = os.path.realpath(project.root / ".venv")
    assert project.cli("status").err == ""
    listed = project.cli("trust", "list")
    assert real in listed.out and "not used" not in listed.out
    [entry] = json.loads(project.cli("trust", "list", "--json").out)["trusted"]
    assert entry["path"] == real and entry["ignored"] is None
    res = project.cli("trust", "remove", ".venv")
    assert res.code == 0 and real in res.out
    assert "git does not ignore" in project.cli("status").err
    res = project.cli("trust", "remove", ".venv")
    assert res.code == 2 and "not a trusted folder" in res.err


def test_trust_help_has_examples(project: Project) -> None:
    for command in ("venv", "list", "remove"):
        res = project.cli("trust", command, "--help")
        assert res.code == 0 and "Examples:" in res.out and "  pipeflow trust" in res.out


def test_a_git_ignored_copies_venv_needs_no_trust(project: Project) -> None:
    # as docs/code-awareness.md says: --copies or not, an ignored venv made here passes
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--copies",
                    str(project.root / ".venv")], check=True)
    assert not (project.root / ".venv" / "bin" / "python").is_symlink()
    project.write(".gitignore", ".venv/\n")
    _stage(project, ".venv/bin/python")
    assert project.run("repro").code == 0
    assert project.lock()["stages"]["train"]["env"]["python"].startswith("cpython-")
    status = project.cli("status")
    assert status.code == 0 and status.err == "", status.text


def test_a_conda_env_is_trusted_once_the_user_says_so(project: Project) -> None:
    env = project.root / "envs" / "ml"
    (env / "conda-meta").mkdir(parents=True)
    (env / "bin").mkdir()
    (env / "bin" / "python").write_text(f'#!/bin/sh\nexec {REAL_PYTHON} "$@"\n')
    (env / "bin" / "python").chmod(0o755)
    project.write(".gitignore", "envs/\n")
    _stage(project, "envs/ml/bin/python")
    status = project.cli("status")
    assert ("interpreter envs/ml/bin/python is in the conda env envs/ml, which pipeflow does "
            "not trust by itself") in status.err and "`pipeflow trust venv envs/ml`" in status.err
    assert project.cli("trust", "venv", "envs/ml").code == 0
    assert project.run("repro").code == 0
    assert project.lock()["stages"]["train"]["env"]["python"].startswith("cpython-")
    assert project.cli("status").err == ""


def test_a_venv_whose_base_python_is_gone_is_named(project: Project, tmp_path: Path) -> None:
    base = tmp_path / "base-python"
    base.symlink_to(REAL_PYTHON)
    _venv(project.root / ".venv")
    project.write(".gitignore", ".venv/\n")
    python = project.root / ".venv" / "bin" / "python"
    python.unlink()
    python.symlink_to(base)
    _stage(project, ".venv/bin/python")
    assert project.run("repro").code == 0
    base.unlink()  # the python the venv was made from was uninstalled
    status = project.cli("status")
    assert "interpreter .venv/bin/python does not exist" in status.err
    assert "it is a link to nothing: make it: `python3 -m venv .venv`" in status.err
