"""``pipeflow models``: every declared model, its versions, where its aliases point,
and the metrics, params and notes of the versions that matter (the latest, the
lock's, each aliased one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeflow.lineage import tags as tagfile
from pipeflow.lineage.aliasstate import overriding, refusal_warnings
from pipeflow.lineage.tags import LogProblem, Note
from pipeflow.lineage.versions import Version, list_versions
from pipeflow.project.project import Project
from pipeflow.registry.models import declared


@dataclass(frozen=True)
class ModelVersion:
    """One version of a model, with what a registry view shows of it."""

    label: str
    hash: str
    when: str
    """When it was first produced."""
    metrics: dict[str, Any]
    """``file:key`` -> value (its own run's, then those of runs that evaluated it)."""
    params: dict[str, dict[str, Any]]
    """Params file -> key -> value its run read (absolute values)."""
    aliases: tuple[str, ...]
    notes: tuple[Note, ...] = ()
    current: bool = False
    """The version pipeline.lock names."""

    def to_json(self) -> dict[str, Any]:
        return {"version": self.label, "hash": self.hash, "when": self.when,
                "metrics": self.metrics, "params": self.params, "aliases": list(self.aliases),
                "notes": [{"text": n.text, "user": n.user, "when": n.when} for n in self.notes],
                "current": self.current}


@dataclass(frozen=True)
class Model:
    name: str
    path: str
    stage: str
    desc: str | None
    versions: int
    latest: ModelVersion | None
    aliases: dict[str, ModelVersion] = field(default_factory=dict)
    current: ModelVersion | None = None

    def to_json(self) -> dict[str, Any]:
        return {"model": self.name, "path": self.path, "stage": self.stage, "desc": self.desc,
                "versions": self.versions,
                "latest": self.latest.to_json() if self.latest else None,
                "current": self.current.to_json() if self.current else None,
                "aliases": {a: v.to_json() for a, v in sorted(self.aliases.items())}}


@dataclass(frozen=True)
class Catalog:
    models: list[Model]
    problems: tuple[LogProblem, ...] = ()
    refused: tuple[str, ...] = ()


def catalog(repo: Project) -> Catalog:
    """Every declared model, in spec order."""
    from pipeflow.ops.checkout import out_entries_all
    from pipeflow.ops.lineage import current_lock

    log = tagfile.read(repo)
    locked = out_entries_all(current_lock(repo))
    models = []
    for model in declared(repo).values():
        entry = locked.get(model.path)
        notes = log.notes_of(model.path)
        found = list_versions(repo, model.path, current_hash=entry.hash if entry else None,
                              tags=log.tags_of(model.path), notes=notes)

        def shown(v: Version, notes: dict[str, list[Note]] = notes) -> ModelVersion:
            return ModelVersion(v.label, v.hash, v.first_seen, v.metrics,
                                repo.index.params_of(v.first_run), v.tags,
                                tuple(notes.get(v.hash, ())), v.current)

        latest = max(found, key=lambda v: v.first_seen, default=None)
        current = next((v for v in found if v.current), None)
        aliased = {t: shown(v) for v in found for t in v.tags}
        models.append(Model(model.name, model.path, model.stage, model.desc, len(found),
                            shown(latest) if latest else None, aliased,
                            shown(current) if current else None))
    return Catalog(models, log.problems, tuple(refusal_warnings(overriding(log))))
