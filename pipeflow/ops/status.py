"""``pipeflow status``: every stage's state and why, without taking the repo lock."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pipeflow.gitignore import tracked_by_git
from pipeflow.lockconflict import CONFLICT_REASON
from pipeflow.ops.project import current_state, load_project
from pipeflow.planning import Planner, StageState
from pipeflow.repo import Repo
from pipeflow.repolock import holder_alive, read_holder

STATUS_SCHEMA = 1


@dataclass(frozen=True)
class StatusReport:
    """States in topological order, plus warnings about the workspace."""

    states: tuple[StageState, ...]
    warnings: tuple[str, ...] = ()
    source_conflicts: tuple[str, ...] = ()
    """Sources in merge conflict in pipeline.lock (stages in conflict are ``changed``)."""

    @property
    def up_to_date(self) -> bool:
        return all(s.up_to_date for s in self.states) and not self.source_conflicts

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": STATUS_SCHEMA,
            "up_to_date": self.up_to_date,
            "stages": [
                {"name": s.name, "status": s.word,
                 "reasons": [c.to_json() for c in s.reasons], "notes": list(s.notes)}
                for s in self.states
            ],
            "warnings": list(self.warnings),
        }


def running_stages(repo: Repo) -> frozenset[str]:
    """Stages a live ``repro`` is running now (empty when none is)."""
    if not repo.dot.is_dir() or not holder_alive(read_holder(repo.dot / "lock")):
        return frozenset()
    try:
        names = json.loads(repo.state.get("running") or "[]")
    except ValueError:
        return frozenset()
    return frozenset(n for n in names if isinstance(n, str))


def status(repo: Repo, targets: list[str] | None = None) -> StatusReport:
    """The state of every stage (or of ``targets`` and their upstream)."""
    from pipeflow.graph import resolve_targets, select

    project = load_project(repo)
    graph = project.graph
    merged = current_state(repo)
    lock = merged.lock
    planner = Planner(repo, graph, lock, running=running_stages(repo),
                      conflicts=frozenset(merged.stage_conflicts))
    states = planner.evaluate_all(list(graph.order))
    names = select(graph, resolve_targets(graph, targets)) if targets else list(graph.order)
    warnings = []
    cached = [o.path for n in graph.order for o in graph.pipeline.stages[n].outs if o.cache]
    for path in tracked_by_git(repo.root, cached):
        warnings.append(
            f"git tracks the cached output '{path}': run `git rm -r --cached {path}` "
            "and commit, so the cache alone keeps its versions"
        )
    for path in merged.source_conflicts:
        warnings.append(f"source data '{path}': {CONFLICT_REASON} (`pipeflow repro` records "
                        "the workspace's version)")
    for path, entry in lock.sources.items():
        try:
            now = repo.hasher.hash_path(path).hash
        except FileNotFoundError:
            warnings.append(f"source data '{path}' is missing: `pipeflow checkout {path}` "
                            "restores it")
            continue
        if now != entry.hash:
            numbers = ({row.hash: row.number for row in repo.index.versions(path)}
                       if repo.dot.is_dir() else {})
            if now in numbers and entry.hash in numbers:
                warnings.append(f"source data '{path}': v{numbers[now]} checked out, lock has "
                                f"v{numbers[entry.hash]} (`repro` or `checkout {path}` "
                                "restores it)")
            else:
                warnings.append(f"source data '{path}' changed since it was added: `pipeflow "
                                f"add {path}` (or `repro`) records the new version")
    if repo.dot.is_dir():
        repo.hasher.flush()
    return StatusReport(tuple(states[n] for n in names), tuple(warnings),
                        tuple(merged.source_conflicts))
