"""Data pipeline.lock names that a remote lacks: what ``fetch`` and ``pull`` say.

A colleague who runs ``git push`` but not ``pipeflow push`` leaves a lock whose data
is only in their clone. The run records usually do not follow either, but when they
do (or arrive later) they name who recorded the version, in the same words as
``status`` and ``repro`` (pipeflow/planning/sourcedata.py). The way out is never another
pull: the colleague pushes, or, for a stage output, ``repro`` recomputes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeflow.errors import StorageError
from pipeflow.lock.lockfile import FileEntry, Lock, out_entries
from pipeflow.planning.sourcedata import recorded, recorder, who
from pipeflow.project.project import Project


@dataclass(frozen=True)
class Lacking:
    """One path of the lock whose version (or part of it) the remote does not have."""

    path: str
    hash: str
    stage: str | None
    """The stage writing it; None for source data (``pipeflow add``)."""
    recorded_by: str | None = None
    run: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "hash": self.hash, "stage": self.stage,
                "recorded_by": self.recorded_by, "run": self.run}

    def line(self) -> str:
        what = "source data" if self.stage is None else f"output of stage '{self.stage}'"
        return f"{self.path}: {what}, version {self.hash[:8]}{recorded(self.recorded_by, self.run)}"


def owners(lock: Lock) -> dict[str, tuple[FileEntry, str | None]]:
    """Every cached path of ``lock``: its entry and the stage writing it (None for a
    source)."""
    found: dict[str, tuple[FileEntry, str | None]] = {
        path: (entry, None) for path, entry in lock.sources.items() if entry.cache}
    for name, stage in lock.stages.items():
        found.update((path, (entry, name)) for path, entry in out_entries(stage).items()
                     if entry.cache)
    return found


def lacking(repo: Project, lock: Lock, paths: Iterable[str]) -> list[Lacking]:
    """The ``paths`` of ``lock`` (those it caches), described with their recorder."""
    known = owners(lock)
    found = []
    for path in sorted(set(paths)):
        if path in known:
            entry, stage = known[path]
            by, run = recorder(repo, path, entry.hash)
            found.append(Lacking(path, entry.hash, stage, by, run))
    return found


def _asks(items: Sequence[Lacking]) -> str:
    people = ", ".join(dict.fromkeys(who(i.recorded_by) for i in items))
    return f"ask {people} to run `pipeflow push` from the clone that has it"


def _recompute(items: Sequence[Lacking]) -> str | None:
    """The ``repro`` that recomputes the lacking stage outputs; while source data is
    lacking too, a stage that reads it cannot run, so the hint says so."""
    stages = sorted({i.stage for i in items if i.stage})
    if not stages:
        return None
    after = (" once the source data is here" if any(i.stage is None for i in items)
             else "")
    return f"`pipeflow repro {' '.join(stages)}` recomputes the stage outputs{after}"


def warning(items: Sequence[Lacking], remote: str) -> str:
    """What ``fetch`` warns with: the paths it could not get, and who can push them."""
    lines = "".join(f"\n  {i.line()}" for i in items)
    recompute = f"; or {way}" if (way := _recompute(items)) else ""
    return (f"remote '{remote}' lacks data pipeline.lock names (not fetched):{lines}\n"
            f"  {_asks(items)}{recompute}")


def error(items: Sequence[Lacking], remote: str, restored: int) -> StorageError:
    """What ``pull`` stops with (exit 1) once it has restored everything else."""
    lines = "".join(f"\n  {i.line()}" for i in items)
    sources = [i for i in items if i.stage is None]
    ways = [_asks(sources or items) + ", then run this command again"]
    if way := _recompute(items):
        ways.append(way)
    return StorageError(
        f"remote '{remote}' lacks data pipeline.lock names, so it could not be restored "
        f"(everything else was: {restored} path(s) restored):{lines}",
        hint="; or ".join(ways))
