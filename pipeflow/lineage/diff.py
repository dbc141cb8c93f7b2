"""What differs between the histories of two versions of an output.

Both lineages are walked in full; their runs are matched by stage name, and for
each stage present in either the command, params values, code files, environment
and data inputs are compared. A stage whose run is the same record on both sides
has no differences (it is shared history).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeflow.lineage.model import Lineage, LineageArtifact, LineageRun

DiffKind = Literal["command", "params", "code", "env", "data", "stage"]


@dataclass(frozen=True)
class Difference:
    """One thing that differs; ``old``/``new`` are None when absent on that side."""

    kind: DiffKind
    subject: str
    old: Any = None
    new: Any = None

    @property
    def message(self) -> str:
        """The sentence ``lineage --diff`` prints."""
        if self.kind == "stage":
            side = "old" if self.new is None else "new"
            return f"stage '{self.subject}' is only in the {side} history"
        if self.kind == "command":
            return f"command: {_show(self.old)} -> {_show(self.new)}"
        if self.old is None:
            return f"{self.kind} {self.subject}: added ({_show(self.new)})"
        if self.new is None:
            return f"{self.kind} {self.subject}: removed (was {_show(self.old)})"
        return f"{self.kind} {self.subject}: {_show(self.old)} -> {_show(self.new)}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "old": self.old, "new": self.new,
                "message": self.message}


@dataclass(frozen=True)
class StageDiff:
    """The differences of one stage between the two histories."""

    stage: str
    old_run: str | None
    new_run: str | None
    differences: tuple[Difference, ...]

    def __bool__(self) -> bool:
        return bool(self.differences)


@dataclass(frozen=True)
class LineageDiff:
    """Two versions of one path, and what differs in their histories (falsy when
    nothing does)."""

    path: str
    old_hash: str
    new_hash: str
    old_version: str | None
    new_version: str | None
    stages: tuple[StageDiff, ...]

    def __bool__(self) -> bool:
        return any(self.stages)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "path": self.path,
            "old": {"hash": self.old_hash, "version": self.old_version},
            "new": {"hash": self.new_hash, "version": self.new_version},
            "stages": [
                {"stage": s.stage, "old_run": s.old_run, "new_run": s.new_run,
                 "differences": [d.to_json() for d in s.differences]}
                for s in self.stages if s
            ],
        }


def _show(value: Any) -> str:
    if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
        return repr(" && ".join(value)) if value else "''"
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, sort_keys=True)


def _compare(kind: DiffKind, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Difference]:
    return [Difference(kind, key, old.get(key), new.get(key))
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def _flat_params(run: LineageRun) -> dict[str, Any]:
    return {f"{f}:{k}": v for f, values in run.params.items() for k, v in values.items()}


def _data(run: LineageRun, lineage: Lineage) -> dict[str, str]:
    """Input path -> how to show its content (version label beside the hash prefix)."""
    out: dict[str, str] = {}
    for aid in run.inputs:
        art: LineageArtifact | None = lineage.artifacts.get(aid)
        path, _, oid = aid.rpartition("@")
        if art is not None and art.version:
            out[path] = f"{art.version} ({oid[:8]})"
        elif art is not None and art.within is not None:
            out[path] = f"{oid[:8]} (in {art.within.path} {art.within.version or ''})".replace(
                " )", ")")
        else:
            out[path] = oid[:8] if oid else "(absent)"
    return out


def diff_runs(old: LineageRun, new: LineageRun, old_l: Lineage, new_l: Lineage) -> StageDiff:
    """The differences between two runs of one stage."""
    if old.id == new.id:
        return StageDiff(old.stage, old.id, new.id, ())
    found: list[Difference] = []
    if old.command != new.command:
        found.append(Difference("command", old.stage, list(old.command), list(new.command)))
    found += _compare("params", _flat_params(old), _flat_params(new))
    found += _compare("code", {c.path: c.hash[:8] for c in old.code},
                      {c.path: c.hash[:8] for c in new.code})
    found += _compare("env", dict(old.env), dict(new.env))
    found += _compare("data", _data(old, old_l), _data(new, new_l))
    return StageDiff(old.stage, old.id, new.id, tuple(found))


def diff_lineages(old: Lineage, new: Lineage) -> LineageDiff:
    """Match the runs of two lineages by stage and compare each pair."""
    old_runs = old.runs_by_stage()
    new_runs = new.runs_by_stage()
    stages: list[StageDiff] = []
    for stage in dict.fromkeys([*new_runs, *old_runs]):
        a, b = old_runs.get(stage), new_runs.get(stage)
        if a is not None and b is not None:
            stages.append(diff_runs(a, b, old, new))
        else:
            diff = Difference("stage", stage, a.id if a else None, b.id if b else None)
            stages.append(StageDiff(stage, a.id if a else None, b.id if b else None, (diff,)))
    return LineageDiff(old.root.path, old.root.hash, new.root.hash, old.root.version,
                       new.root.version, tuple(stages))
