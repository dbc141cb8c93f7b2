"""``pipeflow repro``: bring outputs up to date, running only what changed."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeflow.errors import Interrupted, Terminated
from pipeflow.execution.cancel import CancelToken
from pipeflow.execution.runner import LineSink
from pipeflow.execution.scheduler import EventSink, Outcome, Scheduler
from pipeflow.graph import Graph, check_deps_exist, resolve_targets, select
from pipeflow.ops.init import init
from pipeflow.ops.project import check_outputs_inside, load_project, recover, render_lock
from pipeflow.planning import Planner, StageState
from pipeflow.repo import LOCK_FILE, Repo
from pipeflow.repolock import RepoLock

if TYPE_CHECKING:
    from pipeflow.execution.dask_executor import DaskExecutor
    from pipeflow.lineage.history import FetchObjects
    from pipeflow.lineage.trust import Trust
    from pipeflow.lockfile import FileEntry
    from pipeflow.storage.remote import Remote


@dataclass(frozen=True)
class ReproOptions:
    targets: tuple[str, ...] = ()
    force: bool = False
    dry: bool = False
    jobs: int = 1
    keep_going: bool = False
    single_item: bool = False
    downstream: bool = False
    wait: float = 0.0
    pull: bool = False
    remote: str | None = None
    executor: str = "local"
    """``local`` or ``dask`` (then ``scheduler``, or PIPEFLOW_DASK_SCHEDULER, and a remote)."""
    scheduler: str | None = None


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


def sync_sources(repo: Repo, graph: Graph, names: list[str],
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
    from pipeflow import lockconflict
    from pipeflow.lockfile import Lock, hash_info
    from pipeflow.lockmerge import MergedLock
    from pipeflow.ops.add import record_source
    from pipeflow.sourcedata import (
        blocking,
        conflict_error,
        external_note,
        leads_outside,
        missing_error,
        source_states,
    )

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
    notes = []
    sources = dict(lock.sources)
    for s in states:
        if s.state in ("absent", "checked-out") and s.locked.external and leads_outside(
                repo, s.path):
            notes.append(external_note(s.path, s.locked))
        elif s.state in ("absent", "checked-out"):
            repo.store.checkout(hash_info(s.locked), repo.root / s.path, linker=repo.linker,
                                root=repo.root)
            repo.hasher.forget(s.path)
            notes.append(f"restored {s.path}" if s.state == "absent" else
                         f"restored the locked version of {s.path} (another was checked out)")
        elif s.state == "edited":
            sources[s.path] = record_source(repo, s.path, external=s.locked.external)
            notes.append(f"new version of {s.path} recorded")
        elif s.state == "not-in-cache":
            notes.append(f"{s.path}: its locked version {s.locked.hash[:8]} is not in the "
                         "local cache; left as it is, no stage of this run reads it "
                         f"(`pipeflow pull {s.path}` gets it)")
    for path, sides in merged.source_conflicts.items():
        sources[path] = _resolve_source(repo, path, sides)
        which = {e.hash: side for e, side in zip(sides, ("ours", "theirs"), strict=True) if e}
        notes.append(f"merge conflict on {path} resolved: recorded the workspace's version "
                     f"({which.get(sources[path].hash, 'neither side')})")
    if sources != dict(lock.sources) or merged.source_conflicts:
        lockconflict.write(repo.lock_path, MergedLock(Lock(stages=lock.stages, sources=sources),
                                                      merged.stage_conflicts))
    return notes


def _resolve_source(repo: Repo, path: str,
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


def _pull_first(repo: Repo, options: ReproOptions
                ) -> tuple[Remote, frozenset[str], list[str]]:
    """``--pull``: records, pointers and the lock's objects (source data and outputs)
    from the remote before anything is planned, so that sources are restored, missing
    outputs restore instead of rerunning and run-cache hits are seen. Returns the
    remote, the sources whose locked version was not here before, and what the fetch
    skipped."""
    from pipeflow import lockconflict
    from pipeflow.ops.remotes import open_remote
    from pipeflow.ops.transfer import fetch
    from pipeflow.sourcedata import not_here

    remote = open_remote(repo, options.remote)
    unseen = not_here(repo, lockconflict.read(repo.lock_path, LOCK_FILE).lock)
    fetched = fetch(repo, options.remote)
    repo.__dict__.pop("index", None)  # re-open: fetched records get indexed
    return remote, unseen, fetched.skipped


def _dask_setup(repo: Repo, options: ReproOptions) -> tuple[Remote, str] | None:
    """For ``--executor dask``: its remote and scheduler address, checked before
    anything runs (UsageError when one is missing)."""
    from pipeflow.errors import UsageError

    if options.executor == "local":
        return None
    if options.executor != "dask":
        raise UsageError(f"unknown executor {options.executor!r}", hint="use local or dask")
    from pipeflow.execution.dask_executor import check_setup

    return check_setup(repo, options.remote, options.scheduler)


def _dask_executor(repo: Repo, setup: tuple[Remote, str] | None, sink: LineSink | None,
                   token: str) -> DaskExecutor | None:
    if setup is None:
        return None
    from pipeflow.execution.dask_executor import DaskExecutor

    return DaskExecutor(repo, setup[0], setup[1], sink=sink, token=token)


def repro(
    repo: Repo,
    options: ReproOptions,
    *,
    on_event: EventSink | None = None,
    sink: LineSink | None = None,
    cancel: CancelToken | None = None,
) -> ReproReport:
    """Run the selected stages whose state is not up to date, then render the lock.

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
    dask = _dask_setup(repo, options)
    cancel = cancel or CancelToken()
    with RepoLock(repo.dot / "lock", wait=options.wait):
        recover(repo)
        from pipeflow import lockconflict

        project = load_project(repo)
        graph = project.graph
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
        jobs = options.jobs if options.jobs > 0 else (os.cpu_count() or 1)
        token = uuid.uuid4().hex
        repo.state.put("run-token", token)
        from pipeflow.lineage.history import History

        history = History(repo, fetch=_fetcher(repo, remote), env_probe=planner.env)
        executor = _dask_executor(repo, dask, sink, token)
        scheduler = Scheduler(planner, names, jobs=jobs, keep_going=options.keep_going,
                              force=options.force, on_event=on_event, sink=sink, token=token,
                              history=history, executor=executor, cancel=cancel)
        report = ReproReport(selected=names, initialized=initialized, sources=report_sources,
                             warnings=skipped)
        forget = cancel.on_cancel(executor.cancel) if executor else (lambda: None)
        try:
            report.outcome = scheduler.run()
        except KeyboardInterrupt as exc:
            raise Interrupted(terminated=isinstance(exc, Terminated)) from exc
        finally:
            forget()
            report.untrusted = history.untrusted
            if executor is not None:
                executor.close()
            report.lock_changed = render_lock(repo, graph)
            repo.hasher.flush()
            repo.state.put("run-token", "")
        return report


def _dry(repo: Repo, options: ReproOptions) -> ReproReport:
    from pipeflow.ops.project import current_state

    project = load_project(repo)
    graph = project.graph
    names = select(graph, resolve_targets(graph, options.targets),
                   single_item=options.single_item, downstream=options.downstream)
    merged = current_state(repo)
    lock = merged.lock
    if lock.sources:
        from pipeflow.sourcedata import blocking, missing_error, source_states

        blocked = blocking(source_states(repo, lock), graph, names)
        if blocked:  # the real run would stop here: say so, as it would
            raise missing_error(blocked)
    planner = Planner(repo, graph, lock, conflicts=frozenset(merged.stage_conflicts))
    states: dict[str, StageState] = {}
    for name in graph.order:
        states[name] = planner.evaluate(name, states, force=options.force and name in names)
    return ReproReport(selected=names, plan=[states[n] for n in names])


def _fetcher(repo: Repo, remote: Remote | None) -> FetchObjects | None:
    """How the run cache fetches a hit's objects with ``--pull`` (None without)."""
    if remote is None:
        return None
    from pipeflow.ops.transfer import download_objects

    return lambda oids: download_objects(repo, remote, oids)
