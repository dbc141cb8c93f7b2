"""storage.remote: parallel transfers stop early; uploads leave no temporary name;
run-cache pointers are parsed strictly."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeflow.content.hashing import hash_file
from pipeflow.errors import Cancelled, StorageError
from pipeflow.records.records import parse_pointer
from pipeflow.storage.exchange import upload_missing
from pipeflow.storage.remote import Remote, parallel

POINTER = b"0123456789abcdef/00000007-" + b"a" * 64 + b".json\n"


def _blocking_jobs(n: int, started: list[int], first: threading.Event):  # type: ignore[no-untyped-def]
    """Jobs that note they started, signal the first start, and wait to be halted."""
    lock = threading.Lock()

    def make(i: int):  # type: ignore[no-untyped-def]
        def job(halt: threading.Event) -> None:
            with lock:
                started.append(i)
            first.set()
            assert halt.wait(10), "never told to stop"
            raise Cancelled("stopped")
        return job
    return [make(i) for i in range(n)]


def test_results_come_back_in_order() -> None:
    seen: list[tuple[int, int]] = []
    results = parallel([(lambda _h, i=i: i * i) for i in range(50)],
                       lambda done, total: seen.append((done, total)))
    assert results == [i * i for i in range(50)]
    assert seen[0] == (0, 50) and seen[-1] == (50, 50)


def test_a_stop_event_cancels_the_queue_and_ends_running_jobs() -> None:
    started: list[int] = []
    first, stop = threading.Event(), threading.Event()
    jobs = _blocking_jobs(100, started, first)
    threading.Thread(target=lambda: (first.wait(10), stop.set()), daemon=True).start()
    with pytest.raises(Cancelled):
        parallel(jobs, workers=4, stop=stop)
    assert len(started) <= 4  # the queued 96 never ran


def test_the_first_error_cancels_the_queue() -> None:
    started: list[int] = []
    first = threading.Event()

    def boom(_halt: threading.Event) -> None:
        assert first.wait(10)
        raise StorageError("the remote refused")

    jobs = [boom, *_blocking_jobs(100, started, first)]
    with pytest.raises(StorageError, match="refused"):
        parallel(jobs, workers=4)
    assert len(started) <= 4  # at most one per thread: the queue was dropped


def test_a_bug_in_a_job_is_not_a_storage_error() -> None:
    def bug(_halt: threading.Event) -> None:
        raise TypeError("bad option")

    with pytest.raises(TypeError):
        parallel([bug])


def test_upload_is_whole_or_absent_and_stops_on_request(tmp_path: Path) -> None:
    remote = Remote("r", str(tmp_path / "store"))
    sources: dict[str, Path] = {}
    for i in range(20):
        path = tmp_path / f"f{i}"
        path.write_bytes(os.urandom(3000))
        sources[hash_file(path)] = path
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        upload_missing(remote, sources, stop)
    assert upload_missing(remote, sources) == 20
    stored = [Path(d) / n for d, _s, names in os.walk(tmp_path / "store") for n in names]
    assert sorted(p.parent.name + p.name for p in stored) == sorted(sources)
    assert remote.objects() == set(sources)


def test_pointer_parsing() -> None:
    assert parse_pointer(POINTER) == POINTER.decode().strip()
    assert parse_pointer(POINTER.rstrip()) == POINTER.decode().strip()
    assert parse_pointer(POINTER[:20]) is None
    assert parse_pointer(b"../../etc/passwd\n") is None


@given(st.binary(max_size=200))
def test_any_bytes_parse_to_a_record_path_or_none(data: bytes) -> None:
    rel = parse_pointer(data)
    assert rel is None or (rel.endswith(".json") and ".." not in rel)


INTERRUPTED_BATCHES = """
import _thread, sys, threading, time
from pipeflow.storage.remote import parallel

def job(i):
    def run(halt):
        time.sleep(0.0005)
        if i == 400:
            _thread.interrupt_main()  # Ctrl-C while the main thread waits on the batch
        return i
    return run

for attempt in range(40):
    try:
        parallel([job(i) for i in range(3000)])
    except KeyboardInterrupt:
        pass
    else:
        sys.exit(f"attempt {attempt}: the interrupt was lost")
    left = [t.name for t in threading.enumerate() if t.name.startswith("pipeflow-transfer")]
    if left:
        sys.exit(f"attempt {attempt}: threads still running: {left}")
print("ok")
"""


def test_ctrl_c_never_deadlocks_a_batch() -> None:
    """A Ctrl-C landing anywhere in the main thread's wait ends the batch: waiting on
    futures (concurrent.futures.wait) could leave their locks taken, and then the
    workers hung as they finished (about one interrupted push in twelve)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", INTERRUPTED_BATCHES], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
