"""Committing a finished stage: outputs into the object store, an entry for the lock."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pipeflow import workspace_fs
from pipeflow.errors import StageFailed
from pipeflow.gitignore import ensure_ignored
from pipeflow.hashing import DirScan
from pipeflow.lockfile import (
    FileEntry,
    MetricEntry,
    StageLock,
    file_entry,
    hash_info,
    out_entries,
)
from pipeflow.repo import Repo
from pipeflow.spec.model import Out, Stage

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pipeflow.fingerprint import Components
    from pipeflow.lineage.records import OutputRef


def _scan_output(repo: Repo, stage: Stage, out: Out) -> DirScan | None:
    """Refuse a symlink as or inside an output; return the walk of a directory output
    (its files are stored from it, so the tree is walked once)."""
    path = repo.root / out.path
    if path.is_symlink():
        msg = f"output '{out.path}' is a symlink; write a real file or folder there"
        raise StageFailed(stage.name, msg)
    if not path.is_dir():
        return None
    scan = repo.hasher.scan_dir(out.path)
    if scan.links:
        msg = (f"output '{out.path}' contains a symlink: {out.path}/{scan.links[0]} "
               "(not supported yet)")
        raise StageFailed(stage.name, msg)
    return scan


def commit_outputs(repo: Repo, stage: Stage, comps: Components) -> StageLock:
    """Store each cached output, hash every output, and build the stage's lock entry.

    Raises StageFailed if a declared output is missing; nothing is journaled then.
    """
    root = repo.root
    scans: dict[str, DirScan | None] = {}
    for out in stage.outs:
        # the command may have made a folder above an output a link leading out of the
        # project: nothing is read, stored or written through it
        problem = workspace_fs.parent_problem(root, out.path, made_by_stage=True)
        if problem is not None:
            raise StageFailed(stage.name, f"output {problem}")
        if not os.path.lexists(root / out.path):
            msg = f"it did not write its declared output '{out.path}'"
            raise StageFailed(stage.name, msg)
        repo.hasher.forget(out.path)
        scans[out.path] = _scan_output(repo, stage, out)
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
    repo: Repo, stage: Stage, entry: StageLock, skip: frozenset[str] = frozenset(),
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


def restore_run_outputs(repo: Repo, stage: Stage, outputs: Iterable[OutputRef]) -> list[str]:
    """Check out the outputs an earlier run recorded (the run cache); returns paths."""
    placed = []
    for out in outputs:
        repo.store.checkout(out.hash_info(), repo.root / out.path, linker=repo.linker,
                            hasher=repo.hasher)
        repo.hasher.forget(out.path)
        placed.append(out.path)
    ensure_ignored(repo.root, [o.path for o in stage.outs if o.cache])
    return placed
