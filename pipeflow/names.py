"""Names a user gives to things the registry shows: models and aliases (tags).

One rule for both, so a name that works in one place works in the other: letters,
digits, ``-``, ``_`` and ``.``, starting with a letter or digit, at most 100
characters. An alias also may not read as a version label (``v3``) or a hash prefix
(``3fa9``): in ``PATH@VERSION`` it would name a version instead of itself.
"""

from __future__ import annotations

import re

MAX_LENGTH = 100
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_VERSIONISH = re.compile(r"v[0-9]+|[0-9a-f]{4,}")


def name_problem(name: str, *, alias: bool = False) -> str | None:
    """Why ``name`` is not a valid model (or, with ``alias``, alias) name; None if it is."""
    if not name:
        return "is empty"
    if len(name) > MAX_LENGTH:
        return f"is longer than {MAX_LENGTH} characters"
    if not _NAME.fullmatch(name):
        return "may hold only letters, digits, '-', '_' and '.', and must start with a " \
               "letter or digit"
    if alias and _VERSIONISH.fullmatch(name):
        return "reads as a version label (vN) or a hash prefix"
    return None
