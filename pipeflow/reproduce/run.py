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

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from pipeflow.errors import EnvironmentDiffers, PipeflowError
from pipeflow.lineage.reproductions import EnvDifference, Reproduction, StageVerdict, Verdict
from pipeflow.ops.repro import check_run_options
from pipeflow.reproduce import envdiff, workspace
from pipeflow.reproduce.plan import ReproPlan, StagePlan, plan

if TYPE_CHECKING:
    from pipeflow.execution.cancel import CancelToken
    from pipeflow.execution.runner import LineSink
    from pipeflow.execution.scheduler import EventSink, Outcome, StageEvent
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


EventKind = Literal["planned", "stage"]


@dataclass(frozen=True)
class ReproduceEvent:
    """``planned``: the version, commit, stages and environment differences are known
    (``plan``, ``env``); ``stage``: a stage of the reproduction did something."""

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
    :class:`EnvironmentDiffers` with ``strict_env``; Interrupted on Ctrl-C."""
    from pipeflow.ops.lineage import lineage
    from pipeflow.registry.models import declared, name_of, resolve_target

    options = options or ReproduceOptions()
    started = time.time()
    models = declared(home)
    chosen = resolve_target(home, target, models)
    with home.lock(wait=options.wait):
        traced = lineage(home, str(home.root / chosen.path), chosen.version)
        found = plan(home, traced, None)
        env = envdiff.against_current(s.record.body.environment()
                                      for s in found.stages if s.record is not None)
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
        verdicts = _run(home, found, options, on_event, sink, cancel)
        result = Reproduction(
            found.path, found.hash, found.version,
            Verdict.worst([v.verdict for v in verdicts]), tuple(verdicts),
            model=name_of(models, found.path), commit=found.commit or next(
                iter(found.commits), None), env=tuple(env),
            executor=options.executor, duration=round(time.time() - started, 3))
        from pipeflow.project.provenance import provenance
        from pipeflow.reproduce import audit

        return audit.write(home, result, provenance(home), started)


def _run(home: Project, found: ReproPlan, options: ReproduceOptions,
         on_event: ReproduceSink | None, sink: LineSink | None,
         cancel: CancelToken | None) -> list[StageVerdict]:
    """Make the workspace, run what can be tried there, judge every stage."""
    from pipeflow.experiments.scratch import remove_scratch
    from pipeflow.reproduce.verdicts import Judge

    if not found.commits:
        return _all_blocked(found, "no commit holds the code its runs read: they were made "
                                   "outside git, and no commit's pipeline.lock names the "
                                   "version")
    found.commit = next((c for c in found.commits if workspace.has_commit(home, c)), None)
    if found.commit is None:
        return _all_blocked(found, f"git commit {found.commits[0][:12]} is not in this "
                                   "clone (`git fetch` the branch that has it)")
    scratch, project = workspace.make(home, found.commit, f"{found.path}-{found.version}")
    try:
        stages = _prepare(home, project, found, options)
        outcome = _execute(project, found, options, on_event, sink, cancel)
        return Judge(home, project, outcome, stages).judge(found)
    finally:
        project.close()
        remove_scratch(scratch)


def _prepare(home: Project, project: ReproProject, found: ReproPlan,
             options: ReproduceOptions) -> dict[str, Stage]:
    """Place inputs, set params, load the pipeline at the commit; stages that cannot
    be tried are marked blocked in ``found``. Returns the stages as declared (the
    project's pipeline first: a stage declared ``deterministic: false`` since counts)."""
    from pipeflow.ops.project import load_project

    pull = None
    if options.pull:
        from pipeflow.ops.remotes import open_remote
        from pipeflow.ops.transfer import download_objects

        remote = open_remote(home, options.remote)

        def pull(oids: list[str]) -> object:
            return download_objects(home, remote, oids)

    problems = workspace.place(project, found.placed, pull)
    params = workspace.set_params(project.root, found.params)
    try:
        graph = load_project(project).graph
        at_commit = dict(graph.pipeline.stages)
        rank = {name: i for i, name in enumerate(graph.order)}
        found.stages.sort(key=lambda s: rank.get(s.stage, -1))
    except PipeflowError as exc:
        at_commit = {}
        broken = f"pipeline.yaml at commit {(found.commit or '')[:12]} does not load ({exc})"
        _block(found, lambda _s: broken)
    try:
        now = dict(load_project(home).graph.pipeline.stages)
    except PipeflowError:
        now = {}

    def why(step: StagePlan) -> str | None:
        if step.stage not in at_commit:
            return f"stage {step.stage} is not in pipeline.yaml at commit " \
                   f"{(found.commit or '')[:12]}"
        for aid in step.run.inputs:
            path = aid.rsplit("@", 1)[0]
            for placed, problem in problems.items():
                if path == placed or path.startswith(placed + "/"):
                    return problem
        return next((p for f, p in params.items() if f in step.run.params), None)

    _block(found, why)
    _block_downstream(found)
    return {**at_commit, **{n: s for n, s in now.items() if n in at_commit}}


def _block(found: ReproPlan, why: Callable[[StagePlan], str | None]) -> None:
    for i, step in enumerate(found.stages):
        if step.blocked is None:
            reason = why(step)
            if reason is not None:
                found.stages[i] = StagePlan(step.stage, step.run, step.record, reason)


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
                    found.stages[i] = StagePlan(
                        step.stage, step.run, step.record,
                        f"not run: upstream stage {upstream} cannot be reproduced")
                    changed = True
                    break


def _all_blocked(found: ReproPlan, why: str) -> list[StageVerdict]:
    return [StageVerdict(s.stage, Verdict.CANNOT, s.blocked or why, run=s.run.id,
                         fingerprint=s.run.fingerprint) for s in found.stages]


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

    report = repro(project, ReproOptions(
        targets=tuple(names), force=True, single_item=True, jobs=options.jobs,
        executor=options.executor, executor_options=options.executor_options,
        remote=options.remote), on_event=stage_sink, sink=sink, cancel=cancel)
    return report.outcome
