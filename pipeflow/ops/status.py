"""``pipeflow status``: every stage's state and why, without taking the repo lock."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeflow.files.repolock import holder_alive, read_holder
from pipeflow.git.gitignore import tracked_by_git
from pipeflow.lineage.nondeterminism import Nondeterminism
from pipeflow.lock.lockconflict import CONFLICT_REASON
from pipeflow.lock.lockfile import Lock
from pipeflow.ops.project import current_state, load_project
from pipeflow.planning.plan import Planner, StageState
from pipeflow.planning.sourcedata import SourceState, blocking, describe, source_states
from pipeflow.project.project import Project
from pipeflow.records.batch import nondeterministic_of_runs

STATUS_SCHEMA = 1


@dataclass(frozen=True)
class StatusReport:
    """States in topological order, plus warnings about the workspace."""

    states: tuple[StageState, ...]
    warnings: tuple[str, ...] = ()
    sources: tuple[SourceState, ...] = ()
    """Every source in the lock (``pipeflow add``), with its state."""
    missing_sources: tuple[str, ...] = ()
    """Sources the listed stages read whose locked version is not here: ``repro``
    would stop on them, so the workspace is not up to date whatever the stages say."""
    source_conflicts: tuple[str, ...] = ()
    """Sources in merge conflict in pipeline.lock (stages in conflict are ``changed``)."""
    removed_conflicts: tuple[str, ...] = ()
    """Stages in merge conflict in pipeline.lock that the pipeline no longer declares."""
    nondeterministic: Mapping[str, Nondeterminism] = field(default_factory=dict)
    """Stage -> the mark of the run its lock entry names, for those marked: that run's
    outputs differed from an earlier run's with the same fingerprint."""

    @property
    def up_to_date(self) -> bool:
        return (all(s.up_to_date for s in self.states) and not self.missing_sources
                and not self.source_conflicts and not self.removed_conflicts)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": STATUS_SCHEMA,
            "up_to_date": self.up_to_date,
            "stages": [
                {"name": s.name, "status": s.word.value,
                 "reasons": [c.to_json() for c in s.reasons], "notes": list(s.notes),
                 "nondeterministic": self._mark_json(s.name)}
                for s in self.states
            ],
            "warnings": list(self.warnings),
            "sources": [s.to_json() for s in self.sources],
        }

    def _mark_json(self, stage: str) -> dict[str, Any] | None:
        mark = self.nondeterministic.get(stage)
        return None if mark is None else mark.to_json()


def running_stages(repo: Project) -> frozenset[str]:
    """Stages a live ``repro`` is running now (empty when none is)."""
    if not repo.dot.is_dir() or not holder_alive(read_holder(repo.dot / "lock")):
        return frozenset()
    try:
        names = json.loads(repo.state.get("running") or "[]")
    except ValueError:
        return frozenset()
    return frozenset(n for n in names if isinstance(n, str))


def status(repo: Project, targets: list[str] | None = None) -> StatusReport:
    """The state of every stage (or of ``targets`` and their upstream)."""
    from pipeflow.planning.graph import resolve_targets, select

    project = load_project(repo)
    graph = project.graph
    merged = current_state(repo)
    lock = merged.lock
    planner = Planner(repo, graph, lock, running=running_stages(repo),
                      conflicts=frozenset(merged.stage_conflicts))
    states = planner.evaluate_all(list(graph.order))
    names = select(graph, resolve_targets(graph, targets)) if targets else list(graph.order)
    warnings = list(planner.env.warnings)
    cached = [o.path for n in graph.order for o in graph.pipeline.stages[n].outs if o.cache]
    for path in tracked_by_git(repo.root, cached):
        warnings.append(
            f"git tracks the cached output '{path}': run `git rm -r --cached {path}` "
            "and commit, so the cache alone keeps its versions"
        )
    if repo.dot.is_dir() and repo.committed:
        said, hint = repo.committed.message()
        warnings.append(f"{said}; {hint}")
    for name in sorted(set(merged.stage_conflicts) - set(graph.pipeline.stages)):
        warnings.append(f"stage '{name}': {CONFLICT_REASON}; it is no longer in the pipeline "
                        "(`pipeflow repro` drops it from the lock)")
    for path in merged.source_conflicts:
        warnings.append(f"source data '{path}': {CONFLICT_REASON} (`pipeflow repro` records "
                        "the workspace's version)")
    sources = source_states(repo, lock) if lock.sources else []
    warnings.extend(w for w in (_source_warning(repo, s) for s in sources) if w)
    if repo.dot.is_dir():
        repo.hasher.flush()
    missing = tuple(s.path for s in blocking(sources, graph, names))
    return StatusReport(tuple(states[n] for n in names), tuple(warnings), tuple(sources),
                        missing, tuple(merged.source_conflicts),
                        tuple(sorted(set(merged.stage_conflicts) - set(graph.pipeline.stages))),
                        nondeterministic_marks(repo, lock, [
                            n for n in names if graph.pipeline.stages[n].deterministic]))


def nondeterministic_marks(
    repo: Project, lock: Lock, names: list[str]
) -> dict[str, Nondeterminism]:
    """Stage -> the nondeterminism mark of the run its lock entry names (the run that
    made, or was restored to make, its current outputs), for the marked ones (``status``
    asks only of stages not declared ``deterministic: false``: a declaration made since
    the mark answers it). One query of the index: no record file is read."""
    runs = {n: e.run for n in names if (e := lock.stages.get(n)) is not None and e.run}
    if not runs or not repo.dot.is_dir():
        return {}
    found = nondeterministic_of_runs(repo.index, runs.values())
    return {n: mark for n, rid in runs.items()
            if (mark := Nondeterminism.of(rid, found.get(rid))) is not None}


def _source_warning(repo: Project, source: SourceState) -> str | None:
    """What ``status`` says of a source that is not as the lock records it: restore
    it from the cache, pull it (its version is not here), or record the edit."""
    path = source.path
    if source.state == "absent":
        return f"source data '{path}' is missing: `pipeflow checkout {path}` restores it"
    if source.state == "not-in-cache":
        return describe(source)
    if source.state == "checked-out":
        labels = _known_labels(repo, path)
        return (f"source data '{path}': {labels.get(source.now or '', '?')} checked out, "
                f"lock has {labels.get(source.locked.hash, '?')} (`repro` or "
                f"`checkout {path}` restores it)")
    if source.state == "edited":
        return (f"source data '{path}' changed since it was added: `pipeflow add {path}` "
                "(or `repro`) records the new version")
    return None


def _known_labels(repo: Project, path: str) -> dict[str, str]:
    """Hash -> label of every version of ``path`` the index knows."""
    from pipeflow.lineage.labels import version_labels

    if not repo.dot.is_dir():
        return {}
    labels = version_labels(repo.root, repo.index)
    return {row.hash: labels.label(path, row.hash) for row in repo.index.versions(path)}
