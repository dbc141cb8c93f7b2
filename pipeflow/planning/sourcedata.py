"""Where each source (data cached by ``pipeflow add``) stands against the lock.

The lock travels with git, the data with ``push``/``pull``, and a team does not
always move both: a colleague's commit can name a source version this clone has
never seen. Workspace data that differs from the lock therefore means one of two
things, told apart by the local cache:

- the locked object is here: the workspace was edited (or an older version checked
  out) in this clone, so ``repro`` records the edit, or restores the locked version;
- it is not: the lock moved under the user and the data did not follow. Recording
  the workspace's file then would silently undo the colleague's version, so
  ``repro`` stops and ``status`` says to pull (``not-in-cache``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pipeflow.errors import MissingSourceData, OutsideProjectError, SourceConflict, StorageError
from pipeflow.lock.lockfile import FileEntry, Lock, hash_info
from pipeflow.planning.graph import Graph
from pipeflow.project.project import Project

SourceWord = Literal["up-to-date", "absent", "checked-out", "edited", "not-in-cache"]


@dataclass(frozen=True)
class SourceState:
    """One source path: what the lock records, what the workspace holds, and who
    recorded the locked version (when this clone has that run record)."""

    path: str
    locked: FileEntry
    state: SourceWord
    """``absent`` and ``checked-out`` restore from the cache;
    ``edited`` is recorded as a new version; ``not-in-cache`` needs a pull."""
    now: str | None = None
    """The workspace content's hash; None when the path does not exist."""
    recorded_by: str | None = None
    run: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "state": self.state, "external": self.locked.external,
                "locked": self.locked.hash,
                "workspace": self.now, "recorded_by": self.recorded_by, "run": self.run}


def source_states(repo: Project, lock: Lock) -> list[SourceState]:
    """The state of every source in ``lock``, by path (reads the workspace and the
    local cache; writes nothing but the stat cache)."""
    states = []
    for path, entry in sorted(lock.sources.items()):
        states.append(_state(repo, path, entry, hash_source(repo, path, entry.external)))
    return states


def outside_hint(path: str, *, locked: bool = True) -> str:
    """The ways out for a source that leads outside the project without ``external``
    (``locked``: the lock already lists it, so dropping it is one of them)."""
    drop = (f"; or drop the source: delete its entry '{path}' under `sources:` in "
            "pipeline.lock" if locked else "")
    return (f"copy the data into the project (replace the link '{path}' by a folder or "
            f"file holding it) and run `pipeflow add {path}`; or read it where it is with "
            f"`pipeflow add --external {path}` (versioned, never written through){drop} "
            "(docs/lockfile.md#external-sources)")


def hash_source(repo: Project, path: str, external: bool, *, where: str = "pipeline.lock: sources:"
                ) -> str | None:
    """The workspace content's hash of source ``path`` (None when it does not exist).
    A source leading outside the project is read only when ``external``; otherwise
    the error names ``where`` the source is recorded and the ways out."""
    try:
        return repo.hasher.hash_path(path, external=external).hash
    except FileNotFoundError:
        return None
    except OutsideProjectError as exc:
        if exc.special:
            raise
        raise OutsideProjectError(exc.path, exc.link, exc.target, special=False,
                                  what=f"{where} source",
                                  hint=outside_hint(path, locked=where.startswith("pipeline"))
                                  ) from None


def external_note(path: str, entry: FileEntry) -> str:
    """Why an external source that differs from the lock was left as it is."""
    return (f"external source '{path}' differs from its locked version "
            f"{entry.hash[:8]} and was left as it is: pipeflow never writes through a link "
            f"leading outside the project (update the data where it lives, or "
            f"`pipeflow add {path}` records what is there now)")


def leads_outside(repo: Project, path: str) -> bool:
    """Whether ``path`` or a folder above it is a link leading out of the project:
    a checkout there would write outside, so an external source is then left as it is."""
    from pipeflow.files.workspace_fs import parent_problem

    return parent_problem(repo.root, f"{path}/_") is not None


def _state(repo: Project, path: str, entry: FileEntry, now: str | None) -> SourceState:
    if now == entry.hash:
        return SourceState(path, entry, "up-to-date", now)
    # no .pipeflow/ means no cache (and opening the store would create the folder)
    if not repo.dot.is_dir() or repo.store.missing(hash_info(entry)):
        by, run = recorder(repo, path, entry.hash)
        return SourceState(path, entry, "not-in-cache", now, by, run)
    if now is None:
        return SourceState(path, entry, "absent", now)
    known = any(row.hash == now for row in repo.index.versions(path))
    return SourceState(path, entry, "checked-out" if known else "edited", now)


def recorder(repo: Project, path: str, oid: str) -> tuple[str | None, str | None]:
    """Who recorded ``oid`` as ``path`` and in which run, if this clone has the record
    (a colleague's records arrive with ``fetch``, possibly before the data)."""
    if not repo.dot.is_dir():
        return None, None
    run = repo.index.producer(path, oid)
    if run is None:
        return None, None
    try:
        user = repo.index.record(run).body.user
    except StorageError:
        return None, run
    return (str(user) if user else None), run


def not_here(repo: Project, lock: Lock) -> frozenset[str]:
    """Sources whose locked version is not in the local cache: what a pull brings
    that the workspace was never compared with."""
    return frozenset(s.path for s in source_states(repo, lock) if s.state == "not-in-cache")


def reads(graph: Graph, names: Iterable[str], path: str) -> bool:
    """Whether one of the stages ``names`` depends on source ``path`` (the path
    itself, a file inside it, or a folder holding it)."""
    for name in names:
        for dep in graph.pipeline.stages[name].deps:
            if dep == path or dep.startswith(path + "/") or path.startswith(dep + "/"):
                return True
    return False


def blocking(states: Iterable[SourceState], graph: Graph, names: Iterable[str]
             ) -> list[SourceState]:
    """The ``not-in-cache`` sources that one of the stages ``names`` reads: a run of
    those stages must stop before it starts."""
    chosen = list(names)
    return [s for s in states if s.state == "not-in-cache" and reads(graph, chosen, s.path)]


def who(recorded_by: str | None) -> str:
    """The person to ask for a push, as the user can find them."""
    return recorded_by or "whoever recorded it (`git log pipeline.lock`)"


def recorded(recorded_by: str | None, run: str | None) -> str:
    """`` (recorded by WHO, run ID)``, or nothing without the run record."""
    return f" (recorded by {recorded_by}, run {run[:12]})" if recorded_by and run else ""


def describe(state: SourceState) -> str:
    """The sentence ``status`` warns with for a ``not-in-cache`` source."""
    locked = f"its locked version {state.locked.hash[:8]}{recorded(state.recorded_by, state.run)}"
    push = f"if the remote lacks it, ask {who(state.recorded_by)} to `pipeflow push`"
    if state.now is None:
        return (f"source data '{state.path}' is missing, and {locked} is not in the local "
                f"cache: `pipeflow pull {state.path}` gets it ({push})")
    return (f"source data '{state.path}': {locked} is not in the local cache, and the "
            f"workspace holds other data ({state.now[:8]}): `pipeflow pull {state.path}` "
            f"gets the locked version ({push}); `pipeflow add {state.path}` records the "
            "workspace's data instead")


def missing_error(states: Sequence[SourceState], pulled_from: str | None = None
                  ) -> MissingSourceData:
    """The error ``repro`` stops with when sources it needs are ``not-in-cache``;
    ``pulled_from`` names the remote already asked (``repro --pull``)."""
    lines = []
    for s in states:
        by = f", recorded by {s.recorded_by}" if s.recorded_by else ""
        where = ("the workspace has no such path" if s.now is None
                 else f"the workspace holds other data, {s.now[:8]}")
        lines.append(f"\n  {s.path}: pipeline.lock has {s.locked.hash[:8]}{by}; {where}")
    lacking = f"; remote '{pulled_from}' lacks it too" if pulled_from else ""
    message = ("source data the run needs is not in the local cache" + lacking
               + " (nothing was run or recorded):" + "".join(lines))
    people = ", ".join(dict.fromkeys(who(s.recorded_by) for s in states))
    present = [s.path for s in states if s.now is not None]
    replacing = ", replacing the workspace's copy" if present else ""
    get = (f"ask {people} to `pipeflow push`, then `pipeflow repro --pull`" if pulled_from
           else f"`pipeflow pull` gets the locked version{replacing} "
                f"(if the remote lacks it, ask {people} to `pipeflow push`)")
    add = (f"; or `pipeflow add {' '.join(present)}` records the workspace's data as a new "
           "version on purpose") if present else ""
    return MissingSourceData(message, paths=tuple(s.path for s in states), hint=get + add)


def conflict_error(states: Sequence[SourceState], pulled_from: str) -> SourceConflict:
    """The error ``repro --pull`` stops with when the pull brought a source version
    the workspace was never compared with, and the workspace holds data that no
    version recorded (an edit made while the lock moved through git)."""
    lines = []
    for s in states:
        by = f", recorded by {s.recorded_by}" if s.recorded_by else ""
        lines.append(f"\n  {s.path}: pipeline.lock has {s.locked.hash[:8]}{by} (just fetched "
                     f"from remote '{pulled_from}'); the workspace holds "
                     f"{(s.now or '')[:8]}, which no run recorded")
    paths = " ".join(s.path for s in states)
    return SourceConflict(
        "source data changed both here and in pipeline.lock (nothing was run or recorded):"
        + "".join(lines),
        hint=f"`pipeflow checkout {paths}` puts the locked version in place (copy yours "
             f"aside first), or `pipeflow add {paths}` records yours as a new version")
