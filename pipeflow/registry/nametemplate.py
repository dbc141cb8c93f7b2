"""Descriptive file names for exported versions: ``{model}-v{n}-C{params.train.C}{ext}``.

A template is Python ``str.format`` text whose fields are :data:`FIELDS` or
``params.SECTION.KEY`` (an absolute params value the version's run recorded; a
format spec such as ``{n:03d}`` is allowed). The result is one file name: a value
holding a path separator, a NUL or a name such as ``..`` is refused, never written
somewhere else.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeflow.errors import UsageError

DEFAULT = "{model}-{version}{ext}"

FIELDS = {
    "model": "the model's name (the file's stem when the path is not a declared model)",
    "n": "N of vN (a version no commit names has none)",
    "version": "vN, or the hash prefix of a version no commit names",
    "hash": "the first 8 hex digits of the content hash",
    "alias": "the alias VERSION named, else the first alias naming the version",
    "stem": "the output's file name without its extension",
    "ext": "the output's extension with its dot (.pkl), empty for none",
    "date": "YYYY-MM-DD of the version's first run",
    "params.SECTION.KEY": "a params value the version's run recorded (train.C)",
}


@dataclass(frozen=True)
class NameFields:
    """The values a template may name; None where the version has none (then naming
    the field is an error saying why)."""

    model: str
    version: str
    hash: str
    stem: str
    ext: str
    n: int | None = None
    alias: str | None = None
    date: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    """Dotted key (``train.C``) -> value."""
    missing: Mapping[str, str] = field(default_factory=dict)
    """Field -> why it has no value (``n``: "v? was never committed")."""


def _usage(message: str, fields: NameFields) -> UsageError:
    listed = ", ".join("{" + name + "}" for name in FIELDS)
    known = ", ".join(f"params.{k}" for k in sorted(fields.params)) or "none recorded"
    return UsageError(f"--name-template: {message}",
                      hint=f"fields: {listed}; params of this version: {known}")


def _value(name: str, fields: NameFields) -> Any:
    if name.startswith("params."):
        key = name.removeprefix("params.")
        if key not in fields.params:
            raise _usage(f"the version's run recorded no param '{key}'", fields)
        return fields.params[key]
    if name not in FIELDS:
        raise _usage(f"unknown field '{{{name}}}'", fields)
    value = getattr(fields, name)
    if value is None:
        why = fields.missing.get(name, "the version has none")
        raise _usage(f"'{{{name}}}' has no value: {why}", fields)
    return value


def _check_piece(name: str, text: str, fields: NameFields) -> None:
    if "/" in text or "\\" in text or "\0" in text or text in (".", ".."):
        raise _usage(f"'{{{name}}}' is {text!r}, which would leave the destination folder "
                     "or name no file", fields)


def render(template: str, fields: NameFields) -> str:
    """The file name ``template`` makes of ``fields``; UsageError naming the field and
    listing those that exist when it cannot make a safe one."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise _usage(f"'{template}' is not a template: {exc}", fields) from exc
    out: list[str] = []
    for literal, name, spec, conversion in parts:
        out.append(literal)
        if name is None:
            continue
        if not name or conversion is not None or "[" in name:
            raise _usage(f"'{{{name}{'!' + conversion if conversion else ''}}}' is not a "
                         "field (write {model}, {params.train.C}, ...)", fields)
        value = _value(name, fields)
        try:
            text = format(value, spec or "")
        except (TypeError, ValueError) as exc:
            raise _usage(f"'{{{name}:{spec}}}' cannot format {value!r}: {exc}", fields) from exc
        _check_piece(name, text, fields)
        out.append(text)
    result = "".join(out)
    if not result or result in (".", "..") or "/" in result or "\\" in result or "\0" in result:
        raise _usage(f"'{template}' makes {result!r}, which is not a file name", fields)
    return result
