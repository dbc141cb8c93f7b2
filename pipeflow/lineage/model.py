"""What a traced lineage is: the artifacts (one content of one path each) and the
runs on the path from an output version back to its sources
(:func:`pipeflow.lineage.graph.trace` walks it; ``render`` and ``diff`` read it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pipeflow.lineage.nondeterminism import Nondeterminism
from pipeflow.lineage.trust import Trust
from pipeflow.lineage.who import UNSIGNED, Who
from pipeflow.signing.signatures import Verdict

if TYPE_CHECKING:  # an annotation only: a lineage need not load the reproduction values
    from pipeflow.lineage.reproductions import VersionAudit

ArtifactStatus = Literal["output", "source", "git", "untracked", "absent"]
"""``output``: made by a stage run; ``source``: cached by ``pipeflow add``;
``git``: no record produced it, but git tracks the path at the commit of the run that
read it (``note`` says whether it was modified then); ``untracked``: no record
produced this content and git does not explain it; ``absent``: the path did not exist
when the run that lists it started."""

@dataclass(frozen=True)
class ExperimentMark:
    """The experiment a run was made for (``pipeflow exp run``): its id, its name and
    the params it overrode, as the run's record keeps them."""

    id: str
    name: str
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """params file -> dotted key -> the value set for the experiment."""

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> ExperimentMark | None:
        """The mark a record's ``experiment`` field holds (its shape was checked when the
        record was read); None for a run made outside experiments."""
        if not data:
            return None
        table = data.get("set") or {}
        return cls(str(data["id"]), str(data["name"]),
                   {str(f): dict(keys) for f, keys in table.items()})

    def overrides_key(self, file: str, key: str) -> bool:
        """Whether ``key`` of params file ``file`` was set for the experiment."""
        return key in self.overrides.get(file, {})

    def to_json(self) -> dict[str, Any]:
        """``{"id", "name", "set"}``, as records and ``--json`` write it."""
        return {"id": self.id, "name": self.name,
                "set": {f: dict(keys) for f, keys in self.overrides.items()}}


@dataclass(frozen=True)
class Within:
    """The output folder version a file input was found in."""

    path: str
    hash: str
    version: str | None


@dataclass(frozen=True)
class LineageArtifact:
    """One content of one path on the lineage."""

    id: str
    """``path@hash``: unique within a lineage."""
    path: str
    hash: str
    size: int | None
    isdir: bool
    status: ArtifactStatus
    version: str | None = None
    """Its label, ``vN`` or ``local:<hash prefix>`` (None when no run produced it)."""
    producer: str | None = None
    """The run (or ``add`` record) that produced it; for a file inside a folder,
    the producer of the folder."""
    runs: int = 0
    """How many successful runs produced this content (restores included)."""
    within: Within | None = None
    note: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class CodeFile:
    """A code file a run hashed into its fingerprint."""

    path: str
    hash: str


@dataclass(frozen=True)
class RunOutput:
    """What a run wrote, as its record lists it."""

    path: str
    hash: str
    size: int | None
    kind: str
    """``out``, ``metric`` or ``source`` (the values of ``OutputKind``)."""
    version: str | None = None


@dataclass(frozen=True)
class LineageRun:
    """Everything a run record says about one execution (or ``add``)."""

    id: str
    kind: str
    """``run``, ``add`` or ``restore`` (the values of ``RecordKind``)."""
    stage: str
    command: tuple[str, ...] = ()
    fingerprint: str = ""
    exit_status: int | None = None
    started: str | None = None
    ended: str | None = None
    duration: float | None = None
    user: str | None = None
    host: str | None = None
    pipeflow_version: str | None = None
    git_commit: str | None = None
    dirty_paths: tuple[str, ...] = ()
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    code: tuple[CodeFile, ...] = ()
    env: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    """Artifact ids of its data inputs, in the order the record lists them."""
    outputs: tuple[RunOutput, ...] = ()
    metrics: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    restored_by: str | None = None
    """When the walk reached this run through a restore record: that record."""
    problem: str | None = None
    trust: Trust | None = None
    """Set for a record this clone did not write (from a remote, unsigned)."""
    experiment: ExperimentMark | None = None
    """The experiment the run was made for (None for a run of ``repro``)."""
    signature: Verdict = UNSIGNED
    """The verdict on the record's signature."""
    nondeterministic: Nondeterminism | None = None
    """Its outputs differed from an earlier successful run's with the same
    fingerprint (:mod:`pipeflow.lineage.nondeterminism`); None when they did not."""

    @property
    def who(self) -> Who:
        return Who(self.user, self.signature)


@dataclass(frozen=True)
class Lineage:
    """The lineage of one output version: artifacts and runs in walk order
    (depth first from the target, inputs in record order)."""

    target: str
    artifacts: Mapping[str, LineageArtifact]
    runs: Mapping[str, LineageRun]
    audit: VersionAudit | None = None
    """The target version's reproductions (None: not looked up, e.g. for ``--diff``)."""

    @property
    def root(self) -> LineageArtifact:
        return self.artifacts[self.target]

    def producer_of(self, artifact: LineageArtifact) -> LineageRun | None:
        """The run that made ``artifact`` (None for untracked inputs)."""
        return self.runs.get(artifact.producer) if artifact.producer else None

    @property
    def problems(self) -> list[str]:
        """Every damaged record or artifact met on the walk, as sentences."""
        found = [f"run {r.id[:12]}: {r.problem}" for r in self.runs.values() if r.problem]
        found += [f"{a.path}: {a.problem}" for a in self.artifacts.values() if a.problem]
        return found

    def runs_by_stage(self) -> dict[str, LineageRun]:
        """The first run of each stage in walk order (``add`` records excluded)."""
        out: dict[str, LineageRun] = {}
        for run in self.runs.values():
            if run.kind != "add" and run.stage and run.stage not in out:
                out[run.stage] = run
        return out


def artifact_id(path: str, oid: str) -> str:
    """The id of a path's content within a lineage."""
    return f"{path}@{oid}"
