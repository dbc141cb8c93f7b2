"""Runs in one process are separate: a cancel or Ctrl-C stops one run's stages only,
and the library never changes the process's signal handlers (issue 10, item 10)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import pipeflow
from pipeflow.errors import Interrupted


class Blocked:
    """A project whose stage ``hold`` waits on a FIFO (outside the project) until the
    test releases it; ``quick`` finishes first."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.root = tmp / name
        self.root.mkdir()
        subprocess.run(["git", "init", "-q", str(self.root)], check=True)
        self.fifo = tmp / f"{name}.fifo"
        os.mkfifo(self.fifo)
        self.started = tmp / f"{name}.started"
        stages = {
            "quick": {"cmd": "echo 1 > quick.txt", "outs": ["quick.txt"]},
            "hold": {"cmd": f"touch {self.started} && cat {self.fifo} > hold.txt",
                     "deps": ["quick.txt"], "outs": ["hold.txt"]},
        }
        (self.root / "pipeline.yaml").write_text(yaml.safe_dump({"stages": stages}))
        self.result: Any = None

    def wait_started(self) -> None:
        deadline = time.monotonic() + 60
        while not self.started.exists():
            assert time.monotonic() < deadline, f"{self.root.name}: stage never started"
            time.sleep(0.02)

    def release(self) -> None:
        """Let ``hold`` finish; fails (ENXIO) if no reader opens the FIFO within 30 s
        (its process is gone). ``started`` exists a moment before ``cat`` opens the FIFO:
        until it does, opening for writing fails with ENXIO too, so keep trying."""
        deadline = time.monotonic() + 30
        while True:
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as exc:
                if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        os.write(fd, b"done\n")
        os.close(fd)

    def in_thread(self, **options: Any) -> threading.Thread:
        def run() -> None:
            self.result = pipeflow.Repo(self.root).repro(**options)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def locked(self) -> set[str]:
        lock = yaml.safe_load((self.root / "pipeline.lock").read_text())
        return set(lock["stages"])


def _after_both_started(*projects: Blocked, then: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        for p in projects:
            p.wait_started()
        then()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_cancelling_one_run_leaves_the_other_runs_stages_alone(tmp_path: Path) -> None:
    a, b = Blocked(tmp_path, "a"), Blocked(tmp_path, "b")
    token = pipeflow.CancelToken()
    ta, tb = a.in_thread(cancel=token), b.in_thread()
    a.wait_started()
    b.wait_started()
    token.cancel()
    ta.join(60)
    assert a.result.cancelled and not a.result.ok
    assert a.result.ran == ("quick",)
    assert a.result.failed == ()  # stopped on purpose, not a failure
    assert a.result.not_started == ("hold",)
    b.release()  # its stage is still running: the cancel was not for it
    tb.join(60)
    assert b.result.ok and not b.result.cancelled, b.result
    assert b.result.ran == ("quick", "hold")
    assert (b.root / "hold.txt").read_text() == "done\n"
    assert a.locked() == {"quick"}
    assert b.locked() == {"quick", "hold"}
    assert pipeflow.Repo(b.root).status().up_to_date


def test_ctrl_c_in_one_library_run_does_not_kill_another_threads_stages(
    tmp_path: Path,
) -> None:
    a, b = Blocked(tmp_path, "a"), Blocked(tmp_path, "b")
    tb = b.in_thread()
    # Ctrl-C reaches the main thread, which runs a's repro
    _after_both_started(a, b, then=lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(Interrupted):
        pipeflow.Repo(a.root).repro()
    b.release()
    tb.join(60)
    assert b.result.ok, b.result
    assert b.locked() == {"quick", "hold"}
    assert a.locked() == {"quick"}


def test_the_library_leaves_the_hosts_sigterm_handler_in_place(tmp_path: Path) -> None:
    a = Blocked(tmp_path, "a")
    seen: list[object] = []

    def host_handler(signum: int, frame: object) -> None:
        raise AssertionError("not called in this test")

    def look_then_release() -> None:
        seen.append(signal.getsignal(signal.SIGTERM))
        a.release()

    before = signal.signal(signal.SIGTERM, host_handler)
    try:
        _after_both_started(a, then=look_then_release)
        result = pipeflow.Repo(a.root).repro()
        assert signal.getsignal(signal.SIGTERM) is host_handler
    finally:
        signal.signal(signal.SIGTERM, before)
    assert result.ok
    assert seen == [host_handler]  # during the run, too
