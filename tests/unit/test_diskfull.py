"""One mapping of "no space left" to a clear error, and the names dead writers leave."""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from pathlib import Path

import pytest

from pipeflow.errors import DiskFull
from pipeflow.files import diskfull
from pipeflow.state import StateDB
from pipeflow.storage.leftovers import STALE_AGE, Leftover, stale, writer_pid


def _sqlite_error(code: int) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorcode = code
    return exc


def test_what_counts_as_a_full_disk(tmp_path: Path) -> None:
    assert diskfull.is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert diskfull.is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not diskfull.is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert diskfull.is_disk_full(_sqlite_error(sqlite3.SQLITE_FULL))
    # an I/O error is a full disk only where the file system has no room left
    assert not diskfull.is_disk_full(_sqlite_error(sqlite3.SQLITE_IOERR), tmp_path / "x")
    assert not diskfull.is_disk_full(ValueError("no"))


def test_the_error_names_the_path_and_the_fix(tmp_path: Path) -> None:
    exc = OSError(errno.EDQUOT, "Disk quota exceeded")
    with pytest.raises(DiskFull) as info:
        diskfull.check(exc, tmp_path / "f", "write the lock")
    err = info.value
    assert err.exit_code == 1
    assert err.message == f"the disk quota is exceeded: cannot write the lock {tmp_path / 'f'}"
    assert err.hint is not None and f"df -h {tmp_path}" in err.hint
    diskfull.check(OSError(errno.EACCES, "denied"), tmp_path)  # not ours: no raise


def test_a_full_disk_in_the_state_database_is_disk_full(tmp_path: Path) -> None:
    with StateDB(tmp_path / "state.db") as db, pytest.raises(DiskFull, match=r"state\.db"):
        raise db._fail("write the journal", _sqlite_error(sqlite3.SQLITE_FULL))


def test_writer_pids_in_the_names_pipeflow_makes() -> None:
    assert writer_pid(".pipeline.lock.4242.0a1b2c3d.tmp") == 4242
    assert writer_pid(".model.pkl.4242-0a1b2c-17.pftmp") == 4242
    assert writer_pid(".model.pkl.4242-0a1b2c3d.pftmp") == 4242
    assert writer_pid("c2d1354328df5e68b4759775d1cc38aa.4242-0a1b2c3d.part") == 4242
    assert writer_pid("c2d1.0a1b2c3d") is None  # an older name: left to the grace period
    assert writer_pid(".notes.tmp") is None


def test_only_dead_and_silent_or_very_old_temps_are_stale(tmp_path: Path) -> None:
    now = time.time()
    dead = tmp_path / ".x.999999999-ab-0.pftmp"
    mine = tmp_path / f".x.{os.getpid()}-ab-0.pftmp"
    old = now - STALE_AGE - 1
    assert stale(Leftover(dead, old, 1), now, grace=7200)
    assert not stale(Leftover(dead, now - 5, 1), now, grace=7200)  # may be another host's
    assert not stale(Leftover(mine, old, 1), now, grace=7200)  # alive
    assert stale(Leftover(mine, now - 7201, 1), now, grace=7200)  # past the grace period
