"""What gc must keep: every object a kept reference reaches, and why.

References, by reason: ``lock`` (the workspace lock and the locks of the chosen git
revisions), ``tag`` (tagged versions), ``experiment`` (the outputs of every experiment
not removed, however old: ``exp apply`` restores them), ``run`` (outputs of runs that ended within
``--keep-days``, from every run record this clone holds — with ``--remote``, the
remote's records too) and ``versions`` (the last ``--keep-versions`` of each path).

A folder reaches its files through its manifest. A manifest missing here is
downloaded from the remote (verified against its hash); one that is nowhere cannot
be expanded. For a lock or a tag that is a refusal (nothing is deleted, if anything
was to be: those files may be all the team has of an output someone can still
check out). For a run or an
old version it is only noted: the clone that made it and did not push its manifest
still holds the files itself.
"""

from __future__ import annotations

import datetime
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from pipeflow.content.hashing import is_hash
from pipeflow.content.manifest import Manifest
from pipeflow.errors import LockfileError, StorageError, UsageError
from pipeflow.files import safeload
from pipeflow.git import gitcmd
from pipeflow.lock import lockfile
from pipeflow.lock.lockfile import FileEntry, Lock, out_entries
from pipeflow.project.project import LOCK_FILE, Project
from pipeflow.storage.remote import Remote

REASONS = ("lock", "tag", "experiment", "run", "versions")
"""Why an object is kept, strongest first (an object kept for two is counted once)."""


@dataclass(frozen=True)
class GcScope:
    """Which references gc keeps (see the module docstring)."""

    workspace: bool = False
    revs: tuple[str, ...] = ()
    all_branches: bool = False
    all_commits: bool = False
    keep_days: int = 30
    keep_versions: int | None = None

    @property
    def given(self) -> bool:
        return self.workspace or bool(self.revs) or self.all_branches or self.all_commits


@dataclass(frozen=True)
class Reference:
    """One reason to keep a version: its oid, whether it is a folder, and who names it."""

    oid: str
    isdir: bool
    path: str
    reason: str
    source: str
    """Who names it, for messages: ``the workspace lock``, ``tag production``..."""

    @property
    def strict(self) -> bool:
        """Whether an unexpandable folder here must stop gc (see the module docstring)."""
        return self.reason in ("lock", "tag")


@dataclass(frozen=True)
class KeepSet:
    """Every oid to keep, with the strongest reason for it."""

    reasons: dict[str, str]
    manifests_fetched: int
    unexpanded: tuple[Reference, ...]
    """Folders of runs or old versions whose manifest is nowhere (noted, not fatal)."""
    refusal: StorageError | None = None
    """Set when a folder that must be expanded could not be: then nothing unreferenced
    may be deleted (gc raises this if it finds anything to delete)."""

    def __contains__(self, oid: object) -> bool:
        return oid in self.reasons


# references -----------------------------------------------------------------------

def _git(repo: Project, *args: str) -> str:
    try:
        out = gitcmd.run(repo.root, *args, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        raise UsageError(f"cannot run git {' '.join(args)}: {exc}") from exc
    if out.returncode != 0:
        stderr = out.stderr.decode("utf-8", "replace").strip()
        raise UsageError(f"git {' '.join(args)} failed: {stderr}")
    return out.stdout.decode("utf-8", "surrogateescape")


def _commits(repo: Project, scope: GcScope) -> list[str]:
    commits: list[str] = []
    for rev in scope.revs:
        commits.append(_git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}").strip())
    if scope.all_branches:
        commits += _git(repo, "for-each-ref", "refs/heads", "--format=%(objectname)").split()
    if scope.all_commits:
        commits += _git(repo, "rev-list", "--all").split()
    return list(dict.fromkeys(commits))


def _locks_at(repo: Project, commits: list[str]) -> Iterable[tuple[str, Lock]]:
    if not commits:
        return
    prefix = _git(repo, "rev-parse", "--show-prefix").strip()
    try:
        sizes = gitcmd.blob_sizes(repo.root, [f"{c}:{prefix}{LOCK_FILE}" for c in commits])
    except (OSError, subprocess.SubprocessError):
        return
    limit = safeload.limits("lock").max_bytes
    for commit, size in zip(commits, sizes, strict=True):
        if size is None or size > limit:
            continue  # no lock at that commit, or one too big to be a lock (docs/limits.md)
        try:
            out = gitcmd.run(repo.root, "show", "--no-textconv", "--no-ext-diff",
                             f"{commit}:{prefix}{LOCK_FILE}")
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode != 0:
            continue  # no lock at that commit
        text = out.stdout.decode("utf-8", "replace")
        try:
            yield commit, lockfile.loads(text, f"{LOCK_FILE} at {commit[:8]}")
        except LockfileError:
            continue


def lock_entries(lock: Lock) -> list[FileEntry]:
    """The cached outputs and sources a lock names."""
    entries = list(lock.sources.values())
    for stage in lock.stages.values():
        entries.extend(out_entries(stage).values())
    return [e for e in entries if e.cache]


def _lock_refs(repo: Project, scope: GcScope, workspace: Lock) -> list[Reference]:
    refs: list[Reference] = []
    if scope.workspace:
        refs += [Reference(e.hash, e.isdir, e.path, "lock", "the workspace lock")
                 for e in lock_entries(workspace)]
    for commit, lock in _locks_at(repo, _commits(repo, scope)):
        source = f"the lock at {commit[:8]}"
        refs += [Reference(e.hash, e.isdir, e.path, "lock", source) for e in lock_entries(lock)]
    return refs


def _history_refs(repo: Project, scope: GcScope, workspace: Lock) -> list[Reference]:
    """Tags, recent runs and the last versions of each path."""
    from pipeflow.lineage import tags as tagfile

    index = repo.index
    folders = index.folder_hashes()
    folders |= {e.hash for e in lock_entries(workspace) if e.isdir}
    # every version an alias names or a rollback of it can return to; every valid move
    # counts (a protected alias's refused moves too): gc keeps what any reading names
    refs = [Reference(oid, oid in folders, path, "tag",
                      f"tag {name}" if oid == state.target else f"tag {name} (rollback)")
            for (path, name), state in tagfile.read_log(repo.dot).states.items()
            for oid in state.stack]
    cutoff = (datetime.datetime.now(datetime.UTC)
              - datetime.timedelta(days=scope.keep_days)).isoformat()
    refs += [Reference(out.hash, out.isdir, out.path, "run", f"run {out.run[:12]}")
             for out in index.outputs_since(cutoff)]
    refs += _experiment_refs(repo)
    if scope.keep_versions:
        for path in index.paths():
            refs += [Reference(row.hash, row.isdir, path, "versions", f"version {row.hash[:8]}")
                     for row in index.versions(path)[-scope.keep_versions:]]
    return refs


def _experiment_refs(repo: Project) -> list[Reference]:
    """The cached outputs of every live experiment (a removed one's go with it)."""
    from pipeflow.lineage.experiments import experiments

    return [Reference(out.hash, out.isdir, out.path, "experiment", f"experiment {exp.name}")
            for exp in experiments(repo) for out in exp.outputs if out.cache]


def references(repo: Project, scope: GcScope) -> list[Reference]:
    """Every reference ``scope`` keeps (folders not yet expanded)."""
    workspace = lockfile.read(repo.lock_path, LOCK_FILE)
    refs = _lock_refs(repo, scope, workspace) + _history_refs(repo, scope, workspace)
    # records come from other clones: a malformed hash names nothing to keep
    return [r for r in refs if is_hash(r.oid)]


# expansion ------------------------------------------------------------------------

def _read_manifests(repo: Project, oids: Iterable[str]) -> dict[str, Manifest]:
    found = {}
    for oid in oids:
        if repo.store.has(oid):
            try:
                found[oid] = repo.store.manifest(oid)
            except StorageError:
                continue  # corrupt (moved aside by the store): fetched again below
    return found


@dataclass(frozen=True)
class _Found:
    manifests: dict[str, Manifest]
    fetched: int
    unreadable: frozenset[str]
    """On the remote but not to be had (rejected as corrupt): never expandable."""
    trouble: str = ""
    """Why the remote could not be asked, for the refusal message."""


def _manifests(repo: Project, oids: set[str], remote: Remote | None, listed: set[str] | None,
               required: bool) -> _Found:
    """The manifests of ``oids``, those missing here downloaded from ``remote``. A
    remote that cannot be reached fails gc if ``required`` (it cleans that remote),
    else counts as one that has none of them."""
    from pipeflow.storage.exchange import download_objects

    found = _read_manifests(repo, oids)
    missing = sorted(oids - set(found))
    if not missing or remote is None:
        return _Found(found, 0, frozenset())
    try:
        have = listed if listed is not None else remote.objects()
        failed = set(download_objects(repo.store, remote, missing, have))
    except StorageError as exc:
        if required:
            raise
        return _Found(found, 0, frozenset(), f" (remote '{remote.name}': {exc.message})")
    fetched = _read_manifests(repo, [oid for oid in missing if oid not in failed])
    unreadable = frozenset(oid for oid in missing if oid in have and oid not in fetched)
    return _Found(found | fetched, len(fetched), unreadable)


def _refuse(refs: list[Reference], remote: Remote | None, found: _Found) -> StorageError:
    where = (f"on remote '{remote.name}'" if remote
             else "on a remote (there is no default remote to ask)")
    if found.unreadable & {r.oid for r in refs}:
        where += " in a usable state (a copy there did not match its hash)"
    listed = "; ".join(f"{r.path} (manifest {r.oid[:12]}, named by {r.source})"
                       for r in refs[:10])
    more = f"; and {len(refs) - 10} more" if len(refs) > 10 else ""
    return StorageError(
        f"gc cannot tell which files {len(refs)} folder output(s) need: their manifests "
        f"are neither in this cache nor {where}{found.trouble}: {listed}{more}. "
        "Nothing was deleted.",
        hint="push them from a clone that has them (`pipeflow push`), `pipeflow repro` "
             "the stages that make them, or choose a scope that leaves out the "
             "revisions naming them",
    )


def expand(repo: Project, refs: list[Reference], remote: Remote | None, *,
           listed: set[str] | None = None, required: bool = False) -> KeepSet:
    """Every oid ``refs`` reach, folders through their manifests (downloaded from
    ``remote`` when missing here; ``listed``: its objects if just listed; ``required``:
    gc cleans that remote, so it must answer). ``refusal`` is set when a lock's or a
    tag's folder cannot be expanded, or any folder whose manifest the remote holds
    but could not give."""
    found = _manifests(repo, {r.oid for r in refs if r.isdir}, remote, listed, required)
    unexpanded = [r for r in refs if r.isdir and r.oid not in found.manifests]
    blocking = list({(r.path, r.oid): r for r in unexpanded
                     if r.strict or r.oid in found.unreadable}.values())
    refusal = _refuse(blocking, remote, found) if blocking else None
    reasons: dict[str, str] = {}
    for ref in sorted(refs, key=lambda r: REASONS.index(r.reason)):
        reasons.setdefault(ref.oid, ref.reason)
        manifest = found.manifests.get(ref.oid) if ref.isdir else None
        for entry in manifest.entries if manifest else ():
            reasons.setdefault(entry.hash, ref.reason)
    blocked = {r.oid for r in blocking}
    lenient = {r.oid: r for r in unexpanded if r.oid not in blocked}
    return KeepSet(reasons, found.fetched, tuple(lenient.values()), refusal)
