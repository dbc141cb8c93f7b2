"""Reproductions as the records keep them: one ``reproduction`` record per ``pipeflow
reproduce`` of an output version, in the clone's chain like every run record, so they
travel with ``push``/``fetch`` and are checked by ``verify``.

The verdict (the record's ``reproduction`` field)::

    {"path": "models/model.pkl", "hash": "<oid>", "version": "v1", "model": "wine",
     "verdict": "bit-identical",          # the worst of its stages'
     "commit": "<the git commit checked out>", "executor": "local",
     "env": [{"name": "scikit-learn", "recorded": "1.3.0", "current": "1.4.2"}],
     "stages": [{"stage": "train", "verdict": "differs", "run": "<recorded run id>",
                 "fingerprint": "...", "reason": "...", "exit_status": 0,
                 "log_tail": "...", "outputs": [<OutputDiff.to_json()>]}]}

Stages are in the order they ran (sources up). :mod:`pipeflow.reproduce` writes them;
``lineage`` shows a version's last one and ``verify --reproduced`` lists versions by
verdict.

The index keeps the version each record is about (table ``reproductions``: path,
hash), so ``lineage`` reads only the newest record of one version; ``verify
--reproduced`` reads them all (one index query, then each record file: about 0.2 ms
a record, docs/reproduce.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pipeflow.errors import StorageError
from pipeflow.lineage.trust import Trust, TrustPolicy
from pipeflow.lineage.who import UNSIGNED, Who
from pipeflow.records.records import RecordKind, RunRecord
from pipeflow.signing.signatures import Verdict as SignatureVerdict

Vouch = Callable[[RunRecord], Trust]
"""Who wrote a record, and whether a trusted key signed it (``TrustPolicy.trusted``)."""

if TYPE_CHECKING:
    from pipeflow.project.project import Project


class Verdict(StrEnum):
    """What a reproduction says of one stage, ordered from best to worst; a whole
    version's verdict is its worst stage's."""

    FROZEN = "frozen"
    """A ``frozen`` stage: its recorded outputs restored, not rebuilt (like source
    data); it does not count in the version's verdict."""
    IDENTICAL = "bit-identical"
    WITHIN_TOLERANCE = "within-tolerance"
    DIFFERS = "differs"
    FAILED = "failed"
    CANNOT = "cannot-reproduce"

    @property
    def reproduced(self) -> bool:
        return self in (Verdict.IDENTICAL, Verdict.WITHIN_TOLERANCE)

    @property
    def words(self) -> str:
        """How people read it: ``reproduced (bit-identical)``, ``cannot reproduce``."""
        return _WORDS[self]

    @classmethod
    def worst(cls, verdicts: Sequence[Verdict]) -> Verdict:
        """The worst of ``verdicts``; nothing judged proves nothing: ``cannot-reproduce``."""
        order = list(cls)
        return max(verdicts, key=order.index) if verdicts else cls.CANNOT


_WORDS = {
    Verdict.FROZEN: "frozen (restored, not rebuilt)",
    Verdict.IDENTICAL: "reproduced (bit-identical)",
    Verdict.WITHIN_TOLERANCE: "reproduced (within tolerance)",
    Verdict.DIFFERS: "differs",
    Verdict.FAILED: "failed",
    Verdict.CANNOT: "cannot reproduce",
}


@dataclass(frozen=True)
class ValueDiff:
    """One metrics value that came out different: ``accuracy 0.912 -> 0.913``."""

    key: str
    """Dotted key (JSON/YAML) or ``row N column`` (CSV)."""
    recorded: Any
    produced: Any
    relative: float | None = None
    """``|produced - recorded| / |recorded|`` for numbers (None otherwise)."""
    file: str | None = None
    """The file inside an output folder that holds it (None for a file output)."""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"key": self.key, "recorded": self.recorded,
                                "produced": self.produced, "relative": self.relative}
        if self.file is not None:
            body["file"] = self.file
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ValueDiff:
        return cls(data["key"], data.get("recorded"), data.get("produced"),
                   data.get("relative"), data.get("file"))


@dataclass(frozen=True)
class OutputDiff:
    """One output of a reproduced stage against its recorded version."""

    path: str
    recorded: str
    """The recorded hash."""
    produced: str | None
    """The reproduced hash (None: the stage did not write it)."""
    recorded_size: int | None = None
    produced_size: int | None = None
    same: bool = False
    """Bit-identical."""
    within_tolerance: bool | None = None
    """For a stage declared ``deterministic: false``: whether every metrics value is
    within its ``tolerance`` (None when not compared that way)."""
    values: tuple[ValueDiff, ...] = ()
    """Metrics files (JSON, YAML, CSV): the values that differ."""
    first_byte: int | None = None
    """Other files: the offset of the first byte that differs (None when unknown:
    the recorded version is not in the cache, or the output is a folder)."""
    files: tuple[str, ...] = ()
    """A folder: the files in it that differ, were added or removed (first ones)."""
    note: str | None = None
    """What could not be compared, and why."""

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "recorded": self.recorded, "produced": self.produced,
                "recorded_size": self.recorded_size, "produced_size": self.produced_size,
                "same": self.same, "within_tolerance": self.within_tolerance,
                "values": [v.to_json() for v in self.values],
                "first_byte": self.first_byte, "files": list(self.files), "note": self.note}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutputDiff:
        return cls(data["path"], data["recorded"], data.get("produced"),
                   data.get("recorded_size"), data.get("produced_size"),
                   bool(data.get("same")), data.get("within_tolerance"),
                   tuple(ValueDiff.from_json(v) for v in data.get("values") or ()),
                   data.get("first_byte"), tuple(data.get("files") or ()), data.get("note"))


@dataclass(frozen=True)
class StageVerdict:
    """What reproducing one stage of a version's lineage gave."""

    stage: str
    verdict: Verdict
    reason: str | None = None
    """Why it ``cannot-reproduce`` or ``failed``, or a note beside another verdict
    (e.g. its inputs differ because an upstream stage's output did)."""
    run: str | None = None
    """The recorded run (record id) it was compared with."""
    fingerprint: str | None = None
    exit_status: int | None = None
    log_tail: str | None = None
    outputs: tuple[OutputDiff, ...] = ()
    blocked_by: str | None = None
    """The upstream stage that failed or could not be reproduced, when that is why
    this one was not run (its verdict then does not count in the version's)."""

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "verdict": self.verdict.value, "reason": self.reason,
                "run": self.run, "fingerprint": self.fingerprint,
                "exit_status": self.exit_status, "log_tail": self.log_tail,
                "outputs": [o.to_json() for o in self.outputs],
                "blocked_by": self.blocked_by}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StageVerdict:
        return cls(data["stage"], Verdict(data["verdict"]), data.get("reason"),
                   data.get("run"), data.get("fingerprint"), data.get("exit_status"),
                   data.get("log_tail"),
                   tuple(OutputDiff.from_json(o) for o in data.get("outputs") or ()),
                   data.get("blocked_by"))


@dataclass(frozen=True)
class EnvDifference:
    """One way the current environment differs from the recorded one: the
    interpreter (``name`` ``python``) or a distribution (None: absent)."""

    name: str
    recorded: str | None
    current: str | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "recorded": self.recorded, "current": self.current}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EnvDifference:
        return cls(data["name"], data.get("recorded"), data.get("current"))


@dataclass(frozen=True)
class Reproduction:
    """One reproduction of one output version: what ``reproduce`` returns, and what
    its record keeps."""

    path: str
    hash: str
    version: str | None
    verdict: Verdict
    stages: tuple[StageVerdict, ...] = ()
    model: str | None = None
    commit: str | None = None
    env: tuple[EnvDifference, ...] = ()
    executor: str = "local"
    duration: float | None = None
    record: str | None = None
    """The id of the ``reproduction`` record (None before it is written)."""
    when: str | None = None
    user: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    signature: SignatureVerdict = field(default=UNSIGNED, compare=False)
    """The verdict on its record's signature: a record is anyone's word unless a key
    the project trusts signed it."""
    unrecorded: str | None = field(default=None, compare=False)
    """Why ``reproduce`` wrote no record of it (None: it did, or it was read from one)."""

    @property
    def ok(self) -> bool:
        return self.verdict.reproduced

    @property
    def who(self) -> Who:
        return Who(self.user, self.signature)

    def to_json(self) -> dict[str, Any]:
        """The record's ``reproduction`` field."""
        return {"path": self.path, "hash": self.hash, "version": self.version,
                "model": self.model, "verdict": self.verdict.value, "commit": self.commit,
                "executor": self.executor, "duration": self.duration,
                "env": [e.to_json() for e in self.env],
                "stages": [s.to_json() for s in self.stages]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, record: str | None = None,
                  when: str | None = None, user: str | None = None) -> Reproduction:
        """A record's ``reproduction`` field (its shape was checked when the record
        was read: :mod:`pipeflow.records.recordshape`)."""
        return cls(data["path"], data["hash"], data.get("version"), Verdict(data["verdict"]),
                   tuple(StageVerdict.from_json(s) for s in data.get("stages") or ()),
                   data.get("model"), data.get("commit"),
                   tuple(EnvDifference.from_json(e) for e in data.get("env") or ()),
                   data.get("executor") or "local", data.get("duration"), record, when, user)


def from_record(record: RunRecord, vouch: Vouch | None = None) -> Reproduction:
    """The reproduction a ``reproduction`` record keeps, with its id, time, user and
    (``vouch``: the trust policy's verdict) signature; a StorageError when the record
    lacks its ``reproduction`` field."""
    data = record.body.reproduction
    if data is None:
        raise StorageError(f"run record {record.rel_path} is a reproduction record without "
                           "its 'reproduction' field",
                           hint="`pipeflow verify --reproduced` lists the damaged ones")
    b = record.body
    found = Reproduction.from_json(data, record=record.id, when=b.ended or b.started,
                                   user=b.user)
    return replace(found, signature=vouch(record).signature) if vouch else found


def reproduction_records(repo: Project) -> list[RunRecord]:
    """Every readable ``reproduction`` record, oldest first (a damaged one is skipped
    with a warning in ``repo.index.skipped``; ``verify`` reports it)."""
    found = []
    for rel in repo.index.rels_of_kind(RecordKind.REPRODUCTION.value):
        try:
            found.append(repo.records.read_rel(rel))
        except StorageError as exc:
            _skip(repo, rel, exc)
    return found


def reproductions(repo: Project) -> list[Reproduction]:
    """Every reproduction this clone knows of (its own and fetched ones), oldest first;
    damaged records are skipped with a warning."""
    found = []
    vouch = TrustPolicy.of(repo).trusted
    for record in reproduction_records(repo):
        try:
            found.append(from_record(record, vouch))
        except (StorageError, KeyError, ValueError) as exc:
            _skip(repo, record.rel_path, exc)
    return found


def of_version(repo: Project, path: str, oid: str) -> list[Reproduction]:
    """The reproductions of ``path`` at content ``oid``, oldest first (an indexed
    lookup: only that version's records are read)."""
    found = []
    from pipeflow.records.batch import reproduction_rels

    vouch = TrustPolicy.of(repo).trusted
    for rel in reproduction_rels(repo.index, path, oid):
        got = _read(repo, rel, vouch)
        if got is not None:
            found.append(got)
    return found


def last_of(repo: Project, path: str, oid: str) -> Reproduction | None:
    """The latest reproduction of ``path`` at content ``oid`` (None: never reproduced)."""
    return audit_of(repo, path, oid).last


def latest_by_version(repo: Project, pool: list[Reproduction] | None = None
                      ) -> dict[tuple[str, str], Reproduction]:
    """(path, hash) -> the latest reproduction of that version, for every version
    reproduced at least once, in the order their latest reproductions were made
    (``pool``: the reproductions to look at, default all of them)."""
    latest: dict[tuple[str, str], Reproduction] = {}
    for found in reproductions(repo) if pool is None else pool:
        latest.pop((found.path, found.hash), None)
        latest[(found.path, found.hash)] = found
    return latest


@dataclass(frozen=True)
class VersionAudit:
    """What ``lineage`` says of a version's reproductions: the latest one, how many
    came before it, and whether the project has reproduced anything at all (a
    project that never did is not told, on every version, that it never did)."""

    last: Reproduction | None
    earlier: int = 0
    any_in_project: bool = False

    def to_json(self) -> dict[str, Any] | None:
        """``lineage --json``'s ``reproduction`` field (None: never reproduced)."""
        if self.last is None:
            return None
        return {**self.last.to_json(), "record": self.last.record, "when": self.last.when,
                "user": self.last.user, "signature": self.last.signature.status.value,
                "signer": self.last.signature.signer, "earlier": self.earlier}


def audit_of(repo: Project, path: str, oid: str) -> VersionAudit:
    """The reproductions of ``path`` at ``oid``, as ``lineage`` shows them: the
    newest readable record is read (a damaged one is skipped with a warning), the
    earlier ones only counted."""
    from pipeflow.records.batch import reproduction_rels

    rels = reproduction_rels(repo.index, path, oid)
    vouch = TrustPolicy.of(repo).trusted if rels else None
    for n in range(len(rels) - 1, -1, -1):
        got = _read(repo, rels[n], vouch)
        if got is not None:
            return VersionAudit(got, n, True)
    anywhere = repo.index.rels_of_kind(RecordKind.REPRODUCTION.value)  # names only: cheap
    return VersionAudit(None, 0, bool(anywhere))


def _read(repo: Project, rel: str, vouch: Vouch | None) -> Reproduction | None:
    try:
        return from_record(repo.records.read_rel(rel), vouch)
    except (StorageError, KeyError, ValueError) as exc:
        _skip(repo, rel, exc)
        return None


def _skip(repo: Project, rel: str, exc: Exception) -> None:
    why = exc.message if isinstance(exc, StorageError) else f"bad field ({exc})"
    warning = (f"reproduction record {rel}: {why}: skipped (`pipeflow verify` lists "
               "damaged records)")
    if warning not in repo.index.skipped:
        repo.index.skipped.append(warning)
