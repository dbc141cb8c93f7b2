"""Committing a finished stage: outputs into the object store, an entry for the lock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeflow.content.hasher import DirScan
from pipeflow.errors import StageFailed
from pipeflow.execution.outputcheck import OutputRefused, check_output
from pipeflow.git.gitignore import ensure_ignored
from pipeflow.lock.lockfile import (
    FileEntry,
    MetricEntry,
    StageLock,
    file_entry,
    hash_info,
    out_entries,
)
from pipeflow.project.project import Project
from pipeflow.spec.model import Stage

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pipeflow.planning.fingerprint import Components
    from pipeflow.records.records import OutputRef


def commit_outputs(repo: Project, stage: Stage, comps: Components) -> StageLock:
    """Store each cached output, hash every output, and build the stage's lock entry.

    Raises StageFailed if a declared output is missing; nothing is journaled then.
    """
    root = repo.root
    scans: dict[str, DirScan | None] = {}
    for out in stage.outs:
        try:  # the same checks a remote worker applies to what it sends back
            scans[out.path] = check_output(root, out.path, repo.hasher)
        except OutputRefused as exc:
            raise StageFailed(stage.name, exc.message) from exc
    outs: list[FileEntry] = []
    metrics: list[MetricEntry] = []
    for out in stage.outs:
        scan = scans[out.path]
        if out.cache and scan is not None:
            info = repo.store.add_tree(root, out.path, repo.hasher, scan)
        else:
            repo.hasher.forget(out.path)
            info = repo.hasher.hash_path(out.path)
            if out.cache:
                repo.store.add_file(root / out.path, info.hash)
        if out.cache and repo.linker.setting == "hardlink":
            # the workspace copy becomes a link to the object: one copy on disk
            repo.store.checkout(info, root / out.path, linker=repo.linker, root=root)
            repo.hasher.forget(out.path)
        entry = file_entry(out.path, info, cache=out.cache)
        if out.kind == "metric":
            from pipeflow.metrics import read_metrics

            values = read_metrics(root / out.path, stage.name, out.path)
            metrics.append(MetricEntry(entry.path, entry.hash, entry.size, entry.isdir,
                                       entry.nfiles, entry.cache, values))
        else:
            outs.append(entry)
    ensure_ignored(root, [o.path for o in stage.outs if o.cache])
    return StageLock(
        cmd=comps.cmd,
        fingerprint=comps.digest(),
        deps=comps.deps,
        params=comps.params,
        code=comps.code,
        env=comps.env,
        outs=tuple(outs),
        metrics=tuple(metrics),
    )


def restore_outputs(
    repo: Project, stage: Stage, entry: StageLock, skip: frozenset[str] = frozenset(),
    restored: list[str] | None = None,
) -> list[str]:
    """Check out every cached output whose workspace content differs from the lock;
    returns their paths (also appended to ``restored`` as they are done, so a caller
    still knows them when a later output fails)."""
    restored = [] if restored is None else restored
    recorded = out_entries(entry)
    for out in stage.outs:
        rec = recorded.get(out.path)
        if rec is None or not rec.cache or out.path in skip:
            continue
        try:
            now = repo.hasher.hash_path(out.path)
        except FileNotFoundError:
            now = None
        if now is not None and now.hash == rec.hash:
            continue
        repo.store.checkout(hash_info(rec), repo.root / out.path, linker=repo.linker,
                            hasher=repo.hasher)
        repo.hasher.forget(out.path)
        restored.append(out.path)
    ensure_ignored(repo.root, [o.path for o in stage.outs if o.cache])
    return restored


def restore_run_outputs(repo: Project, stage: Stage, outputs: Iterable[OutputRef]) -> list[str]:
    """Check out the outputs an earlier run recorded (the run cache); returns paths."""
    placed = []
    for out in outputs:
        repo.store.checkout(out.hash_info(), repo.root / out.path, linker=repo.linker,
                            hasher=repo.hasher)
        repo.hasher.forget(out.path)
        placed.append(out.path)
    ensure_ignored(repo.root, [o.path for o in stage.outs if o.cache])
    return placed
