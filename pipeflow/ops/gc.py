"""``pipeflow gc``: delete cache objects nothing refers to. Never deletes run records.

An object is kept when a kept reference reaches it (see ``keepset``: the chosen
locks, tags, runs within ``--keep-days``, the last ``--keep-versions``; folders
through their manifests, fetched from the remote when missing here) or when it is
younger than the grace period (``--grace``, config ``gc.grace``, default 2h): an
object a colleague's push has just uploaded is not named by any record yet — push
sends objects first and records after — so its age is what protects it, as git's
``gc.pruneExpire`` protects fresh loose objects. Age is the file's modification
time; a remote object whose backend reports no time counts as young.

With ``--remote``, the remote's own run records and run-cache pointers are fetched
first (records are immutable and verified by the SHA-256 in their name, so having
them here is harmless), so what any clone pushed and ran recently is kept there.

gc also removes temporary files killed commands left behind (``leftovers``), once
they are older than the grace period. Without a scope (``--workspace`` or one of
the git flags) gc refuses: deleting what an old commit needs should be a choice.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeflow import faults
from pipeflow.errors import StorageError, UsageError
from pipeflow.ops.keepset import GcScope, KeepSet, expand, lock_entries, references
from pipeflow.ops.project import recover
from pipeflow.project.config import DEFAULT_GRACE
from pipeflow.project.project import LOCK_FILE, Project
from pipeflow.storage.remote import ListedFile, Remote

__all__ = ["DEFAULT_GRACE", "GcReport", "GcScope", "Side", "gc"]


@dataclass
class Side:
    """What gc removed (or, dry, would remove) from one store, and why the rest stays."""

    removed: list[str] = field(default_factory=list)
    removed_bytes: int = 0
    kept_by: Counter[str] = field(default_factory=Counter)
    """Reason (lock, tag, run, versions, grace) -> objects kept for it."""
    temps_removed: list[str] = field(default_factory=list)


@dataclass
class GcReport:
    dry: bool
    grace: float
    local: Side = field(default_factory=Side)
    remote_name: str | None = None
    remote: Side | None = None
    manifests_fetched: int = 0
    records_fetched: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return sum(self.local.kept_by.values())


def _default_remote(repo: Project) -> Remote | None:
    """The remote a local gc may fetch a missing manifest from, if one is configured."""
    from pipeflow.ops.remotes import open_remote

    try:
        return open_remote(repo)
    except (UsageError, StorageError):
        return None


def _notes(keep: KeepSet) -> list[str]:
    if not keep.unexpanded:
        return []
    names = ", ".join(sorted({r.path for r in keep.unexpanded})[:5])
    return [f"{len(keep.unexpanded)} folder version(s) of recent runs or kept versions "
            f"({names}) have no manifest here or on the remote; the clones that made them "
            "hold their files"]


def _plan_local(repo: Project, keep: KeepSet, cutoff: float) -> Side:
    """What goes from the local cache (nothing is touched yet)."""
    from pipeflow.lock import lockfile
    from pipeflow.storage.leftovers import local_leftovers

    side = Side()
    for oid in repo.store.iter_oids():
        reason = keep.reasons.get(oid)
        if reason is not None:
            side.kept_by[reason] += 1
            continue
        try:
            st = repo.store.path_of(oid).stat()
        except FileNotFoundError:
            continue
        if st.st_mtime > cutoff:
            side.kept_by["grace"] += 1
            continue
        side.removed.append(oid)
        side.removed_bytes += st.st_size
    outputs = {e.path for e in lock_entries(lockfile.read(repo.lock_path, LOCK_FILE))}
    outputs |= _declared_outputs(repo)
    side.temps_removed = [str(item.path) for item in
                          local_leftovers(repo.root, repo.dot, repo.cache_dir, outputs,
                                          output_folders=outputs)
                          if item.modified <= cutoff]
    return side


def _declared_outputs(repo: Project) -> set[str]:
    """The spec's outputs (a stage killed before its first commit is in no lock yet);
    none when the spec does not load: gc is not the place to report it."""
    from pipeflow.errors import PipeflowError
    from pipeflow.ops.project import load_project

    try:
        return set(load_project(repo).graph.producers)
    except PipeflowError:
        return set()


def _delete_local(repo: Project, side: Side) -> None:
    for oid in side.removed:
        faults.point("gc.delete")
        repo.store.remove(oid)
    for temp in side.temps_removed:
        Path(temp).unlink(missing_ok=True)


def _plan_remote(objects: dict[str, ListedFile], temps: dict[str, ListedFile],
                 keep: KeepSet, cutoff: float) -> Side:
    """What goes from the remote, by its listing (nothing is touched yet)."""
    side = Side()
    for oid, listed in sorted(objects.items()):
        reason = keep.reasons.get(oid)
        if reason is None and (listed.modified is None or listed.modified > cutoff):
            reason = "grace"  # young, or of unknown age: a push may still need it
        if reason is not None:
            side.kept_by[reason] += 1
            continue
        side.removed.append(oid)
        side.removed_bytes += listed.size
    side.temps_removed = [rel for rel, listed in sorted(temps.items())
                          if listed.modified is not None and listed.modified <= cutoff]
    return side


def _delete_remote(target: Remote, side: Side) -> None:
    for oid in side.removed:
        faults.point("gc.remote.delete")
        target.remove_object(oid)
    for rel in side.temps_removed:
        kind, _, rest = rel.partition("/")
        target.remove(kind, rest)


def gc(repo: Project, scope: GcScope, *, dry: bool = False, remote: str | None = None,
       yes: bool = False, wait: float = 0.0, grace: float | None = None) -> GcReport:
    """Delete unreferenced objects older than ``grace`` seconds locally (and on
    ``remote`` with ``yes``), and old temporary files."""
    if not scope.given:
        raise UsageError(
            "gc needs a scope: which git revisions' outputs must be kept",
            hint="pass --workspace (the current lock only), --rev REV, --all-branches or "
                 "--all-commits; add --dry to see what would go",
        )
    if remote is not None and not yes and not dry:
        raise UsageError(f"gc --remote {remote} deletes data your team may share",
                         hint="add --yes to confirm, or --dry to list what would go")
    report = GcReport(dry, repo.config.gc.grace if grace is None else grace)
    cutoff = time.time() - report.grace
    with repo.lock(wait=wait):
        recover(repo, sweep=False)
        target = None
        objects: dict[str, ListedFile] = {}
        temps: dict[str, ListedFile] = {}
        if remote is not None:
            from pipeflow.ops.remotes import open_remote
            from pipeflow.ops.transfer import fetch_records

            target = open_remote(repo, remote)
            report.remote_name = target.name
            # Listed before the records are read: an object uploaded after this is not
            # a candidate, and one listed here has its push's records read below.
            survey = target.survey()
            objects, temps = survey.objects, survey.temps
            fetched = fetch_records(repo, target)
            report.records_fetched = fetched.records
            report.notes += [f"run record {rel} on remote '{target.name}' does not match its "
                             "hash: skipped" for rel in fetched.rejected]
            repo.index.refresh()
        keep = expand(repo, references(repo, scope), target or _default_remote(repo),
                      listed=set(objects) if target else None, required=target is not None)
        report.manifests_fetched = keep.manifests_fetched
        report.notes += _notes(keep)
        report.local = _plan_local(repo, keep, cutoff)
        if target is not None:
            report.remote = _plan_remote(objects, temps, keep, cutoff)
        doomed = report.local.removed + (report.remote.removed if report.remote else [])
        if keep.refusal is not None:
            if doomed:
                raise keep.refusal
            said = keep.refusal.message.removesuffix(" Nothing was deleted.")
            report.notes.append(f"{said}; no object was old and unreferenced, so gc went on")
        if not dry:
            _delete_local(repo, report.local)
            if target is not None and report.remote is not None:
                _delete_remote(target, report.remote)
    return report
