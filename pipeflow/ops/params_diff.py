"""``pipeflow params diff [REV]``: params values the lock recorded at REV against the
values the params files hold now, for the keys each stage declares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeflow.ops.metrics import lock_at
from pipeflow.project.project import Project


@dataclass(frozen=True)
class ParamChange:
    """One params key, before (in the lock at REV) and now; None where absent."""

    file: str
    key: str
    old: Any
    new: Any
    stages: tuple[str, ...]
    """The stages that declare (now) or recorded (at REV) this key."""

    @property
    def changed(self) -> bool:
        return bool(self.old != self.new)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "key": self.key, "old": self.old, "new": self.new,
                "stages": list(self.stages)}


@dataclass(frozen=True)
class ParamsDiff:
    rev: str
    changes: list[ParamChange] = field(default_factory=list)
    """Every key of either side, by file then key."""
    lock_at_rev: bool = True

    @property
    def changed(self) -> list[ParamChange]:
        return [c for c in self.changes if c.changed]


def workspace_params(repo: Project) -> dict[str, dict[str, dict[str, Any]]]:
    """stage -> params file -> key -> value: what each stage of the pipeline declares,
    as the params files hold it now (stages in run order)."""
    from pipeflow.ops.project import current_lock, load_project
    from pipeflow.planning.plan import Planner

    graph = load_project(repo).graph
    planner = Planner(repo, graph, current_lock(repo))
    return {name: planner.params_of(graph.pipeline.stages[name]) for name in graph.order}


def diff(repo: Project, rev: str = "HEAD") -> ParamsDiff:
    """Params values recorded in the lock at ``rev`` against the params files now."""
    old_lock, existed = lock_at(repo, rev)
    before: dict[tuple[str, str], Any] = {}
    stages: dict[tuple[str, str], set[str]] = {}
    for name, entry in old_lock.stages.items():
        for file, values in entry.params.items():
            for key, value in values.items():
                before[(file, str(key))] = value
                stages.setdefault((file, str(key)), set()).add(name)
    after: dict[tuple[str, str], Any] = {}
    for name, table in workspace_params(repo).items():
        for file, values in table.items():
            for key, value in values.items():
                after[(file, key)] = value
                stages.setdefault((file, key), set()).add(name)
    changes = [ParamChange(f, k, before.get((f, k)), after.get((f, k)),
                           tuple(sorted(stages.get((f, k), ()))))
               for f, k in sorted(set(before) | set(after))]
    return ParamsDiff(rev, changes, existed)
