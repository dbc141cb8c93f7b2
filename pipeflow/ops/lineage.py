"""``pipeflow lineage PATH[@VERSION] [--diff OTHER]``: where one output version came from.

The verbs the CLI and the Python API call: :func:`lineage`, :func:`lineage_diff`,
:func:`versions_of` and :func:`content_at`; the helpers other verbs share:
:func:`current_lock`, :func:`locked_paths`, :func:`light_versions`, :func:`start_of`,
:func:`manifests` and :func:`git_tracked`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeflow.errors import StorageError, UsageError
from pipeflow.git import gitcmd
from pipeflow.lineage.diff import LineageDiff, diff_lineages
from pipeflow.lineage.graph import Lineage, ManifestLookup, trace
from pipeflow.lineage.labels import version_labels
from pipeflow.lineage.pathspec import split_spec
from pipeflow.lineage.versions import FETCH_ONE_HINT, Version, list_versions, resolve
from pipeflow.lock.lockfile import FileEntry, Lock
from pipeflow.project.project import LOCK_FILE, Project

__all__ = ["Content", "Start", "content_at", "current_lock", "git_tracked", "light_versions",
           "lineage", "lineage_diff", "locked_paths", "manifests", "start_of", "versions_of"]


@dataclass(frozen=True)
class Start:
    """Where a lineage starts: a path, its content, and the run the lock names."""

    path: str
    hash: str
    run: str | None
    label: str | None = None


def manifests(repo: Project) -> ManifestLookup:
    """A ManifestLookup over the repo's cache: folder hash -> {file: hash}, None
    when the folder's manifest is not in the cache (or is corrupt)."""

    def lookup(oid: str) -> Mapping[str, str] | None:
        store = repo.store
        if not store.has(oid):
            return None
        try:
            return {e.path: e.hash for e in store.manifest(oid).entries}
        except StorageError:
            return None

    return lookup


def light_versions(repo: Project, path: str, tags: dict[str, str] | None = None
                   ) -> list[Version]:
    """The versions of ``path`` with tags, without the per-version params and
    metrics ``versions`` shows: enough to resolve ``PATH@VERSION`` quickly. ``tags``
    (name -> hash) defaults to the tag log's valid lines (``verify`` reports the rest)."""
    from pipeflow.lineage import tags as tagfile
    from pipeflow.lineage.labels import version_labels
    from pipeflow.lineage.versions import ordered_rows, tagged_hashes

    if tags is None:
        tags = tagfile.read(repo).tags_of(path)
    tagged = tagged_hashes(tags)
    labels = version_labels(repo.root, repo.index)
    return [
        Version(path=path, number=n, hash=r.hash, size=r.size, isdir=r.isdir,
                first_run=r.first_run, first_seen=r.first_seen, runs=r.runs,
                tags=tuple(sorted(tagged.get(r.hash, []))),
                side=n is None and labels.committed(path, r.hash))
        for n, r in ordered_rows(repo, path, labels)
    ]


def current_lock(repo: Project) -> Lock:
    """pipeline.lock with the unfinished run's journal, as ``ops.project.current_lock``
    reads it — without importing the spec loader and graph that module needs (a
    third of a history query's start-up)."""
    from pipeflow.execution import journal
    from pipeflow.lock import lockfile

    lock = lockfile.read(repo.lock_path, LOCK_FILE)
    if not repo.dot.is_dir():
        return lock
    rows = journal.entries(repo.state)
    return journal.fold(lock, rows) if rows else lock


def locked_paths(repo: Project) -> tuple[dict[str, FileEntry], dict[str, str | None]]:
    """Every path the lock names -> its entry, and -> the run that produced it."""
    lock = current_lock(repo)
    entries: dict[str, FileEntry] = dict(lock.sources)
    runs: dict[str, str | None] = dict.fromkeys(lock.sources)
    for entry in lock.stages.values():
        for out in (*entry.outs, *entry.metrics):
            entries[out.path] = out
            runs[out.path] = entry.run
    return entries, runs


def start_of(repo: Project, target: str, version: str | None = None) -> Start:
    """Resolve ``PATH[@VERSION]`` (or ``target`` with an explicit ``version``) to
    the content a lineage starts from. Without a version: the content the lock
    names. UsageError (exit 2) for an unknown version, listing those that exist."""
    entries, runs = locked_paths(repo)
    path, spec_version = split_spec(repo, target, set(entries))
    version = version if version is not None else spec_version
    if version is not None:
        chosen = resolve(repo, path, version, light_versions(repo, path))
        return Start(path, chosen.hash, chosen.first_run, chosen.label)
    entry = entries.get(path)
    if entry is not None:
        return Start(path, entry.hash, runs.get(path))
    for folder, folder_entry in entries.items():
        if folder_entry.isdir and path.startswith(folder + "/"):
            listing = manifests(repo)(folder_entry.hash)
            if listing is None:
                raise UsageError(f"the contents of {folder} ({folder_entry.hash[:8]}) are not "
                                 "in the cache", hint=f"`pipeflow lineage {folder}` works "
                                 "without them")
            oid = listing.get(path[len(folder) + 1:])
            if oid is None:
                raise UsageError(f"{folder} as pipeline.lock records it has no file "
                                 f"'{path[len(folder) + 1:]}'")
            return Start(path, oid, None)
    known = light_versions(repo, path)
    if known:
        labels = ", ".join(f"{v.label} ({v.hash[:8]})" for v in known[-12:])
        raise UsageError(f"pipeline.lock does not name '{path}'",
                         hint=f"give a version, e.g. {path}@{known[-1].label}; it has: "
                              f"{labels}")
    raise UsageError(f"'{path}' has no recorded history",
                     hint="lineage starts from an output of a stage that has run or from "
                          "data recorded with `pipeflow add`")


def versions_of(repo: Project, path: str) -> list[Version]:
    """Every version of the project path ``path``, oldest first (empty when it has
    none), with per-version params and metrics: what ``pipeflow.Repo.versions`` returns."""
    entries, _ = locked_paths(repo)
    current = entries.get(path)
    return list_versions(repo, path, current_hash=current.hash if current else None)


@dataclass(frozen=True)
class Content:
    """What a path holds at one version: an object id, and whether it is a folder's."""

    oid: str
    isdir: bool


def content_at(repo: Project, path: str, version: str | None = None) -> Content:
    """The content of ``path`` (absolute, or relative to the current directory) at
    ``version`` (vN, hash prefix or tag; None: what the lock names). A file inside a
    versioned folder takes the folder's version."""
    rel = os.path.relpath(path, repo.root).replace(os.sep, "/")
    if version is None:
        start = start_of(repo, path)
        isdir = any(v.hash == start.hash and v.isdir for v in light_versions(repo, rel))
        return Content(start.hash, isdir)
    own = light_versions(repo, rel)
    if own:
        chosen = resolve(repo, rel, version, own)
        return Content(chosen.hash, chosen.isdir)
    parts = rel.split("/")
    for i in range(len(parts) - 1, 0, -1):
        folder, inner = "/".join(parts[:i]), "/".join(parts[i:])
        found = light_versions(repo, folder)
        if not found:
            continue
        chosen = resolve(repo, folder, version, found)
        listing = manifests(repo)(chosen.hash)
        if listing is None:
            raise StorageError(f"{folder} {chosen.label} ({chosen.hash[:8]}) is not in the "
                               "cache", hint=FETCH_ONE_HINT)
        oid = listing.get(inner)
        if oid is None:
            raise UsageError(f"{folder} {chosen.label} has no file '{inner}'")
        return Content(oid, False)
    raise UsageError(f"'{rel}' has no recorded versions")


def git_tracked(repo: Project) -> Callable[[str, str], bool]:
    """(commit, project path) -> tracked by git at that commit; one ``git ls-tree``
    per commit, only for commits a lineage asks about."""
    files: dict[str, frozenset[str]] = {}
    prefix: list[str] = []

    def tracked(commit: str, path: str) -> bool:
        if commit not in files:
            if not prefix:
                where = _git(repo.root, "rev-parse", "--show-prefix")
                prefix.append(where.stdout.decode("utf-8", "surrogateescape").strip()
                              if where.returncode == 0 else "")
            tree = _git(repo.root, "ls-tree", "-r", "-z", "--name-only", commit)
            names = tree.stdout.decode("utf-8", "surrogateescape").split("\0")
            files[commit] = frozenset(names) if tree.returncode == 0 else frozenset()
        return prefix[0] + path in files[commit]

    return tracked


def lineage(repo: Project, target: str, version: str | None = None) -> Lineage:
    """The lineage of ``PATH[@VERSION]``: the run that made it, its inputs, and
    recursively the runs that made those, down to source data; and the version's
    last reproduction (``pipeflow reproduce``)."""
    start = start_of(repo, target, version)
    from dataclasses import replace

    from pipeflow.lineage.reproductions import audit_of
    from pipeflow.lineage.trust import TrustPolicy

    found = trace(repo.index, start.path, start.hash, run_id=start.run,
                  manifests=manifests(repo), tracked=git_tracked(repo),
                  labels=version_labels(repo.root, repo.index).label,
                  vouch=TrustPolicy.of(repo).trusted)
    return replace(found, audit=audit_of(repo, start.path, start.hash))


def lineage_diff(repo: Project, target: str, other: str) -> LineageDiff:
    """What differs between the histories of ``PATH[@VERSION]`` and ``PATH@other``,
    anywhere upstream, stage by stage."""
    start = start_of(repo, target)
    lookup = manifests(repo)
    tracked = git_tracked(repo)
    labels = version_labels(repo.root, repo.index).label
    old = trace(repo.index, start.path, start.hash, run_id=start.run, manifests=lookup,
                tracked=tracked, labels=labels)
    other_start = start_of(repo, start.path, other)
    new = trace(repo.index, other_start.path, other_start.hash, run_id=other_start.run,
                manifests=lookup, tracked=tracked, labels=labels)
    return diff_lineages(old, new)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``git ARGS`` (pinned and hardened); a failed run when git cannot be run."""
    try:
        return gitcmd.run(root, *args)
    except (OSError, subprocess.SubprocessError) as exc:
        return subprocess.CompletedProcess(list(args), 1, b"", str(exc).encode())
