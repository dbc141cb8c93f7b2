"""Run records: one immutable JSON document per execution (or restore) of a stage.

A record is addressed by the SHA-256 of its canonical bytes and stored in the
object store's folder as ``runs/<chain>/<seq>-<sha256>.json``. Each clone appends
to its own chain (a random id made at first use); every record names its
predecessor (``prev``), so a rewritten, removed or inserted record is detectable
(``pipeflow verify``). ``runcache/<fingerprint>`` points at the newest successful
record with that fingerprint, like Bazel's action cache.

What the chain protects against: accidental corruption and edits by anyone who
cannot also rewrite the git history that names records (each lock entry names the
record that made its outputs). What it does not: someone with write access to both
the cache and git can forge a consistent history — the chain is integrity, not
signature.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from pipeflow import atomicfile, safeload
from pipeflow.errors import StorageError
from pipeflow.lineage import recordshape
from pipeflow.lineage.recordshape import unsafe_path

if TYPE_CHECKING:
    from pipeflow.hashing import HashInfo

__all__ = ["FileRef", "OutputKind", "OutputRef", "RecordBody", "RecordComponents",
           "RecordError", "RecordGit", "RecordKind", "RecordStore", "RunRecord",
           "canonical", "iso", "parse_pointer", "read_pointer", "unsafe_path"]

RECORD_FORMAT = 1
_NAME = re.compile(r"^(\d{8})-([0-9a-f]{64})\.json$")
_POINTER = re.compile(rb"([0-9a-f]{16}/\d{8}-[0-9a-f]{64}\.json)\n?")
"""What a run-cache pointer holds: the path of a record below ``runs/``."""


_BAD_FILE = safeload.plain(StorageError)


def read_pointer(path: Path) -> bytes:
    """A pointer file's bytes, at most one past what a pointer may hold (a huge file
    from a remote is refused by :func:`parse_pointer` without being read whole)."""
    with open(path, "rb") as f:
        return f.read(safeload.limits("pointer").max_bytes + 1)


def parse_pointer(data: bytes) -> str | None:
    """The record path a run-cache pointer's bytes name, or None if they are damaged
    (truncated, garbled, or naming anything but a record file)."""
    m = _POINTER.fullmatch(data)
    return m.group(1).decode("ascii") if m else None


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
        from pipeflow.hashing import HashInfo

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
             "outputs", "metrics", "error", "format", "chain", "seq")
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
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Fields this pipeflow does not know (a newer one wrote them): kept."""

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
        when it is not one (:mod:`pipeflow.lineage.recordshape` says what may be)."""
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
            seq=data.get("seq"), prev=data.get("prev"),
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


class RecordStore:
    """Records and run-cache pointers under the cache folder."""

    def __init__(self, cache_dir: Path, chain_file: Path,
                 came_through_git: Callable[[Path, bytes], bool] | None = None) -> None:
        """``came_through_git(path, data)``: whether the file ``path`` holding ``data``
        is exactly what git tracks (:mod:`pipeflow.committedstate`): such a chain file
        is someone else's, never adopted."""
        self.runs = cache_dir / "runs"
        self.runcache = cache_dir / "runcache"
        self.chain_file = chain_file
        self._came_through_git = came_through_git
        self._chain: str | None = None
        self._read: str | None = None
        self._head: tuple[int, str | None] | None = None
        self.written: list[Path] = []
        self.skipped: list[str] = []
        """Damaged run-cache entries met and ignored: warnings for the user."""

    # chain ------------------------------------------------------------------
    def _read_chain(self) -> str:
        """The chain id the chain file holds, or "" when it holds none this clone may
        adopt: missing, garbled, or committed in git (someone else's chain)."""
        if self._read is None:
            try:
                data = self.chain_file.read_bytes()[:4096]
            except FileNotFoundError:
                data = b""
            except OSError as exc:
                raise StorageError(f"cannot read {self.chain_file}: {exc.strerror}",
                                   hint="check its permissions") from exc
            # garbled bytes fail the check: a new chain starts, the old chain's
            # records stay valid
            text = data.decode("ascii", "replace").strip()
            if not re.fullmatch(r"[0-9a-f]{16}", text) or (
                    self._came_through_git is not None
                    and self._came_through_git(self.chain_file, data)):
                text = ""
            self._read = text
        return self._read

    @property
    def chain(self) -> str:
        """This clone's chain id (made at first use, kept in ``.pipeflow/chain``)."""
        if self._chain is None:
            text = self._read_chain()
            if not text:
                text = secrets.token_hex(8)
                self.chain_file.parent.mkdir(parents=True, exist_ok=True)
                atomicfile.write_bytes(self.chain_file, (text + "\n").encode())
            self._chain = text
        return self._chain

    def own_chain(self) -> str | None:
        """This clone's chain id if it has one yet (never makes one: read commands
        use this to tell this clone's records from fetched ones)."""
        if self._chain is None:
            try:
                return self._read_chain() or None
            except StorageError:
                return None
        return self._chain

    def chain_records(self, chain: str) -> list[tuple[int, str, Path]]:
        """(seq, id, path) of a chain's record files, by seq."""
        folder = self.runs / chain
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            m = _NAME.match(name)
            if m:
                found.append((int(m.group(1)), m.group(2), folder / name))
        return sorted(found)

    def newest_seq(self, chain: str) -> int:
        """The highest seq among a chain's record files (one listdir, no hashing)."""
        try:
            names = os.listdir(self.runs / chain)
        except FileNotFoundError:
            return 0
        return max((int(n[:8]) for n in names if n.endswith(".json") and n[:8].isdigit()),
                   default=0)

    def chains(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.runs) if (self.runs / n).is_dir())
        except FileNotFoundError:
            return []

    def _chain_head(self) -> tuple[int, str | None]:
        if self._head is None:
            records = self.chain_records(self.chain)
            self._head = (records[-1][0], records[-1][1]) if records else (0, None)
        return self._head

    # writing ----------------------------------------------------------------
    def append(self, body: RecordBody) -> RunRecord:
        """Add ``body`` to this clone's chain (filling format, chain, seq, prev)."""
        seq, prev = self._chain_head()
        full = replace(body, format=RECORD_FORMAT, chain=self.chain, seq=seq + 1, prev=prev)
        data = canonical(full.to_json())
        rid = hashlib.sha256(data).hexdigest()
        record = RunRecord(rid, self.chain, seq + 1, full)
        path = self.runs / record.rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        atomicfile.write_bytes(path, data)
        self.written.append(path)
        self._head = (seq + 1, rid)
        return record

    def point(self, fingerprint: str, record: RunRecord) -> None:
        """Make the run cache entry for ``fingerprint`` name ``record``."""
        path = self.runcache / fingerprint[:2] / fingerprint
        path.parent.mkdir(parents=True, exist_ok=True)
        atomicfile.write_bytes(path, (record.rel_path + "\n").encode())
        self.written.append(path)

    # reading ----------------------------------------------------------------
    def read_path(self, path: Path) -> RunRecord:
        """A record file, checked against the SHA-256 in its name."""
        m = _NAME.match(path.name)
        if not m:
            raise StorageError(f"not a run record file name: {path.name}")
        rel = f"{path.parent.name}/{path.name}"
        try:
            safeload.check_size(path.stat().st_size, rel, "record", _BAD_FILE)
            data = path.read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read run record {path}: {exc.strerror}") from exc
        if hashlib.sha256(data).hexdigest() != m.group(2):
            raise StorageError(f"run record {path.name} does not match its hash: it was "
                               "modified after it was written")
        body = safeload.load_json(data, f"run record {rel}", "record", _BAD_FILE,
                                  errors="surrogatepass")
        return RunRecord.from_json(body, id=m.group(2), chain=path.parent.name,
                                   seq=int(m.group(1)), what=f"run record {rel}")

    def read_rel(self, rel: str) -> RunRecord:
        return self.read_path(self.runs / rel)

    def lookup(self, fingerprint: str) -> RunRecord | None:
        """The newest successful record with ``fingerprint`` (the run cache), or None.

        A damaged pointer or record (truncated by a crash, garbled, unreadable) is
        skipped, noted in :attr:`skipped`, and the stage simply runs."""
        pointer = self.runcache / fingerprint[:2] / fingerprint
        try:
            data = read_pointer(pointer)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            self._skip(f"cannot read run-cache entry {pointer}: {exc.strerror}")
            return None
        rel = parse_pointer(data)
        if rel is None:
            self._skip(f"run-cache entry {pointer} is damaged (it does not name a run record)")
            return None
        if not (self.runs / rel).is_file():
            return None  # the record has not been fetched (yet): not damage
        try:
            return self.read_rel(rel)
        except StorageError as exc:
            self._skip(exc.message)
            return None

    def _skip(self, problem: str) -> None:
        note = (f"{problem}: ignored, the stage runs instead of being restored; "
                "`pipeflow fetch` brings a good copy back if the remote has one")
        if note not in self.skipped:
            self.skipped.append(note)

    def iter_all(self) -> Iterator[tuple[str, int, str, Path]]:
        """(chain, seq, id, path) of every record file, chain by chain."""
        for chain in self.chains():
            for seq, rid, path in self.chain_records(chain):
                yield chain, seq, rid, path
