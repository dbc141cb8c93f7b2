"""Setting values in a params file (YAML, JSON, TOML) and keeping the rest of it: comments,
key order, quoting and layout of every line not set.

``exp apply`` writes into the user's own ``params.yaml``: a round trip through a YAML
library would drop its comments and reflow it. So each format is edited as text:

- YAML: the value's node (``yaml.compose`` knows where each one starts and ends) is
  replaced by the new value in flow style (``0.1``, ``'10'``, ``[1, 2]``), edits applied
  from the end of the text backwards so that earlier positions stay true;
- JSON: parsed and written again, in the same key order and indentation;
- TOML: the ``key = value`` line under its ``[table]`` is rewritten.

Before anything is written the new text is parsed with pipeflow's own params reader:
every key set must read back as its new value and every other key as before, or the
file is left untouched (:class:`ParamsEditError`). Files are replaced atomically.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeflow import params
from pipeflow.errors import PipeflowError, UsageError
from pipeflow.experiments import tomledit, yamledit
from pipeflow.files import atomicfile, projectfile


class ParamsEditError(PipeflowError):
    """The edited text would not read back as intended (a bug, or a form of the file
    this module does not edit): nothing was written."""

    exit_code = 1


def set_values(path: Path, values: Mapping[str, Any], *, root: Path | None = None,
               name: str | None = None) -> None:
    """Set each dotted key of ``values`` in the params file ``path`` (every key exists
    already: :mod:`pipeflow.experiments.overrides` checked them), keeping everything
    else. ``root``: the project, inside which a symlinked params file may lead (the
    link is replaced by a file, never written through); ``name``: how errors show it."""
    new_text = edited_text(path, values, root=root, name=name)
    if new_text is not None:
        atomicfile.write_text(path, new_text)


def edited_text(path: Path, values: Mapping[str, Any], *, root: Path | None = None,
                name: str | None = None) -> str | None:
    """The text :func:`set_values` would write (None when ``values`` is empty), checked
    to read back; nothing is written. A UsageError for a key that is not a value of
    the file, ParamsEditError for an edit that would not read back."""
    shown = name or (path.relative_to(root).as_posix() if root and path.is_relative_to(root)
                     else str(path))
    text = projectfile.read_text(path, "params", name=shown,
                                 inside=root.resolve() if root else None)
    if text is None:
        raise params.ParamsFileNotFound(shown)
    suffix = path.suffix.lower()
    before = params.parse_params(text.encode("utf-8"), suffix, shown)
    if not values:
        return None
    for key in values:
        _check_leaf(before, key, shown)
    if suffix == ".json":
        new_text = _json_text(text, before, values, shown)
    elif suffix == ".toml":
        new_text = tomledit.set_values(text, values, shown)
    else:
        new_text = yamledit.set_values(text, values, shown)
    check_reads_back(new_text, suffix, shown, before, values)
    return new_text


def _check_leaf(data: Mapping[str, Any], key: str, shown: str) -> None:
    try:
        value = params.lookup(data, key)
    except params.MissingParamError as exc:
        close = exc.suggestions()
        hint = (f"did you mean {', '.join(repr(c) for c in close)}?" if close
                else "the key may have been renamed since: set it by hand")
        raise UsageError(f"{shown} has {exc}", hint=hint) from None
    if isinstance(value, Mapping) and value:
        raise UsageError(f"{shown}: '{key}' is a section, not a value",
                         hint="set the leaf keys under it one by one")


def check_reads_back(text: str, suffix: str, shown: str, before: Mapping[str, Any],
                     values: Mapping[str, Any]) -> None:
    """Raise ParamsEditError unless ``text`` reads as ``before`` with ``values`` set."""
    try:
        after = params.parse_params(text.encode("utf-8"), suffix, shown)
    except PipeflowError as exc:
        raise ParamsEditError(f"{shown}: the edited file would not read back ({exc}); "
                              "it was left unchanged",
                              hint="set the value by hand, and report this") from None
    expected = with_values(before, values)
    changes = params.diff(params.flatten(expected), params.flatten(after))
    if changes:
        c = changes[0]
        raise ParamsEditError(f"{shown}: after the edit '{c.key}' would read {c.new!r}, "
                              f"not {c.old!r}; the file was left unchanged",
                              hint="set the value by hand, and report this")


def with_values(data: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with each dotted key of ``values`` set (keys as
    :func:`pipeflow.params.lookup` finds them, non-string YAML keys included)."""
    out: dict[str, Any] = copy.deepcopy(dict(data))
    for key, value in values.items():
        node: Any = out
        *parents, last = key.split(".")
        for part in parents:
            node = node[_real_key(node, part)]
        node[_real_key(node, last)] = value
    return out


def _real_key(node: Mapping[Any, Any], part: str) -> Any:
    if part in node:
        return part
    return [k for k in node if params.key_text(k) == part][-1]


def _json_text(text: str, before: Mapping[str, Any], values: Mapping[str, Any],
               shown: str) -> str:
    indent = json_indent(text)
    data = with_values(before, values)
    try:
        out = json.dumps(data, indent=indent, ensure_ascii=text.isascii(),
                         separators=None if indent is not None else (", ", ": "))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{shown}: cannot write this value into JSON ({exc})",
                         hint="JSON holds numbers, strings, bools, null and lists") from None
    return out + ("\n" if text.endswith("\n") else "")


def json_indent(text: str) -> str | int | None:
    """The indentation of a JSON text: the leading whitespace of its first indented
    line (a tab, or N spaces), None for a text on one line."""
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" \t")
        if stripped and len(stripped) < len(line):
            lead = line[: len(line) - len(stripped)]
            return lead if "\t" in lead else len(lead)
    return None
