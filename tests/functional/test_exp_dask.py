"""``exp run --executor dask``: a sweep on a real Dask cluster (``dask scheduler`` and two
``dask worker`` processes on 127.0.0.1, tests/daskcluster.py) exchanging bytes through a
folder remote. Each experiment's repro connects its own client; the results equal a
local sweep's, a failed experiment does not stop the others, a rerun is all run-cache
hits, and the workspace is never touched (issue 13, item 2)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Project
from tests.functional.helpers import commit

distributed = pytest.importorskip("distributed")

WATCHED = ("params.yaml", "pipeline.lock", "pipeline.yaml", "model.txt", "metrics.json")
SWEEP = ("--set", "train.lr=1,2,9", "--set", "eval.k=1,2")


def _ready(p: Project, log: Path) -> dict[str, bytes]:
    """train -> evaluate; ``train.lr`` 9 fails. Each stage appends its name and the
    folder it ran in to ``log`` (outside the project: workers on this machine write
    there too). Run, committed; the bytes of the files to watch."""
    p.params({"train": {"lr": 1}, "eval": {"k": 1}})
    p.write("data.txt", "x\n")  # a stage without deps never uses the run cache
    p.spec({
        "train": {"cmd": f'echo "train $PWD" >> {log}; if [ ${{train.lr}} = 9 ]; then '
                         "echo boom-${train.lr}; exit 3; fi; echo lr=${train.lr} > model.txt",
                  "deps": ["data.txt"], "params": ["train.lr"], "outs": ["model.txt"]},
        "evaluate": {"cmd": f'echo "evaluate $PWD" >> {log}; echo "{{\\"score\\": '
                            '$(($(cut -d= -f2 model.txt) * ${eval.k}))}" > metrics.json',
                     "deps": ["model.txt"], "params": ["eval.k"], "metrics": ["metrics.json"]},
    })
    assert p.run("repro").code == 0
    commit(p, "v1")
    log.unlink()
    return {rel: (p.root / rel).read_bytes() for rel in WATCHED}


def _ran(log: Path) -> list[tuple[str, str]]:
    """(stage, folder) of each stage run since the last call."""
    if not log.exists():
        return []
    lines = [tuple(line.split(" ", 1)) for line in log.read_text().splitlines()]
    log.unlink()
    return [(a, b) for a, b in lines]


def _by_combination(out: str) -> dict[str, dict[str, Any]]:
    body = json.loads(out)
    return {json.dumps(e["set"], sort_keys=True): e for e in body["experiments"]}


def _untouched(p: Project, before: dict[str, bytes]) -> None:
    assert {rel: (p.root / rel).read_bytes() for rel in before} == before
    assert p.git("status", "--porcelain") == ""
    assert not any((p.root / ".pipeflow/tmp/exp").glob("*")), "a scratch folder was left"


def test_a_dask_sweep_equals_a_local_sweep(project: Project, tmp_path: Path,
                                           address: str) -> None:
    local = Project(tmp_path / "local")
    local.root.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(local.root)], check=True)
    local_log, dask_log = tmp_path / "local.log", tmp_path / "dask.log"
    _ready(local, local_log)
    here = local.run("exp", "run", *SWEEP, "-j", "2", "--json")
    assert here.code == 1, here.text
    before = _ready(project, dask_log)
    assert project.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    commit(project, "remote")
    before[".pipeflow/config"] = project.read(".pipeflow/config").encode()

    there = project.run("exp", "run", *SWEEP, "-j", "2", "--json", "--executor", "dask",
                        "--scheduler", address)
    assert there.code == 1, there.text
    mine, theirs = _by_combination(there.out), _by_combination(here.out)
    assert len(mine) == 6 and mine.keys() == theirs.keys()
    for combo, exp in mine.items():
        assert (exp["status"], exp["metrics"]) == (theirs[combo]["status"],
                                                   theirs[combo]["metrics"]), combo
    failed = [e for e in mine.values() if e["status"] == "failed"]
    assert len(failed) == 2 and all(e["set"]["params.yaml"]["train.lr"] == 9 for e in failed)
    for exp in failed:
        assert exp["failed_stage"] == "train" and "boom-9" in exp["log_tail"], exp
        assert exp["stages"]["evaluate"] != "ran"
    done = [e for e in mine.values() if e["status"] == "done"]
    assert {e["metrics"]["metrics.json"]["score"] for e in done} == {1, 2, 4}
    ran = _ran(dask_log)
    # lr=1 is the baseline's (its train, and evaluate with k=1, are in the run cache);
    # lr=2 trains once (its other experiment waits, then restores it), lr=9 twice (a
    # failure is not cached); evaluate once per other successful experiment
    stages = [s for s, _ in ran]
    assert (stages.count("train"), stages.count("evaluate")) == (3, 3), ran
    assert all("pipeflow-task-" in folder and str(project.root) not in folder
               for _, folder in ran), "every stage ran on a worker"
    _untouched(project, before)

    again = project.run("exp", "run", "--set", "train.lr=1,2", "--set", "eval.k=1,2", "-j",
                        "2", "--json", "--executor", "dask", "--scheduler", address)
    assert again.code == 0, again.text
    assert _ran(dask_log) == [], again.out + again.err + there.out
    for combo, exp in _by_combination(again.out).items():
        assert set(exp["stages"].values()) == {"restored"}, combo
        assert exp["metrics"] == mine[combo]["metrics"]
    _untouched(project, before)


def test_a_committed_remote_beyond_storage_is_refused_for_experiments(
        project: Project, tmp_path: Path, address: str) -> None:
    """The scratch workspace holds no ``.pipeflow/config``: the check of what the
    committed config may say must still read the project's."""
    before = _ready(project, tmp_path / "runs.log")
    assert project.run("init").code == 0
    config = yaml.safe_load(project.read(".pipeflow/config"))
    config["remote"] = {"origin": {"url": "memory://x"}}
    project.write(".pipeflow/config", yaml.safe_dump(config))
    commit(project, "remote")
    for command in (("repro", "--force"), ("exp", "run", "--set", "eval.k=2")):
        res = project.run(*command, "--executor", "dask", "--scheduler", address)
        assert res.code == 2, (command, res.text)
        assert ".pipeflow/config" in res.err and "protocol 'memory'" in res.err, res.err
    assert not (tmp_path / "runs.log").exists(), "nothing ran"
    assert {rel: (project.root / rel).read_bytes() for rel in WATCHED} == before


def test_a_scratch_checks_the_projects_committed_remote(project: Project,
                                                        tmp_path: Path) -> None:
    """What the Dask executor of each experiment opens: the remote, from the project's
    config files (a scratch folder has none of its own, which read as "nothing said")."""
    from pipeflow.errors import ConfigError
    from pipeflow.experiments.scratch import ScratchProject, make_scratch, remove_scratch
    from pipeflow.ops.remotes import open_remote
    from pipeflow.project.project import Project as Core

    _ready(project, tmp_path / "runs.log")
    config = yaml.safe_load(project.read(".pipeflow/config"))
    config["remote"] = {"origin": {"url": "memory://x"}}
    project.write(".pipeflow/config", yaml.safe_dump(config))
    with Core(project.root) as home:
        place = make_scratch(home, "probe")
        try:
            with ScratchProject(place.root, home=home) as scratch, \
                    pytest.raises(ConfigError, match="protocol 'memory'"):
                open_remote(scratch, "origin")
        finally:
            remove_scratch(place)


def test_a_sweep_without_a_scheduler_runs_nothing(project: Project, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked once, before anything runs: not one failed experiment per combination."""
    from pipeflow.lineage.experiments import experiments
    from pipeflow.project.project import Project as Core

    monkeypatch.delenv("PIPEFLOW_DASK_SCHEDULER", raising=False)
    _ready(project, tmp_path / "runs.log")
    assert project.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    res = project.run("exp", "run", "--set", "eval.k=2,3", "--executor", "dask")
    assert res.code == 2, res.text
    assert "needs the address of a Dask scheduler" in res.err and "--scheduler" in res.err
    assert not (tmp_path / "runs.log").exists()
    with Core(project.root) as core:
        assert experiments(core) == [], "nothing was recorded"


def _task_processes(base: Path) -> list[int]:
    """Processes working in a task folder of this session's cluster (whose folders are
    below ``base``, pytest's base folder): a stage's command on the cluster."""
    import os

    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            if cwd.startswith(f"{base}/") and "pipeflow-task-" in cwd:
                found.append(int(pid))
        except OSError:
            continue
    return found


def test_ctrl_c_stops_a_dask_sweep_and_its_tasks(project: Project, tmp_path: Path,
                                                 address: str) -> None:
    import os
    import signal
    import sys
    import time

    from tests.conftest import GIT_ENV

    flags = tmp_path / "flags"
    flags.mkdir()
    project.params({"train": {"lr": 0}})
    project.write("data.txt", "x\n")
    project.spec({"train": {
        "cmd": f"touch {flags}/started-${{train.lr}}; sleep 60; echo ${{train.lr}} > model.txt",
        "deps": ["data.txt"], "params": ["train.lr"], "outs": ["model.txt"]}})
    assert project.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    commit(project, "v1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeflow", "exp", "run", "--set", "train.lr=1,2", "-j", "2",
         "--executor", "dask", "--scheduler", address], cwd=project.root, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **GIT_ENV})
    deadline = time.monotonic() + 60
    while not all((flags / f"started-{lr}").exists() for lr in (1, 2)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the tasks never started"
        time.sleep(0.05)
    assert _task_processes(tmp_path.parent), "the tasks run on the cluster's workers"
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert not any((project.root / ".pipeflow/tmp/exp").glob("*")), "a scratch folder was left"
    assert project.git("status", "--porcelain") == ""
    deadline = time.monotonic() + 15  # the worker's watch sees the stop within a second
    while _task_processes(tmp_path.parent) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _task_processes(tmp_path.parent) == [], "a task's command went on running"
