"""The state database: one SQLite file of per-workspace caches plus the run journal.

``<root>/.pipeflow/state/state.db`` holds

- ``stat``: the stat cache (root-relative POSIX path -> inode, size, mtime_ns, hash,
  recorded_ns), so that an unchanged file is never read twice across processes;
- ``dirsig``: per-directory stat signatures (root-relative POSIX path -> signature,
  the directory's hash, size and file count, recorded_ns, newest mtime), so that an
  unchanged directory costs one row instead of one stat cache lookup per file; created
  on first use, so older databases need no migration;
- ``kv``: small key/value facts that are expensive to recompute (validated spec
  digests, the cached topological order, ...);
- ``journal``: the stages finished by the run that has not yet rendered
  ``pipeline.lock`` (see DESIGN "Truth and journal").

Everything here is a cache except the journal, and the journal is only a shortcut too:
each journaled stage's objects and run record are already in the store. So a database
written by a newer pipeflow (unknown ``user_version``) or a corrupt file is moved aside
(``state.db.bad-<ns>``) and recreated rather than repaired; the cost is re-hashing the
workspace once and, at worst, re-rendering a lock entry from the run records.

Only the main thread uses a ``StateDB``; worker threads run subprocesses and never touch
it. ``check_same_thread=False`` lets the object be created on one thread and used on
another, and a lock serializes calls in case that rule is ever bent.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from pipeflow import faults
from pipeflow.errors import StorageError
from pipeflow.files import diskfull

SCHEMA_VERSION = 1

_DIRSIG_SCHEMA = """
CREATE TABLE IF NOT EXISTS dirsig (
    path TEXT PRIMARY KEY,
    signature TEXT NOT NULL,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    nfiles INTEGER NOT NULL,
    recorded_ns INTEGER NOT NULL,
    newest_ns INTEGER NOT NULL
) WITHOUT ROWID
"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stat (
    path TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL,
    recorded_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stage TEXT NOT NULL,
    body TEXT NOT NULL
);
""" + _DIRSIG_SCHEMA + ";"


_BUSY_TIMEOUT_MS = 10_000
_IOERR, _FULL = 10, 13  # sqlite3.SQLITE_IOERR (low byte of its extended codes), SQLITE_FULL


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """Whether opening failed because of the file itself (not a database, corrupt, a
    newer schema) rather than the disk under it: only then is it moved aside, since a
    full disk or an I/O error says nothing against the file's contents."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is None or (code & 0xFF) not in (_IOERR, _FULL)


def _connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path``; a damaged or too-new file is
    moved aside and a fresh one made (see the module docstring)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _open(path)
    except OSError as exc:
        diskfull.check(exc, path, "open the state database")
        raise
    except sqlite3.DatabaseError as exc:
        if not _damaged(exc):
            raise _open_failed(path, exc) from exc
        # Not a database, torn beyond SQLite's recovery, or from a newer pipeflow:
        # it only held caches, so start over and keep the old file for inspection.
        _move_aside(path)
        try:
            return _open(path)
        except sqlite3.Error as exc2:
            raise _open_failed(path, exc2) from exc2
    except sqlite3.Error as exc:
        raise _open_failed(path, exc) from exc


def _open_failed(path: Path, exc: sqlite3.Error) -> StorageError:
    diskfull.check(exc, path, "open the state database")
    return StorageError(f"cannot open the state database {path}: {exc}")


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path,
        timeout=_BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,  # autocommit; transactions are explicit in StateDB._write
        check_same_thread=False,
    )
    try:
        faults.point("state.open")
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise sqlite3.DatabaseError(f"unknown schema version {version}")
        if version == 0:
            # journal_mode=WAL is persistent in the file: set it once, at creation.
            conn.execute("PRAGMA journal_mode=WAL")
            # One transaction, so a concurrent opener never sees half a schema.
            conn.executescript(
                f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;"
            )
        conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def _move_aside(path: Path) -> None:
    stamp = time.time_ns()
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if suffix and not src.exists():
            continue
        with contextlib.suppress(FileNotFoundError):
            os.replace(src, f"{path}.bad-{stamp}{suffix}")


class StatEntry(NamedTuple):
    """What the stat cache knows of one file: its stat key, its hash, when recorded.
    (A named tuple: tens of thousands are made per big directory.)

    ``ctime_ns`` (0: unknown, not compared) joins the key as in git: unlike mtime it
    cannot be set from user space, so a file replaced by one with the same size and a
    restored mtime (``cp -p``, tar) on a reused inode is still caught.
    """

    inode: int
    size: int
    mtime_ns: int
    hash: str
    recorded_ns: int
    ctime_ns: int = 0


@dataclass(frozen=True)
class DirSignature:
    """What the state database knows of one directory: the stat signature of its tree
    (see ``pipeflow.content.hasher``), its hash, total size and file count, when recorded
    (clock before the walk) and the newest mtime in the tree."""

    signature: str
    hash: str
    size: int
    nfiles: int
    recorded_ns: int
    newest_ns: int


class StateDB:
    """The workspace's state database (stat cache, key/value facts, run journal)."""

    def __init__(self, path: Path) -> None:
        """Open (creating if needed) the database at ``path``; see the module docstring
        for what happens to a corrupt or too-new file."""
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = _connect(self.path)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> StateDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self, what: str, exc: sqlite3.Error) -> StorageError:
        diskfull.check(exc, self.path, f"{what} in the state database")
        return StorageError(
            f"state database {self.path}: cannot {what}: {exc}",
            hint="it holds only caches and the journal of an unfinished run; "
            "delete it if the error persists",
        )

    # stat cache ---------------------------------------------------------------------

    def stat_entries(self) -> dict[str, StatEntry]:
        """The whole stat cache in one query, keyed by root-relative POSIX path."""
        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT path, inode, size, mtime_ns, hash, recorded_ns, ctime_ns FROM stat"
                ).fetchall()
            except sqlite3.Error as exc:
                raise self._fail("read the stat cache", exc) from exc
        return {row[0]: StatEntry(*row[1:]) for row in rows}

    def stat_entry(self, path: str) -> StatEntry | None:
        """The stat cache entry of one path, or None (one indexed row, not the table)."""
        with self._lock:
            try:
                row = self._conn.execute(
                    "SELECT inode, size, mtime_ns, hash, recorded_ns, ctime_ns FROM stat "
                    "WHERE path = ?",
                    (path,),
                ).fetchone()
            except sqlite3.Error as exc:
                raise self._fail("read the stat cache", exc) from exc
        return None if row is None else StatEntry(*row)

    def put_stat_entries(self, entries: Iterable[tuple[str, StatEntry]]) -> None:
        """Insert or replace stat cache entries, all in one transaction."""
        rows = [(path, *e) for path, e in entries]  # the table's column order
        if not rows:
            return
        self._write(
            "update the stat cache",
            "INSERT OR REPLACE INTO stat VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def delete_stat_entries(self, paths: Iterable[str]) -> None:
        """Forget the stat cache entries of ``paths`` (files that no longer exist)."""
        rows = [(p,) for p in paths]
        if rows:
            self._write("update the stat cache", "DELETE FROM stat WHERE path = ?", rows)

    # directory signatures -----------------------------------------------------------

    def dir_signature(self, path: str) -> DirSignature | None:
        """The recorded signature of directory ``path``, or None."""
        with self._lock:
            try:
                row = self._conn.execute(
                    "SELECT signature, hash, size, nfiles, recorded_ns, newest_ns "
                    "FROM dirsig WHERE path = ?",
                    (path,),
                ).fetchone()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return None  # a database from before dirsig: nothing recorded yet
                raise self._fail("read a directory signature", exc) from exc
            except sqlite3.Error as exc:
                raise self._fail("read a directory signature", exc) from exc
        return None if row is None else DirSignature(*row)

    def put_dir_signatures(self, entries: Iterable[tuple[str, DirSignature]]) -> None:
        """Insert or replace directory signatures, all in one transaction."""
        rows = [
            (path, d.signature, d.hash, d.size, d.nfiles, d.recorded_ns, d.newest_ns)
            for path, d in entries
        ]
        if rows:
            self._write(
                "record directory signatures",
                "INSERT OR REPLACE INTO dirsig VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
                prelude=_DIRSIG_SCHEMA,
            )

    # key/value ----------------------------------------------------------------------

    def get(self, key: str) -> str | None:
        """The value stored under ``key``, or None."""
        with self._lock:
            try:
                row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error as exc:
                raise self._fail("read a value", exc) from exc
        return None if row is None else str(row[0])

    def put(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing any earlier value."""
        self._write("store a value", "INSERT OR REPLACE INTO kv VALUES (?, ?)", [(key, value)])

    def put_many(self, items: Iterable[tuple[str, str]]) -> None:
        """Store several (key, value) pairs in one transaction."""
        rows = list(items)
        if rows:
            self._write("store values", "INSERT OR REPLACE INTO kv VALUES (?, ?)", rows)

    # journal ------------------------------------------------------------------------

    def journal_append(self, stage: str, body: str) -> None:
        """Record a finished stage of the current run; committed before returning."""
        self._write(
            "append to the journal",
            "INSERT INTO journal (stage, body) VALUES (?, ?)",
            [(stage, body)],
        )

    def journal_entries(self) -> list[tuple[str, str]]:
        """(stage, body) rows in append order; fold them so a later row for a stage wins."""
        with self._lock:
            try:
                rows = self._conn.execute("SELECT stage, body FROM journal ORDER BY seq").fetchall()
            except sqlite3.Error as exc:
                raise self._fail("read the journal", exc) from exc
        return [(str(stage), str(body)) for stage, body in rows]

    def journal_clear(self) -> None:
        """Empty the journal (its content has been rendered into pipeline.lock)."""
        self._write("clear the journal", "DELETE FROM journal", [()])

    # ---------------------------------------------------------------------------------

    def _write(
        self, what: str, sql: str, rows: Sequence[Sequence[object]], prelude: str = ""
    ) -> None:
        with self._lock:
            conn = self._conn
            try:
                # IMMEDIATE takes the write lock up front, so a concurrent writer waits on
                # busy_timeout here instead of failing later with "database is locked".
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if prelude:
                        conn.execute(prelude)
                    conn.executemany(sql, rows)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._fail(what, exc) from exc
