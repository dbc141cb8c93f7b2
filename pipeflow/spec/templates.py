"""``foreach`` and ``matrix`` stage templates, expanded into plain stage bodies.

Naming (``name`` is the template's key in ``stages:``):

- ``foreach`` over a list: ``name@<value>`` when every entry is a scalar whose
  text is a name token (letters, digits, ``_ . -``) and no two entries give the
  same text; otherwise ``name@<index>`` (0-based) for every entry. ``${item}`` is
  the entry, ``${key}`` its index.
- ``foreach`` over a mapping: ``name@<key>``; ``${key}`` is the key, ``${item}``
  the value. Keys must be name tokens.
- ``matrix``: one stage per combination, axes in the order written, named
  ``name@<label1>-<label2>...``; each axis labels its values the way a foreach
  list does (values, else indexes). ``${item.<axis>}`` is the combination's value.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeflow.files.safeload import MAX_STAGES
from pipeflow.params import key_text
from pipeflow.spec.interpolate import Context, interpolate_value, render
from pipeflow.spec.yamlpos import SpecProblem, YamlPath

_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Instance:
    """One stage a spec entry stands for: its name, body, and where the body is."""

    name: str
    body: Mapping[str, Any]
    src: YamlPath
    ctx: Context


def expand(name: str, entry: Mapping[str, Any], ctx: Context) -> list[Instance]:
    """The stages the entry ``stages.<name>`` stands for (itself, unless a template)."""
    src: YamlPath = ("stages", name)
    if "foreach" in entry:
        return _foreach(name, entry, ctx, src)
    if "matrix" in entry:
        return _matrix(name, entry, ctx, src)
    return [Instance(name, entry, src, ctx)]


def _foreach(name: str, entry: Mapping[str, Any], ctx: Context, src: YamlPath) -> list[Instance]:
    where = (*src, "foreach")
    items = _collection(entry["foreach"], ctx, where, f"'foreach' of stage '{name}'")
    _check_count(len(items), name, where)
    body, body_src = entry["do"], (*src, "do")
    if isinstance(items, Mapping):
        out = []
        for key, value in items.items():
            label = render(key)
            if label is None or not _TOKEN.fullmatch(label):
                raise SpecProblem(
                    f"foreach key {key!r} of stage '{name}' cannot be part of a stage name",
                    (*where, key_text(key)),
                    hint="use keys made of letters, digits, '_', '.' and '-'",
                    at_key=True,
                )
            local = {"key": key, "item": value}
            out.append(Instance(f"{name}@{label}", body, body_src, ctx.child(local)))
        return out
    labels = _labels(items)
    return [
        Instance(f"{name}@{label}", body, body_src, ctx.child({"key": i, "item": value}))
        for i, (label, value) in enumerate(zip(labels, items, strict=True))
    ]


def _matrix(name: str, entry: Mapping[str, Any], ctx: Context, src: YamlPath) -> list[Instance]:
    axes: list[tuple[str, list[Any], list[str]]] = []
    for axis, values in entry["matrix"].items():
        where = (*src, "matrix", axis)
        resolved = _collection(values, ctx, where, f"matrix axis '{axis}' of stage '{name}'")
        if not isinstance(resolved, list):
            raise SpecProblem(
                f"matrix axis '{axis}' of stage '{name}' must be a list, got a mapping", where
            )
        axes.append((axis, resolved, _labels(resolved)))
    _check_count(math.prod(len(values) for _, values, _ in axes), name, (*src, "matrix"))
    body, body_src = entry["do"], (*src, "do")
    out = []
    for combo in itertools.product(*(range(len(values)) for _, values, _ in axes)):
        item = {axis: values[i] for (axis, values, _), i in zip(axes, combo, strict=True)}
        label = "-".join(labels[i] for (_, _, labels), i in zip(axes, combo, strict=True))
        out.append(Instance(f"{name}@{label}", body, body_src, ctx.child({"item": item})))
    return out


def _check_count(count: int, name: str, where: YamlPath) -> None:
    """A template may not stand for more stages than a spec may declare: a 300-byte
    matrix of two 1,000-value axes ran for minutes before this."""
    if count > MAX_STAGES:
        raise SpecProblem(f"stage '{name}' stands for {count:,} stages, more than a spec "
                          f"may declare ({MAX_STAGES:,})", where)


def _collection(
    value: Any, ctx: Context, where: YamlPath, what: str
) -> list[Any] | Mapping[Any, Any]:
    """The list or mapping a template iterates, resolving a ``${...}`` reference."""
    if isinstance(value, str):
        value = interpolate_value(value, ctx, where, what)
    if isinstance(value, (list, Mapping)) and value:
        return value
    kind = "an empty collection" if isinstance(value, (list, Mapping)) else repr(value)
    raise SpecProblem(f"{what} must be a non-empty list or mapping, got {kind}", where)


def _labels(values: list[Any]) -> list[str]:
    """Values as name suffixes when all are distinct name tokens; else indexes."""
    texts = [render(v) if not isinstance(v, (list, Mapping)) else None for v in values]
    tokens = [t for t in texts if t is not None and _TOKEN.fullmatch(t)]
    if len(tokens) == len(values) and len(set(tokens)) == len(tokens):
        return tokens
    return [str(i) for i in range(len(values))]
