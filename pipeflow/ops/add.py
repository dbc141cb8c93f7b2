"""``pipeflow add``: cache source data (files no stage produces) and version it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pipeflow import faults, lockfile, safepath, workspace_fs
from pipeflow.errors import UsageError
from pipeflow.gitignore import ensure_ignored
from pipeflow.lineage.records import iso
from pipeflow.lockfile import FileEntry, Lock, file_entry
from pipeflow.ops.project import load_project, recover, render_lock
from pipeflow.repo import LOCK_FILE, Repo
from pipeflow.repolock import RepoLock


@dataclass
class AddReport:
    added: list[FileEntry] = field(default_factory=list)
    """Sources recorded with new content."""
    unchanged: list[str] = field(default_factory=list)


def record_source(repo: Repo, path: str) -> FileEntry:
    """Store ``path`` (file or folder) and write an ``add`` run record for it."""
    from pipeflow.lineage.history import History

    root = repo.root
    if (root / path).is_dir():
        info = repo.store.add_tree(root, path, repo.hasher)
    else:
        info = repo.hasher.hash_path(path)
        repo.store.add_file(root / path, info.hash)
    faults.point("add.stored")
    entry = file_entry(path, info)
    prov = History(repo).provenance
    now = iso(time.time())
    record = repo.records.append({
        "kind": "add", "stage": "", "fingerprint": "", "exit_status": 0,
        "started": now, "ended": now, "duration": 0.0, "user": prov.user, "host": prov.host,
        "git": {"commit": prov.commit, "dirty_paths": list(prov.dirty_paths)},
        "outputs": [{"path": path, "hash": info.hash, "size": info.size,
                     "isdir": info.isdir, "nfiles": info.nfiles, "kind": "source"}],
    })
    repo.index.add(record)
    faults.point("add.recorded")
    ensure_ignored(root, [path])
    return entry


def add(repo: Repo, paths: list[str], *, wait: float = 0.0) -> AddReport:
    """Cache and version each of ``paths`` under ``sources:`` in the lock."""
    from pipeflow.lineage.pathspec import split_spec

    report = AddReport()
    if not repo.dot.is_dir():  # as repro does: the cache and chain stay out of git
        from pipeflow.ops.init import init

        init(repo.root, starter=False)
    with RepoLock(repo.dot / "lock", wait=wait):
        recover(repo)
        graph = load_project(repo).graph
        lock = lockfile.read(repo.lock_path, LOCK_FILE)
        sources = dict(lock.sources)
        for text in paths:
            path, _ = split_spec(repo, text, set())
            if path in (".", "") or path.startswith(".pipeflow") or path.startswith(".git"):
                raise UsageError(f"cannot add '{text}': choose a data file or folder")
            why = safepath.problem(path)  # the lock could not be read back otherwise
            if why is not None:
                raise UsageError(f"cannot add {text!r}: its path {why}")
            workspace_fs.check_parents(repo.root, path)  # nothing read or written outside
            producer = graph.producer_of(path)
            if producer is not None:
                raise UsageError(f"'{path}' is an output of stage '{producer}'",
                                 hint="outputs are versioned by `pipeflow repro`")
            if not (repo.root / path).exists():
                raise UsageError(f"'{text}' does not exist")
            repo.hasher.forget(path)
            current = repo.hasher.hash_path(path)
            known = sources.get(path)
            if known is not None and known.hash == current.hash:
                report.unchanged.append(path)
                continue
            entry = record_source(repo, path)
            sources[path] = entry
            report.added.append(entry)
        new = Lock(stages=lock.stages, sources=dict(sorted(sources.items())))
        if report.added:
            from pipeflow.storage.durability import sync_paths

            sync_paths([*repo.store.written(), *repo.records.written])
            lockfile.write(repo.lock_path, new)
            faults.point("add.locked")
        render_lock(repo, graph)
        repo.hasher.flush()
    return report
