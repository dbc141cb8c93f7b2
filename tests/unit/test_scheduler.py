"""The ready-set scheduler in a real tmp project: parallelism, failures, skipping."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeflow.execution import journal
from pipeflow.execution.runner import RunResult
from pipeflow.execution.scheduler import Outcome, Scheduler, StageEvent
from pipeflow.lock.lockfile import Lock
from pipeflow.ops.init import init
from pipeflow.planning.graph import build_graph
from pipeflow.planning.plan import Planner
from pipeflow.project.project import Project
from pipeflow.spec.model import Out, Pipeline, Stage


def mk(name: str, cmd: str, deps: tuple[str, ...] = (), outs: tuple[str, ...] = ()) -> Stage:
    return Stage(name=name, cmd=(cmd,), deps=deps, outs=tuple(Out(o) for o in outs))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    init(root, starter=False)
    return root


class Run:
    """One scheduler run over ``stages`` with a lock; events are recorded."""

    def __init__(self, root: Path, stages: list[Stage], lock: Lock | None = None) -> None:
        self.root = root
        self.pipeline = Pipeline({s.name: s for s in stages})
        self.lock = lock or Lock()
        self.events: list[StageEvent] = []

    def __call__(self, names: list[str] | None = None, **options: object) -> Outcome:
        with Project(self.root) as repo:
            graph = build_graph(self.pipeline)
            planner = Planner(repo, graph, self.lock)
            sched = Scheduler(planner, names or list(graph.order),
                              on_event=self.events.append, **options)  # type: ignore[arg-type]
            outcome = sched.run()
            assert repo.state.get("running") == "[]"  # nothing left marked running
            self.lock = journal.fold(self.lock, journal.entries(repo.state))
            repo.state.journal_clear()
        return outcome

    def kinds(self, stage: str) -> list[str]:
        return [e.kind for e in self.events if e.stage == stage]

    def result(self, stage: str) -> RunResult:
        [res] = [e.result for e in self.events if e.stage == stage and e.result is not None]
        return res


def test_two_independent_stages_run_concurrently(root: Path) -> None:
    run = Run(root, [mk("a", "sleep 0.5; echo a > a.txt", outs=("a.txt",)),
                     mk("b", "sleep 0.5; echo b > b.txt", outs=("b.txt",))])
    outcome = run(jobs=2)
    assert sorted(outcome.ran) == ["a", "b"] and outcome.ok
    a, b = run.result("a"), run.result("b")
    assert a.ok and b.ok
    # each started before the other ended: their runs overlapped
    assert a.started < b.ended and b.started < a.ended
    assert [e.kind for e in run.events[:2]] == ["started", "started"]


def test_one_job_runs_one_at_a_time(root: Path) -> None:
    run = Run(root, [mk("a", "sleep 0.1; echo a > a.txt", outs=("a.txt",)),
                     mk("b", "sleep 0.1; echo b > b.txt", outs=("b.txt",))])
    assert run(jobs=1).ran == ["a", "b"]
    a, b = run.result("a"), run.result("b")
    assert a.ended <= b.started
    assert [e.kind for e in run.events] == ["started", "finished", "started", "finished"]


def test_dependent_waits_for_its_upstream(root: Path) -> None:
    run = Run(root, [mk("prep", "sleep 0.2; echo p > p.txt", outs=("p.txt",)),
                     mk("train", "cat p.txt > m.txt", deps=("p.txt",), outs=("m.txt",)),
                     mk("other", "echo o > o.txt", outs=("o.txt",))])
    outcome = run(jobs=4)
    assert sorted(outcome.ran) == ["other", "prep", "train"]
    assert run.result("prep").ended <= run.result("train").started
    assert (root / "m.txt").read_text() == "p\n"
    entry = run.lock.stages["train"]
    assert [d.path for d in entry.deps] == ["p.txt"] and entry.outs[0].path == "m.txt"


def test_failure_stops_new_stages_but_running_ones_finish(root: Path) -> None:
    run = Run(root, [
        mk("bad", "touch bad.started; echo oops; exit 4", outs=("bad.txt",)),
        mk("slow", "while [ ! -e bad.started ]; do sleep 0.01; done; sleep 0.3; echo s > s.txt",
           outs=("s.txt",)),
        mk("later", "echo l > l.txt", outs=("l.txt",)),
        mk("after", "cat bad.txt", deps=("bad.txt",)),
    ])
    outcome = run(jobs=2)
    assert not outcome.ok
    [err] = outcome.failed
    assert err.stage == "bad" and "'touch bad.started; echo oops; exit 4' exited with status 4" in (
        err.message
    )
    assert err.log_tail == "oops"
    assert outcome.ran == ["slow"]  # already running: finished and committed
    assert "slow" in run.lock.stages and "bad" not in run.lock.stages
    assert sorted(outcome.not_started) == ["after", "later"]
    assert outcome.blocked == []
    assert run.kinds("later") == [] and not (root / "l.txt").exists()


def test_keep_going_runs_the_rest_and_blocks_dependents(root: Path) -> None:
    run = Run(root, [
        mk("bad", "exit 1", outs=("bad.txt",)),
        mk("after", "cat bad.txt > a2.txt", deps=("bad.txt",), outs=("a2.txt",)),
        mk("after2", "cat a2.txt", deps=("a2.txt",)),
        mk("indep", "echo i > i.txt", outs=("i.txt",)),
    ])
    outcome = run(jobs=1, keep_going=True)
    assert [e.stage for e in outcome.failed] == ["bad"]
    assert outcome.blocked == ["after", "after2"]
    assert outcome.ran == ["indep"] and outcome.not_started == []
    blocked = [e for e in run.events if e.kind == "blocked"]
    assert [(e.stage, e.detail) for e in blocked] == [("after", "bad"), ("after2", "after")]


def test_missing_declared_output_fails_the_stage(root: Path) -> None:
    run = Run(root, [mk("lazy", "echo forgot", outs=("o.txt",))])
    outcome = run()
    [err] = outcome.failed
    assert "did not write its declared output 'o.txt'" in err.message
    assert err.log_tail == "forgot"
    assert run.lock.stages == {}


def test_up_to_date_skipped_and_missing_output_restored(root: Path) -> None:
    stages = [mk("a", "echo a > a.txt", outs=("a.txt",)),
              mk("b", "cat a.txt > b.txt; echo ran >> runs.log", deps=("a.txt",),
                 outs=("b.txt",))]
    run = Run(root, stages)
    assert run().ran == ["a", "b"]
    again = run()
    assert again.skipped == ["a", "b"] and again.ran == []
    (root / "b.txt").unlink()
    third = run()
    assert third.skipped == ["a"] and third.restored == ["b"] and third.ran == []
    assert (root / "b.txt").read_text() == "a\n"
    assert (root / "runs.log").read_text() == "ran\n"  # b's command ran once
    assert run.kinds("b")[-1] == "restored"


def test_force_reruns(root: Path) -> None:
    run = Run(root, [mk("a", "echo a > a.txt", outs=("a.txt",))])
    run()
    assert run(force=True).ran == ["a"]


def test_only_selected_stages_run(root: Path) -> None:
    run = Run(root, [mk("a", "echo a > a.txt", outs=("a.txt",)),
                     mk("b", "echo b > b.txt", outs=("b.txt",))])
    assert run(["b"]).ran == ["b"]
    assert not (root / "a.txt").exists()


def test_corrupt_cache_object_is_recomputed_not_served(root: Path) -> None:
    run = Run(root, [mk("a", "echo a > a.txt; echo ran >> runs.log", outs=("a.txt",))])
    run()
    (root / "a.txt").unlink()
    with Project(root) as repo:
        obj = repo.store.path_of(run.lock.stages["a"].outs[0].hash)
    obj.chmod(0o644)
    obj.write_text("garbage\n")
    outcome = run()
    assert outcome.ran == ["a"] and outcome.restored == [] and outcome.ok
    assert (root / "a.txt").read_text() == "a\n"
    assert (root / "runs.log").read_text() == "ran\nran\n"
