"""The state database: stat cache, key/value, journal, recovery from bad files."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from pipeflow.state import SCHEMA_VERSION, StateDB, StatEntry


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / ".pipeflow" / "state" / "state.db"


def test_created_with_parent_dir_wal_and_schema_version(db_path: Path) -> None:
    db = StateDB(db_path)
    try:
        assert db_path.is_file()
        conn = sqlite3.connect(db_path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.close()
        # per-connection settings of our own connection
        assert db._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert db._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    finally:
        db.close()


def test_stat_entries_round_trip_and_replace(db_path: Path) -> None:
    with StateDB(db_path) as db:
        assert db.stat_entries() == {}
        a = StatEntry(inode=1, size=2, mtime_ns=3, hash="a" * 32, recorded_ns=4)
        b = StatEntry(inode=5, size=6, mtime_ns=7, hash="b" * 32, recorded_ns=8, ctime_ns=9)
        db.put_stat_entries([("data/a.csv", a), ("é/b", b)])
        assert db.stat_entries() == {"data/a.csv": a, "é/b": b}
        a2 = StatEntry(inode=1, size=9, mtime_ns=10, hash="c" * 32, recorded_ns=11)
        db.put_stat_entries(iter([("data/a.csv", a2)]))
        assert db.stat_entries()["data/a.csv"] == a2
        db.delete_stat_entries(["é/b"])
        assert set(db.stat_entries()) == {"data/a.csv"}
        db.put_stat_entries([])  # nothing to do, no error
    with StateDB(db_path) as db:
        assert db.stat_entries() == {"data/a.csv": a2}


def test_key_value(db_path: Path) -> None:
    with StateDB(db_path) as db:
        assert db.get("spec") is None
        db.put("spec", "abc")
        db.put("spec", "def")
        assert db.get("spec") == "def"
    with StateDB(db_path) as db:
        assert db.get("spec") == "def"


def test_journal_keeps_append_order_and_clears(db_path: Path) -> None:
    with StateDB(db_path) as db:
        db.journal_append("prepare", '{"n": 1}')
        db.journal_append("train", '{"n": 2}')
        db.journal_append("prepare", '{"n": 3}')
        assert db.journal_entries() == [
            ("prepare", '{"n": 1}'),
            ("train", '{"n": 2}'),
            ("prepare", '{"n": 3}'),
        ]
        db.journal_clear()
        assert db.journal_entries() == []
        db.journal_append("evaluate", "{}")
        assert db.journal_entries() == [("evaluate", "{}")]


def test_journal_row_is_committed_at_once(db_path: Path) -> None:
    writer = StateDB(db_path)
    reader = StateDB(db_path)
    try:
        writer.journal_append("train", "{}")
        # Another connection (think: a killed process's successor) sees it already.
        assert reader.journal_entries() == [("train", "{}")]
    finally:
        writer.close()
        reader.close()


def test_corrupt_file_is_moved_aside_and_recreated(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not a database, just garbage bytes " * 200)
    with StateDB(db_path) as db:
        assert db.stat_entries() == {}
        db.put("k", "v")
        assert db.get("k") == "v"
    aside = list(db_path.parent.glob("state.db.bad-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes().startswith(b"this is not a database")


def test_database_from_a_newer_version_is_moved_aside(db_path: Path) -> None:
    with StateDB(db_path) as db:
        db.put("k", "old")
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with StateDB(db_path) as db:
        assert db.get("k") is None  # a fresh database
        assert db._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert list(db_path.parent.glob("state.db.bad-*"))


def test_usable_from_another_thread(db_path: Path) -> None:
    db = StateDB(db_path)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            db.put("from", "thread")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert not errors
    assert db.get("from") == "thread"
    db.close()


def test_dir_signatures_round_trip_and_old_databases(db_path: Path) -> None:
    import sqlite3

    from pipeflow.state import DirSignature

    with StateDB(db_path) as db:
        assert db.dir_signature("d") is None
        sig = DirSignature("s" * 32, "h" * 32, 10, 3, 5, 4)
        db.put_dir_signatures([("d", sig)])
        assert db.dir_signature("d") == sig
        sig2 = DirSignature("t" * 32, "h" * 32, 11, 4, 6, 5)
        db.put_dir_signatures(iter([("d", sig2)]))
        assert db.dir_signature("d") == sig2
    # A database from before the table existed: reads find nothing, writes create it.
    conn = sqlite3.connect(db_path)
    conn.execute("DROP TABLE dirsig")
    conn.commit()
    conn.close()
    with StateDB(db_path) as db:
        assert db.dir_signature("d") is None
        db.put_dir_signatures([("d", sig2)])
        assert db.dir_signature("d") == sig2


def test_single_stat_entry(db_path: Path) -> None:
    with StateDB(db_path) as db:
        e = StatEntry(1, 2, 3, "a" * 32, 4, 5)
        db.put_stat_entries([("x/y", e)])
        assert db.stat_entry("x/y") == e
        assert db.stat_entry("x") is None
