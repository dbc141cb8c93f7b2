"""The executor contract: one suite, run against every engine in the registry.

Each engine runs real stages of a real temporary project (``dask``: on a real cluster
on 127.0.0.1, skipped without ``distributed``). A newly registered engine is covered
once the module registering it is in ``ENGINE_MODULES`` (and, if it takes options,
its setup is in ``_options``).
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipeflow.execution import executor as registry
from pipeflow.execution.cancel import CancelToken
from pipeflow.execution.executor import Executor, ExecutorContext
from pipeflow.execution.runner import RUN_VAR, RunResult, prepare_outputs
from pipeflow.lock.lockfile import Lock
from pipeflow.ops.project import load_project
from pipeflow.ops.remotes import open_remote
from pipeflow.planning.graph import build_graph
from pipeflow.planning.plan import Planner
from pipeflow.project.project import Project as CoreProject
from tests.conftest import Project
from tests.functional.helpers import chain

ENGINE_MODULES: list[str] = []
"""Modules that register an engine beyond pipeflow's own (imported before collection)."""

for _module in ENGINE_MODULES:
    importlib.import_module(_module)

PROMPT = 15.0
"""Seconds within which a cancelled stage must have returned (and its processes gone)."""

KNOWN_GAPS: dict[str, str] = {}
"""Engines that do not yet keep one clause of the contract: xfail there, not strict,
so that the engine fixing it shows up as XPASS."""


def _options(name: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The engine's own options for a test (its cluster's address...)."""
    if name == "dask":
        return {"scheduler": request.getfixturevalue("address")}
    return {}


@dataclass
class Engine:
    """One registered engine, and a project set up so that it can run stages there."""

    name: str
    options: dict[str, str]
    project: Project
    shared: Path
    """A folder outside the project both this test and every stage can reach."""
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def flags(self) -> list[str]:
        return ["--executor", self.name, *(f"--{k}={v}" for k, v in self.options.items())]

    @contextmanager
    def executor(self, *, sink: Any = None) -> Iterator[tuple[CoreProject, Executor]]:
        with CoreProject(self.project.root) as repo:
            context = ExecutorContext(repo, self.token, CancelToken(), sink=sink,
                                      options=self.options,
                                      open_remote=functools.partial(open_remote, repo))
            with registry.create(self.name, context) as made:
                yield repo, made

    def prepare(self, repo: CoreProject, name: str) -> tuple[Any, Any]:
        """The stage and its components as the scheduler hands them (outputs cleared)."""
        graph = load_project(repo).graph
        stage = graph.pipeline.stages[name]
        state = Planner(repo, build_graph(graph.pipeline), Lock()).evaluate(name, {})
        prepare_outputs(repo.root, stage)
        return stage, state.components


@pytest.fixture(params=registry.names())
def engine(request: pytest.FixtureRequest, project: Project, tmp_path: Path) -> Engine:
    name: str = request.param
    options = _options(name, request)
    assert project.run("init").code == 0
    # every engine gets a remote: the ones running elsewhere exchange bytes through it
    assert project.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    shared = tmp_path / "shared"
    shared.mkdir()
    return Engine(name, options, project, shared)


def _processes_with(token: str) -> list[int]:
    """Processes whose environment carries ``PIPEFLOW_RUN=token`` (Linux /proc)."""
    marker = f"{RUN_VAR}={token}".encode()
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if marker in fh.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            continue
    return found


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _waits_for(flag: Path, then: str) -> str:
    """A command that waits (at most 60 s) for ``flag`` to exist, then runs ``then``."""
    return (f"i=0; while [ ! -e {flag} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); "
            f"done; [ -e {flag} ] && {then}")


def test_a_stage_runs_and_its_outputs_land_in_the_workspace(engine: Engine) -> None:
    p = engine.project
    p.write("in.txt", "x\n")
    p.spec({"s": {"cmd": "cp in.txt out.txt && mkdir -p d && echo y > d/f && echo made",
                  "deps": ["in.txt"], "outs": ["out.txt", "d"]}})
    lines: list[tuple[str, str]] = []
    with engine.executor(sink=lambda stage, line: lines.append((stage, line))) as (repo, ex):
        result = ex.run(*engine.prepare(repo, "s"))
    assert isinstance(result, RunResult) and result.ok, result
    assert result.returncode == 0 and result.stage == "s"
    assert p.read("out.txt") == "x\n" and p.read("d/f") == "y\n"
    assert "made" in result.log_path.read_text() and ("s", "made") in lines


def test_a_failing_command_gives_its_status_and_log_tail_and_commits_nothing(
        engine: Engine) -> None:
    p = engine.project
    p.spec({"bad": {"cmd": "echo oops && exit 3", "outs": ["x.txt"]}})
    with engine.executor() as (repo, ex):
        result = ex.run(*engine.prepare(repo, "bad"))
    assert not result.ok and result.returncode == 3
    assert "oops" in result.tail and result.failed_cmd == "echo oops && exit 3"
    res = p.run("repro", *engine.flags)
    assert res.code == 1 and "status 3" in res.err and "oops" in res.err
    assert not (p.root / "pipeline.lock").exists()


def test_an_output_not_written_fails_naming_it(engine: Engine) -> None:
    p = engine.project
    p.spec({"lazy": {"cmd": "echo here > made.txt", "outs": ["made.txt", "missing.txt"]}})
    res = p.run("repro", *engine.flags)
    assert res.code == 1
    assert "'lazy'" in res.err and "did not write its declared output 'missing.txt'" in res.err
    assert not (p.root / "pipeline.lock").exists()


def test_the_stage_sees_its_run_token(engine: Engine) -> None:
    p = engine.project
    p.spec({"t": {"cmd": f'echo "${RUN_VAR}" > token.txt', "outs": ["token.txt"]}})
    with engine.executor() as (repo, ex):
        assert ex.run(*engine.prepare(repo, "t")).ok
    assert p.read("token.txt") == f"{engine.token}\n"


def test_cancel_from_another_thread_stops_a_long_stage(engine: Engine) -> None:
    p = engine.project
    started, release = engine.shared / "started", engine.shared / "release"
    after = engine.shared / "ran-after"
    p.spec({"long": {"cmd": f"touch {started}; " + _waits_for(release, "echo done > o.txt"),
                     "outs": ["o.txt"]},
            "after": {"cmd": f"touch {after}"}})
    results: list[RunResult] = []
    try:
        with engine.executor() as (repo, ex):
            stage, comps = engine.prepare(repo, "long")
            later = engine.prepare(repo, "after")
            worker = threading.Thread(target=lambda: results.append(ex.run(stage, comps)))
            worker.start()
            _wait_for(started)
            asked = time.monotonic()
            ex.cancel()
            worker.join(PROMPT)
            assert not worker.is_alive(), "run() did not return after cancel()"
            assert time.monotonic() - asked < PROMPT
            assert not ex.run(*later).ok and not after.exists()  # it serves one run
        assert len(results) == 1 and not results[0].ok
        assert not (p.root / "o.txt").exists()
        deadline = time.monotonic() + PROMPT
        while _processes_with(engine.token) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = _processes_with(engine.token)
        if left and engine.name in KNOWN_GAPS:
            pytest.xfail(KNOWN_GAPS[engine.name])
        assert not left, f"stage processes left running: {left}"
    finally:
        release.touch()  # a stage left running ends now


def test_close_twice_is_fine_and_the_context_manager_closes(engine: Engine) -> None:
    with CoreProject(engine.project.root) as repo:
        context = ExecutorContext(repo, engine.token, CancelToken(), options=engine.options,
                                  open_remote=functools.partial(open_remote, repo))
        made = registry.create(engine.name, context)
        assert isinstance(made, Executor)
        closed: list[bool] = []
        close = made.close

        def counting_close() -> None:
            closed.append(True)
            close()

        made.close = counting_close  # type: ignore[method-assign]
        with made as entered:
            assert entered is made
        assert closed == [True]
        made.close()
        made.close()


def test_two_stages_run_at_once_from_two_threads(engine: Engine) -> None:
    p = engine.project
    a, b = engine.shared / "a-started", engine.shared / "b-started"
    p.spec({"a": {"cmd": f"touch {a}; " + _waits_for(b, "echo a > a.txt"), "outs": ["a.txt"]},
            "b": {"cmd": f"touch {b}; " + _waits_for(a, "echo b > b.txt"), "outs": ["b.txt"]}})
    results: dict[str, RunResult] = {}
    with engine.executor() as (repo, ex):
        # each stage waits for the other to have started: they pass only if concurrent
        prepared = {name: engine.prepare(repo, name) for name in ("a", "b")}
        threads = [threading.Thread(target=lambda n=name: results.update(
            {n: ex.run(*prepared[n])})) for name in prepared]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert results["a"].ok and results["b"].ok, results
    assert p.read("a.txt") == "a\n" and p.read("b.txt") == "b\n"


def test_repro_through_the_cli_gives_the_lock_a_local_run_gives(
        engine: Engine, tmp_path: Path) -> None:
    local = Project(tmp_path / "local")
    local.root.mkdir()
    p = engine.project
    for each in (p, local):
        chain(each)
    assert local.run("repro").code == 0
    res = p.run("repro", *engine.flags, "-j", "2")
    assert res.code == 0, res.text
    assert _without_run_ids(p.lock()) == _without_run_ids(local.lock())
    for out in ("data/prepared.txt", "models/model.txt", "metrics.json"):
        assert p.read(out) == local.read(out)
    assert p.run("status", "--check").code == 0


def _without_run_ids(lock: dict[str, Any]) -> dict[str, Any]:
    for entry in lock["stages"].values():
        entry.pop("run", None)
    return lock
