"""One writer at a time, readers never blocked, nothing lost to kill -9 or SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import GIT_ENV, Project
from tests.functional.helpers import runs


def _slow_pipeline(p: Project, seconds: float = 30) -> None:
    p.spec({
        "fast": {"cmd": "echo fast >> runs.log && echo 1 > fast.txt", "outs": ["fast.txt"]},
        "slow": {"cmd": f"echo slow >> runs.log && touch started.flag && sleep {seconds} && echo 2 > slow.txt",
                 "deps": ["fast.txt"], "outs": ["slow.txt"]},
    })


def _processes_in(folder: Path) -> list[int]:
    """Processes whose working folder is ``folder``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(os.readlink(f"/proc/{pid}/cwd")) == folder:
                found.append(int(pid))
        except OSError:
            continue
    return found


def _start_repro(p: Project, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeflow", "repro", *args], cwd=p.root, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **GIT_ENV},
    )
    deadline = time.monotonic() + 60
    while not (p.root / "started.flag").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc


def test_second_writer_fails_naming_the_holder_and_readers_work(project: Project) -> None:
    _slow_pipeline(project)
    proc = _start_repro(project)
    try:
        res = project.cli("repro")
        assert res.code == 1
        assert f"locked by pid {proc.pid}" in res.err
        assert "pipeflow repro" in res.err
        assert "--wait" in res.err
        st = project.cli("status", "--json")
        assert st.code == 0, st.err
        states = {s["name"]: s["status"] for s in yaml.safe_load(st.out)["stages"]}
        assert states["fast"] == "up-to-date"
        assert states["slow"] == "running"
    finally:
        proc.kill()
        proc.wait()
        project.cli("checkout")  # the next writer ends what the killed run left


def test_kill_9_loses_no_finished_stage(project: Project) -> None:
    _slow_pipeline(project)
    proc = _start_repro(project)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (project.root / "pipeline.lock").exists()
    states = {s["name"]: s["status"] for s in yaml.safe_load(project.cli("status", "--json").out)["stages"]}
    assert states["fast"] == "up-to-date"
    runs(project)
    _slow_pipeline(project, seconds=0)
    (project.root / "started.flag").unlink()
    res = project.cli("repro")
    assert res.code == 0, res.err
    assert runs(project) == ["slow"]
    assert set(project.lock()["stages"]) == {"fast", "slow"}
    # the killed run's stage process was ended by the next writer: it never
    # finishes its sleep to overwrite the new output
    assert _processes_in(project.root) == []


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupt_renders_the_lock_with_finished_stages(
    project: Project, sig: signal.Signals, code: int
) -> None:
    _slow_pipeline(project)
    proc = _start_repro(project)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert _processes_in(project.root) == []  # the stage process was ended too
    assert "interrupted: the stages that finished are kept in pipeline.lock" in err
    assert set(project.lock()["stages"]) == {"fast"}


def test_wait_waits_for_the_holder(project: Project) -> None:
    _slow_pipeline(project, seconds=1)
    proc = _start_repro(project)
    res = project.cli("repro", "--wait", "60")
    proc.wait()
    assert res.code == 0, res.err
    assert "up to date" in res.out
