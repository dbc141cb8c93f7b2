"""Issue 11, items 3 and 4: read commands on a crafted clone read nothing outside the
project and run none of its code.

Each attack is a repository an attacker pushes to a bare origin; the victim clones it
and runs read commands. A crafted interpreter or module would create a marker file
outside the project if it ever ran; a crafted link points at a big or endless tree
outside. The victim sees a clear error or warning, never a traceback, and the marker
never appears.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import GIT_ENV, Project
from tests.functional.helpers import commit

TRAIN = "open('out.txt','w').write('x')\nopen('m.json','w').write('{}')\n"
READ_COMMANDS = [
    ("status",), ("status", "--json"), ("dag",), ("lineage", "out.txt"), ("versions", "out.txt"),
    ("metrics", "show"), ("params", "diff"), ("verify",),
    ("repro", "--dry"),  # plans only: its probes follow the same rule
]


def clone(project: Project, tmp_path: Path) -> Project:
    """Push the attacker's project to a bare origin; the victim's clone of it, on
    another machine (its own machine cache: nothing the attacker's runs learnt)."""
    os.environ["PIPEFLOW_MACHINE_CACHE"] = str(tmp_path / "victim-machine" / "machine.db")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    project.git("remote", "add", "origin", str(origin))
    project.git("push", "-q", "origin", "main")
    victim = tmp_path / "victim"
    subprocess.run(["git", "clone", "-q", str(origin), str(victim)], check=True,
                   env={**os.environ, **GIT_ENV})
    return Project(victim)


def hostile_stage(project: Project, cmd: str, wdir: str = ".") -> None:
    """A stage that ran once for real (so there is a lock, an output and metrics)."""
    project.params({"lr": 0.1}, name="params.yaml" if wdir == "." else f"{wdir}/params.yaml")
    project.spec({"train": {"cmd": cmd, "wdir": wdir, "params": ["lr"],
                            "outs": ["out.txt"], "metrics": ["m.json"]}})


def marker_script(marker: Path) -> str:
    return f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"


def run_all(victim: Project, marker: Path) -> None:
    for args in READ_COMMANDS:
        result = victim.cli(*args)
        assert result.code in (0, 1, 2), (args, result.text)
        assert "Traceback" not in result.text and "internal error" not in result.text, args
        assert not marker.exists(), f"`pipeflow {' '.join(args)}` ran the repository's code"


def test_a_shipped_interpreter_script_is_never_run(project: Project, tmp_path: Path) -> None:
    marker = tmp_path / "marker-venv"
    exe = project.root / "venv" / "bin" / "python"
    exe.parent.mkdir(parents=True)
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    exe.chmod(0o755)
    project.write("train.py", TRAIN)
    hostile_stage(project, "venv/bin/python train.py")
    assert project.run("repro").code == 0
    # then the attacker's script: it would leave a marker outside wherever it runs
    exe.write_text(f"#!/bin/sh\ntouch {marker}\nexec {sys.executable} \"$@\"\n")
    commit(project, "hostile venv")
    victim = clone(project, tmp_path)
    run_all(victim, marker)
    status = victim.cli("status")
    assert "venv/bin/python is a file inside the project, not in a virtualenv" in status.text
    assert status.text.count("venv/bin/python") == 1 and "trust venv" not in status.text
    # not an environment: it cannot be trusted either
    refused = victim.cli("trust", "venv", "venv")
    assert refused.code == 2 and "neither a virtualenv nor a conda env" in refused.err
    victim.cli("status")
    assert not marker.exists()
    # once it is a venv the user made (their call): then it is asked, and the marker appears
    victim.write("venv/pyvenv.cfg", "home = /usr/bin\n")
    assert victim.cli("trust", "venv", "venv").code == 0
    victim.cli("status")
    assert marker.exists()


def test_a_committed_virtualenv_with_a_pth_file_is_never_run(
    project: Project, tmp_path: Path
) -> None:
    # a real-looking venv: bin/python links to a real interpreter outside, and a .pth
    # line in its site-packages would run at every start of that interpreter
    marker = tmp_path / "marker-pth"
    venv = project.root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (venv / ".gitignore").unlink(missing_ok=True)  # Python 3.13 ignores its venvs itself
    project.write("train.py", TRAIN)
    hostile_stage(project, ".venv/bin/python train.py")
    assert project.run("repro").code == 0
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = venv / "lib" / version / "site-packages"
    (site / "evil.pth").write_text(f"import pathlib; pathlib.Path({str(marker)!r}).touch()\n")
    project.git("add", "-f", ".venv")
    commit(project, "hostile venv")
    victim = clone(project, tmp_path)
    run_all(victim, marker)
    assert ".venv/bin/python" in victim.cli("status").text


@pytest.mark.parametrize("module", ["json", "platform"])
def test_a_module_in_the_stage_folder_is_never_imported(
    project: Project, tmp_path: Path, module: str
) -> None:
    marker = tmp_path / f"marker-{module}"
    # an interpreter outside the project, behind a wrapper (pipeflow's own would be
    # answered in-process)
    outside = tmp_path / "bin"
    outside.mkdir()
    (outside / "python3").write_text(f'#!/bin/sh\nexec {os.path.realpath(sys.executable)} "$@"\n')
    (outside / "python3").chmod(0o755)
    project.write("src/train.py", TRAIN)
    hostile_stage(project, f"{outside}/python3 train.py", wdir="src")
    assert project.run("repro").code == 0
    project.write(f"src/{module}.py", marker_script(marker))
    commit(project, f"hostile {module}.py")
    victim = clone(project, tmp_path)
    run_all(victim, marker)
    status = victim.cli("status", "--json")
    assert status.code == 0, status.text


def test_an_interpreter_made_here_still_answers(project: Project, tmp_path: Path) -> None:
    # the user's own venv in the project (git-ignored, made on this machine): probed
    venv = project.root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(venv)], check=True)
    project.write(".gitignore", ".venv/\n")
    project.write("train.py", TRAIN)
    hostile_stage(project, ".venv/bin/python train.py")
    assert project.run("repro").code == 0
    lock = yaml.safe_load(project.read("pipeline.lock"))
    env = lock["stages"]["train"]["env"]
    assert env["python"].startswith("cpython-") and "interpreter" not in env
    status = project.cli("status")
    assert status.code == 0 and "trust" not in status.text and "changed" not in status.text


# --- item 3: reading outside ---------------------------------------------------------


def outside_tree(tmp_path: Path) -> Path:
    """A folder outside the project, with a canary file."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("do not read\n")
    return folder


def dep_stage(project: Project, dep: object) -> None:
    project.spec({"use": {"cmd": "cat raw/* > out.txt 2>/dev/null; echo ok > out.txt",
                          "deps": [dep], "outs": ["out.txt"]}})


def test_a_dependency_folder_linked_outside_is_refused(project: Project, tmp_path: Path) -> None:
    outside = outside_tree(tmp_path)
    (project.root / "raw").symlink_to(outside)
    dep_stage(project, "raw")
    commit(project, "raw links outside")
    victim = clone(project, tmp_path)
    for args in (("status",), ("status", "--json"), ("repro",)):
        result = victim.cli(*args)
        assert result.code == 2, (args, result.text)
        assert "Traceback" not in result.text
        assert "stage 'use'" in result.text and "'raw'" in result.text
        assert str(outside) in result.text and "external: true" in result.text


def test_a_link_inside_a_dependency_folder_leading_outside_is_refused(
    project: Project, tmp_path: Path
) -> None:
    outside = outside_tree(tmp_path)
    (project.root / "raw").mkdir()
    (project.root / "raw" / "a.txt").write_text("a\n")
    (project.root / "raw" / "more").symlink_to(outside)
    dep_stage(project, "raw")
    commit(project)
    result = project.cli("status")
    assert result.code == 2 and "raw/more" in result.text and str(outside) in result.text
    # a link that stays inside is followed, as before
    (project.root / "raw" / "more").unlink()
    (project.root / "data").mkdir()
    (project.root / "data" / "b.txt").write_text("b\n")
    (project.root / "raw" / "more").symlink_to(project.root / "data")
    assert project.cli("status").code == 0


def test_an_external_dependency_is_hashed_by_content(project: Project, tmp_path: Path) -> None:
    outside = outside_tree(tmp_path)
    (project.root / "raw").symlink_to(outside)
    dep_stage(project, {"raw": {"external": True}})
    assert project.cli("repro").code == 0
    assert "up to date" in project.cli("status").text
    (outside / "secret.txt").write_text("changed\n")
    status = project.cli("status")
    assert status.code == 0 and "changed" in status.text and "raw" in status.text


@pytest.mark.parametrize("target", ["/dev/zero", "/proc/self", "/sys/kernel"])
@pytest.mark.parametrize("how", ["dep", "inside", "external"])
def test_links_into_dev_proc_sys_are_never_followed(
    project: Project, tmp_path: Path, target: str, how: str
) -> None:
    if not os.path.exists(target):
        pytest.skip(f"{target} does not exist here")
    (project.root / "raw").mkdir()
    if how == "inside":
        (project.root / "raw" / "dev").symlink_to(target)
        dep: object = "raw"
    else:
        (project.root / "raw" / "x").symlink_to(target)
        dep = "raw/x" if how == "dep" else {"raw/x": {"external": True}}
    dep_stage(project, dep)
    commit(project)
    result = project.cli("status", timeout=30)
    assert result.code == 2, result.text
    # /proc/self is shown as what it resolves to: /proc/<pid>
    assert "Traceback" not in result.text and target.rsplit("/", 1)[0] in result.text
    assert "device or kernel" in result.text


def test_a_params_file_linked_outside_is_refused(project: Project, tmp_path: Path) -> None:
    outside = outside_tree(tmp_path)
    (outside / "p.yaml").write_text("lr: 1\n")
    (project.root / "params.yaml").symlink_to(outside / "p.yaml")
    project.spec({"s": {"cmd": "echo x > out.txt", "params": ["lr"], "outs": ["out.txt"]}})
    result = project.cli("status")
    assert result.code == 2 and "params.yaml" in result.text and str(outside) in result.text


@pytest.mark.parametrize("module", ["yaml", "json", "typer"])
def test_python_m_pipeflow_imports_no_module_of_the_project(
    project: Project, tmp_path: Path, module: str
) -> None:
    # `python -m pipeflow` (as CI scripts and these tests start it) runs in the project
    # folder, which Python puts first on sys.path
    marker = tmp_path / f"marker-root-{module}"
    project.write("train.py", TRAIN)
    hostile_stage(project, "python3 train.py")
    assert project.run("repro").code == 0
    project.write(f"{module}.py", marker_script(marker))
    commit(project, f"hostile {module}.py")
    victim = clone(project, tmp_path)
    run_all(victim, marker)
