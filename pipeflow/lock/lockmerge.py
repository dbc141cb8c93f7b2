"""Three-way merge of ``pipeline.lock`` values, stage by stage and source by source.

Two branches that each rerun different stages both rewrite ``pipeline.lock``; git's
line merge conflicts as soon as their edits touch neighbouring lines. A lock is a map
of independent entries, so it merges like one: each stage (and each source) is taken
from the side that changed it, an identical change on both sides is taken once, and
only an entry both sides changed differently is a conflict. Pure: values in, values
out; :mod:`pipeflow.lock.lockconflict` writes and reads the conflicted text, and
:mod:`pipeflow.lock.mergedriver` is what git calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from pipeflow.lock.lockfile import FileEntry, Lock, StageLock

__all__ = ["MergedLock", "T", "merge", "merge_entries"]

T = TypeVar("T", StageLock, FileEntry)


@dataclass(frozen=True)
class MergedLock:
    """A merge's result: what both sides agree on, and both sides of each conflict.

    ``lock`` holds every entry that merged; an entry in conflict is absent from it
    and kept in ``stage_conflicts`` / ``source_conflicts`` as (ours, theirs), where
    None means that side removed the entry.
    """

    lock: Lock
    stage_conflicts: Mapping[str, tuple[StageLock | None, StageLock | None]] = field(
        default_factory=dict)
    source_conflicts: Mapping[str, tuple[FileEntry | None, FileEntry | None]] = field(
        default_factory=dict)

    @property
    def clean(self) -> bool:
        """No conflict remains."""
        return not (self.stage_conflicts or self.source_conflicts)

    def side(self, index: int) -> Lock:
        """The lock as one side (0 ours, 1 theirs) has each conflicting entry."""
        stages = dict(self.lock.stages)
        for name, pair in self.stage_conflicts.items():
            stage = pair[index]
            if stage is not None:
                stages[name] = stage
        sources = dict(self.lock.sources)
        for path, source_pair in self.source_conflicts.items():
            source = source_pair[index]
            if source is not None:
                sources[path] = source
        return Lock(stages=dict(sorted(stages.items())), sources=dict(sorted(sources.items())))


def _same_result(ours: object, theirs: object) -> bool:
    """Two entries that differ only in which run produced them record the same result
    (two clones reran a stage and got identical outputs): either run is true."""
    if not isinstance(ours, StageLock) or not isinstance(theirs, StageLock):
        return False
    return dataclasses.replace(ours, run=None) == dataclasses.replace(theirs, run=None)


def _merge_one(base: T | None, ours: T | None, theirs: T | None) -> tuple[bool, T | None]:
    """(merged?, entry) for one key; entry None means absent."""
    if ours == theirs:
        return True, ours
    if ours == base:
        return True, theirs
    if theirs == base:
        return True, ours
    if ours is not None and theirs is not None and _same_result(ours, theirs):
        # the smaller run hash, so that the result does not depend on who merges
        runs = sorted((ours, theirs), key=lambda e: getattr(e, "run", None) or "")
        return True, runs[0]
    return False, None


def merge_entries(
    base: Mapping[str, T], ours: Mapping[str, T], theirs: Mapping[str, T]
) -> tuple[dict[str, T], dict[str, tuple[T | None, T | None]]]:
    """Merge three maps of entries key by key: (merged entries, conflicts)."""
    merged: dict[str, T] = {}
    conflicts: dict[str, tuple[T | None, T | None]] = {}
    for key in sorted({*base, *ours, *theirs}):
        o, t = ours.get(key), theirs.get(key)
        ok, entry = _merge_one(base.get(key), o, t)
        if not ok:
            conflicts[key] = (o, t)
        elif entry is not None:
            merged[key] = entry
    return merged, conflicts


def merge(base: Lock, ours: Lock, theirs: Lock) -> MergedLock:
    """The three-way merge of two locks that both descend from ``base``.

    Symmetric: swapping ``ours`` and ``theirs`` gives the same merged entries and
    the same conflicts with their sides swapped.
    """
    stages, stage_conflicts = merge_entries(base.stages, ours.stages, theirs.stages)
    sources, source_conflicts = merge_entries(base.sources, ours.sources, theirs.sources)
    return MergedLock(Lock(stages=stages, sources=sources), stage_conflicts, source_conflicts)
