"""Named fault points, for tests only: make pipeflow pause or die at a chosen step.

``PIPEFLOW_FAULTS`` holds comma-separated rules ``NAME:ACTION[@N]``; ``NAME`` is a
point's name (``push.object``) or a prefix ending in ``*`` (``push.*``), ``ACTION`` is
``kill`` (SIGKILL this process: no handler, no clean-up, as a power cut would),
``interrupt`` (SIGINT to itself, as Ctrl-C), ``sleep=SECONDS``, ``pause=PATH`` (create
the file PATH, then wait until the test deletes it: a step held exactly as long as a
test needs, at most 120 s) or ``enospc`` (raise ``OSError(ENOSPC)`` there, as a full disk
would at the write that follows the point); ``@N`` fires on the N-th pass only (the
first by default for kill/interrupt/pause/enospc, every pass for sleep).
Unset, :func:`point` costs one global lookup: the rules are parsed once, at import.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from dataclasses import dataclass


@dataclass
class _Rule:
    pattern: str
    action: str
    seconds: float
    nth: int | None
    path: str = ""
    passes: int = 0

    def matches(self, name: str) -> bool:
        if self.pattern.endswith("*"):
            return name.startswith(self.pattern[:-1])
        return name == self.pattern


def _parse(text: str) -> list[_Rule]:
    rules = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, action = item.partition(":")
        action, _, nth = action.partition("@")
        kind, _, arg = action.partition("=")
        if kind not in ("kill", "interrupt", "sleep", "pause", "enospc") or not name or (
                kind == "pause" and not arg):
            raise ValueError(f"PIPEFLOW_FAULTS: bad rule {item!r}")
        count = int(nth) if nth else (None if kind == "sleep" else 1)
        if kind == "pause":
            rules.append(_Rule(name, kind, 0.0, count, arg))
        else:
            rules.append(_Rule(name, kind, float(arg or 0), count))
    return rules


_RULES = _parse(os.environ.get("PIPEFLOW_FAULTS", ""))
_LOCK = threading.Lock()


def point(name: str) -> None:
    """A step where a test may inject a fault (no effect unless PIPEFLOW_FAULTS names it)."""
    if not _RULES:
        return
    for rule in _RULES:
        if not rule.matches(name):
            continue
        with _LOCK:
            rule.passes += 1
            fire = rule.nth is None or rule.passes == rule.nth
        if not fire:
            continue
        if rule.action == "sleep":
            time.sleep(rule.seconds)
        elif rule.action == "pause":
            _pause(rule.path)
        elif rule.action == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        elif rule.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        else:
            os.kill(os.getpid(), signal.SIGINT)


def _pause(path: str) -> None:
    """Create ``path`` and wait until it is gone (the test's signal to go on)."""
    from pathlib import Path

    from pipeflow.files import atomicfile

    atomicfile.write_text(Path(path), f"{os.getpid()}\n")  # a test that reads it sees it whole
    deadline = time.monotonic() + 120
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
