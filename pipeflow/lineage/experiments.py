"""Experiments as the records keep them: one ``experiment`` record per experiment run
(its summary) and one per removal, in the clone's chain like every run record, so
they travel with ``push``/``fetch`` and are checked by ``verify``.

The summary (the record's ``experiment`` field)::

    {"id": "3f2a9c01d2e4", "name": "lr-high", "status": "done" | "failed",
     "set": {"params.yaml": {"train.C": 10}},          # the overrides
     "params": {"params.yaml": {"train.C": 10, ...}},  # every key the stages read
     "metrics": {"metrics/scores.json": {"accuracy": 0.93}},
     "targets": [], "sweep": "9b1e...", "index": 0,
     "stages": {"train": {"how": "ran", "run": "<record id>", "fingerprint": "..."}},
     "outputs": [<output entries, as a record lists them>],
     "failed_stage": "train", "log_tail": "..."}

A removal is ``{"id": ..., "name": ..., "status": "removed"}``. The stage records an
experiment wrote carry the mark ``{"id", "name", "set"}``
(:class:`pipeflow.lineage.model.ExperimentMark`), which ``lineage`` and ``versions``
show.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pipeflow.errors import StorageError, UsageError
from pipeflow.records.records import OutputRef, RecordKind, RunRecord

if TYPE_CHECKING:
    from pipeflow.project.project import Project

Table = Mapping[str, Mapping[str, Any]]
"""file (or metrics path) -> dotted key -> value."""


class ExpStatus(StrEnum):
    """How an experiment ended (``removed``: a later record took it away)."""

    DONE = "done"
    FAILED = "failed"
    REMOVED = "removed"


@dataclass(frozen=True)
class StageOutcome:
    """What an experiment did with one stage: ``ran``, ``restored`` (the workspace's
    lock or the run cache had it), ``skipped`` (up to date), ``failed``, ``blocked``
    (upstream failed) or ``not-started``."""

    stage: str
    how: str
    run: str | None = None
    """The record of the run whose outputs the experiment ended with."""
    fingerprint: str | None = None


@dataclass(frozen=True)
class Experiment:
    """One experiment, as its summary record says."""

    id: str
    name: str
    status: ExpStatus
    overrides: Table = field(default_factory=dict)
    params: Table = field(default_factory=dict)
    metrics: Table = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    stages: tuple[StageOutcome, ...] = ()
    outputs: tuple[OutputRef, ...] = ()
    failed_stage: str | None = None
    error: str | None = None
    log_tail: str = ""
    sweep: str | None = None
    """The id shared by the experiments of one ``exp run`` (one sweep)."""
    index: int = 0
    """Its place in the sweep."""
    created: str = ""
    """When it ended (UTC ISO 8601, as records keep times)."""
    duration: float = 0.0
    user: str | None = None
    host: str | None = None
    commit: str | None = None
    """The git commit the workspace was at (its uncommitted edits were part of it)."""
    dirty: tuple[str, ...] = ()
    record: str = ""
    """The id of the summary record."""

    @property
    def ok(self) -> bool:
        return self.status is ExpStatus.DONE

    def summary(self) -> dict[str, Any]:
        """The record's ``experiment`` field for this experiment."""
        body: dict[str, Any] = {
            "id": self.id, "name": self.name, "status": self.status.value,
            "set": _plain(self.overrides), "params": _plain(self.params),
            "metrics": _plain(self.metrics), "targets": list(self.targets),
            "stages": {s.stage: {"how": s.how, "run": s.run, "fingerprint": s.fingerprint}
                       for s in self.stages},
            "outputs": [o.to_json() for o in self.outputs], "index": self.index}
        if self.sweep:
            body["sweep"] = self.sweep
        if self.failed_stage:
            body["failed_stage"] = self.failed_stage
        if self.log_tail:
            body["log_tail"] = self.log_tail
        return body

    @classmethod
    def from_record(cls, record: RunRecord) -> Experiment:
        """The experiment an ``experiment`` record describes (its shape was checked
        when it was read: :mod:`pipeflow.records.recordshape`)."""
        b = record.body
        data = dict(b.experiment or {})
        stages = data.get("stages") or {}
        said = str(data.get("status"))
        return cls(
            id=data["id"], name=data["name"],
            status=ExpStatus(said) if said in set(ExpStatus) else ExpStatus.FAILED,
            overrides=_plain(data.get("set") or {}), params=_plain(data.get("params") or {}),
            metrics=_plain(data.get("metrics") or {}), targets=tuple(data.get("targets") or ()),
            stages=tuple(StageOutcome(n, o["how"], o.get("run"), o.get("fingerprint"))
                         for n, o in stages.items()),
            outputs=tuple(OutputRef.from_json(o) for o in data.get("outputs") or ()),
            failed_stage=data.get("failed_stage"), error=b.error,
            log_tail=data.get("log_tail") or "", sweep=data.get("sweep"),
            index=data.get("index") or 0, created=b.ended or b.started or "",
            duration=b.duration or 0.0, user=b.user, host=b.host,
            commit=b.git.commit if b.git else None,
            dirty=b.git.dirty_paths if b.git else (), record=record.id)


def _plain(table: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in table.items()}


def experiment_records(repo: Project) -> list[RunRecord]:
    """Every readable ``experiment`` record, oldest first (damaged ones are skipped:
    ``verify`` reports them)."""
    found = []
    for rel in repo.index.rels_of_kind(RecordKind.EXPERIMENT.value):
        try:
            found.append(repo.records.read_rel(rel))
        except StorageError:
            continue
    return found


def experiments(repo: Project, *, removed: bool = False) -> list[Experiment]:
    """The project's experiments (this clone's and fetched ones), oldest first; a
    removed one only with ``removed``."""
    runs: dict[str, Experiment] = {}
    gone: dict[str, Experiment] = {}
    for record in experiment_records(repo):
        exp = Experiment.from_record(record)
        if exp.status is ExpStatus.REMOVED:
            gone[exp.id] = exp
        else:
            runs[exp.id] = exp
    kept = [e for i, e in runs.items() if i not in gone]
    if removed:
        kept += [gone[i] for i in gone]
    return kept


def find(repo: Project, name: str, pool: list[Experiment] | None = None) -> Experiment:
    """The experiment called ``name`` (or whose id starts with it); a UsageError with
    the closest names when there is none, or when the name is not unique."""
    pool = experiments(repo) if pool is None else pool
    named = [e for e in pool if e.name == name]
    if not named and len(name) >= 4:
        named = [e for e in pool if e.id.startswith(name)]
    if len(named) == 1:
        return named[0]
    if named:
        ids = ", ".join(e.id for e in named)
        raise UsageError(f"{len(named)} experiments are called '{name}' (ids {ids})",
                         hint="name one by its id (a prefix of 4 or more characters)")
    close = difflib.get_close_matches(name, [e.name for e in pool], n=3, cutoff=0.5)
    hint = (f"did you mean {', '.join(repr(c) for c in close)}?" if close
            else "`pipeflow exp show` lists the experiments")
    if len(name) < 4 and any(e.id.startswith(name) for e in pool):
        hint = "an id prefix names an experiment from 4 characters on; " + hint
    raise UsageError(f"no experiment '{name}'", hint=hint)


def require_project(home: Project) -> None:
    """UsageError unless ``home`` has been set up (``.pipeflow/``): experiments
    need the cache and records of a project that ran once."""
    if not home.dot.is_dir():
        raise UsageError(f"{home.root} is not a pipeflow project yet",
                         hint="run `pipeflow repro` (or `pipeflow init`) first")
    _ = home.config  # a bad config is reported before anything is done
