"""``pipeflow add``: cache source data (files no stage produces) and version it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from pipeflow import faults
from pipeflow.errors import UsageError
from pipeflow.files import safepath, workspace_fs
from pipeflow.git.gitignore import ensure_ignored
from pipeflow.lock import lockfile
from pipeflow.lock.lockfile import FileEntry, Lock, file_entry
from pipeflow.ops.project import load_project, recover, render_lock
from pipeflow.project.project import LOCK_FILE, Project
from pipeflow.records.records import OutputKind, OutputRef, RecordBody, RecordKind, iso


@dataclass
class AddReport:
    added: list[FileEntry] = field(default_factory=list)
    """Sources recorded with new content."""
    unchanged: list[str] = field(default_factory=list)


def record_source(repo: Project, path: str, *, external: bool = False) -> FileEntry:
    """Store ``path`` (file or folder) and write an ``add`` run record for it;
    ``external``: it may be read through a link leading outside the project."""
    from pipeflow.execution.history import History, record_git
    from pipeflow.planning.sourcedata import hash_source

    root = repo.root
    hash_source(repo, path, external)  # refuses a path leading outside, with the ways out
    if (root / path).is_dir():
        scan = repo.hasher.scan_dir(path, external=external)
        info = repo.store.add_tree(root, path, repo.hasher, scan)
    else:
        info = repo.hasher.hash_path(path, external=external)
        repo.store.add_file(root / path, info.hash)
    faults.point("add.stored")
    entry = replace(file_entry(path, info), external=external)
    prov = History(repo).provenance
    now = iso(time.time())
    source = OutputRef(path, info.hash, info.size, info.isdir, info.nfiles, OutputKind.SOURCE)
    record = repo.records.append(RecordBody(
        kind=RecordKind.ADD, exit_status=0, started=now, ended=now, duration=0.0,
        user=prov.user, host=prov.host, git=record_git(prov), outputs=(source,)))
    repo.index.add(record)
    faults.point("add.recorded")
    ensure_ignored(root, [path])
    return entry


def add(repo: Project, paths: list[str], *, wait: float = 0.0, external: bool = False
        ) -> AddReport:
    """Cache and version each of ``paths`` under ``sources:`` in the lock;
    ``external``: read them through links leading outside the project (kept for a
    source the lock already marks external)."""
    from pipeflow.lineage.pathspec import split_spec
    from pipeflow.planning.sourcedata import hash_source

    report = AddReport()
    if not repo.dot.is_dir():  # as repro does: the cache and chain stay out of git
        from pipeflow.ops.init import init

        init(repo.root, starter=False)
    repo.signer  # noqa: B018 -- a damaged signing key fails before anything is stored
    with repo.lock(wait=wait):
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
            known = sources.get(path)
            outside = external or (known is not None and known.external)
            where = "pipeline.lock: sources:" if known is not None else "cannot add:"
            current = hash_source(repo, path, outside, where=where)
            if known is not None and known.hash == current and known.external == outside:
                report.unchanged.append(path)
                continue
            entry = record_source(repo, path, external=outside)
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
