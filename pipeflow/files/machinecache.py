"""Facts that hold for every project of the user: about this machine's interpreters,
and which spec texts passed schema validation.

Asking an interpreter for its version or its import path means starting it (through a
pyenv shim, a shell script, slow next to a no-op command), and reading what is installed for it
means reading every ``*.dist-info`` on that path. The answers depend on the
interpreter binary and the folders of its path, not on the project, so they are kept
here, keyed by real paths and modification times (see ``pipeflow.code.siteindexes``), and a
new project or a fresh clone does not ask again. Likewise a spec's digest (its bytes
and the schema's) once validated: a clone of the same project skips jsonschema. The
per-project state database still keeps them too (a read-only or missing home folder
only costs the questions).

Where: ``$PIPEFLOW_MACHINE_CACHE`` (a file path), else
``$XDG_CACHE_HOME/pipeflow/machine.db``, else ``~/.cache/pipeflow/machine.db``.
Deleting the file is always safe.

Only a genuine interpreter's answers are kept here (one whose ``sys.executable`` is
the file asked): a launcher (a pyenv shim that was not resolved, a mise shim, a
wrapper script) may run another interpreter in another folder.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from functools import cache
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from pipeflow.keyvalue import KeyValue


def machine_cache_path() -> Path:
    """Where the machine cache lives (see the module docstring)."""
    explicit = os.environ.get("PIPEFLOW_MACHINE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pipeflow" / "machine.db"


class MachineCache:
    """A small key-value store in SQLite; every failure makes it a no-op."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._broken = False
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None and not self._broken:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=2.0, check_same_thread=False,
                                       isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT)")
                self._conn = conn
            except (OSError, sqlite3.Error):
                self._broken = True
        return self._conn

    def get(self, key: str) -> str | None:
        """The value under ``key``, or None (also when the cache cannot be read)."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return None
            try:
                row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error:
                return None
        return None if row is None else str(row[0])

    def put(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key``; silently skipped if the cache cannot be written."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return
            with contextlib.suppress(sqlite3.Error):
                conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    def with_prefix(self, prefix: str) -> list[tuple[str, str]]:
        """Every (key, value) whose key starts with ``prefix``, by key; [] when the
        cache cannot be read."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return []
            try:
                rows = conn.execute("SELECT key, value FROM kv WHERE substr(key, 1, ?) = ? "
                                    "ORDER BY key", (len(prefix), prefix)).fetchall()
            except sqlite3.Error:
                return []
        return [(str(k), str(v)) for k, v in rows]

    def delete(self, key: str) -> bool:
        """Forget ``key``; whether it was there (False also when the cache cannot be
        written)."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return False
            try:
                return conn.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount > 0
            except sqlite3.Error:
                return False


@cache
def _open(path: str) -> MachineCache:
    return MachineCache(Path(path))


def machine_cache() -> MachineCache:
    """This process's handle on the machine cache (one per path)."""
    return _open(os.fspath(machine_cache_path()))


class Facts:
    """Interpreter facts looked up in the machine cache (where only answers given
    with ``shared`` are kept) before the project's state database
    (``state``)."""

    def __init__(
        self,
        state: KeyValue | None = None,
    ) -> None:
        self._state = state

    def get(self, key: str, shared: bool) -> str | None:
        """The value under ``key``, or None."""
        if shared:
            found = machine_cache().get(key)
            if found is not None:
                return found
        return self._state.get(key) if self._state is not None else None

    def put(self, key: str, value: str, shared: bool) -> None:
        """Keep ``value`` under ``key``."""
        if shared:
            machine_cache().put(key, value)
        if self._state is not None:
            self._state.put(key, value)
