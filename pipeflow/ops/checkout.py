"""``pipeflow checkout``: put outputs back as the lock records them, from the cache."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeflow.errors import StorageError
from pipeflow.execution.commit import restore_outputs
from pipeflow.graph import resolve_targets
from pipeflow.ops.project import load_project, render_lock
from pipeflow.ops.repro import recover
from pipeflow.planning import hash_info, out_entries
from pipeflow.repo import LOCK_FILE, Repo
from pipeflow.repolock import RepoLock


@dataclass
class CheckoutReport:
    restored: list[str] = field(default_factory=list)
    unchanged: int = 0
    missing: list[str] = field(default_factory=list)
    """Outputs whose objects are not in the cache (not restored)."""
    not_run: list[str] = field(default_factory=list)
    """Stages with no lock entry: nothing to restore."""


def checkout(repo: Repo, targets: list[str] | None = None, *, wait: float = 0.0) -> CheckoutReport:
    """Restore cached outputs of ``targets`` (default: all stages) that differ from the lock."""
    from pipeflow import lockfile

    report = CheckoutReport()
    with RepoLock(repo.dot / "lock", wait=wait):
        recover(repo)
        project = load_project(repo)
        graph = project.graph
        names = resolve_targets(graph, targets) if targets else list(graph.order)
        lock = lockfile.read(repo.lock_path, LOCK_FILE)
        for name in names:
            entry = lock.stages.get(name)
            if entry is None:
                report.not_run.append(name)
                continue
            stage = graph.pipeline.stages[name]
            wanted = {o.path for o in stage.outs}
            missing = [
                rec.path for rec in out_entries(entry).values()
                if rec.path in wanted and rec.cache and repo.store.missing(hash_info(rec))
            ]
            report.missing.extend(missing)
            restored = restore_outputs(repo, stage, entry, skip=frozenset(missing))
            report.restored.extend(restored)
            report.unchanged += sum(1 for o in stage.cached_outs) - len(restored)
        render_lock(repo, graph)
        repo.hasher.flush()
    if report.missing:
        paths = ", ".join(report.missing)
        msg = f"not in the cache, cannot restore: {paths}"
        raise StorageError(msg, hint="run `pipeflow repro` to recompute them")
    return report
