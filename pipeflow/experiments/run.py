"""``exp run``: each combination of params runs as a ``repro`` in its own scratch
workspace, ``jobs`` experiments at a time, touching none of the project's files.

Holding the project's repository lock for the whole sweep (the run records of every
experiment go to this clone's one chain), it plans the combinations and their names
first — an unknown key or a taken name is a UsageError before anything runs — then
runs them in threads: stage processes run side by side, deciding and committing is
cheap. A failed experiment does not stop the others. A cancel (Ctrl-C on the calling
thread, or the token) stops every running experiment's stage processes; experiments
that finished are kept, the scratch folders go either way.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from pipeflow.errors import Interrupted, PipeflowError, Terminated, UsageError
from pipeflow.execution.cancel import CancelToken
from pipeflow.execution.inflight import InFlight
from pipeflow.experiments import summary
from pipeflow.experiments.overrides import (
    Combination,
    as_table,
    combinations,
    params_files_of,
    write_overrides,
)
from pipeflow.experiments.scratch import (
    Scratch,
    ScratchProject,
    make_scratch,
    remove_scratch,
    sweep_scratch,
)
from pipeflow.experiments.summary import Planned
from pipeflow.lineage.experiments import Experiment, experiments, require_project
from pipeflow.lineage.model import ExperimentMark
from pipeflow.ops.repro import check_run_options
from pipeflow.planning.graph import resolve_targets

if TYPE_CHECKING:
    from pipeflow.execution.scheduler import StageEvent
    from pipeflow.git.gitinfo import Provenance
    from pipeflow.lock.lockfile import Lock
    from pipeflow.planning.graph import Graph
    from pipeflow.project.project import Project


@dataclass(frozen=True, kw_only=True)
class ExpOptions:
    """What ``exp run`` is asked to do (checked here, before anything is read)."""

    targets: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()
    """``--set`` texts: ``KEY=VALUE``, ``FILE:KEY=VALUE``, ``KEY=A,B,C``."""
    sweep: Path | None = None
    name: str | None = None
    """A name, or a template with ``{key}`` placeholders (several experiments)."""
    jobs: int = 1
    """Experiments at once (each runs its stages one at a time); 0: one per CPU."""
    replace: bool = False
    """A given name that is taken: the new experiment supersedes the old one."""
    executor: str = "local"
    executor_options: Mapping[str, str] = field(default_factory=dict)
    remote: str | None = None
    wait: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "sets", tuple(self.sets))
        object.__setattr__(self, "executor_options",
                           MappingProxyType(dict(self.executor_options)))
        check_run_options(self.jobs, self.wait, self.executor, self.executor_options)


ExpEventKind = Literal["started", "stage", "finished"]


@dataclass(frozen=True)
class ExpEvent:
    """Something that happened to one experiment: it ``started``, one of its stages
    did something (``stage``: see ``StageEvent``), or it ``finished`` (``experiment``
    says how)."""

    kind: ExpEventKind
    name: str
    stage: StageEvent | None = None
    experiment: Experiment | None = None


ExpSink = Callable[[ExpEvent], None]


@dataclass
class SweepReport:
    """What an ``exp run`` did."""

    planned: list[str] = field(default_factory=list)
    """The names of the experiments it was to run, in order."""
    experiments: list[Experiment] = field(default_factory=list)
    """The experiments that finished (done or failed), in the order they ended."""
    cancelled: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.cancelled and all(e.ok for e in self.experiments)


def exp_run(home: Project, options: ExpOptions, *, on_event: ExpSink | None = None,
            cancel: CancelToken | None = None) -> SweepReport:
    """Run the experiments ``options`` ask for; see the module docstring."""
    from pipeflow.ops.project import load_project
    from pipeflow.project.provenance import provenance

    require_project(home)
    cancel = cancel or CancelToken()
    emit = on_event or (lambda _e: None)
    with home.lock(wait=options.wait):
        graph = load_project(home).graph
        resolve_targets(graph, options.targets)  # an unknown one: UsageError, nothing runs
        combos = combinations(home.root, options.sets, options.sweep,
                              params_files_of(graph.pipeline))
        planned = _plan(home, options, combos)
        report = SweepReport(planned=[p.name for p in planned])
        _check_engine(home, options)
        sweep_scratch(home)  # left by a killed exp run: none runs now (we hold the lock)
        skip, persist = _not_copied(home, graph)
        prov = provenance(home)
        jobs = options.jobs if options.jobs > 0 else (os.cpu_count() or 1)
        # scratch folders are removed on a thread of their own (many small unlinks):
        # the next experiment need not wait, and every one is gone when this returns
        with ThreadPoolExecutor(max_workers=1) as janitor:
            shared = _Shared(skip, persist, prov, cancel, emit,
                             lambda place: janitor.submit(remove_scratch, place))
            _run_all(home, options, planned, shared, jobs, report)
        if shared.linked:
            report.warnings.append(
                "linked, not copied, into the experiments' scratch workspaces (git ignores "
                "them and they are too big to copy): " + ", ".join(sorted(shared.linked))
                + "; a command writing into them writes into your workspace")
        report.warnings += _no_change(home, report.experiments)
    return report


def _no_change(home: Project, done: list[Experiment]) -> list[str]:
    """A warning for each experiment whose overrides changed no stage's inputs."""
    from pipeflow.ops.project import current_lock

    try:
        lock = current_lock(home)
    except PipeflowError:
        return []
    return [f"experiment '{e.name}': its --set values changed no stage's inputs (does a "
            "stage read them? list them under its `params:`)"
            for e in done if e.ok and e.overrides and unchanged(lock, e)]


@dataclass(frozen=True)
class _Shared:
    """What every experiment of one sweep runs with."""

    skip: frozenset[str]
    """Declared outputs and source data: the scratch gets them from the cache."""
    persist: frozenset[str]
    """``persist`` outputs: copied from the workspace all the same."""
    prov: Provenance
    cancel: CancelToken
    emit: ExpSink
    remove: Callable[[Scratch], object]
    """Removes a scratch workspace (soon: see ``exp_run``)."""
    inflight: InFlight = field(default_factory=InFlight)
    linked: set[str] = field(default_factory=set)
    """Git-ignored entries linked, not copied, into some scratch workspace."""


def _plan(home: Project, options: ExpOptions, combos: list[Combination]) -> list[Planned]:
    from pipeflow.experiments.names import experiment_names

    live = experiments(home)
    taken = {e.name for e in live}
    given = bool(options.name) and len(combos) == 1 and "{" not in (options.name or "")
    names = experiment_names(options.name, combos, set() if given else taken)
    by_name: dict[str, list[str]] = {}
    for e in live:
        by_name.setdefault(e.name, []).append(e.id)
    clash = [n for n in names if n in by_name]
    if clash and not options.replace:
        shown = ", ".join(repr(n) for n in clash)
        what = f"experiment name {shown} is" if len(clash) == 1 else \
            f"experiment names {shown} are"
        raise UsageError(f"{what} taken",
                         hint="choose another --name, pass --replace to supersede the "
                              f"experiment, or `pipeflow exp remove {clash[0]}` first")
    sweep = secrets.token_hex(6)
    return [Planned(secrets.token_hex(6), name, combo, i, sweep,
                    tuple(by_name.get(name, ())))
            for i, (name, combo) in enumerate(zip(names, combos, strict=True))]


def _check_engine(home: Project, options: ExpOptions) -> None:
    """Make and close one executor as each experiment's repro will: a missing scheduler
    address or remote, an unreachable scheduler, a remote the committed config may not
    name is a UsageError (exit 2) once, before anything runs, not a failure recorded
    for every experiment."""
    import functools
    import uuid

    from pipeflow.execution.executor import ExecutorContext, create
    from pipeflow.ops.remotes import open_remote

    context = ExecutorContext(home, uuid.uuid4().hex, CancelToken(), remote=options.remote,
                              options=options.executor_options,
                              open_remote=functools.partial(open_remote, home))
    create(options.executor, context).close()


def unchanged(home_lock: Lock, exp: Experiment) -> bool:
    """Whether ``exp`` ended with every stage's fingerprint the workspace's lock has:
    its overrides changed nothing any stage reads."""
    ran = [s for s in exp.stages if s.fingerprint]
    return bool(ran) and all(
        (entry := home_lock.stages.get(s.stage)) is not None
        and entry.fingerprint == s.fingerprint for s in ran)


def _not_copied(home: Project, graph: Graph) -> tuple[frozenset[str], frozenset[str]]:
    """Declared outputs and source data (the scratch gets them from the cache), and
    the ``persist`` outputs among them (copied all the same)."""
    from pipeflow.lock.lockfile import read
    from pipeflow.project.project import LOCK_FILE

    paths = {o.path for s in graph.pipeline.stages.values() for o in s.outs}
    with contextlib.suppress(PipeflowError):  # in conflict or damaged: repro says so
        paths.update(read(home.lock_path, LOCK_FILE).sources)
    persist = {o.path for s in graph.pipeline.stages.values() for o in s.outs if o.persist}
    return frozenset(paths), frozenset(persist)


def _run_all(home: Project, options: ExpOptions, planned: list[Planned], shared: _Shared,
             jobs: int, report: SweepReport) -> None:
    finished: queue.SimpleQueue[Future[Experiment | None]] = queue.SimpleQueue()
    waiting = list(planned)
    running: dict[Future[Experiment | None], Planned] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        try:
            while waiting or running:
                while waiting and len(running) < jobs and not shared.cancel.cancelled:
                    plan = waiting.pop(0)
                    fut = pool.submit(_run_one, home, options, plan, shared)
                    fut.add_done_callback(finished.put)
                    running[fut] = plan
                if not running:
                    break
                fut = _next(finished)
                plan = running.pop(fut)
                exp = fut.result()
                if exp is not None:
                    report.experiments.append(exp)
                    _supersede(home, plan, exp, shared.prov, report)
        except BaseException as exc:
            shared.cancel.cancel()  # every experiment's stage processes
            for fut in running:
                fut.exception()  # wait: each removes its scratch folder
            if isinstance(exc, KeyboardInterrupt):
                done = len(report.experiments)
                raise Interrupted(
                    isinstance(exc, Terminated),
                    f"interrupted: {done} experiment(s) had finished and are recorded; "
                    "none of your files changed",
                    hint="run the same `pipeflow exp run` again: what finished is "
                         "restored from the run cache") from exc
            raise
    report.cancelled = shared.cancel.cancelled


def _supersede(home: Project, plan: Planned, exp: Experiment, prov: Provenance,
               report: SweepReport) -> None:
    """``--replace``: a new experiment that is done takes its name from the old ones;
    one that failed leaves them as they were."""
    if not plan.replaces:
        return
    if not exp.ok:
        report.warnings.append(
            f"'{exp.name}' failed: the experiment it was to replace is kept (`pipeflow exp "
            "show` lists both, with their ids)")
        return
    for old in plan.replaces:
        summary.write_removal(home, old, plan.name, prov)


def _next(finished: queue.SimpleQueue[Future[Experiment | None]]) -> Future[Experiment | None]:
    while True:  # a timeout, so that Ctrl-C reaches this thread
        try:
            return finished.get(timeout=0.5)
        except queue.Empty:
            continue


def _run_one(home: Project, options: ExpOptions, planned: Planned,
             shared: _Shared) -> Experiment | None:
    """Run one experiment in its scratch folder; its summary, or None when the sweep
    was cancelled before it ended."""
    from pipeflow.ops.project import current_lock
    from pipeflow.ops.repro import ReproOptions, repro

    if shared.cancel.cancelled:
        return None
    shared.emit(ExpEvent("started", planned.name))
    started = time.time()
    table = as_table(planned.combo)
    place = make_scratch(home, planned.name, shared.skip, shared.persist)
    try:
        if place.linked:
            shared.linked.update(place.linked)
        write_overrides(place.root, table)
        with ScratchProject(place.root, home=home) as scratch:
            ropts = ReproOptions(targets=options.targets, executor=options.executor,
                                 executor_options=options.executor_options,
                                 remote=options.remote, inflight=shared.inflight,
                                 mark=ExperimentMark(planned.id, planned.name,
                                                     table).to_json(),
                                 provenance=shared.prov)
            outcome, error = None, None
            try:
                outcome = repro(scratch, ropts, cancel=shared.cancel,
                                on_event=lambda e: shared.emit(
                                    ExpEvent("stage", planned.name, stage=e))).outcome
            except Interrupted:
                return None
            except PipeflowError as exc:
                error = exc.message
            if shared.cancel.cancelled:
                return None
            exp = summary.build(planned, table, current_lock(scratch), outcome, error)
            if not exp.ok:
                summary.keep_logs(scratch.logs_dir, home, planned.name)
            exp = summary.write(home, exp, shared.prov, started)
    finally:
        shared.remove(place)
    shared.emit(ExpEvent("finished", planned.name, experiment=exp))
    return exp


def grid_texts(values: Mapping[str, Sequence[object]]) -> tuple[str, ...]:
    """``--set`` texts trying each of ``values[key]`` (the Python API's ``grid=``): each
    value as YAML flow text that reads back as it inside a list, so a string with a
    comma stays one value."""
    from pipeflow.experiments.yamledit import flow

    for key, vals in values.items():
        if isinstance(vals, str | bytes) or not vals:
            raise UsageError(f"grid[{key!r}] must be a non-empty list of values to try "
                             f"(got {vals!r})", hint="use set= for one value")
    return tuple(f"{key}={','.join(flow(v) for v in vals)}" for key, vals in values.items())


def set_texts(values: Mapping[str, object]) -> tuple[str, ...]:
    """``--set`` texts for single values (the Python API's ``set=``)."""
    from pipeflow.experiments.yamledit import flow

    return tuple(f"{key}={flow(v)}" for key, v in values.items())
