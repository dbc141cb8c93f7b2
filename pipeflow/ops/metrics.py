"""``pipeflow metrics show|diff``: metrics values as the lock (and the index) keep them.

The lock keeps each metrics file's parsed values (flat dotted keys), so comparing
with any git revision needs only ``git show REV:pipeline.lock`` — no pull.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any

from pipeflow.errors import LockfileError, UsageError
from pipeflow.files import safeload
from pipeflow.git import gitcmd
from pipeflow.lock import lockfile
from pipeflow.lock.lockfile import Lock
from pipeflow.project.project import LOCK_FILE, Project


@dataclass(frozen=True)
class MetricsFile:
    """One metrics file with its values (from a lock or a run record)."""

    path: str
    stage: str
    values: dict[str, Any]
    hash: str = ""
    version: str | None = None
    run: str | None = None
    when: str | None = None
    current: bool = False


@dataclass(frozen=True)
class MetricChange:
    """One metric key compared between two locks; ``None`` where absent."""

    path: str
    key: str
    old: Any
    new: Any

    @property
    def changed(self) -> bool:
        return bool(self.old != self.new)

    @property
    def delta(self) -> float | None:
        """new - old when both are numbers (booleans are not)."""
        nums = all(isinstance(v, int | float) and not isinstance(v, bool)
                   for v in (self.old, self.new))
        return float(self.new - self.old) if nums else None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "key": self.key, "old": self.old, "new": self.new,
                "delta": self.delta}


@dataclass(frozen=True)
class MetricsDiff:
    """Metrics of the lock at ``rev`` against the workspace lock."""

    rev: str
    changes: list[MetricChange] = field(default_factory=list)
    """Every key of either side, changed or not, by path then key."""
    lock_at_rev: bool = True
    """False when ``rev`` has no pipeline.lock (every value is then new)."""

    @property
    def changed(self) -> list[MetricChange]:
        return [c for c in self.changes if c.changed]


def lock_at(repo: Project, rev: str) -> tuple[Lock, bool]:
    """The lock file committed at git revision ``rev`` (and whether there was one).

    UsageError when ``rev`` is not a revision of the repository around the project.
    """
    try:
        check = gitcmd.run(repo.root, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}")
    except (OSError, subprocess.SubprocessError) as exc:
        raise UsageError(f"cannot run git to read revision '{rev}': {exc}") from exc
    if check.returncode != 0:
        raise UsageError(f"'{rev}' is not a git revision here",
                         hint="give a commit, branch or tag (e.g. HEAD~1, main, v1.0); "
                              "the project must be inside a git repository with commits")
    try:
        (size,) = gitcmd.blob_sizes(repo.root, [f"{rev}:./{LOCK_FILE}"])
        if size is None:
            return Lock(), False
        safeload.check_size(size, f"{LOCK_FILE} at {rev}", "lock",
                            safeload.plain(LockfileError))
        shown = gitcmd.run(repo.root, "show", "--no-textconv", "--no-ext-diff",
                           f"{rev}:./{LOCK_FILE}")
    except (OSError, subprocess.SubprocessError) as exc:
        raise UsageError(f"cannot run git to read revision '{rev}': {exc}") from exc
    if shown.returncode != 0:
        return Lock(), False
    text = shown.stdout.decode("utf-8", "replace")
    return lockfile.loads(text, f"{LOCK_FILE} at {rev}"), True


def lock_metrics(lock: Lock) -> list[MetricsFile]:
    """Each metrics file the lock names, with its values, by path."""
    found = [MetricsFile(m.path, name, dict(m.values), m.hash, current=True)
             for name, entry in lock.stages.items() for m in entry.metrics]
    return sorted(found, key=lambda m: m.path)


def show(repo: Project) -> list[MetricsFile]:
    """The metrics values of the workspace lock."""
    from pipeflow.ops.lineage import current_lock

    return lock_metrics(current_lock(repo))


def show_all_versions(repo: Project) -> list[MetricsFile]:
    """Every version of every metrics file the index knows, oldest first per path,
    with the values recorded by the run that first produced it."""
    from pipeflow.lineage.labels import version_labels
    from pipeflow.lineage.versions import ordered_rows
    from pipeflow.ops.lineage import current_lock

    current = {m.path: m for m in lock_metrics(current_lock(repo))}
    index = repo.index
    paths = sorted({*index.paths("metric"), *current})
    labels = version_labels(repo.root, index)
    out: list[MetricsFile] = []
    for path in paths:
        for _n, v in ordered_rows(repo, path, labels):
            values = index.metrics_of(v.first_run).get(path, {})
            now = current.get(path)
            out.append(MetricsFile(path, index.stage_of(v.first_run), values,
                                   v.hash, labels.label(path, v.hash), v.first_run, v.first_seen,
                                   current=now is not None and now.hash == v.hash))
    return out


def compare(old: list[MetricsFile], new: list[MetricsFile]) -> list[MetricChange]:
    """Every (path, key) of either side, old against new."""
    before = {(m.path, k): v for m in old for k, v in m.values.items()}
    after = {(m.path, k): v for m in new for k, v in m.values.items()}
    return [MetricChange(path, key, before.get((path, key)), after.get((path, key)))
            for path, key in sorted(set(before) | set(after))]


def diff(repo: Project, rev: str = "HEAD") -> MetricsDiff:
    """Metrics values in the lock committed at ``rev`` against the workspace lock."""
    old_lock, existed = lock_at(repo, rev)
    return MetricsDiff(rev, compare(lock_metrics(old_lock), show(repo)), existed)
