"""``pipeflow verify --reproduced``: every version that was reproduced, grouped by the
verdict of its latest reproduction, and the versions of declared models that never
were.

A version's standing is its *latest* reproduction's verdict: a version that differed
once and was reproduced bit-identical since counts as reproduced (the earlier record
stays in the history; ``lineage`` says how many came before). Exit status, as CI wants
it (:attr:`ReproducedReport.ok`): 1 when any version's latest verdict is not a
reproduction (differs, failed, cannot reproduce) or a reproduction record is damaged;
with ``--strict`` also when the version ``pipeline.lock`` names of a declared model
(``model:`` on an output) was never reproduced. Older versions never reproduced are
listed, never failing: nobody is asked to prove every old model.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipeflow.errors import PipeflowError
from pipeflow.lineage.labels import version_labels
from pipeflow.lineage.reproductions import (
    Reproduction,
    Verdict,
    latest_by_version,
    reproductions,
)
from pipeflow.ops.lineage import light_versions, locked_paths
from pipeflow.project.project import Project


@dataclass(frozen=True)
class ReproducedVersion:
    """A version with at least one reproduction, and its latest."""

    label: str
    """``vN`` (or ``side:``/``local:`` and a hash prefix), as ``lineage`` labels it."""
    last: Reproduction
    reproductions: int
    current: bool
    """The version ``pipeline.lock`` names."""
    model: str | None = None

    def to_json(self) -> dict[str, Any]:
        last = self.last
        return {"path": last.path, "hash": last.hash, "version": self.label,
                "model": self.model or last.model, "verdict": last.verdict.value,
                "reproduced": last.ok, "when": last.when, "user": last.user,
                "signature": last.signature.status.value, "signer": last.signature.signer,
                "record": last.record, "reproductions": self.reproductions,
                "current": self.current, "stages": [s.to_json() for s in last.stages]}


@dataclass(frozen=True)
class NeverReproduced:
    """A version of a declared model that no reproduction record names."""

    path: str
    hash: str
    label: str
    model: str
    current: bool

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "hash": self.hash, "version": self.label,
                "model": self.model, "current": self.current}


@dataclass
class ReproducedReport:
    """What ``verify --reproduced`` found."""

    versions: list[ReproducedVersion] = field(default_factory=list)
    """Oldest latest-reproduction first."""
    never: list[NeverReproduced] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    """Reproduction records that could not be read (skipped), as sentences."""
    strict: bool = False

    def by_verdict(self) -> dict[Verdict, list[ReproducedVersion]]:
        """The versions grouped by their latest verdict, best verdict first (only the
        verdicts some version has)."""
        groups: dict[Verdict, list[ReproducedVersion]] = {v: [] for v in Verdict}
        for version in self.versions:
            groups[version.last.verdict].append(version)
        return {v: found for v, found in groups.items() if found}

    @property
    def failing(self) -> list[ReproducedVersion]:
        return [v for v in self.versions if not v.last.ok]

    @property
    def unproven(self) -> list[NeverReproduced]:
        """What ``--strict`` fails on: current versions of models never reproduced."""
        return [n for n in self.never if n.current] if self.strict else []

    @property
    def ok(self) -> bool:
        return not (self.failing or self.damaged or self.unproven)

    def to_json(self) -> dict[str, Any]:
        return {"schema": 1, "ok": self.ok, "strict": self.strict,
                "versions": [v.to_json() for v in self.versions],
                "never_reproduced": [n.to_json() for n in self.never],
                "damaged": list(self.damaged)}


def reproduced(repo: Project, *, strict: bool = False) -> ReproducedReport:
    """Every reproduced version by its latest verdict, and declared models' versions
    never reproduced."""
    skipped_before = len(repo.index.skipped)
    every = reproductions(repo)
    report = ReproducedReport(damaged=[s for s in repo.index.skipped[skipped_before:]
                                       if s.startswith("reproduction record")],
                              strict=strict)
    labels = version_labels(repo.root, repo.index)
    entries, _ = locked_paths(repo)
    current = {path: entry.hash for path, entry in entries.items()}
    models = _models(repo, strict)
    latest = latest_by_version(repo, every)
    count = Counter((found.path, found.hash) for found in every)
    report.versions = [
        ReproducedVersion(labels.label(path, oid), found, count[(path, oid)],
                          current.get(path) == oid, models.get(path))
        for (path, oid), found in latest.items()]
    for path, model in sorted(models.items()):
        report.never += [NeverReproduced(path, v.hash, v.label, model, current.get(path) == v.hash)
                         for v in light_versions(repo, path) if (path, v.hash) not in latest]
    return report


def _models(repo: Project, strict: bool) -> dict[str, str]:
    """Output path -> the model it is declared as (``model:``); none when the spec
    cannot be read (the list of reproductions does not need it) — unless ``strict``,
    whose gate is the models: a spec error then stops it (exit 2), never a pass. The
    model lookup lives here, not in ``pipeflow.registry`` (a layer above ops)."""
    from pipeflow.ops.project import load_project

    try:
        pipeline = load_project(repo).graph.pipeline
    except PipeflowError:
        if strict:
            raise
        return {}
    return {out.path: out.model for stage in pipeline.stages.values()
            for out in stage.outs if out.model is not None}
