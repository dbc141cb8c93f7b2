"""``pipeflow reproduce PATH@VERSION``: rebuild a recorded version from its sources in a
scratch workspace and say, stage by stage, whether it comes out the same.

Holding the project's repository lock: trace the version's lineage and plan
(:mod:`.plan`), compare the environment (``--strict-env`` refuses on a difference),
make the workspace at the recorded commit, place the source inputs from the cache
(``--pull``: from the remote when the cache lacks them), set the recorded params
values, run every stage that can be tried with ``--force`` (no run-cache hit, nothing
restored), judge each (:mod:`.verdicts`) and write one ``reproduction`` record
(:mod:`.audit`). The workspace goes whatever happens; the project's files, lock and
history are not touched but for that record (and the objects the run made, in the
cache). A Ctrl-C ends the stages, removes the workspace and writes no record.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from pipeflow.errors import (
    EnvironmentDiffers,
    Interrupted,
    PipeflowError,
    SpecError,
    Terminated,
)
from pipeflow.lineage.reproductions import EnvDifference, Reproduction, StageVerdict, Verdict
from pipeflow.ops.repro import check_run_options
from pipeflow.reproduce import envdiff, workspace
from pipeflow.reproduce.plan import ReproPlan, StagePlan, plan
from pipeflow.reproduce.verdicts import overall

if TYPE_CHECKING:
    from pipeflow.execution.cancel import CancelToken
    from pipeflow.execution.runner import LineSink
    from pipeflow.execution.scheduler import EventSink, Outcome, StageEvent
    from pipeflow.planning.graph import Graph
    from pipeflow.project.project import Project
    from pipeflow.reproduce.workspace import ReproProject
    from pipeflow.spec.model import Stage


@dataclass(frozen=True, kw_only=True)
class ReproduceOptions:
    """What ``reproduce`` is asked to do (checked here, before anything is read)."""

    pull: bool = False
    remote: str | None = None
    strict_env: bool = False
    executor: str = "local"
    executor_options: Mapping[str, str] = field(default_factory=dict)
    jobs: int = 1
    wait: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "executor_options",
                           MappingProxyType(dict(self.executor_options)))
        check_run_options(self.jobs, self.wait, self.executor, self.executor_options)


EventKind = Literal["planned", "retry", "stage", "recording"]


@dataclass(frozen=True)
class ReproduceEvent:
    """``planned``: the version, commit, stages and environment differences are known
    (``plan``, ``env``); ``retry``: the commit ``plan.commit`` does not hold what the
    runs read, the next is tried; ``stage``: a stage of the reproduction did something;
    ``recording``: the verdict is being written (after the project's lock, which a
    ``repro`` may hold for a while)."""

    kind: EventKind
    plan: ReproPlan | None = None
    env: tuple[EnvDifference, ...] = ()
    stage: StageEvent | None = None


ReproduceSink = Callable[[ReproduceEvent], None]


def reproduce(home: Project, target: str, options: ReproduceOptions | None = None, *,
              on_event: ReproduceSink | None = None, sink: LineSink | None = None,
              cancel: CancelToken | None = None) -> Reproduction:
    """Reproduce ``MODEL_OR_PATH@VERSION`` (no version: the one the lock names) and
    record the verdict. UsageError for an unknown version or one no run made;
    :class:`EnvironmentDiffers` with ``strict_env``; Interrupted on Ctrl-C.

    The project's repository lock is taken only to write the record at the end: the
    rebuild happens in a workspace of its own (with its own lock, records and state),
    so the user's ``repro`` and other reproductions go on meanwhile."""
    from pipeflow.ops.lineage import lineage
    from pipeflow.registry.models import expand_model

    options = options or ReproduceOptions()
    started = time.time()
    models = _models(home)
    # a path need not be in the workspace: lineage resolves it by its records
    found = plan(home, lineage(home, expand_model(home, target)))
    env = envdiff.against_current(s.record.body.environment()
                                  for s in found.stages if s.record is not None)
    pull = _puller(home, options)  # a bad remote is a UsageError before anything runs
    if on_event is not None:
        on_event(ReproduceEvent("planned", plan=found, env=tuple(env)))
    if options.strict_env and env:
        shown = ", ".join(f"{e.name} {e.current or 'absent'} (recorded "
                          f"{e.recorded or 'absent'})" for e in env[:6])
        raise EnvironmentDiffers(
            f"the environment differs from the one {found.path}@{found.version} was "
            f"made in: {shown}{' ...' if len(env) > 6 else ''}",
            hint="install the recorded versions (`pipeflow env export "
                 f"{found.path}@{found.version}`), or run without --strict-env")
    workspace.sweep(home)
    verdicts = _run(home, found, options, pull, on_event, sink, cancel)
    verdict = overall(verdicts, found.produced_by.get(found.path))
    result = Reproduction(
        found.path, found.hash, found.version, verdict, tuple(verdicts),
        model=models.get(found.path), commit=found.commit, env=tuple(env),
        executor=options.executor, duration=round(time.time() - started, 3))
    if not result.ok and all(v.verdict.reproduced or v.stage in found.here_only
                             for v in verdicts):
        return replace(result, unrecorded=_HERE_ONLY)
    if on_event is not None:
        on_event(ReproduceEvent("recording", plan=found))
    return _record(home, result, options, started)


_HERE_ONLY = ("not recorded: what stopped it is missing from this clone (an input not in "
              "its cache, a commit it lacks), which says nothing of the version itself")
RECORD_WAIT = 600.0
"""Seconds the record waits for a ``repro`` holding the project's lock (the verdict
may have taken hours: it is not given up at once)."""


def _record(home: Project, result: Reproduction, options: ReproduceOptions,
            started: float) -> Reproduction:
    """Write the ``reproduction`` record (holding the project's lock, waited for); when
    the lock stays taken, the verdict is returned unrecorded, saying so."""
    from pipeflow.errors import LockedError
    from pipeflow.project.provenance import provenance
    from pipeflow.reproduce import audit

    try:
        with home.lock(wait=max(options.wait, RECORD_WAIT)):
            return audit.write(home, result, provenance(home), started)
    except LockedError as exc:
        return replace(result, unrecorded=f"not recorded: {exc.message}")


def _models(home: Project) -> dict[str, str]:
    """Output path -> the model declared on it (none when pipeline.yaml does not load:
    an old version may still be reproduced)."""
    from pipeflow.registry.models import declared

    try:
        return {m.path: name for name, m in declared(home).items()}
    except PipeflowError:
        return {}


def _run(home: Project, found: ReproPlan, options: ReproduceOptions,
         pull: Callable[[list[str]], object] | None, on_event: ReproduceSink | None,
         sink: LineSink | None, cancel: CancelToken | None) -> list[StageVerdict]:
    """Make the workspace at the first commit this clone has that holds what the runs
    read (the last one otherwise), run what can be tried there, judge every stage."""

    if not found.commits:
        return _all_blocked(found, "no commit holds the code its runs read: they were made "
                                   "outside git, and no commit's pipeline.lock names the "
                                   "version (commit your work, then `pipeflow repro`)")
    present = found.present
    if not present:
        found.here_only.update(s.stage for s in found.stages)
        return _all_blocked(found, f"git commit {found.commits[0][:12]} is not in this "
                                   "clone (`git fetch` the branch that has it)")
    original = (list(found.stages), set(found.here_only))
    for n, commit in enumerate(present):
        found.stages, found.here_only, found.commit = [*original[0]], {*original[1]}, commit
        verdicts = _at(home, found, options, pull, on_event, sink, cancel,
                       last=n + 1 == len(present),
                       lacking=len(present) < len(found.commits))
        if verdicts is not None:
            return verdicts
        if on_event is not None:
            on_event(ReproduceEvent("retry", plan=found))
    raise AssertionError("the last commit is always judged")


def _at(home: Project, found: ReproPlan, options: ReproduceOptions,
        pull: Callable[[list[str]], object] | None, on_event: ReproduceSink | None,
        sink: LineSink | None, cancel: CancelToken | None, *, last: bool, lacking: bool
        ) -> list[StageVerdict] | None:
    """Rebuild at ``found.commit`` and judge; None (nothing run) when the checkout does
    not hold what the runs read and another commit is left to try. ``lacking``: a
    commit that may hold it is not in this clone."""
    from pipeflow.reproduce.precheck import mismatches
    from pipeflow.reproduce.verdicts import Judge

    assert found.commit is not None
    space = workspace.make(home, found.commit, found.prefix, f"{found.path}-{found.version}")
    try:
        stages, graph = _prepare(home, space.project, found, pull)
        off = mismatches(space.project, graph, found) if graph is not None else {
            s.stage: ["pipeline.yaml does not load"] for s in found.stages}
        off.update({s.stage: ["not in pipeline.yaml"] for s in found.stages
                    if graph is not None and s.stage not in stages})
        if off and not last:
            return None
        if off and lacking:
            found.here_only.update(off)  # the commit that may hold it is not here
        outcome = _execute(space.project, found, options, on_event, sink, cancel)
        return Judge(home, space.project, outcome, stages).judge(found)
    except (Interrupted, KeyboardInterrupt) as exc:
        stopped = exc.terminated if isinstance(exc, Interrupted) else isinstance(
            exc, Terminated)
        raise Interrupted(stopped, "interrupted: the reproduction stopped; its workspace "
                                   "is removed, nothing was recorded and the project is "
                                   "untouched") from exc
    finally:
        space.remove()


def _prepare(home: Project, project: ReproProject, found: ReproPlan,
             pull: Callable[[list[str]], object] | None
             ) -> tuple[dict[str, Stage], Graph | None]:
    """Place inputs, load the pipeline at the commit, set params; stages that cannot
    be tried are marked blocked in ``found``. Returns the stages as the commit declares
    them (a ``deterministic: false`` added since does not loosen an old verdict)."""
    from pipeflow.experiments.overrides import params_files_of
    from pipeflow.ops.project import load_project

    problems, missing = workspace.place(project, found.placed, pull)
    try:
        graph = load_project(project).graph
    except PipeflowError as exc:
        broken = f"pipeline.yaml at commit {(found.commit or '')[:12]} does not load " \
                 f"({exc.message})"
        _block(found, lambda _s: broken)
        return {}, None
    rank = {name: i for i, name in enumerate(graph.order)}
    found.stages.sort(key=lambda s: rank.get(s.stage, -1))
    at_commit = _as_run(home, found, dict(graph.pipeline.stages))
    _freeze(found, at_commit, project, pull, (problems, missing))
    params = workspace.set_params(project.root, found.params,
                                  params_files_of(graph.pipeline))

    def why(step: StagePlan) -> str | None:
        if step.stage not in at_commit:
            return f"stage {step.stage} is not in pipeline.yaml at commit " \
                   f"{(found.commit or '')[:12]}"
        for aid in step.run.inputs:
            path = aid.rsplit("@", 1)[0]
            for placed, problem in problems.items():
                if path == placed or path.startswith(placed + "/"):
                    if placed in missing:
                        found.here_only.add(step.stage)
                    return problem
        return next((p for f, p in params.items() if f in step.run.params), None)

    _block(found, why)
    _block_downstream(found)
    return at_commit, graph


def _as_run(home: Project, found: ReproPlan, stages: dict[str, Stage]) -> dict[str, Stage]:
    """The stages as declared, except that ``deterministic: false`` counts only when
    the commit a stage's run was made at declared it too (when that commit is another
    one, and the run's spec was committed): declaring a stage noisy later — in the
    commit that also records its version, say — does not loosen the verdict on it."""
    from pipeflow.reproduce.workspace import noisy_at

    loose = {n for n, s in stages.items() if not s.deterministic}
    for step in found.stages:
        run_commit = step.run.git_commit
        if step.stage not in loose or not run_commit or run_commit == found.commit or (
                "pipeline.yaml" in step.dirty):
            continue
        then = noisy_at(home, run_commit, found.prefix, step.stage)
        if then is False:
            stages[step.stage] = replace(stages[step.stage], deterministic=True,
                                         tolerance=None)
    return stages


def _freeze(found: ReproPlan, at_commit: dict[str, Stage], project: ReproProject,
            pull: Callable[[list[str]], object] | None,
            placing: tuple[dict[str, str], set[str]]) -> None:
    """Stages frozen at the commit are not rebuilt: their recorded outputs are placed
    from the cache (or the remote) as inputs of what reads them; what cannot be is
    added to ``placing`` (problems, missing here) and the stage cannot be reproduced."""
    from pipeflow.reproduce.plan import Placed

    for i, step in enumerate(found.stages):
        declared = at_commit.get(step.stage)
        if declared is None or not declared.frozen or step.record is None:
            continue
        outs = [Placed(o.path, o.hash, o.isdir, o.size) for o in step.record.outputs
                if o.cache]
        more, lacking = workspace.place(project, outs, pull)
        for out in step.record.outputs:
            if not out.cache and not os.path.lexists(project.root / out.path):
                more[out.path] = (f"its output {out.path} is not cached (cache: false): "
                                  "a frozen stage's output cannot be restored")
        placing[0].update(more)
        placing[1].update(lacking)
        found.stages[i] = replace(step, frozen=True,
                                  blocked=next(iter(more.values()), None))
        if lacking:
            found.here_only.add(step.stage)


def _puller(home: Project, options: ReproduceOptions) -> Callable[[list[str]], object] | None:
    """``--pull``: what brings objects from the remote (opened now: a bad remote is a
    UsageError before anything is made)."""
    if not options.pull:
        return None
    from pipeflow.ops.remotes import open_remote
    from pipeflow.ops.transfer import download_objects

    remote = open_remote(home, options.remote)
    return lambda oids: download_objects(home, remote, oids)


def _block(found: ReproPlan, why: Callable[[StagePlan], str | None]) -> None:
    for i, step in enumerate(found.stages):
        if step.blocked is None:
            reason = why(step)
            if reason is not None:
                found.stages[i] = replace(step, blocked=reason)


def _block_downstream(found: ReproPlan) -> None:
    """A stage reading an output of a stage that cannot be tried cannot be either."""
    from pipeflow.reproduce.verdicts import producer_of

    changed = True
    while changed:
        changed = False
        blocked = {s.stage for s in found.stages if s.blocked is not None}
        for i, step in enumerate(found.stages):
            if step.blocked is not None:
                continue
            for aid in step.run.inputs:
                upstream = producer_of(found, aid.rsplit("@", 1)[0])
                if upstream in blocked and upstream != step.stage:
                    if upstream in found.here_only:
                        found.here_only.add(step.stage)
                    found.stages[i] = replace(
                        step, blocked=f"not run: upstream stage {upstream} cannot be "
                                      "reproduced", blocked_by=upstream)
                    changed = True
                    break


def _all_blocked(found: ReproPlan, why: str) -> list[StageVerdict]:
    return [StageVerdict(s.stage, Verdict.CANNOT, s.blocked or why, run=s.run.id,
                         fingerprint=s.run.fingerprint, blocked_by=s.blocked_by)
            for s in found.stages]


def _execute(project: ReproProject, found: ReproPlan, options: ReproduceOptions,
             on_event: ReproduceSink | None, sink: LineSink | None,
             cancel: CancelToken | None) -> Outcome:
    from pipeflow.execution.scheduler import Outcome
    from pipeflow.ops.repro import ReproOptions, repro

    names = found.runnable
    if not names:
        return Outcome()
    stage_sink: EventSink | None = None
    if on_event is not None:
        def stage_sink(event: StageEvent) -> None:
            on_event(ReproduceEvent("stage", stage=event))

    try:
        report = repro(project, ReproOptions(
            targets=tuple(names), force=True, single_item=True, jobs=options.jobs,
            keep_going=True, executor=options.executor,
            executor_options=options.executor_options, remote=options.remote),
            on_event=stage_sink, sink=sink, cancel=cancel)
    except SpecError as exc:
        # the checkout lacks a dep the run read (a script never committed, say)
        why = f"the commit cannot run it: {exc.message}"
        _block(found, lambda _s: why)
        return Outcome()
    return report.outcome
