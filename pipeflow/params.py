"""Params files (YAML, JSON, TOML): reading, dotted keys, selections and diffs.

A params file is a mapping; stages name what they read by dotted keys
(``train.lr``). A key naming a mapping means the whole section: :func:`select`
expands it to every leaf key under it, so a change anywhere inside is seen to the
key. Lists are leaf values (one key, the whole list).

Parsed files are cached per process by (realpath, mtime_ns, size): a pipeline of
hundreds of stages reading one ``params.yaml`` parses it once. Callers must treat
the returned mappings as read-only.
"""

from __future__ import annotations

import datetime
import difflib
import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Final

import yaml

from pipeflow.errors import Location, PipeflowError, SpecError
from pipeflow.files import projectfile, safeload

PARAMS_SUFFIXES: Final = (".yaml", ".yml", ".json", ".toml")

_cache: dict[tuple[str, int, int], dict[str, Any]] = {}
_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


class ParamsFileNotFound(SpecError):
    """A params file that does not exist (the loader re-locates it in the spec)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"params file '{name}' does not exist")
        self.name = name


class MissingParamError(PipeflowError, KeyError):
    """A dotted key that is not in a params mapping.

    ``found`` is the longest prefix of the key that exists; ``available`` every
    dotted key (sections and leaves) of the mapping, for suggestions.
    """

    def __init__(self, key: str, found: str, available: tuple[str, ...]) -> None:
        if found:
            msg = f"no key '{key}' ('{found}' has no '{key[len(found) + 1 :]}')"
        else:
            msg = f"no key '{key}'"
        super().__init__(msg)
        self.key = key
        self.found = found
        self.available = available

    def __str__(self) -> str:  # KeyError would quote the message
        return PipeflowError.__str__(self)

    def suggestions(self, n: int = 3) -> list[str]:
        """Keys close to the missing one, best first."""
        return difflib.get_close_matches(self.key, self.available, n=n, cutoff=0.6)


class _Absent(Enum):
    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent.ABSENT
"""The value of a key on the side of a diff where it does not exist."""


@dataclass(frozen=True)
class ParamChange:
    """One key whose value differs; ``old`` or ``new`` is ABSENT when added/removed."""

    key: str
    old: Any
    new: Any

    @property
    def added(self) -> bool:
        return self.old is ABSENT

    @property
    def removed(self) -> bool:
        return self.new is ABSENT


def read_params(path: Path, *, name: str | None = None,
                root: Path | None = None) -> dict[str, Any]:
    """Parse a params file by its suffix (.yaml/.yml, .json, .toml); cached, read-only.

    ``name`` is how errors name the file (default: ``path`` as given). Raises
    ParamsFileNotFound when it does not exist and SpecError, with line and column
    where the parser gives them, when it cannot be read or is not a mapping.
    ``root``: the project, where a symlink must lead (callers without it check the
    file with ``check_inside`` first); a device or a pipe is never read.
    """
    shown = name if name is not None else str(path)
    if path.suffix.lower() not in PARAMS_SUFFIXES:
        raise SpecError(
            f"params file '{shown}' must be YAML (.yaml, .yml), JSON (.json) or TOML (.toml)",
            Location(shown),
        )
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ParamsFileNotFound(shown) from None
    except OSError as exc:
        raise SpecError(f"cannot read params file: {exc.strerror}", Location(shown)) from exc
    key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    if stat.S_ISDIR(st.st_mode):
        raise SpecError("params file is a directory", Location(shown))
    raw = projectfile.read(path, "params", name=shown, inside=root or Path(path.anchor or "/"))
    if raw is None:
        raise ParamsFileNotFound(shown)
    data = parse_params(raw, path.suffix.lower(), shown)
    _cache[key] = data
    return data


def parse_params(raw: bytes, suffix: str, name: str) -> dict[str, Any]:
    """Parse params bytes in the format ``suffix`` names; errors are SpecError in ``name``
    (also for a file past the limits of :mod:`pipeflow.files.safeload`)."""
    safeload.check_size(len(raw), name, "params")
    text = safeload.decode(raw, name)
    if suffix == ".json":
        data = _parse_json(text, name)
    elif suffix == ".toml":
        data = _parse_toml(text, name)
    else:
        data = _parse_yaml(text, name)
    if data is None:
        return {}
    if suffix != ".toml":  # TOML has no aliases, and its parser bounds nesting
        safeload.bound(data, name, "params")
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise SpecError(
            f"params file must hold a mapping of keys to values, got a {kind}",
            Location(name, 1, 1),
        )
    return data


def _parse_yaml(text: str, name: str) -> Any:
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader_cls)  # a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(name, mark.line + 1, mark.column + 1) if mark else Location(name)
        raise SpecError(f"YAML syntax error: {exc.problem or exc.context}", where) from None
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        # ValueError: a plain scalar that looks like a date but is none (2024-13-45)
        raise SpecError(f"cannot parse YAML: {exc}", Location(name)) from None
    except RecursionError:
        raise SpecError("YAML nests too deeply", Location(name)) from None


def _parse_json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = Location(name, exc.lineno, exc.colno)
        raise SpecError(f"JSON syntax error: {exc.msg}", where) from None
    except RecursionError:
        raise SpecError("JSON nests too deeply", Location(name)) from None


def _parse_toml(text: str, name: str) -> Any:
    import tomllib  # only TOML params files pay for it

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        at = _TOML_AT.search(msg)
        if at is None:
            raise SpecError(f"TOML syntax error: {msg}", Location(name)) from None
        where = Location(name, int(at.group(1)), int(at.group(2)))
        raise SpecError(f"TOML syntax error: {msg[: at.start()]}", where) from None


def key_text(key: Any) -> str:
    """A mapping key as it is written in a dotted key (YAML spelling for bool/null)."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


def lookup(data: Mapping[str, Any], dotted_key: str) -> Any:
    """The value at ``dotted_key`` (``train.lr``); MissingParamError when absent.

    Only mappings are descended: list items are not addressable.
    """
    node: Any = data
    parts = dotted_key.split(".")
    for i, part in enumerate(parts):
        if isinstance(node, Mapping):
            if part in node:
                node = node[part]
                continue
            # YAML may give non-string keys (1:, true:): match them as written
            match = [k for k in node if not isinstance(k, str) and key_text(k) == part]
            if match:
                node = node[match[-1]]
                continue
        available = tuple(_all_keys(data))
        raise MissingParamError(dotted_key, ".".join(parts[:i]), available)
    return node


def _all_keys(data: Mapping[Any, Any], prefix: str = "") -> list[str]:
    """Every dotted key of ``data``, sections included."""
    keys: list[str] = []
    for k, v in data.items():
        dotted = f"{prefix}.{key_text(k)}" if prefix else key_text(k)
        keys.append(dotted)
        if isinstance(v, Mapping):
            keys.extend(_all_keys(v, dotted))
    return keys


def flatten(data: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    """Leaf values of ``data`` by dotted key, under ``prefix``.

    Lists and empty mappings are leaves (kept as values).
    """
    out: dict[str, Any] = {}
    for k, v in data.items():
        dotted = f"{prefix}.{key_text(k)}" if prefix else key_text(k)
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, dotted))
        else:
            out[dotted] = v
    return out


def deep_merge(base: Mapping[Any, Any], over: Mapping[Any, Any], *,
               none_keeps: bool = False) -> dict[Any, Any]:
    """``over`` on top of ``base``: mappings merged key by key, any other value
    replaced; neither input is changed (values not merged are shared, not copied).

    With ``none_keeps`` a None in ``over`` sets nothing: in a config file an empty
    section or key (everything under it commented out) keeps what is below.
    """
    out = dict(base)
    for key, value in over.items():
        if value is None and none_keeps:
            continue
        below = out.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            out[key] = deep_merge(below, value, none_keeps=none_keeps)
        else:
            out[key] = value
    return out


def select(data: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The flat dotted-key -> value map of what a stage reads from ``data``.

    A key naming a section expands to every leaf under it; no keys means the
    whole file. Raises MissingParamError for a key that is not there.
    """
    if not keys:
        return flatten(data)
    out: dict[str, Any] = {}
    for key in keys:
        value = lookup(data, key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, key))
        else:
            out[key] = value
    return out


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[ParamChange]:
    """Keys whose values differ between two flat maps, sorted by key.

    Values compare by type as well as value, so ``1`` -> ``1.0`` or ``1`` ->
    ``true`` is a change (the file changed in a way a program can see).
    """
    changes: list[ParamChange] = []
    for key in sorted(old.keys() | new.keys()):
        before = old.get(key, ABSENT)
        after = new.get(key, ABSENT)
        if not _same(before, after):
            changes.append(ParamChange(key, before, after))
    return changes


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:  # NaN: same if both are NaN
        return bool(b != b)
    if isinstance(a, datetime.datetime):
        return bool(a == b and a.tzinfo == b.tzinfo)
    return bool(a == b)


def clear_cache() -> None:
    """Forget every parsed file (tests, and long-lived processes after a checkout)."""
    _cache.clear()
