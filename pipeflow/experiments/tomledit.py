"""Replacing values in TOML text, one ``key = value`` line at a time.

A key ``train.C`` is found as ``C = ...`` under the header ``[train]`` (or ``C`` at
the top for a one-part key). Other forms of writing it (a dotted key ``train.C = 1``,
an inline table ``train = {C = 1}``, an array of tables) are refused with a
UsageError rather than rewritten: the caller asks the user to edit them by hand. The
value's text ends where what follows it (a ``# comment`` or the end of a line) leaves
a valid TOML value: found by trying each candidate end, so a ``#`` inside a string or
a value over several lines (an array) is handled without a TOML tokenizer.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from pipeflow.errors import UsageError

_HEADER = re.compile(r"\s*\[(?!\[)(?P<key>[^\]#]*)\]\s*(#.*)?$")
_ARRAY_HEADER = re.compile(r"\s*\[\[")
_ASSIGN = re.compile(r"(?P<lead>\s*)(?P<key>[A-Za-z0-9_\-.\"' \t]+?)\s*=(?P<gap>[ \t]*)")
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_HAND = "edit this value by hand (pipeflow edits `key = value` lines under [table] only)"
_MAX_VALUE_LINES = 1000


def set_values(text: str, values: Mapping[str, Any], shown: str) -> str:
    """``text`` with the value of each dotted key of ``values`` replaced."""
    # Lines end at "\n" only: str.splitlines would also split at U+0085 or U+2028,
    # which a TOML string may hold
    *parts, rest = text.split("\n")
    lines = [p + "\n" for p in parts] + ([rest] if rest else [])
    for key, value in values.items():
        parts = key.split(".")
        row, column = _find(lines, parts, key, shown)
        first, last, tail = _value_extent(lines, row, column, key, shown)
        new = lines[first][:column] + render(value, shown, key) + tail
        lines[first: last + 1] = [new]
    return "".join(lines)


def _find(lines: list[str], parts: list[str], key: str, shown: str) -> tuple[int, int]:
    """(line, column where the value starts) of ``key``."""
    table: list[str] | None = []
    found = None
    for i, line in enumerate(lines):
        header = _HEADER.match(line)
        if header:
            table = _key_parts(header.group("key"))
            continue
        if _ARRAY_HEADER.match(line):
            table = None  # keys under [[x]] are list items: not addressable
            continue
        assign = _ASSIGN.match(line)
        if table is None or not assign:
            continue
        own = _key_parts(assign.group("key"))
        if own is None:
            continue
        full = [*table, *own]
        if full == parts and len(own) == 1:
            found = (i, assign.end())
        elif full == parts or (len(own) > 1 and parts[: len(full)] == full):
            raise UsageError(f"{shown}: '{key}' is written as a dotted key on line {i + 1}",
                             hint=_HAND)
        elif len(full) < len(parts) and parts[: len(full)] == full:
            raise UsageError(f"{shown}: '{key}' is inside an inline table on line {i + 1}",
                             hint=_HAND)
    if found is None:
        raise UsageError(f"{shown}: '{key}' is not written as a `key = value` line under "
                         "its [table]", hint=_HAND)
    return found


def _key_parts(text: str) -> list[str] | None:
    """The parts of a TOML key (``a."b.c".d``); None when it is not one."""
    parts: list[str] = []
    for piece in re.findall(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|[^.]+', text.strip()):
        piece = piece.strip()
        if piece.startswith('"'):
            try:
                parts.append(json.loads(piece))
            except ValueError:
                return None
        elif piece.startswith("'"):
            parts.append(piece[1:-1])
        elif _BARE.fullmatch(piece):
            parts.append(piece)
        elif piece:
            return None
    return parts or None


def _value_extent(lines: list[str], row: int, column: int, key: str, shown: str
                  ) -> tuple[int, int, str]:
    """(first line, last line, what follows the value on its last line)."""
    import tomllib

    head = lines[row][column:]
    for last in range(row, min(len(lines), row + _MAX_VALUE_LINES)):
        body = head + "".join(lines[row + 1: last + 1])
        offset = len(body) - len(lines[last]) if last > row else 0
        line = lines[last] if last > row else head
        ends = [offset + m.start() for m in re.finditer("#", line)]
        ends.append(len(body.rstrip("\r\n")))
        for end in ends:
            candidate = body[:end]
            try:
                tomllib.loads("v = " + candidate)
            except tomllib.TOMLDecodeError:
                continue
            stripped = candidate.rstrip()
            return row, last, body[len(stripped):]
    raise UsageError(f"{shown}: cannot find where the value of '{key}' ends", hint=_HAND)


def render(value: Any, shown: str = "", key: str = "") -> str:
    """``value`` as a TOML value on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(render(v, shown, key) for v in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k))} = {render(v, shown, key)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    kind = "null" if value is None else type(value).__name__
    raise UsageError(f"{shown}: TOML cannot hold the value of '{key}' ({kind})",
                     hint="set a number, string, bool, date or list")
