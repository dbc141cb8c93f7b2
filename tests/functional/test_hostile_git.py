"""git itself is never led by committed files (issue 11): every git call pipeflow
makes is pinned to the repository around the project, so a committed folder that
looks like a bare repository (``HEAD``, ``config``, ``objects/``, ``refs/``) is data,
and its ``core.fsmonitor`` never runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import GIT_ENV, Project
from tests.functional.helpers import commit


def _git(where: Path, *args: str) -> str:
    import os

    return subprocess.run(["git", *args], cwd=where, capture_output=True, text=True,
                          check=True, env={**os.environ, **GIT_ENV}).stdout


def _monorepo_with_fake_bare_repo(tmp_path: Path, marker: Path) -> Path:
    """A repository whose pipeflow project sits in ``ml/``, which also commits a bare
    repository lookalike whose config runs a command; pushed to a bare origin."""
    origin = tmp_path / "origin.git"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    mono = tmp_path / "mono"
    _git(tmp_path, "init", "-q", "-b", "main", str(mono))
    ml = Project(mono / "ml")
    ml.root.mkdir()
    assert ml.run("init").code == 0
    ml.write("data.txt", "hello\n")
    ml.spec({"make": {"cmd": "mkdir -p out && cp data.txt out/model.txt",
                      "deps": ["data.txt"], "outs": ["out/model.txt"]}})
    assert ml.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    assert ml.run("add", "data.txt").code == 0
    assert ml.run("repro").code == 0
    assert ml.run("push").code == 0
    ml.write("HEAD", "ref: refs/heads/main\n")
    ml.write("objects/info/packs", "")
    ml.write("refs/heads/.keep", "")
    ml.write("config", "[core]\n\trepositoryformatversion = 0\n\tbare = false\n"
                       f"\tworktree = .\n\tfsmonitor = \"echo ran >> {marker}; false\"\n")
    commit(Project(mono), "ml project")
    _git(mono, "remote", "add", "origin", str(origin))
    _git(mono, "push", "-q", "-u", "origin", "main")
    return origin


def test_a_committed_bare_repository_lookalike_is_never_used_by_git(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    origin = _monorepo_with_fake_bare_repo(tmp_path, marker)
    _git(tmp_path, "clone", "-q", str(origin), "victim")
    victim = Project(tmp_path / "victim" / "ml")
    committed = victim.read("config")
    for args in (("status",), ("dag",), ("pull",), ("versions", "out/model.txt"),
                 ("lineage", "out/model.txt"), ("add", "data.txt"), ("status",)):
        res = victim.run(*args)
        assert res.code == 0, (args, res.text)
        assert not marker.exists(), (args, "the committed core.fsmonitor ran")
    assert victim.read("config") == committed
    # pull's merge-driver install went into the real repository's config
    real = (tmp_path / "victim" / ".git" / "config").read_text()
    assert 'merge "pipeflow"' in real
    # git still answers for the real repository: the clone is clean, the project
    # at ml/ is seen as tracked there
    assert "ml/config" not in _git(tmp_path / "victim", "status", "--porcelain")
    assert victim.run("versions", "out/model.txt").code == 0


def test_a_committed_venv_in_a_subfolder_project_is_not_made_here(tmp_path: Path) -> None:
    """The made-here test of a venv asks git what it tracks; for a project in a
    subfolder of the repository it used to look for ``.git`` in the project folder
    only, so a committed venv there counted as made on this machine."""
    marker = tmp_path / "MARKER"
    mono = tmp_path / "mono"
    _git(tmp_path, "init", "-q", "-b", "main", str(mono))
    ml = Project(mono / "ml")
    ml.root.mkdir()
    assert ml.run("init").code == 0
    ml.write("tools/venv/pyvenv.cfg", "home = /usr/bin\n")
    ml.write("tools/venv/bin/python",
             f"#!/bin/sh\necho ran >> {marker}\nexec /usr/bin/python3 \"$@\"\n").chmod(0o755)
    ml.spec({"make": {"cmd": "tools/venv/bin/python -c 'open(\"out.txt\", \"w\")'",
                      "outs": ["out.txt"]}})
    assert ml.run("repro").code == 0  # running the stage runs it: that is repro's job
    commit(Project(mono), "a committed venv")
    marker.unlink()
    res = ml.run("status")
    assert not marker.exists(), "status ran the committed venv's python"
    assert "tools/venv/bin/python" in res.err + res.out, res.text
