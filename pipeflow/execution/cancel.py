"""Stopping one run, and only that one: the token its stage processes answer to.

Nothing here touches signals. The CLI turns Ctrl-C and SIGTERM into a stop of its
run; a program that calls the library keeps its own signal handlers and stops a run
by calling :meth:`CancelToken.cancel`, from any thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class CancelToken:
    """Cancels the run it is given to: no new stage starts and the run's own stage
    processes get SIGTERM; stages that finished are kept. Thread-safe; serves one run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next = 0

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled

    def cancel(self) -> None:
        """Stop the run (returns at once; the run ends when its stages have exited)."""
        with self._lock:
            self._cancelled = True
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` on cancel (at once if already cancelled); returns a function
        that unregisters it (for a process that ended)."""
        with self._lock:
            if not self._cancelled:
                key = self._next
                self._next += 1
                self._callbacks[key] = callback
                return lambda: self._forget(key)
        callback()
        return lambda: None

    def _forget(self, key: int) -> None:
        with self._lock:
            self._callbacks.pop(key, None)
