"""docs/executors.md's example engine is real: its code block, registered as
``subprocess``, runs pipelines through ``repro --executor subprocess`` (each stage in
a ``python -m pipeflow.execution.worker`` process, bytes through a folder remote) as a
local run does."""

from __future__ import annotations

import re
import subprocess
import types
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.functional.helpers import chain, lock_without_run_ids

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "executors.md"


def guide_code() -> str:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "docs/executors.md must hold exactly one python block"
    return str(blocks[0])


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The guide's block imported as a module; its ``register`` call lands in a copy of
    the registry, so no other test sees the engine."""
    from pipeflow.execution import executor

    monkeypatch.setattr(executor, "_REGISTRY", dict(executor._REGISTRY))
    module = types.ModuleType("executor_guide")
    exec(compile(guide_code(), str(GUIDE), "exec"), module.__dict__)
    return module


def _with_remote(p: Project, tmp_path: Path) -> None:
    assert p.run("remote", "add", "origin", str(tmp_path / "store")).code == 0


def test_the_guide_engine_runs_a_pipeline_as_a_local_run_does(
        project: Project, tmp_path: Path, engine: types.ModuleType) -> None:
    from pipeflow.execution.executor import names

    assert "subprocess" in names()
    local = Project(tmp_path / "local")
    local.root.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(local.root)], check=True)
    chain(local)
    assert local.run("repro").code == 0
    chain(project)
    _with_remote(project, tmp_path)
    res = project.run("repro", "--executor", "subprocess", "-j", "2")
    assert res.code == 0, res.text
    assert lock_without_run_ids(project) == lock_without_run_ids(local)
    for out in ("data/prepared.txt", "models/model.txt", "metrics.json"):
        assert project.read(out) == local.read(out)
    # the commands ran in the workers' scratch folders, not in the project
    assert (local.root / "runs.log").exists() and not (project.root / "runs.log").exists()
    again = project.run("repro", "--executor", "subprocess")
    assert again.code == 0 and "Everything is up to date" in again.out
    assert project.run("status", "--check").code == 0


def test_the_guide_engine_refuses_what_commit_refuses(
        project: Project, tmp_path: Path, engine: types.ModuleType) -> None:
    project.write("in.txt", "x\n")
    project.spec({"lazy": {"cmd": "cat in.txt > other.txt", "deps": ["in.txt"],
                           "outs": ["out.txt"]},
                  "failing": {"cmd": "echo about to fail; exit 4", "deps": ["in.txt"],
                              "outs": ["never.txt"]}})
    _with_remote(project, tmp_path)
    res = project.run("repro", "--executor", "subprocess", "-k")
    assert res.code == 1
    assert "it did not write its declared output 'out.txt'" in res.text  # the shared check
    assert "status 4" in res.text and "about to fail" in project.read(".pipeflow/logs/failing.log")
    assert not (project.root / "pipeline.lock").exists()


def test_the_guide_engine_needs_a_remote(project: Project, engine: types.ModuleType) -> None:
    chain(project)
    res = project.run("repro", "--executor", "subprocess")
    assert res.code == 2 and "no remote configured" in res.err
    assert not (project.root / "runs.log").exists()


def test_the_guide_engine_keeps_the_executor_protocol(
        project: Project, tmp_path: Path, engine: types.ModuleType) -> None:
    """Made through the registry and driven as the scheduler drives it: a stage's
    outputs land in the workspace, its lines reach the sink, cancel and close are safe
    to call."""
    from functools import partial

    from pipeflow.execution.cancel import CancelToken
    from pipeflow.execution.executor import Executor, ExecutorContext, create
    from pipeflow.lock.lockfile import Lock
    from pipeflow.ops.project import load_project
    from pipeflow.ops.remotes import open_remote
    from pipeflow.planning.plan import Planner
    from pipeflow.project.project import Project as CoreProject

    project.write("in.txt", "x\n")
    project.spec({"copy": {"cmd": "cp in.txt out.txt && echo copied", "deps": ["in.txt"],
                           "outs": ["out.txt"]}})
    _with_remote(project, tmp_path)
    lines: list[tuple[str, str]] = []
    with CoreProject(project.root) as repo:
        context = ExecutorContext(repo, "token", CancelToken(),
                                  sink=lambda stage, line: lines.append((stage, line)),
                                  open_remote=partial(open_remote, repo))
        with create("subprocess", context) as made:
            assert isinstance(made, Executor)
            graph = load_project(repo).graph
            comps = Planner(repo, graph, Lock()).evaluate("copy", {}).components
            result = made.run(graph.pipeline.stages["copy"], comps)
            made.close()
        made.cancel()
    assert result.ok, result
    assert project.read("out.txt") == "x\n"
    assert ("copy", "copied") in lines
