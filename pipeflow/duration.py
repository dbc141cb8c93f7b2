"""Durations as people type them: ``2h``, ``30m``, ``1h30m``, ``7d``, ``45s``, ``0``."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; ValueError (saying what is accepted) when it is not one.

    A bare number other than 0 is refused: "30" could be minutes as well as seconds.
    """
    clean = text.strip().lower().replace(" ", "")
    if clean in ("0", "0s"):
        return 0.0
    if not clean or _PART.sub("", clean):
        raise ValueError(f"{text!r} is not a duration: give a number and a unit, "
                         "e.g. 30m, 2h, 1h30m, 7d (s, m, h, d, w), or 0")
    return float(sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(clean)))


def describe(seconds: float) -> str:
    """``7200`` -> ``2h``: the shortest exact spelling, for messages."""
    if seconds <= 0:
        return "0"
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds}s"
