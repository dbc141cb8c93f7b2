"""Run records on disk: one immutable JSON document per execution (or restore) of a stage.

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
signature. A clone with a signing key also writes ``<seq>-<sha256>.sig`` beside each
record it appends: who wrote it (docs/registry.md, "The trust model").
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from pipeflow.errors import StorageError
from pipeflow.files import atomicfile, safeload
from pipeflow.records.recordshape import unsafe_path
from pipeflow.records.runrecord import (
    FileRef,
    OutputKind,
    OutputRef,
    RecordBody,
    RecordComponents,
    RecordError,
    RecordGit,
    RecordKind,
    RunRecord,
    canonical,
    iso,
)

# the record model is read from here too: one import for records and their store
__all__ = ["FileRef", "OutputKind", "OutputRef", "RecordBody", "RecordComponents",
           "RecordError", "RecordGit", "RecordKind", "RecordStore", "RunRecord",
           "canonical", "iso", "parse_pointer", "read_pointer", "sig_path", "unsafe_path"]

RECORD_FORMAT = 1
_NAME = re.compile(r"^(\d{8})-([0-9a-f]{64})\.json$")
SIG_SUFFIX = ".sig"
"""A record's signature file: ``<seq>-<sha256>.sig`` beside ``<seq>-<sha256>.json``
(beside, not inside, so record ids do not change; pipeflow.signing.signatures)."""
MAX_SIG_BYTES = 4096
"""A signature file is a few hundred bytes: a larger one is not read (it is invalid)."""
_POINTER = re.compile(rb"([0-9a-f]{16}/\d{8}-[0-9a-f]{64}\.json)\n?")
"""What a run-cache pointer holds: the path of a record below ``runs/``."""


_BAD_FILE = safeload.plain(StorageError)


def sig_path(record: Path) -> Path:
    """Where the signature of the record file ``record`` is."""
    return record.with_suffix(SIG_SUFFIX)


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


class RecordStore:
    """Records and run-cache pointers under the cache folder."""

    def __init__(self, cache_dir: Path, chain_file: Path,
                 came_through_git: Callable[[Path, bytes], bool] | None = None,
                 sign: Callable[[bytes], bytes | None] | None = None) -> None:
        """``came_through_git(path, data)``: whether the file ``path`` holding ``data``
        is exactly what git tracks (:mod:`pipeflow.git.committedstate`): such a chain file
        is someone else's, never adopted. ``sign(data)``: the signature file's bytes
        for a record's bytes, or None when this user signs nothing."""
        self.runs = cache_dir / "runs"
        self.runcache = cache_dir / "runcache"
        self.chain_file = chain_file
        self._came_through_git = came_through_git
        self._sign = sign
        self._chain: str | None = None
        self._read: str | None = None
        self._head: tuple[int, str | None] | None = None
        self.written: list[Path] = []
        self._appending = threading.Lock()
        """Experiments run side by side in threads of one process (holding the repo
        lock against other processes): one append to the chain at a time."""
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
        with self._appending:
            return self._append(body)

    def _append(self, body: RecordBody) -> RunRecord:
        seq, prev = self._chain_head()
        full = replace(body, format=RECORD_FORMAT, chain=self.chain, seq=seq + 1, prev=prev)
        data = canonical(full.to_json())
        rid = hashlib.sha256(data).hexdigest()
        record = RunRecord(rid, self.chain, seq + 1, full)
        # signed before anything is written: a damaged key fails the append whole
        signature = self._sign(data) if self._sign is not None else None
        path = self.runs / record.rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        atomicfile.write_bytes(path, data)
        self.written.append(path)
        if signature is not None:
            # a crash between the two leaves an unsigned record, never a wrong one
            atomicfile.write_bytes(sig_path(path), signature)
            self.written.append(sig_path(path))
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

    def signature_bytes(self, rel: str) -> bytes | None:
        """The bytes of record ``rel``'s signature file (``chain/seq-sha.json``), None
        when it has none; a file too large to be one reads as its first bytes past the
        limit (it then fails to parse)."""
        try:
            with open(sig_path(self.runs / rel), "rb") as f:
                return f.read(MAX_SIG_BYTES + 1)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"cannot read the signature of run record {rel}: "
                               f"{exc.strerror}") from exc

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
