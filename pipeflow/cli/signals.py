"""The command line's signals: only the CLI installs handlers, never the library.

Ctrl-C raises KeyboardInterrupt by Python's default; SIGTERM is made to do the same
(as :class:`Terminated`), so a stopped run keeps its finished stages and exits 143.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from pipeflow.errors import Terminated


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` on the main thread."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (a test driving the CLI): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
