"""A small, fast, deterministic emitter of a YAML subset, and the matching reader.

pipeflow writes ``pipeline.lock`` with this module instead of a round-trip YAML
library: rendering is a small part of any run that writes the lock, and the output is a
pure function of the value (block style, 2-space indentation, mapping keys in the
order the caller gives them). Anything it writes reads back equal through
``yaml.load(text, Loader=yaml.CSafeLoader)`` — PyYAML's YAML 1.1 resolver is the
reader we target, so a string is written plain only when no YAML 1.1 (or 1.2)
reader could take it for something else.

Supported values: ``dict`` (any ``Mapping``) with scalar keys, ``list``/``tuple``
(read back as lists), ``str``, ``int``, ``float`` (including inf and nan),
``bool``, ``None``, and ``datetime.date``/``datetime.datetime`` (YAML
timestamps, as params files may hold them).
"""

from __future__ import annotations

import datetime
import functools
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["dump", "load"]

# A plain scalar may use only these characters and must start with a letter,
# digit, "_" or "/": "-", ".", "+", "@" and the rest are indicators or start
# numbers/special values somewhere in YAML.
_PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./@+-]*")
_PLAIN_NOT_DIGIT = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@+-]*")

# Strings starting with a digit that some YAML reader takes for a number:
# decimal and "_"-grouped ints, floats with or without a dot (YAML 1.2 reads
# "1e5" as a float), hex, octal and binary ints.
_NUMBERISH = re.compile(
    r"0[xX][0-9a-fA-F_]*|0[oO][0-7_]*|0[bB][01_]*"
    r"|[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9_]*)?"
)
# YAML 1.1 timestamps ("2001-12-14" loads as a date).
_DATELIKE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")

# Bool and null words of YAML 1.1, compared case-insensitively ("y" and "n" too:
# PyYAML reads them as strings, the 1.1 spec and other readers as bools).
_RESERVED = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})

# Characters a double-quoted scalar cannot hold literally: the quote and the
# backslash; C0/C1 controls (not printable for the YAML reader, or line breaks
# that would be folded); the Unicode line/paragraph separators; surrogates
# (not encodable; they come from surrogateescape file names); BOM and the two
# non-characters.
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]')
_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\b": "\\b",
    "\f": "\\f",
}

# Past this length a key is written in explicit form ("? key"): YAML limits
# simple keys to 1024 characters, counted after escaping.
_MAX_SIMPLE_KEY = 512

# libyaml (CSafeLoader) refuses "\uD800".."\uDFFF" escapes; files holding one are
# read with the pure-Python SafeLoader, which accepts them.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    return f"\\u{ord(char):04x}"


def _quote(text: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, text) + '"'


def _str(text: str) -> str:
    # Fast path first: most strings in a lock are names, paths and hashes that
    # start with a letter; only short ones can be a YAML 1.1 bool/null word.
    if _PLAIN_NOT_DIGIT.fullmatch(text):
        if len(text) > 5 or text.lower() not in _RESERVED:
            return text
        return _quote(text)
    if _PLAIN.fullmatch(text) and not (_NUMBERISH.fullmatch(text) or _DATELIKE.match(text)):
        return text
    return _quote(text)


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = float.__repr__(value)
    # PyYAML's YAML 1.1 float pattern needs a dot in the mantissa: "1e-05" would
    # load as a string, "1.0e-05" loads as the float.
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return text


def _inline(value: Any) -> str | None:
    """The text of a scalar or an empty container; None for a non-empty container.

    Dispatches on the exact type first (the common case, and much faster than
    ``isinstance`` against ABCs), then on subclasses and other mappings.
    """
    t = type(value)
    if t is str:
        return _str(value)
    if t is int:
        return int.__repr__(value)
    if t is dict:
        return None if value else "{}"
    if t is list or t is tuple:
        return None if value else "[]"
    if t is float:
        return _float(value)
    if value is None:
        return "null"
    # bool before int: bool is an int subclass.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _str(str(value))
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, Mapping):
        return None if value else "{}"
    if isinstance(value, list | tuple):
        return None if value else "[]"
    if isinstance(value, datetime.date):
        return _timestamp(value)
    msg = f"cannot write a {type(value).__name__} to YAML: {value!r}"
    raise TypeError(msg)


def _timestamp(value: datetime.date) -> str:
    # Dates and datetimes come from params files (YAML and TOML have them);
    # their ISO form is a YAML 1.1 timestamp, which the safe loader reads back
    # as the same date or datetime (naive or with the same UTC offset).
    text = value.isoformat()
    offset = value.utcoffset() if isinstance(value, datetime.datetime) else None
    if offset is not None and offset % datetime.timedelta(minutes=1):
        # YAML timestamps cannot carry an offset with seconds.
        msg = f"cannot write a datetime with UTC offset {offset} to YAML: {value!r}"
        raise TypeError(msg)
    return text


@functools.lru_cache(maxsize=4096, typed=True)
def _key(key: object) -> str:
    # Cached: the same few keys (path, hash, size, ...) repeat on most lines.
    text = _inline(key)
    if text is None or isinstance(key, Mapping | list | tuple):
        msg = f"mapping keys must be scalars, got {type(key).__name__}"
        raise TypeError(msg)
    return text


def _block(value: Any, indent: int, first: str, out: list[str]) -> None:
    """Append the lines of a non-empty container at ``indent`` to ``out``.

    The first line starts with ``first`` (as wide as ``indent``) instead of
    spaces, so that a list item can put its "- " there.
    """
    append = out.append
    pad = " " * indent
    lead = first
    if type(value) is list or type(value) is tuple:
        for item in value:
            text = _inline(item)
            if text is None:
                _block(item, indent + 2, lead + "- ", out)
            else:
                append(f"{lead}- {text}")
            lead = pad
        return
    for key, item in value.items():
        key_text = _key(key)
        if len(key_text) > _MAX_SIMPLE_KEY:
            append(f"{lead}? {key_text}")
            lead = pad
            key_text = ""
        text = _inline(item)
        if text is None:
            append(f"{lead}{key_text}:")
            _block(item, indent + 2, pad + "  ", out)
        else:
            append(f"{lead}{key_text}: {text}")
        lead = pad


def dump(obj: object) -> str:
    """Render ``obj`` as block-style YAML text ending with a newline.

    Mapping keys keep the mapping's order (sort before calling for a canonical
    text); tuples are written as lists. Raises ``TypeError`` for any other type.
    """
    text = _inline(obj)
    if text is not None:
        return text + "\n"
    out: list[str] = []
    _block(obj, 0, "", out)
    out.append("")
    return "\n".join(out)


def load(text: str) -> Any:
    """Parse YAML text with PyYAML's safe loader (libyaml when available).

    Falls back to the pure-Python loader when libyaml is missing, or when the
    text escapes a lone surrogate (libyaml refuses those escapes). Raises
    ``yaml.YAMLError`` like ``yaml.load``.
    """
    import yaml

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    if _SURROGATE_ESCAPE.search(text):
        loader = yaml.SafeLoader
    return yaml.load(text, Loader=loader)
