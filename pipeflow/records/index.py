"""The SQLite index of run records: a cache, rebuilt from the records alone.

``<root>/.pipeflow/state/index.db``. On open it indexes each chain's records past
the last one it has seen (records are append-only, so a chain's tail is all that
can be new); deleting the file rebuilds it from scratch. It also keeps, per git
commit, the (path, hash) pairs that commit's ``pipeline.lock`` names
(``lock_commits``, ``lock_paths``; ``lock_history`` holds the first-parent commits for
one HEAD and, under a ``refs:`` key, the commits any ref reaches) and the labels
``versions`` last showed on each branch (``shown_labels``): see
``pipeflow.lineage.labels``. ``run_extras`` keeps each run's environment (exact, secret
values concealed), experiment mark and nondeterminism mark, so ``versions`` and
``status`` read no record file. Queries —
versions of a path, the run that produced a content, a run's inputs — are indexed
lookups, not scans of record files.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeflow.credentials import conceal_env
from pipeflow.errors import StorageError
from pipeflow.records.records import RecordKind, RecordStore, RunRecord

INDEX_VERSION = 4
"""2: ``run_extras``, ``inputs_path`` (the readers of a content: ``versions``' metrics
scanned every input once per version); 3: ``run_extras.nondeterministic``
(``status`` reads the marks of the lock's runs without reading their records);
4: ``reproductions`` (the version each ``reproduction`` record is about:
``lineage`` read every reproduction record to find one version's). An index of
another version is rebuilt from the records."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, chain TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    stage TEXT NOT NULL, fingerprint TEXT NOT NULL, exit_status INTEGER,
    started TEXT, ended TEXT, duration REAL, user TEXT, host TEXT, git_commit TEXT,
    rel TEXT NOT NULL, source_run TEXT
);
CREATE INDEX IF NOT EXISTS runs_stage ON runs(stage);
CREATE INDEX IF NOT EXISTS runs_fp ON runs(fingerprint);
CREATE TABLE IF NOT EXISTS outputs (
    run_id TEXT NOT NULL, path TEXT NOT NULL, hash TEXT NOT NULL, size INTEGER,
    isdir INTEGER NOT NULL DEFAULT 0, nfiles INTEGER, kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outputs_path ON outputs(path, hash);
CREATE INDEX IF NOT EXISTS outputs_hash ON outputs(hash);
CREATE INDEX IF NOT EXISTS outputs_run ON outputs(run_id);
CREATE TABLE IF NOT EXISTS inputs (
    run_id TEXT NOT NULL, role TEXT NOT NULL, path TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inputs_run ON inputs(run_id);
CREATE INDEX IF NOT EXISTS inputs_path ON inputs(path, hash);
CREATE TABLE IF NOT EXISTS params (
    run_id TEXT NOT NULL, file TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS params_run ON params(run_id);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL, path TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id);
CREATE TABLE IF NOT EXISTS run_extras (
    run_id TEXT PRIMARY KEY, env TEXT, experiment TEXT, nondeterministic TEXT
);
CREATE TABLE IF NOT EXISTS reproductions (
    run_id TEXT PRIMARY KEY, path TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reproductions_version ON reproductions(path, hash);
CREATE TABLE IF NOT EXISTS heads (chain TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS broken (rel TEXT PRIMARY KEY, problem TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lock_commits (commit_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS lock_paths (
    commit_id TEXT NOT NULL, path TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lock_paths_path ON lock_paths(path);
CREATE TABLE IF NOT EXISTS lock_history (head TEXT PRIMARY KEY, commits TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shown_labels (
    branch TEXT NOT NULL, path TEXT NOT NULL, number INTEGER NOT NULL, hash TEXT NOT NULL,
    PRIMARY KEY (branch, path, number)
);
"""


@dataclass(frozen=True)
class VersionRow:
    """One distinct content of a path, as the index knows it."""

    number: int
    """The order of first production in this clone's index: an internal order, not the
    ``vN`` users see (``pipeflow.lineage.labels`` numbers those from git history)."""
    hash: str
    size: int | None
    isdir: bool
    first_run: str
    first_seen: str
    runs: int


@dataclass(frozen=True)
class RunOutput:
    """One output of an indexed run."""

    hash: str
    isdir: bool
    path: str
    run: str
    """The run's id."""


class RunIndex:
    """Indexed queries over run records."""

    def __init__(self, path: Path, records: RecordStore) -> None:
        self.records = records
        self.skipped: list[str] = []
        """Damaged records met by this process's refresh: warnings for the user."""
        self._adding = threading.Lock()
        """Experiments run side by side in threads of one process: one ``add`` (or
        ``same_fingerprint``, which runs as their stages finish) at a time."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = self._open(path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        for attempt in (1, 2):
            try:
                db = sqlite3.connect(path, timeout=10, check_same_thread=False)
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, INDEX_VERSION):
                    db.close()
                    raise sqlite3.DatabaseError("unknown index version")
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(_SCHEMA)
                db.execute(f"PRAGMA user_version={INDEX_VERSION}")
                db.commit()
                return db
            except sqlite3.DatabaseError:
                if attempt == 2:
                    raise
                path.unlink(missing_ok=True)  # a cache: rebuilt from the records
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.db.close()

    # indexing ---------------------------------------------------------------
    def refresh(self) -> int:
        """Index every record newer than the last one seen per chain; returns how many."""
        heads = dict(self.db.execute("SELECT chain, seq FROM heads").fetchall())
        added = 0
        with self.db:
            for chain in self.records.chains():
                head = heads.get(chain, 0)
                if self.records.newest_seq(chain) <= head:
                    continue  # nothing past the indexed head (the cheap common case)
                tail = [r for r in self.records.chain_records(chain) if r[0] > head]
                for _seq, _rid, path in tail:
                    try:
                        record = self.records.read_path(path)
                    except StorageError as exc:
                        self.db.execute("INSERT OR REPLACE INTO broken VALUES (?, ?)",
                                        (f"{chain}/{path.name}", exc.message))
                        self.skipped.append(f"{exc.message}: skipped (`pipeflow verify` "
                                            "lists damaged records)")
                        continue
                    self._insert(record)
                    added += 1
                if tail:
                    self.db.execute("INSERT OR REPLACE INTO heads VALUES (?, ?)",
                                    (chain, tail[-1][0]))
        return added

    def add(self, record: RunRecord) -> None:
        """Index a record this process just wrote (its chain head moves with it)."""
        with self._adding, self.db:
            self._insert(record)
            self.db.execute("INSERT OR REPLACE INTO heads VALUES (?, ?)",
                            (record.chain, record.seq))

    def _insert(self, record: RunRecord) -> None:
        if self.db.execute("SELECT 1 FROM runs WHERE id = ?", (record.id,)).fetchone():
            return  # indexed already (e.g. added by this process, then seen by a refresh)
        b = record.body
        self.db.execute(
            "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (record.id, record.chain, record.seq, record.kind.value, record.stage,
             record.fingerprint, b.exit_status, b.started, b.ended, b.duration, b.user,
             b.host, b.git.commit if b.git else None, record.rel_path, b.source_run),
        )
        self.db.executemany(
            "INSERT INTO outputs VALUES (?,?,?,?,?,?,?)",
            [(record.id, sql_text(o.path), o.hash, o.size, int(o.isdir), o.nfiles,
              o.kind.value) for o in record.outputs],
        )
        comps = b.components
        rows = [(record.id, role, sql_text(entry.path), entry.hash)
                for role, entries in (("deps", comps.deps), ("code", comps.code))
                for entry in entries] if comps else []
        self.db.executemany("INSERT INTO inputs VALUES (?,?,?,?)", rows)
        params = comps.params if comps else {}
        self.db.executemany(
            "INSERT INTO params VALUES (?,?,?,?)",
            [(record.id, f, k, json.dumps(v, sort_keys=True))
             for f, values in params.items() for k, v in values.items()],
        )
        self.db.executemany(
            "INSERT INTO metrics VALUES (?,?,?,?)",
            [(record.id, sql_text(p), sql_text(k), json.dumps(v))
             for p, values in record.metrics.items() for k, v in values.items()],
        )
        env = b.env_exact or (comps.env if comps else None)
        self.db.execute(
            "INSERT OR REPLACE INTO run_extras VALUES (?,?,?,?)",
            (record.id, _json_or_none(conceal_env(env) if env else None),
             _json_or_none(b.experiment), _json_or_none(b.nondeterministic)))
        repro = b.reproduction  # its shape was checked when the record was read
        if record.kind is RecordKind.REPRODUCTION and repro is not None:
            self.db.execute("INSERT OR REPLACE INTO reproductions VALUES (?,?,?)",
                            (record.id, sql_text(str(repro["path"])), str(repro["hash"])))

    # queries ----------------------------------------------------------------
    def versions(self, path: str) -> list[VersionRow]:
        """Every distinct content ``path`` has had, in order of first production (one
        query: a path with thousands of versions asked one more per version)."""
        rows = self.db.execute(
            """SELECT o.hash, o.size, o.isdir, r.ended, r.id FROM outputs o
               JOIN runs r ON r.id = o.run_id WHERE o.path = ? AND r.exit_status = 0
               ORDER BY r.ended, r.seq""",
            (sql_text(path),),
        ).fetchall()
        seen: dict[str, list[Any]] = {}  # hash -> [size, isdir, first ended, first run, runs]
        for oid, size, isdir, ended, rid in rows:
            got = seen.get(oid)
            if got is None:
                seen[oid] = [size, isdir, ended, rid, {rid}]
                continue
            got[0] = size if got[0] is None or (size is not None and size > got[0]) else got[0]
            got[1] = got[1] or isdir
            got[2] = ended if got[2] is None else got[2]  # MIN(ended) skips NULL
            got[4].add(rid)
        # first production order, ties by hash (as the GROUP BY query this replaced)
        ordered = sorted(seen.items(), key=lambda item: (item[1][2] is not None,
                                                         item[1][2] or "", item[0]))
        return [VersionRow(number, oid, size, bool(isdir), str(first_run), first, len(ids))
                for number, (oid, (size, isdir, first, first_run, ids)) in enumerate(
                    ordered, start=1)]

    def producer(self, path: str, oid: str) -> str | None:
        """The first successful run whose output ``path`` had content ``oid``."""
        row = self.db.execute(
            """SELECT r.id FROM outputs o JOIN runs r ON r.id = o.run_id
               WHERE o.path = ? AND o.hash = ? AND r.exit_status = 0
               ORDER BY r.ended, r.seq LIMIT 1""",
            (sql_text(path), oid),
        ).fetchone()
        return str(row[0]) if row else None

    def same_fingerprint(self, fingerprint: str) -> list[tuple[str, str, str]]:
        """(run id, path, hash) of what earlier successful runs (kind ``run``) with
        ``fingerprint`` wrote: one row per distinct (path, hash), from the newest run
        that wrote it, newest first (a stage forced a thousand times to the same
        outputs is still one row per output)."""
        with self._adding:  # a sweep's threads share the connection with their adds
            rows = self.db.execute(
                """SELECT r.id, o.path, o.hash, MAX(printf('%s %08d', r.ended, r.seq)) AS last
                   FROM runs r JOIN outputs o ON o.run_id = r.id
                   WHERE r.fingerprint = ? AND r.kind = 'run' AND r.exit_status = 0
                   GROUP BY o.path, o.hash ORDER BY last DESC""",
                (fingerprint,),
            ).fetchall()
        return [(str(rid), str(path), str(oid)) for rid, path, oid, _last in rows]

    def run_rel(self, run_id: str) -> str | None:
        row = self.db.execute("SELECT rel FROM runs WHERE id = ?", (run_id,)).fetchone()
        return str(row[0]) if row else None

    def record(self, run_id: str) -> RunRecord:
        rel = self.run_rel(run_id)
        if rel is None:
            raise StorageError(f"no run record {run_id[:12]} in this clone")
        return self.records.read_rel(rel)

    def params_of(self, run_id: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for f, k, v in self.db.execute(
            "SELECT file, key, value FROM params WHERE run_id = ?", (run_id,)
        ):
            out.setdefault(f, {})[k] = json.loads(v)
        return out

    def metrics_of(self, run_id: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for p, k, v in self.db.execute(
            "SELECT path, key, value FROM metrics WHERE run_id = ?", (run_id,)
        ):
            out.setdefault(p, {})[k] = json.loads(v)
        return out

    def users(self, chain: str) -> tuple[str, ...]:
        """The users a chain's records name (what they claim, sorted)."""
        rows = self.db.execute("SELECT DISTINCT user FROM runs WHERE chain = ? AND user IS "
                               "NOT NULL ORDER BY user", (chain,))
        return tuple(str(r[0]) for r in rows)

    def broken(self) -> list[tuple[str, str]]:
        return [(str(a), str(b)) for a, b in self.db.execute("SELECT rel, problem FROM broken")]

    def folder_hashes(self) -> set[str]:
        """The contents of every folder output of an indexed run."""
        return {str(h) for (h,) in self.db.execute("SELECT hash FROM outputs WHERE isdir = 1")}

    def outputs_since(self, ended: str) -> list[RunOutput]:
        """The outputs of every run that ended at ``ended`` (ISO time) or later."""
        rows = self.db.execute(
            "SELECT o.hash, o.isdir, o.path, r.id FROM outputs o JOIN runs r ON r.id = o.run_id "
            "WHERE r.ended >= ?", (ended,))
        return [RunOutput(str(oid), bool(isdir), str(path), str(rid))
                for oid, isdir, path, rid in rows]

    def rels_of_kind(self, kind: str) -> list[str]:
        """The record paths (``chain/seq-id.json``) of every record of ``kind``, oldest
        first by (ended, chain, seq)."""
        rows = self.db.execute("SELECT rel FROM runs WHERE kind = ? ORDER BY ended, chain, seq",
                               (kind,))
        return [str(r[0]) for r in rows]

    def paths(self, kind: str | None = None) -> Iterable[str]:
        """Every output path a run wrote (of ``kind`` only: ``metric``, ...)."""
        if kind is None:
            return [str(r[0]) for r in self.db.execute("SELECT DISTINCT path FROM outputs")]
        rows = self.db.execute("SELECT DISTINCT path FROM outputs WHERE kind = ?", (kind,))
        return [str(r[0]) for r in rows]

    def stage_of(self, run_id: str) -> str:
        """The stage of run ``run_id`` ("" when the index does not know it)."""
        row = self.db.execute("SELECT stage FROM runs WHERE id = ?", (run_id,)).fetchone()
        return str(row[0]) if row else ""


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def sql_text(value: object) -> object:
    """A text value as SQLite can store it: a lone surrogate (a non-UTF-8 file name
    read with surrogateescape, or a ``\\udcff`` escape in a record's JSON) is written
    as ``\\udcff`` (SQLite refused the text, and ``versions``/``lineage`` crashed).
    A name spelling that escape itself shares its rows: the index only narrows which
    records and commits to read."""
    if not isinstance(value, str):
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value
