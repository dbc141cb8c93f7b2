"""A run record, typed: what one execution (or restore, or ``add``) of a stage left.

:class:`RecordBody` is the JSON document a record file holds, with ``to_json`` and
``from_json`` (which refuses, with :class:`RecordError`, a body that
:mod:`pipeflow.records.recordshape` does not accept: records travel through remotes
others can write to). :class:`RunRecord` is a stored one: its id (the SHA-256 of
:func:`canonical` bytes), the chain and seq its file sits at, and its body.
:mod:`pipeflow.records.records` stores them.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self

from pipeflow.errors import StorageError
from pipeflow.records import recordshape

if TYPE_CHECKING:
    from pipeflow.content.hashing import HashInfo


def iso(ts: float) -> str:
    """UTC ISO 8601 with milliseconds, as records keep times."""
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="milliseconds")


def canonical(body: Mapping[str, Any]) -> bytes:
    """The bytes a record is addressed by: sorted keys, no spaces, UTF-8."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")


class RecordError(StorageError):
    """A run record's body that is not one: the wrong shape, or naming a path
    pipeflow must not use. Such a record is skipped with a warning, never used."""


class RecordKind(StrEnum):
    """What made a record: a stage ran, its outputs came from the run cache, or
    ``pipeflow add`` cached source data."""

    RUN = "run"
    RESTORE = "restore"
    ADD = "add"
    EXPERIMENT = "experiment"
    """The summary of one experiment (``exp run``) or its removal: no stage, no
    outputs of its own; its ``experiment`` field says what it was
    (:mod:`pipeflow.lineage.experiments`)."""
    REPRODUCTION = "reproduction"
    """One ``pipeflow reproduce`` of an output version: no stage, no outputs of its
    own; its ``reproduction`` field holds the verdict per stage
    (:mod:`pipeflow.lineage.reproductions`)."""


class OutputKind(StrEnum):
    """What an output entry of a record is."""

    OUT = "out"
    METRIC = "metric"
    SOURCE = "source"
    """Source data cached by ``pipeflow add``."""


@dataclass(frozen=True)
class FileRef:
    """A file or folder a run read (a dep or code entry of its components)."""

    path: str
    hash: str
    size: int | None = None
    isdir: bool = False
    nfiles: int | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"path": self.path, "hash": self.hash, "size": self.size}
        if self.isdir:
            body["isdir"] = True
            body["nfiles"] = self.nfiles
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """An entry that passed :mod:`recordshape`'s checks (a file count is a
        folder's only)."""
        isdir = data.get("isdir") is True
        return cls(data["path"], data["hash"], data.get("size"), isdir,
                   data.get("nfiles") if isdir else None)

    def hash_info(self) -> HashInfo:
        """Its content as the hasher and the store speak it."""
        from pipeflow.content.hashing import HashInfo

        return HashInfo(self.hash, self.size or 0, self.isdir, self.nfiles)


@dataclass(frozen=True)
class OutputRef(FileRef):
    """A file or folder a run (or ``add``) wrote, as its record lists it."""

    kind: OutputKind = OutputKind.OUT
    """An entry without one is an ``out``."""
    cache: bool = True

    def to_json(self) -> dict[str, Any]:
        body = super().to_json()
        if self.kind is OutputKind.SOURCE:  # `add` records have always listed both
            body["isdir"] = self.isdir
            body["nfiles"] = self.nfiles
        body["kind"] = self.kind.value
        if not self.cache:
            body["cache"] = False
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        ref = FileRef.from_json(data)
        return cls(ref.path, ref.hash, ref.size, ref.isdir, ref.nfiles,
                   OutputKind(data.get("kind") or "out"), data.get("cache") is not False)


@dataclass(frozen=True)
class RecordComponents:
    """A fingerprint's components, as a record keeps them."""

    cmd: tuple[str, ...] = ()
    deps: tuple[FileRef, ...] = ()
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    code: tuple[FileRef, ...] = ()
    env: Mapping[str, Any] = field(default_factory=dict)
    outs: tuple[str, ...] = ()
    """Declared outputs as ``path|flags`` labels."""

    def to_json(self) -> dict[str, Any]:
        return {"cmd": list(self.cmd), "deps": [d.to_json() for d in self.deps],
                "params": {f: dict(v) for f, v in self.params.items()},
                "code": [c.to_json() for c in self.code], "env": dict(self.env),
                "outs": list(self.outs)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(tuple(data.get("cmd") or ()),
                   tuple(FileRef.from_json(d) for d in data.get("deps") or ()),
                   dict(data.get("params") or {}),
                   tuple(FileRef.from_json(c) for c in data.get("code") or ()),
                   dict(data.get("env") or {}), tuple(data.get("outs") or ()))


@dataclass(frozen=True)
class RecordGit:
    """The git commit a record was written at, and the files modified then."""

    commit: str | None = None
    dirty_paths: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"commit": self.commit, "dirty_paths": list(self.dirty_paths)}


# Top-level fields a record may lack; None means absent (not written). ``prev`` is
# apart: every chained record writes it (null for the first).
_OPTIONAL = ("exit_status", "started", "ended", "duration", "user", "host", "git",
             "command", "pipeflow_version", "components", "env_exact", "source_run",
             "outputs", "metrics", "error", "format", "chain", "seq", "experiment",
             "reproduction", "nondeterministic")
_KNOWN = frozenset(("kind", "stage", "fingerprint", "prev", *_OPTIONAL))


@dataclass(frozen=True)
class RecordBody:
    """What a run record says: the JSON document, typed. Fields a record may lack
    are None (a failed run lists no ``outputs``; an ``add`` no ``components``)."""

    kind: RecordKind = RecordKind.RUN
    stage: str = ""
    fingerprint: str = ""
    exit_status: int | None = None
    started: str | None = None
    ended: str | None = None
    duration: float | None = None
    user: str | None = None
    host: str | None = None
    git: RecordGit | None = None
    command: tuple[str, ...] | None = None
    pipeflow_version: str | None = None
    components: RecordComponents | None = None
    env_exact: Mapping[str, Any] | None = None
    """The environment with exact versions."""
    source_run: str | None = None
    """For a restore: the record whose outputs it restored."""
    outputs: tuple[OutputRef, ...] | None = None
    metrics: Mapping[str, Mapping[str, Any]] | None = None
    error: str | None = None
    format: int | None = None
    chain: str | None = None
    """The chain and seq the record says it has (set by :meth:`RecordStore.append`;
    ``verify`` checks them against where the file sits)."""
    seq: int | None = None
    prev: str | None = None
    experiment: Mapping[str, Any] | None = None
    """A stage's run or restore made for an experiment: ``{"id", "name", "set"}``
    (the overrides, file -> key -> value); an ``experiment`` record: its summary
    (:mod:`pipeflow.lineage.experiments`)."""
    reproduction: Mapping[str, Any] | None = None
    """A ``reproduction`` record's verdict (:mod:`pipeflow.lineage.reproductions`)."""
    nondeterministic: Mapping[str, Any] | None = None
    """A run whose fingerprint was recorded before by a successful run whose outputs
    differ: ``{"runs": [earlier record ids], "outputs": [paths that differ]}``."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Fields this pipeflow does not know (a newer one wrote them): kept."""

    def environment(self) -> dict[str, Any]:
        """The run's environment with exact versions: ``env_exact`` over the
        fingerprint's ``env``. Records written before ``env_exact`` carried the
        distributions detected from imports kept them only in the fingerprint's
        ``env`` (whose versions are exact too): the two package lists are merged."""
        comps = dict(self.components.env) if self.components is not None else {}
        exact = dict(self.env_exact or {})
        packages = {**(comps.get("packages") or {}), **(exact.get("packages") or {})}
        env = {**comps, **exact}
        if packages:
            env["packages"] = dict(sorted(packages.items()))
        return env

    def to_json(self) -> dict[str, Any]:
        """The record's JSON object (:func:`canonical` gives its bytes)."""
        body: dict[str, Any] = {**self.extra, "kind": self.kind.value, "stage": self.stage,
                                "fingerprint": self.fingerprint}
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, RecordGit | RecordComponents):
                value = value.to_json()
            elif name == "outputs":
                value = [o.to_json() for o in value]
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = {k: dict(v) if name == "metrics" else v for k, v in value.items()}
            body[name] = value
        if self.chain is not None or self.prev is not None:
            body["prev"] = self.prev
        return body

    @classmethod
    def from_json(cls, data: object, what: str = "run record") -> RecordBody:
        """The body of a record's JSON object; :class:`RecordError` (naming ``what``)
        when it is not one (:mod:`pipeflow.records.recordshape` says what may be)."""
        if not isinstance(data, dict):
            raise RecordError(f"{what} is not a JSON object")
        bad = recordshape.problem(data) or recordshape.unsafe_path(data)
        if bad is not None:
            raise RecordError(f"{what}: {bad}",
                              hint="a crafted or damaged record: it is skipped; "
                                   "`pipeflow verify` lists it")
        git, comps = data.get("git"), data.get("components")
        outputs, metrics = data.get("outputs"), data.get("metrics")
        command = data.get("command")
        return cls(
            kind=RecordKind(data.get("kind") or "run"), stage=data.get("stage") or "",
            fingerprint=data.get("fingerprint") or "", exit_status=data.get("exit_status"),
            started=data.get("started"), ended=data.get("ended"),
            duration=data.get("duration"), user=data.get("user"), host=data.get("host"),
            git=None if git is None else RecordGit(git.get("commit"),
                                                   tuple(git.get("dirty_paths") or ())),
            command=None if command is None else tuple(command),
            pipeflow_version=data.get("pipeflow_version"),
            components=None if comps is None else RecordComponents.from_json(comps),
            env_exact=data.get("env_exact"), source_run=data.get("source_run"),
            outputs=None if outputs is None else tuple(OutputRef.from_json(o)
                                                       for o in outputs),
            metrics=None if metrics is None else {p: dict(v) for p, v in metrics.items()},
            error=data.get("error"), format=data.get("format"), chain=data.get("chain"),
            seq=data.get("seq"), prev=data.get("prev"), experiment=data.get("experiment"),
            reproduction=data.get("reproduction"),
            nondeterministic=data.get("nondeterministic"),
            extra={k: v for k, v in data.items() if k not in _KNOWN},
        )


@dataclass(frozen=True)
class RunRecord:
    """One stored record: its id (SHA-256), where its file sits in its chain, and
    what it says."""

    id: str
    chain: str
    seq: int
    body: RecordBody = field(default_factory=RecordBody, repr=False)
    """(Origin and trust questions need no body: the default one stands in.)"""

    @classmethod
    def from_json(cls, data: object, *, id: str, chain: str, seq: int,
                  what: str = "run record") -> RunRecord:
        """The record file ``chain/seq-id.json`` holding ``data``; :class:`RecordError`
        when ``data`` is not a record's body."""
        return cls(id, chain, seq, RecordBody.from_json(data, what))

    def to_json(self) -> dict[str, Any]:
        return self.body.to_json()

    @property
    def kind(self) -> RecordKind:
        return self.body.kind

    @property
    def stage(self) -> str:
        return self.body.stage

    @property
    def prev(self) -> str | None:
        return self.body.prev or None

    @property
    def fingerprint(self) -> str:
        return self.body.fingerprint

    @property
    def ok(self) -> bool:
        return self.body.exit_status == 0

    @property
    def outputs(self) -> tuple[OutputRef, ...]:
        return self.body.outputs or ()

    @property
    def metrics(self) -> Mapping[str, Mapping[str, Any]]:
        return self.body.metrics or {}

    @property
    def rel_path(self) -> str:
        return f"{self.chain}/{self.seq:08d}-{self.id}.json"
