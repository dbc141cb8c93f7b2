"""The repository lock: one writer, a clear message for the second, freed on SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeflow.errors import LockedError
from pipeflow.files.repolock import RepoLock, describe, holder_alive, read_holder

HOLDER = """
import os, sys
from pathlib import Path
from pipeflow.files.repolock import RepoLock
lock = RepoLock(Path(os.environ["LOCK_PATH"]))
lock.acquire()
print("locked", flush=True)
sys.stdin.read()  # hold until the test closes stdin (or kills us)
lock.release()
print("released", flush=True)
"""


@contextmanager
def holder(path: Path, *command: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock; ``command`` becomes its recorded command line."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, *command],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "LOCK_PATH": str(path)},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / ".pipeflow" / "lock"


def test_second_acquirer_fails_naming_the_holder(lock_path: Path) -> None:
    with holder(lock_path, "repro", "--jobs", "2") as proc:
        with pytest.raises(LockedError) as err:
            RepoLock(lock_path).acquire()
        text = str(err.value)
        assert f"the repository is locked by pid {proc.pid} " in text
        assert "(`pipeflow repro --jobs 2`, started 2" in text  # a date, not '?'
        assert err.value.hint is not None and "--wait" in err.value.hint
        assert err.value.exit_code == 1
        record = read_holder(lock_path)
        assert record is not None and record["pid"] == proc.pid
        assert holder_alive(record)


def test_in_process_second_acquirer_fails(lock_path: Path) -> None:
    # flock belongs to the open file, so even another RepoLock of this process is refused
    with RepoLock(lock_path):
        with pytest.raises(LockedError, match=f"pid {os.getpid()} "):
            RepoLock(lock_path).acquire()
        with pytest.raises(LockedError):
            RepoLock(lock_path, wait=0.1).acquire()
    with RepoLock(lock_path):
        pass  # free again after the first one's release


def test_wait_succeeds_after_release(lock_path: Path) -> None:
    first = RepoLock(lock_path)
    first.acquire()
    released = threading.Event()

    def release_soon() -> None:
        released.wait(0.3)  # give the waiter time to start waiting
        first.release()
        released.set()

    t = threading.Thread(target=release_soon)
    t.start()
    try:
        with RepoLock(lock_path, wait=30):
            assert released.is_set()  # got it only after the holder let go
            record = read_holder(lock_path)
            assert record is not None and record["pid"] == os.getpid()
    finally:
        released.set()
        t.join()


def test_wait_for_another_process(lock_path: Path) -> None:
    with holder(lock_path, "repro") as proc:
        assert proc.stdin is not None
        proc.stdin.close()  # the holder releases and exits
        with RepoLock(lock_path, wait=30):
            pass
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "released"


def test_lock_freed_when_holder_is_killed(lock_path: Path) -> None:
    with holder(lock_path, "repro") as proc:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        # the record of the dead holder is still in the file, but nobody holds it
        stale = read_holder(lock_path)
        assert stale is not None and stale["pid"] == proc.pid
        assert not holder_alive(stale)
        with RepoLock(lock_path):  # wait=0: must not fail
            record = read_holder(lock_path)
            assert record is not None and record["pid"] == os.getpid()


def test_release_clears_the_record(lock_path: Path) -> None:
    lock = RepoLock(lock_path)
    lock.acquire()
    assert read_holder(lock_path) is not None
    lock.release()
    assert read_holder(lock_path) is None
    lock.release()  # idempotent


def test_holder_alive() -> None:
    assert holder_alive({"pid": os.getpid()})
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not holder_alive({"pid": proc.pid})
    assert not holder_alive(None)
    assert not holder_alive({})
    assert not holder_alive({"pid": str(os.getpid())})
    assert not holder_alive({"pid": True})
    assert not holder_alive({"pid": 0})  # kill(0) would probe our own process group
    assert not holder_alive({"pid": -1})


def test_read_holder_tolerates_garbage(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    assert read_holder(path) is None
    for text in ("", "not json", "[1, 2]", "null"):
        path.write_text(text)
        assert read_holder(path) is None


def test_describe() -> None:
    assert describe(None) == "another pipeflow process"
    assert describe({"pid": 12, "command": "pipeflow repro"}) == (
        "pid 12 (`pipeflow repro`, started ?)"
    )
