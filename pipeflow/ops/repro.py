"""``pipeflow repro``: bring outputs up to date, running only what changed."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pipeflow.errors import Interrupted, Terminated, UsageError
from pipeflow.execution.cancel import CancelToken
from pipeflow.execution.executor import Executor, ExecutorContext, check_options, create
from pipeflow.execution.runner import LineSink
from pipeflow.execution.scheduler import EventSink, Outcome, Scheduler
from pipeflow.ops.init import init
from pipeflow.ops.project import check_outputs_inside, load_project, recover, render_lock
from pipeflow.planning.graph import Graph, check_deps_exist, resolve_targets, select
from pipeflow.planning.plan import Planner, StageState
from pipeflow.project.project import LOCK_FILE, Project

if TYPE_CHECKING:
    from pipeflow.execution.history import FetchObjects
    from pipeflow.execution.inflight import InFlight
    from pipeflow.git.gitinfo import Provenance
    from pipeflow.lineage.trust import Trust
    from pipeflow.lock.lockfile import FileEntry
    from pipeflow.planning.sourcedata import SourceState
    from pipeflow.storage.remote import Remote


@dataclass(frozen=True, kw_only=True)
class ReproOptions:
    """What ``repro`` is asked to do, checked once here (UsageError) for the CLI and
    the Python API alike, before anything is read or run."""

    targets: tuple[str, ...] = ()
    force: bool = False
    dry: bool = False
    jobs: int = 1
    """Stages at once; 0: one per CPU."""
    keep_going: bool = False
    single_item: bool = False
    downstream: bool = False
    wait: float = 0.0
    pull: bool = False
    remote: str | None = None
    executor: str = "local"
    """A name in the executor registry (``pipeflow.execution.executor.names()``)."""
    executor_options: Mapping[str, str] = field(default_factory=dict)
    """The engine's own options, e.g. ``{"scheduler": "tcp://host:8786"}`` for ``dask``."""
    mark: Mapping[str, Any] | None = None
    """The experiment this run is for: every run record it writes carries it
    (:meth:`pipeflow.lineage.model.ExperimentMark.to_json`)."""
    inflight: InFlight | None = None
    """Shared by the runs of one sweep (:mod:`pipeflow.execution.inflight`)."""
    provenance: Provenance | None = None
    """Where the records say they were written (git commit, modified files, user,
    host); default: read from the project's folder. An experiment passes the
    project's: its scratch workspace is a worktree of its own."""

    def __post_init__(self) -> None:
        # a list given by a caller becomes the tuple a frozen value promises
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "executor_options",
                           MappingProxyType(dict(self.executor_options)))
        check_run_options(self.jobs, self.wait, self.executor, self.executor_options)
        if self.single_item and self.downstream:
            raise UsageError("--single-item and --downstream cannot be combined",
                             hint="--single-item runs only the targets, --downstream the "
                                  "targets and everything after them: choose one")


def check_run_options(jobs: int, wait: float, executor: str,
                      executor_options: Mapping[str, str]) -> None:
    """The checks every running verb (``repro``, ``exp run``) makes of its options:
    UsageErrors before anything is read or run."""
    if jobs < 0:
        raise UsageError(f"--jobs must be 0 (one per CPU) or more (got {jobs})")
    if wait < 0:
        raise UsageError(f"--wait must be 0 seconds or more (got {wait})")
    check_options(executor, executor_options)


@dataclass
class ReproReport:
    """What a ``repro`` did (or, with ``dry``, would do)."""

    selected: list[str]
    plan: list[StageState] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)
    lock_changed: bool = False
    initialized: bool = False
    sources: list[str] = field(default_factory=list)
    """What happened to source data first: 'restored PATH' or 'new version of PATH'."""
    warnings: list[str] = field(default_factory=list)
    """``--pull``: what the fetch skipped (damaged files, records claiming this clone's
    chain)."""
    untrusted: list[tuple[str, Trust]] = field(default_factory=list)
    """(stage, verdict): run-cache entries from a remote left unused (the stage ran)."""


def sync_sources(repo: Project, graph: Graph, names: list[str],
                 pulled_from: str | None = None, unseen: frozenset[str] = frozenset()
                 ) -> list[str]:
    """Before planning: restore source data missing from the workspace (or an older
    version checked out) from the cache, record a new version of any source the user
    edited, and resolve a source in merge conflict by recording the workspace's
    version. A source whose locked version is not in the local cache (the lock moved
    through git, the data did not follow) stops the run when a selected stage reads it
    (MissingSourceData, before anything is written) and is left alone when none does:
    recording the workspace's file would undo a colleague's version. ``unseen``:
    sources whose locked version ``--pull`` just brought; other data in the workspace
    there is not an edit of that version (SourceConflict)."""
    from pipeflow.lock import lockconflict
    from pipeflow.lock.lockfile import Lock
    from pipeflow.lock.lockmerge import MergedLock
    from pipeflow.planning.sourcedata import blocking, conflict_error, missing_error, source_states

    merged = lockconflict.read(repo.lock_path, LOCK_FILE)
    lock = merged.lock
    if not lock.sources and not merged.source_conflicts:
        return []
    states = source_states(repo, lock)
    blocked = blocking(states, graph, names)
    if blocked:
        raise missing_error(blocked, pulled_from)
    conflicts = [s for s in states if s.state == "edited" and s.path in unseen]
    if conflicts and pulled_from:
        raise conflict_error(conflicts, pulled_from)
    sources = dict(lock.sources)
    notes = [_sync_source(repo, s, sources) for s in states]
    for path, sides in merged.source_conflicts.items():
        sources[path] = _resolve_source(repo, path, sides)
        which = {e.hash: side for e, side in zip(sides, ("ours", "theirs"), strict=True) if e}
        notes.append(f"merge conflict on {path} resolved: recorded the workspace's version "
                     f"({which.get(sources[path].hash, 'neither side')})")
    if sources != dict(lock.sources) or merged.source_conflicts:
        lockconflict.write(repo.lock_path, MergedLock(Lock(stages=lock.stages, sources=sources),
                                                      merged.stage_conflicts))
    return [note for note in notes if note]


def _sync_source(repo: Project, s: SourceState, sources: dict[str, FileEntry]) -> str:
    """Bring one source in line with the lock (or record the user's edit in
    ``sources``); says what it did, or "" when nothing."""
    from pipeflow.lock.lockfile import hash_info
    from pipeflow.ops.add import record_source
    from pipeflow.planning.sourcedata import external_note, leads_outside

    if s.state in ("absent", "checked-out") and s.locked.external and leads_outside(
            repo, s.path):
        return external_note(s.path, s.locked)
    if s.state in ("absent", "checked-out"):
        repo.store.checkout(hash_info(s.locked), repo.root / s.path, linker=repo.linker,
                            root=repo.root)
        repo.hasher.forget(s.path)
        return (f"restored {s.path}" if s.state == "absent" else
                f"restored the locked version of {s.path} (another was checked out)")
    if s.state == "edited":
        sources[s.path] = record_source(repo, s.path, external=s.locked.external)
        return f"new version of {s.path} recorded"
    if s.state == "not-in-cache":
        return (f"{s.path}: its locked version {s.locked.hash[:8]} is not in the local "
                "cache; left as it is, no stage of this run reads it "
                f"(`pipeflow pull {s.path}` gets it)")
    return ""


def _resolve_source(repo: Project, path: str,
                    sides: tuple[FileEntry | None, FileEntry | None]) -> FileEntry:
    from pipeflow.errors import LockConflictError
    from pipeflow.ops.add import record_source

    if not (repo.root / path).exists():
        ours, theirs = (e.hash[:8] if e else "removed" for e in sides)
        msg = (f"source data '{path}' is in merge conflict in {LOCK_FILE} (one branch "
               f"recorded {ours}, the other {theirs}) and is missing from the workspace")
        pick = " or ".join(f"`pipeflow checkout {path}@{h}`" for h in (ours, theirs)
                           if h != "removed")
        raise LockConflictError(msg, hint=f"put the version to keep at {path} ({pick}), then "
                                          "run `pipeflow repro` again: it records that one")
    return record_source(repo, path, external=any(e.external for e in sides if e))


def _pull_first(repo: Project, options: ReproOptions
                ) -> tuple[Remote, frozenset[str], list[str]]:
    """``--pull``: records, pointers and the lock's objects (source data and outputs)
    from the remote before anything is planned, so that sources are restored, missing
    outputs restore instead of rerunning and run-cache hits are seen. Returns the
    remote, the sources whose locked version was not here before, and what the fetch
    skipped."""
    from pipeflow.lock import lockconflict
    from pipeflow.ops.remotes import open_remote
    from pipeflow.ops.transfer import fetch
    from pipeflow.planning.sourcedata import not_here

    remote = open_remote(repo, options.remote)
    unseen = not_here(repo, lockconflict.read(repo.lock_path, LOCK_FILE).lock)
    fetched = fetch(repo, options.remote)
    repo.forget("index")  # fetched records get indexed
    return remote, unseen, fetched.skipped


def repro(
    repo: Project,
    options: ReproOptions,
    *,
    on_event: EventSink | None = None,
    sink: LineSink | None = None,
    cancel: CancelToken | None = None,
) -> ReproReport:
    """Run the selected stages whose state is not up to date, then render the lock.

    The executor (``options.executor``, from the registry) is made first: an unknown
    name, a missing scheduler address or remote is a UsageError before anything runs.
    Installs no signal handler: the caller owns its signals. ``cancel`` stops this run
    (only its own stage processes); so does an exception on this thread (Ctrl-C),
    which is re-raised as :class:`Interrupted` once the finished stages are kept.
    """
    initialized = False
    if not repo.dot.is_dir() and not options.dry:
        init(repo.root, starter=False)
        initialized = True
    if options.dry:
        return _dry(repo, options)
    _ = repo.config  # a bad config is reported before anything runs
    cancel = cancel or CancelToken()
    token = uuid.uuid4().hex
    from pipeflow.ops.remotes import open_remote  # engines that need one open it

    context = ExecutorContext(repo, token, cancel, sink=sink, remote=options.remote,
                              options=options.executor_options,
                              open_remote=functools.partial(open_remote, repo))
    with (create(options.executor, context) as executor,
          repo.lock(wait=options.wait)):
        recover(repo)
        planner, remote, report = _plan(repo, options)
        report.initialized = initialized
        run = _Run(executor, token, cancel, on_event, sink)
        _execute(repo, options, planner, remote, run, report)
        return report


def _plan(repo: Project, options: ReproOptions) -> tuple[Planner, Remote | None, ReproReport]:
    """Holding the repo lock: select the stages, ``--pull``, sync the source data and
    check the deps; the planner over the lock as it then is."""
    from pipeflow.lock import lockconflict

    graph = load_project(repo).graph
    names = select(graph, resolve_targets(graph, options.targets),
                   single_item=options.single_item, downstream=options.downstream)
    check_outputs_inside(repo, graph, names, running=True)
    remote, unseen, skipped = (_pull_first(repo, options) if options.pull
                               else (None, frozenset(), []))
    report_sources = sync_sources(repo, graph, names, remote.name if remote else None,
                                  unseen)
    check_deps_exist(graph, repo.root, names)
    merged = lockconflict.read(repo.lock_path, LOCK_FILE)
    planner = Planner(repo, graph, merged.lock, conflicts=frozenset(merged.stage_conflicts))
    return planner, remote, ReproReport(selected=names, sources=report_sources,
                                        warnings=skipped)


@dataclass(frozen=True)
class _Run:
    """What one run's stages are run with."""

    executor: Executor
    token: str
    cancel: CancelToken
    on_event: EventSink | None
    sink: LineSink | None


def _execute(repo: Project, options: ReproOptions, planner: Planner, remote: Remote | None,
             run: _Run, report: ReproReport) -> None:
    """Schedule the selected stages; whatever happens, render the lock from what
    finished."""
    from pipeflow.execution.history import History

    jobs = options.jobs if options.jobs > 0 else (os.cpu_count() or 1)
    repo.state.put("run-token", run.token)
    history = History(repo, fetch=_fetcher(repo, remote), env_probe=planner.env,
                      mark=options.mark, inflight=options.inflight,
                      _provenance=options.provenance,
                      stopped=lambda: run.cancel.cancelled)
    scheduler = Scheduler(planner, report.selected, jobs=jobs, keep_going=options.keep_going,
                          force=options.force, on_event=run.on_event, sink=run.sink,
                          token=run.token, history=history, executor=run.executor,
                          cancel=run.cancel)
    forget = run.cancel.on_cancel(run.executor.cancel)
    try:
        report.outcome = scheduler.run()
    except KeyboardInterrupt as exc:
        raise Interrupted(terminated=isinstance(exc, Terminated)) from exc
    finally:
        forget()
        history.release()
        report.untrusted = history.untrusted
        report.lock_changed = render_lock(repo, planner.graph)
        repo.hasher.flush()
        repo.state.put("run-token", "")


def _dry(repo: Project, options: ReproOptions) -> ReproReport:
    from pipeflow.ops.project import current_state

    project = load_project(repo)
    graph = project.graph
    names = select(graph, resolve_targets(graph, options.targets),
                   single_item=options.single_item, downstream=options.downstream)
    merged = current_state(repo)
    lock = merged.lock
    if lock.sources:
        from pipeflow.planning.sourcedata import blocking, missing_error, source_states

        blocked = blocking(source_states(repo, lock), graph, names)
        if blocked:  # the real run would stop here: say so, as it would
            raise missing_error(blocked)
    planner = Planner(repo, graph, lock, conflicts=frozenset(merged.stage_conflicts))
    states: dict[str, StageState] = {}
    for name in graph.order:
        states[name] = planner.evaluate(name, states, force=options.force and name in names)
    return ReproReport(selected=names, plan=[states[n] for n in names])


def _fetcher(repo: Project, remote: Remote | None) -> FetchObjects | None:
    """How the run cache fetches a hit's objects with ``--pull`` (None without)."""
    if remote is None:
        return None
    from pipeflow.ops.transfer import download_objects

    return lambda oids: download_objects(repo, remote, oids)
