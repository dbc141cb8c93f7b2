"""A real Dask cluster on 127.0.0.1 for the tests that need one (``address``): the
Dask tests and the executor contract (tests/conftest.py registers this module)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

FLAVOR = "PIPEFLOW_TEST_FLAVOR"
"""Set to "worker" in the cluster's processes (a test compares environments)."""


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real cluster as users start one: ``dask scheduler`` and ``dask worker`` with two
    worker processes under a nanny, each in a process group of its own. A task whose
    worker dies is rerun once (``allowed-failures: 1``; Dask's default is 3), then the
    stage fails.

    Separate processes, not a ``LocalCluster`` inside pytest: closing that one after a
    worker was killed hung now and then (in ``Cluster.close``), and a killed process
    group cannot hang. The cluster starts before any test's own fixtures, so it gets
    its own machine cache and scratch folder here: never the user's cache, never the
    machine's /tmp (a task whose worker is killed leaves its scratch folder behind)."""
    distributed = pytest.importorskip("distributed")
    own = tmp_path_factory.mktemp("dask-cluster")
    (own / "tmp").mkdir()
    # If pytest dies without tearing down (pytest-timeout ends it with os._exit), the
    # scheduler stops after 2 idle minutes and closes its workers (which end by
    # themselves a minute after a scheduler that was killed).
    env = {**os.environ, FLAVOR: "worker", "PIPEFLOW_MACHINE_CACHE": str(own / "machine.db"),
           "TMPDIR": str(own / "tmp"), "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
           "DASK_DISTRIBUTED__SCHEDULER__IDLE_TIMEOUT": "120s"}
    env.pop("PIPEFLOW_DASK_SCHEDULER", None)
    found = own / "scheduler.json"
    common = ["--host", "127.0.0.1", "--no-dashboard"]
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(own / f"{name}.log", "wb") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", *args, *common], env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        return procs[-1]

    try:
        scheduler = start("scheduler", "distributed.cli.dask_scheduler", "--port", "0",
                          "--scheduler-file", str(found))
        address = _scheduler_address(found, scheduler, own / "scheduler.log")
        start("worker", "distributed.cli.dask_worker", address, "--nworkers", "2",
              "--nthreads", "1", "--death-timeout", "60", "--local-directory",
              str(own / "workers"))
        with distributed.Client(address, timeout=60) as client:
            try:
                client.wait_for_workers(2, timeout=60)
            except TimeoutError as exc:  # distributed's WorkerStartTimeoutError
                raise RuntimeError(f"dask workers did not start: "
                                   f"{_log_tail(own / 'worker.log')}") from exc
        yield address
    finally:
        for proc in reversed(procs):
            _stop_group(proc)


def _scheduler_address(found: Path, proc: subprocess.Popen[bytes], log: Path) -> str:
    """The address the scheduler wrote to ``found``; fails with its log if it exits or
    writes nothing within 60 s (the Client's own wait for the file has no end)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dask scheduler exited ({proc.returncode}): {_log_tail(log)}")
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
            return str(json.loads(found.read_text(encoding="utf-8"))["address"])
        time.sleep(0.05)
    raise RuntimeError(f"dask scheduler wrote no address in 60 s: {_log_tail(log)}")


def _log_tail(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-2000:]


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it if still there after 15 s."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
