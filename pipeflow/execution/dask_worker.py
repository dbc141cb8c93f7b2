"""What Dask runs on a worker: the generic ``worker.run_task``, plus the few lines Dask
needs to stop it. Dask cannot stop a task that is running, so the client sets a
Dask ``Event`` named after the task, and a thread here waits for it and cancels the
stage (its processes get SIGTERM, as a local run's do)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from pipeflow.execution.cancel import CancelToken
from pipeflow.execution.task import Task
from pipeflow.execution.worker import run_task

POLL = 1.0
"""Seconds of one wait for the stop event (a scheduler call each)."""


def stop_event(key: str, client: Any = None) -> Any:
    """The Dask ``Event`` that stops the task ``key`` once set."""
    from distributed import Event

    return Event(f"{key}-stop", client=client)  # type: ignore[no-untyped-call]


def run(task_json: str, key: str) -> str:
    """Run the task on this worker until it ends or the client sets its stop event;
    returns the answer's JSON."""
    cancel, ended = CancelToken(), threading.Event()
    event = stop_event(key)
    _ = event.client  # bound here, in the task's thread, where Dask knows the worker

    def watch() -> None:
        # the scheduler going away ends the watch, not the stage
        with contextlib.suppress(OSError, TimeoutError):
            while not ended.is_set():
                if event.wait(timeout=POLL):
                    cancel.cancel()
                    event.clear()
                    return

    threading.Thread(target=watch, name=f"pipeflow-stop-{key}", daemon=True).start()
    try:
        return run_task(Task.from_json(task_json), cancel).to_json()
    finally:
        ended.set()
