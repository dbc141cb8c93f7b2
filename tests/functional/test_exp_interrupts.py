"""``exp run`` interrupted: Ctrl-C and SIGTERM during a two-job sweep of slow stages end
every stage process, leave no scratch folder and touch none of the project's files;
the experiments that finished are kept (recorded, and their stages served by the run
cache); a SIGKILLed sweep's leftovers go with the next ``exp run`` (issue 13, item 2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeflow.lineage.experiments import experiments
from pipeflow.project.project import Project as Core
from tests.conftest import GIT_ENV, Project
from tests.functional.helpers import commit

WATCHED = ("params.yaml", "pipeline.lock", "pipeline.yaml", "model.txt", "data.txt")
SWEEP = ("--set", "train.lr=1,2,10,11", "-j", "2")


def _ready(p: Project, flags: Path) -> dict[str, bytes]:
    """One stage, slow for lr >= 10: it drops ``flags``/started-LR, logs its lr to
    ``flags``/runs.log, then sleeps. Run and committed; the bytes to watch."""
    flags.mkdir()
    p.params({"train": {"lr": 0}})
    p.write("data.txt", "x\n")
    p.spec({"train": {
        "cmd": f"echo ${{train.lr}} >> {flags}/runs.log; touch {flags}/started-${{train.lr}}; "
               "if [ ${train.lr} -ge 10 ]; then sleep 60; fi; echo lr=${train.lr} > model.txt",
        "deps": ["data.txt"], "params": ["train.lr"], "outs": ["model.txt"]}})
    assert p.run("repro").code == 0
    commit(p, "v1")
    (flags / "runs.log").unlink()
    return {rel: (p.root / rel).read_bytes() for rel in WATCHED}


def _ran(flags: Path) -> list[str]:
    log = flags / "runs.log"
    if not log.exists():
        return []
    values = log.read_text().split()
    log.unlink()
    return sorted(values)


def _start(p: Project, flags: Path) -> subprocess.Popen[str]:
    """``exp run`` of the sweep in a subprocess, returned once both slow stages run."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeflow", "exp", "run", *SWEEP],
                            cwd=p.root, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **GIT_ENV})
    deadline = time.monotonic() + 60
    while not all((flags / f"started-{lr}").exists() for lr in (10, 11)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the slow stages never started"
        time.sleep(0.05)
    return proc


def _processes_below(folder: Path) -> list[int]:
    """Processes whose working folder is ``folder`` or below it (removed or not)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd.startswith(f"{folder}/"):
            found.append(int(pid))
    return found


def _scratch(p: Project) -> list[Path]:
    return sorted((p.root / ".pipeflow/tmp/exp").glob("*"))


def _untouched(p: Project, before: dict[str, bytes]) -> None:
    assert {rel: (p.root / rel).read_bytes() for rel in WATCHED} == before
    assert p.git("status", "--porcelain") == ""


def _done(p: Project) -> dict[object, str]:
    with Core(p.root) as core:
        return {e.overrides["params.yaml"]["train.lr"]: e.status.value
                for e in experiments(core)}


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_sweep_stops_everything_and_keeps_what_finished(
        project: Project, tmp_path: Path, sig: signal.Signals, code: int) -> None:
    flags = tmp_path / "flags"
    before = _ready(project, flags)
    proc = _start(project, flags)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert _processes_below(project.root) == [], "a stage process outlived the sweep"
    assert _scratch(project) == [], "a scratch folder was left"
    _untouched(project, before)
    assert _done(project) == {1: "done", 2: "done"}, "what finished is kept, nothing else"
    assert _ran(flags) == ["1", "10", "11", "2"]

    again = project.run("exp", "run", "--set", "train.lr=1,2,3", "-j", "2")
    assert again.code == 0, again.text
    assert _ran(flags) == ["3"], "the finished experiments' stages come from the run cache"
    assert _scratch(project) == []
    _untouched(project, before)


def test_a_killed_sweep_leaves_nothing_the_next_does_not_clear(
        project: Project, tmp_path: Path) -> None:
    flags = tmp_path / "flags"
    before = _ready(project, flags)
    proc = _start(project, flags)
    proc.kill()
    proc.communicate(timeout=30)
    assert _scratch(project), "SIGKILL leaves the scratch folders of the running experiments"
    again = project.run("exp", "run", "--set", "train.lr=1,3", "-j", "2")
    assert again.code == 0, again.text
    assert _scratch(project) == [], "the next exp run removes what the killed one left"
    assert _processes_below(project.root) == [], "and ends its stage processes"
    assert _ran(flags) == ["1", "10", "11", "2", "3"]
    _untouched(project, before)
    assert _done(project) == {1: "done", 2: "done", 3: "done"}
