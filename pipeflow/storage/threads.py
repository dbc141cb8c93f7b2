"""Work shared by a few threads that stop together, and are waited for even on Ctrl-C.

Used where a step is mostly system calls that release the GIL (linking a big new
folder): a few threads go faster than one, and an error or an interrupt must leave
no thread running past the caller, who removes what they made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


def in_threads(
    work: Callable[[_T, threading.Event], list[_R]], shares: list[_T]
) -> list[_R]:
    """Run ``work(share, stop)`` on each share in a thread of its own; their results
    joined. The first error sets ``stop`` (``work`` checks it often) and is raised once
    no thread is inside ``work`` any more, so the caller may remove what they made: on
    an interrupt of this thread too.

    The wait counts threads inside ``work`` under a lock rather than trusting
    ``Thread.join``: on Python 3.11 and 3.12 a join interrupted by Ctrl-C marks the
    thread finished while it still runs (CPython gh-90882), and a thread whose
    ``start()`` was interrupted may run without being known here. A thread that gets
    going after ``stop`` does nothing."""
    results: list[list[_R]] = [[] for _ in shares]
    errors: list[BaseException] = []
    stop = threading.Event()
    lock = threading.Condition()
    inside = [0]  # threads inside ``work`` now
    finished = [0]  # threads that returned from ``run``

    def run(i: int) -> None:
        try:
            with lock:
                if stop.is_set():
                    return
                inside[0] += 1
            try:
                results[i] = work(shares[i], stop)
            except BaseException as exc:
                errors.append(exc)
                stop.set()
            finally:
                with lock:
                    inside[0] -= 1
        finally:
            with lock:
                finished[0] += 1
                lock.notify_all()

    started = 0
    try:
        for i in range(len(shares)):
            threading.Thread(target=run, args=(i,), name="pipeflow-link", daemon=True).start()
            started += 1
        with lock:
            while finished[0] < started:
                lock.wait()
    except BaseException:
        stop.set()
        _wait_patiently(lock, lambda: inside[0] == 0)
        raise
    if errors:
        raise errors[0]
    return [r for part in results for r in part]


def _wait_patiently(lock: threading.Condition, done: Callable[[], bool]) -> None:
    """Wait under ``lock`` until ``done()``, whatever interrupts the wait (a second
    Ctrl-C too: the caller raises the first)."""
    while True:
        try:
            with lock:
                while not done():
                    lock.wait(0.05)
            return
        except BaseException:
            continue
