"""``repro --executor dask`` on a real Dask cluster (``dask scheduler`` and ``dask worker``
processes on 127.0.0.1) with a local-folder remote."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Project
from tests.daskcluster import FLAVOR
from tests.functional.helpers import chain, lock_without_run_ids

distributed = pytest.importorskip("distributed")

SECRET = "hunter2-never-printed"


def _new_project(path: Path) -> Project:
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    return Project(path)


def _pipeline(p: Project) -> None:
    """The shared chain plus a folder output made by an executable script, and a stage
    reading that folder and the whole params file."""
    chain(p)
    script = p.write("tools/split.sh", "#!/bin/sh\nmkdir -p parts\n"
                                       "while read x; do echo $x > parts/$x.txt; done\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    stages = yaml.safe_load(p.read("pipeline.yaml"))
    stages["stages"]["split"] = {"cmd": "./tools/split.sh < data/raw.txt",
                                 "deps": ["data/raw.txt", "tools/split.sh"], "outs": ["parts"]}
    stages["stages"]["count"] = {"cmd": "ls parts | wc -l > counts.txt && "
                                        "grep -c ':' params.yaml >> counts.txt && echo counted",
                                 "deps": ["parts"], "params": ["prep.n"],
                                 "outs": ["counts.txt"]}
    p.spec(stages["stages"])


def _records(p: Project) -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted((p.root / ".pipeflow/cache/runs").rglob("*.json")):
        body = json.loads(path.read_text())
        found[body["stage"]] = {k: body.get(k) for k in (
            "kind", "fingerprint", "components", "command", "exit_status", "outputs",
            "metrics")}
    return found


def _with_remote(p: Project, tmp_path: Path) -> None:
    assert p.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    # an option named like a secret: it must reach no worker, log, record or message
    assert p.run("remote", "modify", "origin", "password", SECRET, "--local").code == 0


def test_a_dask_run_equals_a_local_run(project: Project, tmp_path: Path, address: str) -> None:
    local = _new_project(tmp_path / "local")
    _pipeline(local)
    assert local.run("repro").code == 0
    _pipeline(project)
    _with_remote(project, tmp_path)
    res = project.run("repro", "--executor", "dask", "--scheduler", address, "-j", "2")
    assert res.code == 0, res.text
    assert lock_without_run_ids(project) == lock_without_run_ids(local)
    assert _records(project) == _records(local)
    for out in ("data/prepared.txt", "models/model.txt", "metrics.json", "parts/c.txt",
                "counts.txt"):
        assert project.read(out) == local.read(out)
    assert project.read("counts.txt") == "3\n7\n"  # 3 parts; the whole params file
    # the commands ran elsewhere: their side file stayed in the workers' scratch folders
    assert (local.root / "runs.log").exists() and not (project.root / "runs.log").exists()
    assert project.read(".pipeflow/logs/count.log") == "counted\n"
    assert "counted" in res.out  # the task's output is shown once it returns
    again = project.run("repro", "--executor", "dask", "--scheduler", address)
    assert again.code == 0 and "Everything is up to date" in again.out
    assert project.run("status", "--check").code == 0
    _no_secret_anywhere(project, res.text + again.text)


def _no_secret_anywhere(p: Project, printed: str) -> None:
    assert SECRET not in printed
    for path in [p.root / "pipeline.lock", *(p.root / ".pipeflow").rglob("*")]:
        if path.is_file() and path.name != "config.local" and path.suffix != ".db":
            assert SECRET.encode() not in path.read_bytes(), path


def test_the_worker_never_reads_the_project(project: Project, tmp_path: Path,
                                            address: str) -> None:
    guard = f'case "$PWD" in "{project.root}"*) exit 9;; esac'
    project.write("in.txt", "x\n")
    project.spec({"where": {"cmd": f'{guard}; cat in.txt > out.txt; echo "$PWD" > pwd.txt',
                            "deps": ["in.txt"], "outs": ["out.txt", "pwd.txt"]}})
    _with_remote(project, tmp_path)
    res = project.run("repro", "--executor", "dask", "--scheduler", address)
    assert res.code == 0, res.text
    assert project.read("out.txt") == "x\n"
    pwd = Path(project.read("pwd.txt").strip())
    assert project.root not in pwd.parents and "pipeflow-task-" in str(pwd)
    assert not pwd.exists()  # the scratch folder is removed after the task
    local = project.run("repro", "--force")  # the guard works: locally it fails
    assert local.code == 1 and "status 9" in local.text


def test_environment_mismatch_fails_naming_the_difference(
    project: Project, tmp_path: Path, address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FLAVOR, "client")
    monkeypatch.setenv("PIPEFLOW_DASK_SCHEDULER", address)
    project.write("in.txt", "x\n")
    project.spec({"flavored": {"cmd": "cp in.txt out.txt", "deps": ["in.txt"],
                               "outs": ["out.txt"], "env": {"vars": [FLAVOR]}}})
    _with_remote(project, tmp_path)
    res = project.run("repro", "--executor", "dask")
    assert res.code == 1
    assert f"environment differs on the worker: {FLAVOR} client -> worker" in res.text
    assert not (project.root / "out.txt").exists()
    assert not (project.root / "pipeline.lock").exists()  # nothing was committed
    _no_secret_anywhere(project, res.text)


def test_a_killed_worker_is_retried_and_never_committed_half_done(
    project: Project, tmp_path: Path, address: str
) -> None:
    marker = tmp_path / "killed-once"
    kill = "kill -9 $PPID; sleep 2; exit 3"
    project.write("in.txt", "x\n")
    project.spec({
        "flaky": {"cmd": f"echo half > out.txt; if [ ! -e {marker} ]; then touch {marker}; "
                         f"{kill}; fi; echo full > out.txt",
                  "deps": ["in.txt"], "outs": ["out.txt"]},
        "doomed": {"cmd": f"echo half > dead.txt; {kill}", "deps": ["in.txt"],
                   "outs": ["dead.txt"]},
    })
    _with_remote(project, tmp_path)
    res = project.run("repro", "--executor", "dask", "--scheduler", address, "-k")
    assert res.code == 1
    assert marker.exists() and project.read("out.txt") == "full\n"
    assert "'doomed'" in res.err and "worker died" in res.err
    assert not (project.root / "dead.txt").exists()
    stages = project.lock()["stages"]
    assert "flaky" in stages and "doomed" not in stages


def test_dask_needs_a_remote_and_a_scheduler(project: Project, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPEFLOW_DASK_SCHEDULER", raising=False)
    chain(project)
    res = project.run("repro", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9")
    assert res.code == 2 and "needs a remote" in res.err and "remote add" in res.err
    assert not (project.root / "runs.log").exists()
    assert project.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    res = project.run("repro", "--executor", "dask")
    assert res.code == 2 and "PIPEFLOW_DASK_SCHEDULER" in res.err
    assert project.run("repro", "--executor", "ray").code == 2
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    res = project.run("repro", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9")
    assert res.code == 2 and "pip install distributed" in res.err
    assert not (project.root / "runs.log").exists()


def test_credentials_are_not_sent_to_workers(project: Project, tmp_path: Path) -> None:
    from pipeflow.execution.dask_executor import DaskExecutor, shareable_options
    from pipeflow.ops.remotes import open_remote
    from pipeflow.planning.fingerprint import Components
    from pipeflow.project.project import Project as CoreProject
    from pipeflow.spec.model import Stage

    project.write("in.txt", "x\n")
    assert project.run("init").code == 0
    _with_remote(project, tmp_path)
    with CoreProject(project.root) as repo:
        remote = open_remote(repo)
        executor = DaskExecutor(repo, remote, "tcp://unused", client=object())
        stage = Stage("s", ("cp in.txt out.txt",), deps=("in.txt",))
        task = executor.task(stage, Components(stage.cmd, (), {}, (), {}, ()))
    assert SECRET not in repr(task) and "password" not in task.remote_options
    assert [(i.path, i.isdir) for i in task.inputs] == [("in.txt", False)]

    options = {"password": "a", "key": "b", "endpoint_url": "http://127.0.0.1:9000",
               "client_kwargs": {"aws_secret_access_key": "c", "region_name": "eu"}}
    assert shareable_options(options) == {"endpoint_url": "http://127.0.0.1:9000",
                                          "client_kwargs": {"region_name": "eu"}}
    assert os.environ.get(FLAVOR) is None  # the cluster's variable stays in the workers


def test_a_persistent_output_goes_on_from_its_content(project: Project, tmp_path: Path,
                                                      address: str) -> None:
    project.write("in.txt", "x\n")
    project.spec({"grow": {"cmd": "cat in.txt >> hist.txt", "deps": ["in.txt"],
                           "outs": [{"hist.txt": {"persist": True}}]}})
    _with_remote(project, tmp_path)
    for _ in range(2):
        res = project.run("repro", "--executor", "dask", "--scheduler", address, "--force")
        assert res.code == 0, res.text
    assert project.read("hist.txt") == "x\nx\n"
