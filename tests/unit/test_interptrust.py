"""Which interpreters the environment probe may start (issue 11, item 4)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeflow.code.interptrust import InterpreterTrust, probe_env, run_probe, trust_folder
from pipeflow.keyvalue import MemoryStore


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def _script(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho hi\n")
    path.chmod(0o755)
    return str(path)


def _venv(folder: Path, home: str) -> str:
    (folder / "bin").mkdir(parents=True)
    (folder / "pyvenv.cfg").write_text(f"home = {home}\ninclude-system-site-packages = false\n")
    (folder / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    return str(folder / "bin" / "python")


def test_an_interpreter_outside_the_project_may_run(repo: Path, tmp_path: Path) -> None:
    assert InterpreterTrust(repo).allows(_script(tmp_path / "bin" / "python"))
    assert InterpreterTrust(None).allows(_script(repo / "python"))  # no project: no rule


def test_a_file_inside_the_project_may_not(repo: Path) -> None:
    trust = InterpreterTrust(repo)
    assert not trust.allows(_script(repo / "venv" / "bin" / "python"))
    [refusal] = trust.refused.values()
    assert refusal.path == "venv/bin/python"
    assert "not in a virtualenv" in refusal.reason
    assert "trust venv" not in refusal.message()  # `trust venv venv` would be refused


def test_a_script_in_a_committed_venv_names_the_venv_to_trust(repo: Path) -> None:
    python = _script(repo / "venv" / "bin" / "python")
    (repo / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    subprocess.run(["git", "add", "venv"], cwd=repo, check=True)
    trust = InterpreterTrust(repo)
    assert not trust.allows(python)
    [refusal] = trust.refused.values()
    assert "git tracks files" in refusal.reason
    assert "`pipeflow trust venv venv`" in refusal.message()


def test_a_link_inside_to_an_outside_interpreter_runs_that_interpreter(repo: Path) -> None:
    # committed or not, it starts the outside interpreter, which finds its library
    # by its real path: nothing of the project is read
    (repo / "bin").mkdir()
    (repo / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    (repo / "python").symlink_to(os.path.realpath(sys.executable))
    assert InterpreterTrust(repo).allows(str(repo / "bin" / "python"))
    assert InterpreterTrust(repo).allows(str(repo / "python"))


@pytest.mark.parametrize("marker", ["pyvenv.cfg", "../pyvenv.cfg", "python._pth",
                                    "../conda-meta/history"])
def test_a_link_beside_a_file_python_reads_at_start_is_refused(repo: Path,
                                                               marker: str) -> None:
    # pyvenv.cfg beside the link or one folder up makes Python read that folder's
    # lib/ (and its .pth files); <name>._pth replaces its import path
    (repo / "bin").mkdir()
    (repo / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    (repo / "bin" / marker).parent.mkdir(exist_ok=True)
    (repo / "bin" / marker).write_text("home = /usr/bin\n")
    trust = InterpreterTrust(repo)
    assert not trust.allows(str(repo / "bin" / "python"))
    [refusal] = trust.refused.values()
    assert "trust venv ." not in refusal.message()


def test_an_old_trust_of_the_project_root_no_longer_counts(repo: Path) -> None:
    # an older pipeflow let `trust venv .` record the whole project
    from pipeflow.files.machinecache import machine_cache

    machine_cache().put("trusted-interpreter-folder:" + os.path.realpath(repo), "{}")
    (repo / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert not InterpreterTrust(repo).allows(_script(repo / "tools" / "python"))


def test_an_outside_link_into_the_project_is_inside(repo: Path, tmp_path: Path) -> None:
    target = _script(repo / "tools" / "python")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").symlink_to(target)
    assert not InterpreterTrust(repo).allows(str(tmp_path / "bin" / "python"))


def test_a_git_ignored_venv_made_here_may_run(repo: Path) -> None:
    python = _venv(repo / ".venv", os.path.dirname(os.path.realpath(sys.executable)))
    (repo / ".gitignore").write_text(".venv/\n")
    assert InterpreterTrust(repo).allows(python)


def test_a_venv_that_git_tracks_may_not(repo: Path) -> None:
    python = _venv(repo / ".venv", os.path.dirname(os.path.realpath(sys.executable)))
    subprocess.run(["git", "add", "-f", ".venv"], cwd=repo, check=True)
    (repo / ".gitignore").write_text(".venv/\n")  # ignored now, but it came with the clone
    trust = InterpreterTrust(repo)
    assert not trust.allows(python)
    assert "came with the repository" in next(iter(trust.refused.values())).reason


def test_a_venv_pipeflow_wrote_as_an_output_may_not(repo: Path) -> None:
    python = _venv(repo / "env", os.path.dirname(os.path.realpath(sys.executable)))
    (repo / ".gitignore").write_text("/env\n")  # as repro/pull write it
    assert not InterpreterTrust(repo, managed=["env"]).allows(python)
    assert InterpreterTrust(repo, managed=["other"]).allows(python)


def test_a_venv_whose_home_is_inside_may_not(repo: Path) -> None:
    python = _venv(repo / ".venv", str(repo / "fake-home"))
    (repo / ".gitignore").write_text(".venv/\n")
    assert not InterpreterTrust(repo).allows(python)


def test_a_folder_the_user_trusted_may_run(repo: Path) -> None:
    python = _script(repo / "venv" / "bin" / "python")
    (repo / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert not InterpreterTrust(repo).allows(python)
    trust_folder(str(repo / "venv"), str(repo))
    assert InterpreterTrust(repo).allows(python)
    assert not InterpreterTrust(repo).allows(_script(repo / "other" / "python"))


def test_probes_run_isolated_from_slash_without_python_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("PYTHONSTARTUP", str(tmp_path / "s.py"))
    (tmp_path / "json.py").write_text("raise SystemExit('imported')\n")
    monkeypatch.chdir(tmp_path)
    out = run_probe(os.path.realpath(sys.executable),
                    "import json,os,sys;print(os.getcwd(), sys.flags.isolated, "
                    "sorted(k for k in os.environ if k.startswith('PYTHON')))",
                    timeout=30, stage_dir=str(tmp_path))
    assert out.split(None, 2) == ["/", "1", "[]\n"]
    assert probe_env(str(tmp_path))["PYENV_DIR"] == str(tmp_path)


def test_a_venv_where_a_pull_put_a_tracked_file_may_not(repo: Path) -> None:
    # the user's own venv, ignored; then a pull brings a force-added .pth file into it
    python = _venv(repo / ".venv", os.path.dirname(os.path.realpath(sys.executable)))
    (repo / ".gitignore").write_text(".venv/\n")
    subprocess.run(["git", "add", ".gitignore"], cwd=repo, check=True)  # an index exists
    store: dict[str, str] = {}
    assert InterpreterTrust(repo, state=MemoryStore(store)).allows(python)
    assert list(store) == ["venv-made-here:.venv"]
    (repo / ".venv" / "evil.pth").write_text("import os\n")
    subprocess.run(["git", "add", "-f", ".venv/evil.pth"], cwd=repo, check=True)
    assert not InterpreterTrust(repo, state=MemoryStore(store)).allows(python)


def test_trusted_folders_are_listed_and_removed(repo: Path, tmp_path: Path) -> None:
    from pipeflow.code.trustedenvs import trusted_folders, untrust_folder

    _venv(repo / "a", "/usr/bin")
    _venv(repo / "b", "/usr/bin")
    real_a, real_b = (trust_folder(str(repo / n), str(repo)) for n in "ab")
    assert [t.path for t in trusted_folders()] == sorted([real_a, real_b])
    (repo / "b" / "pyvenv.cfg").unlink()  # no longer a venv: listed, marked, not used
    assert [t.ignored for t in trusted_folders()] == [None, "it is neither a virtualenv "
                                                            "nor a conda env"]
    assert untrust_folder(str(repo / "a")) == real_a
    import shutil

    shutil.rmtree(repo / "b")
    assert untrust_folder(real_b) == real_b  # gone from disk: removed as listed
    assert trusted_folders() == []
