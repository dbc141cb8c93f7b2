"""Fingerprints being computed right now by one of several runs in this process.

Experiments of one sweep run side by side; two of them often reach the same stage
with the same inputs (a grid over ``train.C`` x ``eval.k`` trains each ``C`` once
per ``k``). The first to reach a fingerprint holds it while its stage runs; the
others wait for it, then find its outputs in the run cache instead of running the
stage again. A holder that fails or stops releases the fingerprint: a waiter then
runs the stage itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class InFlight:
    """Who holds which fingerprint (thread-safe; one per sweep)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held: dict[str, object] = {}

    def acquire(self, fingerprint: str, owner: object,
                stopped: Callable[[], bool] = lambda: False) -> None:
        """Hold ``fingerprint`` for ``owner``, first waiting while another owner holds
        it (or until ``stopped()`` says the run is being cancelled)."""
        with self._cond:
            while self._held.get(fingerprint, owner) is not owner and not stopped():
                self._cond.wait(0.2)
            self._held[fingerprint] = owner

    def release(self, fingerprint: str, owner: object) -> None:
        with self._cond:
            if self._held.get(fingerprint) is owner:
                del self._held[fingerprint]
                self._cond.notify_all()

    def release_all(self, owner: object) -> None:
        """Everything ``owner`` still holds (its run ended, however it ended)."""
        with self._cond:
            for fingerprint in [f for f, o in self._held.items() if o is owner]:
                del self._held[fingerprint]
            self._cond.notify_all()
