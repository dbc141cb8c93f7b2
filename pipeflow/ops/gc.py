"""``pipeflow gc``: delete cache objects nothing refers to. Never deletes run records.

An object is kept when any of these refers to it: the workspace lock, the locks of
the chosen git revisions (``--rev``, ``--all-branches``, ``--all-commits``), a
tagged version, a run that ended within ``--keep-days`` (default 30), or the last
``--keep-versions`` versions of its path. Without a scope (``--workspace`` or one of
the git flags) gc refuses: deleting what an old commit needs should be a choice.
"""

from __future__ import annotations

import datetime
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeflow import faults, lockfile
from pipeflow.errors import LockfileError, StorageError, UsageError
from pipeflow.lockfile import FileEntry, Lock, out_entries
from pipeflow.ops.project import recover
from pipeflow.ops.transfer import local_objects, objects_for
from pipeflow.repo import LOCK_FILE, Repo
from pipeflow.repolock import RepoLock


@dataclass(frozen=True)
class GcScope:
    workspace: bool = False
    revs: tuple[str, ...] = ()
    all_branches: bool = False
    all_commits: bool = False
    keep_days: int = 30
    keep_versions: int | None = None

    @property
    def given(self) -> bool:
        return self.workspace or bool(self.revs) or self.all_branches or self.all_commits


@dataclass
class GcReport:
    kept: int = 0
    removed: list[str] = field(default_factory=list)
    removed_bytes: int = 0
    remote_removed: list[str] = field(default_factory=list)
    dry: bool = False


def _lock_entries(lock: Lock) -> list[FileEntry]:
    entries = list(lock.sources.values())
    for stage in lock.stages.values():
        entries.extend(out_entries(stage).values())
    return [e for e in entries if e.cache]


def _git(repo: Repo, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo.root, capture_output=True, text=True)
    if out.returncode != 0:
        raise UsageError(f"git {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


def _commits(repo: Repo, scope: GcScope) -> list[str]:
    commits: list[str] = []
    for rev in scope.revs:
        commits.append(_git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}").strip())
    if scope.all_branches:
        commits += _git(repo, "for-each-ref", "refs/heads", "--format=%(objectname)").split()
    if scope.all_commits:
        commits += _git(repo, "rev-list", "--all").split()
    return list(dict.fromkeys(commits))


def _locks_at(repo: Repo, commits: Iterable[str]) -> list[Lock]:
    commits = list(commits)
    if not commits:
        return []
    prefix = _git(repo, "rev-parse", "--show-prefix").strip()
    locks = []
    for commit in commits:
        out = subprocess.run(["git", "show", f"{commit}:{prefix}{LOCK_FILE}"], cwd=repo.root,
                             capture_output=True, text=True)
        if out.returncode != 0:
            continue  # no lock at that commit
        try:
            locks.append(lockfile.loads(out.stdout, f"{LOCK_FILE} at {commit[:8]}"))
        except LockfileError:
            continue
    return locks


def keep_set(repo: Repo, scope: GcScope) -> set[str]:
    """Every oid some reference in ``scope`` needs (folder manifests expanded)."""
    from pipeflow.lineage import tags as tagfile

    entries: list[FileEntry] = []
    if scope.workspace:
        entries += _lock_entries(lockfile.read(repo.lock_path, LOCK_FILE))
    for lock in _locks_at(repo, _commits(repo, scope)):
        entries += _lock_entries(lock)
    keep = objects_for(repo, entries)
    index = repo.index
    folders = {str(h) for (h,) in index.db.execute("SELECT hash FROM outputs WHERE isdir = 1")}
    versions: set[str] = set(tagfile.current(repo.dot).values())
    cutoff = (datetime.datetime.now(datetime.UTC)
              - datetime.timedelta(days=scope.keep_days)).isoformat()
    rows = index.db.execute(
        "SELECT o.hash FROM outputs o JOIN runs r ON r.id = o.run_id WHERE r.ended >= ?",
        (cutoff,),
    )
    versions.update(str(oid) for (oid,) in rows)
    if scope.keep_versions:
        for path in index.paths():
            versions.update(row.hash for row in index.versions(path)[-scope.keep_versions:])
    for oid in versions:
        keep.add(oid)
        if oid in folders and repo.store.has(oid):
            try:
                keep.update(e.hash for e in repo.store.manifest(oid).entries)
            except StorageError:
                continue  # a corrupt manifest: verify reports it
    return keep


def gc(repo: Repo, scope: GcScope, *, dry: bool = False, remote: str | None = None,
       yes: bool = False, wait: float = 0.0) -> GcReport:
    """Delete unreferenced objects locally (and on ``remote`` with ``yes``)."""
    if not scope.given:
        raise UsageError(
            "gc needs a scope: which git revisions' outputs must be kept",
            hint="pass --workspace (the current lock only), --rev REV, --all-branches or "
                 "--all-commits; add --dry to see what would go",
        )
    if remote is not None and not yes and not dry:
        raise UsageError(f"gc --remote {remote} deletes data your team may share",
                         hint="add --yes to confirm, or --dry to list what would go")
    report = GcReport(dry=dry)
    with RepoLock(repo.dot / "lock", wait=wait):
        recover(repo)
        keep = keep_set(repo, scope)
        present = local_objects(repo)
        for oid in sorted(present - keep):
            faults.point("gc.delete")
            path = repo.store.path_of(oid)
            try:
                report.removed_bytes += path.stat().st_size
                if not dry:
                    path.unlink()
            except FileNotFoundError:
                continue
            report.removed.append(oid)
        report.kept = len(present & keep)
        if remote is not None:
            from pipeflow.ops.remotes import open_remote

            target = open_remote(repo, remote)
            gone = sorted(target.objects() - keep)
            if not dry:
                for oid in gone:
                    faults.point("gc.remote.delete")
                    target.fs.rm_file(target.path("objects", f"{oid[:2]}/{oid[2:]}"))
            report.remote_removed = gone
    return report
