"""Checking untrusted lock data field by field.

A lock comes from git (a merge, a colleague, an attacker): every field is checked for
its type and shape before the lock's values are built, and each failure is a
``LockfileError`` naming the file, the stage and the field.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, NoReturn

from pipeflow.errors import LockfileError
from pipeflow.files import safepath

# Params, env and metric values are plain data; a deeper value in a lock is
# garbage (or a self-referencing YAML alias), not a real parameter.
MAX_DEPTH = 64


class Checker:
    """Type checks that raise a LockfileError naming where and which field."""

    def __init__(self, where: str, hint: str) -> None:
        self.where = where
        self.hint = hint

    def fail(self, fld: str, problem: str) -> NoReturn:
        prefix = f"{self.where}: field '{fld}'" if fld else self.where
        raise LockfileError(f"{prefix}: {problem}", hint=self.hint)

    def mapping(self, value: object, fld: str) -> dict[Any, Any]:
        if not isinstance(value, dict):
            self.fail(fld, f"expected a mapping, got {kind_of(value)}")
        return value

    def fields(
        self, d: dict[Any, Any], fld: str, required: tuple[str, ...], optional: tuple[str, ...]
    ) -> None:
        known = required + optional
        for key in d:
            if key not in known:
                self.fail(join_field(fld, str(key)), f"unknown field{did_you_mean(key, known)}")
        for key in required:
            if key not in d:
                self.fail(join_field(fld, key), "missing")

    def string(self, value: object, fld: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(fld, f"expected a non-empty string, got {kind_of(value)}")
        return value

    def path(self, value: object, fld: str) -> str:
        """A path the lock names: checked by :mod:`pipeflow.files.safepath` at parse time, so
        no caller can use ``../x``, ``/etc/x`` or ``.git/hooks/x`` from a crafted lock."""
        where = f"{self.where}: field '{fld}'" if fld else self.where
        try:
            return safepath.check(value, where=where)
        except safepath.UnsafePathError as exc:
            # A LockfileError: readers of old locks (gc, version labels) skip such a
            # lock like any other damaged one.
            raise LockfileError(exc.message, hint=exc.hint) from exc

    def hexdigest(self, value: object, fld: str, pattern: re.Pattern[str], what: str) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            self.fail(fld, f"expected {what}, got {kind_of(value)}")
        return value

    def count(self, value: object, fld: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.fail(fld, f"expected a non-negative integer, got {kind_of(value)}")
        return value

    def flag(self, value: object, fld: str) -> bool:
        if not isinstance(value, bool):
            self.fail(fld, f"expected true or false, got {kind_of(value)}")
        return value

    def data(self, value: object, fld: str, depth: int = 0) -> Any:
        """Check plain data (scalars, lists, mappings) as the emitter can write it."""
        if value is None or isinstance(value, str | int | float | datetime.date):
            return value
        if depth >= MAX_DEPTH:
            self.fail(fld, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.data(item, f"{fld}[{i}]", depth + 1)
            return value
        if isinstance(value, dict):
            for key, item in value.items():
                if not (key is None or isinstance(key, str | int | float)):
                    self.fail(fld, f"keys must be scalars, got {kind_of(key)}")
                self.data(item, join_field(fld, str(key)), depth + 1)
            return value
        self.fail(fld, f"expected plain data, got {kind_of(value)}")

    def data_mapping(self, value: object, fld: str) -> dict[str, Any]:
        d = self.mapping(value, fld)
        for key in d:
            self.string(key, f"{fld} key")
        self.data(d, fld)
        return d


def join_field(parent: str, child: str) -> str:
    """The dotted name of field ``child`` inside ``parent``."""
    return f"{parent}.{child}" if parent else child


def kind_of(value: object) -> str:
    """What a wrong value is, short enough for an error message."""
    if value is None:
        return "null"
    if isinstance(value, str | int | float):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return f"a {type(value).__name__}"


def did_you_mean(key: object, known: tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for the known field closest to ``key``, or nothing."""
    import difflib

    close = difflib.get_close_matches(str(key), known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
