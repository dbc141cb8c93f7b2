"""``pipeflow checkout``: put outputs back as the lock records them, from the cache."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from pipeflow import faults
from pipeflow.content.hashing import HashInfo
from pipeflow.content.manifest import UnsafeManifestError
from pipeflow.errors import StorageError, UsageError
from pipeflow.execution.commit import restore_outputs
from pipeflow.files import workspace_fs
from pipeflow.git.gitignore import ensure_ignored
from pipeflow.lineage.pathspec import split_spec
from pipeflow.lock.lockfile import FileEntry, Lock, StageLock, hash_info, out_entries
from pipeflow.ops.project import check_outputs_inside, load_project, recover, render_lock
from pipeflow.planning.graph import Graph, resolve_targets
from pipeflow.project.project import LOCK_FILE, Project
from pipeflow.spec.model import Stage

if TYPE_CHECKING:
    from pipeflow.lock.lockmerge import MergedLock


@dataclass
class CheckoutReport:
    restored: list[str] = field(default_factory=list)
    unchanged: int = 0
    missing: list[str] = field(default_factory=list)
    """Outputs whose objects are not in the cache (not restored)."""
    not_run: list[str] = field(default_factory=list)
    """Stages with no lock entry: nothing to restore."""
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """What made outputs unrestorable (a corrupt object set aside, say)."""
    warnings: list[str] = field(default_factory=list)
    """Damaged lines of the tag log that resolving a tag skipped."""


def checkout(repo: Project, targets: list[str] | None = None, *, wait: float = 0.0,
             fetched_from: str | None = None) -> CheckoutReport:
    """Restore outputs and source data as the lock records them (default: all), or
    one version of a path with ``PATH@VERSION``. ``fetched_from``: the remote a
    ``pull`` has just fetched from (a missing object is then one that remote lacks)."""
    from pipeflow.lock import lockconflict

    report = CheckoutReport()
    with repo.lock(wait=wait):
        recover(repo)
        graph = load_project(repo).graph
        # a lock in merge conflict: what both sides agree on is restored; an entry in
        # conflict is left to `repro`, but PATH@VERSION still picks a version of it
        merged = lockconflict.read(repo.lock_path, LOCK_FILE)
        lock = merged.lock
        sources, stage_targets = _sort_targets(repo, targets, graph, merged, report)
        names = (resolve_targets(graph, stage_targets) if stage_targets
                 else [] if targets else list(graph.order))
        _check_before_writing(repo, graph, lock, sources, names)
        for path in sources:
            _restore_source(repo, path, lock.sources[path], report)
        for name in names:
            entry = lock.stages.get(name)
            if entry is None and name in merged.stage_conflicts:
                report.notes.append(_in_conflict(name))
            elif entry is None:
                report.not_run.append(name)
            else:
                _restore_stage(repo, graph.pipeline.stages[name], entry, report)
        faults.point("checkout.render")
        render_lock(repo, graph)
        repo.hasher.flush()
    if report.problems and not report.missing:  # overcome on the second try: still said
        report.notes.extend(report.problems)
    if report.missing:
        _raise_missing(repo, lock, report, fetched_from)
    return report


def _sort_targets(repo: Project, targets: list[str] | None, graph: Graph, merged: MergedLock,
                  report: CheckoutReport) -> tuple[list[str], list[str]]:
    """The source paths and the stage targets to restore; a ``PATH@VERSION`` is
    checked out here, an entry in merge conflict noted and skipped."""
    lock = merged.lock
    conflicted = {**merged.source_conflicts, **merged.stage_conflicts}
    declared = set(graph.producers) | set(lock.sources) | set(merged.source_conflicts)
    stage_targets: list[str] = []
    sources: list[str] = [] if targets else sorted(lock.sources)
    for target in targets or []:
        path, version = split_spec(repo, target, declared)
        if version is not None:
            _checkout_version(repo, path, version, lock, report)
        elif path in conflicted or target in conflicted:
            report.notes.append(_in_conflict(path if path in conflicted else target))
        elif path in lock.sources:
            sources.append(path)
        else:
            stage_targets.append(target)
    return sources, stage_targets


def _restore_stage(repo: Project, stage: Stage, entry: StageLock, report: CheckoutReport) -> None:
    # Objects are looked up first only for outputs the workspace holds (a
    # restore must not half-replace them); into an empty place, a missing
    # object stops the checkout of that output and leaves nothing behind.
    missing = _missing_outputs(repo, stage, entry, present_only=True)
    faults.point("checkout.stage")
    restored: list[str] = []
    try:
        restore_outputs(repo, stage, entry, skip=frozenset(missing), restored=restored)
    except StorageError as exc:
        # A missing or corrupt object (set aside by now): find every output that
        # cannot be restored, and restore the others.
        report.problems.append(exc.message)
        missing = _missing_outputs(repo, stage, entry, present_only=False)
        restore_outputs(repo, stage, entry, skip=frozenset(missing), restored=restored)
    report.missing.extend(missing)
    report.restored.extend(restored)
    report.unchanged += sum(1 for o in stage.cached_outs) - len(restored) - len(missing)


def _raise_missing(repo: Project, lock: Lock, report: CheckoutReport,
                   fetched_from: str | None) -> NoReturn:
    """The error for outputs and sources whose objects are not in the cache: after a
    pull, what the remote lacks; source data names who can push it."""
    from pipeflow.planning.lacking import error, lacking

    if fetched_from is not None and not report.problems:
        raise error(lacking(repo, lock, report.missing), fetched_from, len(report.restored))
    paths = ", ".join(report.missing)
    msg = "".join([f"not in the cache, cannot restore: {paths}",
                   *(f"\n  ({problem})" for problem in report.problems)])
    sources = [path for path in report.missing if path in lock.sources]
    if sources:
        # source data cannot be recomputed: it comes from the remote or nowhere
        from pipeflow.planning.sourcedata import who

        items = lacking(repo, lock, sources)
        msg += "".join(f"\n  {item.line()}" for item in items)
        people = ", ".join(dict.fromkeys(who(i.recorded_by) for i in items))
        raise StorageError(msg, hint="`pipeflow pull` gets it from the remote; if the "
                                     f"remote lacks it (`pipeflow fetch` says so), ask "
                                     f"{people} to run `pipeflow push` from the clone "
                                     "that has it")
    raise StorageError(msg, hint="run `pipeflow repro` to recompute them")


def _check_before_writing(repo: Project, graph: Graph, lock: Lock, sources: list[str],
                          names: list[str]) -> None:
    """Everything a checkout would refuse, refused before it writes anything: a path
    whose folder is a symlink leading out of the project, and a folder manifest (in
    the cache already: a pull has fetched them) naming a member such as ``../x``."""
    check_outputs_inside(repo, graph, names)
    entries = [lock.sources[path] for path in sources]
    for name in names:
        entries += [e for e in out_entries(lock.stages.get(name)).values() if e.cache]
    for entry in entries:
        workspace_fs.check_parents(repo.root, entry.path)
        members: list[str] = []
        if entry.isdir and repo.store.has(entry.hash):
            try:
                members = [m.path for m in repo.store.manifest(entry.hash).entries]
            except UnsafeManifestError:
                raise
            except StorageError:
                pass  # corrupt or damaged: set aside, and reported as missing below
        workspace_fs.check_not_environment(entry.path, members)


def _missing_outputs(repo: Project, stage: Stage, entry: StageLock, *, present_only: bool
                     ) -> list[str]:
    """Cached outputs of ``stage`` whose objects the store lacks (with
    ``present_only``, only among those that exist in the workspace)."""
    wanted = {o.path for o in stage.outs}
    return [
        rec.path for rec in out_entries(entry).values()
        if rec.path in wanted and rec.cache
        and (not present_only or os.path.lexists(repo.root / rec.path))
        and repo.store.missing(hash_info(rec))
    ]


def _restore_source(repo: Project, path: str, entry: FileEntry, report: CheckoutReport) -> None:
    from pipeflow.planning.sourcedata import external_note, hash_source, leads_outside

    now = hash_source(repo, path, entry.external)
    if now is not None and now == entry.hash:
        report.unchanged += 1
        return
    if entry.external and leads_outside(repo, path):
        # read there, never written: the data outside is someone else's to change
        report.notes.append(external_note(path, entry))
        return
    if repo.store.missing(hash_info(entry)):
        report.missing.append(path)
        return
    repo.store.checkout(hash_info(entry), repo.root / path, linker=repo.linker,
                        hasher=repo.hasher)
    repo.hasher.forget(path)
    report.restored.append(path)


def _in_conflict(what: str) -> str:
    return (f"{what}: in merge conflict in {LOCK_FILE}, left as it is (`pipeflow repro` "
            "resolves it)")


def _checkout_version(
    repo: Project, path: str, version: str, lock: Lock, report: CheckoutReport
) -> None:
    from pipeflow.lineage.tags import read
    from pipeflow.lineage.versions import resolve
    from pipeflow.ops.lineage import light_versions

    current = out_entries_all(lock).get(path)
    log = read(repo)
    report.warnings += [f"{p.message}: skipped (`pipeflow verify` explains)"
                        for p in log.problems]
    chosen = resolve(repo, path, version, light_versions(repo, path, log.tags_of(path)))
    info = HashInfo(chosen.hash, chosen.size or 0, chosen.isdir)
    workspace_fs.check_parents(repo.root, path)
    tried = _fetch_version(repo, info) if repo.store.missing(info) else None
    if repo.store.missing(info):
        what = f"{chosen.label} of {path} ({chosen.hash[:8]})"
        raise StorageError(
            f"{what} is in neither the local cache nor remote '{tried}'" if tried
            else f"{what} is no longer in the cache",
            hint="`pipeflow versions` marks the versions the cache has; a colleague who "
                 "has it can `pipeflow push`")
    members = [m.path for m in repo.store.manifest(info.hash).entries] if info.isdir else []
    workspace_fs.check_not_environment(path, members)
    repo.store.checkout(info, repo.root / path, linker=repo.linker, hasher=repo.hasher)
    repo.hasher.forget(path)
    ensure_ignored(repo.root, [path])
    report.restored.append(f"{path} ({chosen.label}, {chosen.hash[:8]})")
    if current is not None and current.hash != chosen.hash:
        report.notes.append(f"{path}: {chosen.label} checked out; pipeline.lock has another "
                            "version (`pipeflow checkout` or `repro` restores it)")


def _fetch_version(repo: Project, info: HashInfo) -> str | None:
    """Bring a version's objects from the default remote, when one is configured;
    returns the remote's name (None when there is none to ask)."""
    from pipeflow.ops.remotes import list_remotes, open_remote
    from pipeflow.storage.exchange import download_objects

    if not list_remotes(repo):
        return None
    try:
        remote = open_remote(repo)
    except UsageError:
        return None  # several remotes and no default: the missing-object error says it
    download_objects(repo.store, remote, [info.hash])  # a folder's manifest first
    download_objects(repo.store, remote, repo.store.missing(info))
    return remote.name


def out_entries_all(lock: Lock) -> dict[str, FileEntry]:
    """Every output and source path the lock names, with its entry."""
    entries: dict[str, FileEntry] = dict(lock.sources)
    for entry in lock.stages.values():
        entries.update(out_entries(entry))
    return entries
