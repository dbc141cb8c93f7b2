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
from pipeflow.graph import check_deps_exist, resolve_targets, select
from pipeflow.ops.init import init
from pipeflow.ops.project import load_project, recover, render_lock
from pipeflow.planning import Planner, StageState
from pipeflow.repo import LOCK_FILE, Repo
from pipeflow.repolock import RepoLock

if TYPE_CHECKING:
    from pipeflow.execution.dask_executor import DaskExecutor
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


def sync_sources(repo: Repo) -> list[str]:
    """Before planning: restore missing source data from the cache and record a new
    version of any source whose content changed since it was added."""
    from pipeflow import lockfile
    from pipeflow.lockfile import Lock, hash_info
    from pipeflow.ops.add import record_source

    lock = lockfile.read(repo.lock_path, LOCK_FILE)
    if not lock.sources:
        return []
    notes = []
    sources = dict(lock.sources)
    for path, entry in lock.sources.items():
        try:
            now = repo.hasher.hash_path(path)
        except FileNotFoundError:
            if not repo.store.missing(hash_info(entry)):
                repo.store.checkout(hash_info(entry), repo.root / path, linker=repo.linker)
                repo.hasher.forget(path)
                notes.append(f"restored {path}")
            continue
        if now.hash != entry.hash:
            known = {row.hash for row in repo.index.versions(path)}
            if now.hash in known and not repo.store.missing(hash_info(entry)):
                # an older version checked out: the lock's version comes back, as for outputs
                repo.store.checkout(hash_info(entry), repo.root / path, linker=repo.linker)
                repo.hasher.forget(path)
                notes.append(f"restored the locked version of {path} (another was checked out)")
                continue
            sources[path] = record_source(repo, path)
            notes.append(f"new version of {path} recorded")
    if sources != dict(lock.sources):
        lockfile.write(repo.lock_path, Lock(stages=lock.stages, sources=sources))
    return notes


def _pull_first(repo: Repo, options: ReproOptions) -> Remote:
    """``--pull``: records, pointers and the lock's objects from the remote first, so
    missing outputs restore instead of rerunning and run-cache hits are seen."""
    from pipeflow.ops.remotes import open_remote
    from pipeflow.ops.transfer import fetch

    remote = open_remote(repo, options.remote)
    fetch(repo, options.remote)
    repo.__dict__.pop("index", None)  # re-open: fetched records get indexed
    return remote


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
        from pipeflow import lockfile

        project = load_project(repo)
        graph = project.graph
        names = select(graph, resolve_targets(graph, options.targets),
                       single_item=options.single_item, downstream=options.downstream)
        report_sources = sync_sources(repo)
        check_deps_exist(graph, repo.root, names)
        planner = Planner(repo, graph, lockfile.read(repo.lock_path, LOCK_FILE))
        jobs = options.jobs if options.jobs > 0 else (os.cpu_count() or 1)
        token = uuid.uuid4().hex
        repo.state.put("run-token", token)
        from pipeflow.lineage.history import History

        history = History(repo, remote=_pull_first(repo, options) if options.pull else None,
                          env_probe=planner.env)
        executor = _dask_executor(repo, dask, sink, token)
        scheduler = Scheduler(planner, names, jobs=jobs, keep_going=options.keep_going,
                              force=options.force, on_event=on_event, sink=sink, token=token,
                              history=history, executor=executor, cancel=cancel)
        report = ReproReport(selected=names, initialized=initialized, sources=report_sources)
        forget = cancel.on_cancel(executor.cancel) if executor else (lambda: None)
        try:
            report.outcome = scheduler.run()
        except KeyboardInterrupt as exc:
            raise Interrupted(terminated=isinstance(exc, Terminated)) from exc
        finally:
            forget()
            if executor is not None:
                executor.close()
            report.lock_changed = render_lock(repo, graph)
            repo.hasher.flush()
            repo.state.put("run-token", "")
        return report


def _dry(repo: Repo, options: ReproOptions) -> ReproReport:
    from pipeflow.ops.project import current_lock

    project = load_project(repo)
    graph = project.graph
    names = select(graph, resolve_targets(graph, options.targets),
                   single_item=options.single_item, downstream=options.downstream)
    planner = Planner(repo, graph, current_lock(repo))
    states: dict[str, StageState] = {}
    for name in graph.order:
        states[name] = planner.evaluate(name, states, force=options.force and name in names)
    return ReproReport(selected=names, plan=[states[n] for n in names])
