"""The indented lines under a version's row in ``pipeflow versions``: what differs
from the version before, notes, metrics and (``--params``) every params value.

One line per kind of detail, so a table of hundreds of versions stays one screen
row plus a line or two each; absolute params take a line of their own only on
request (a params file can hold dozens of keys, and ``differs`` already names the
ones that changed)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeflow.lineage.makings import Differs
    from pipeflow.lineage.versions import Version

_MAX_ITEMS = 4
"""Items shown per kind of difference; the rest are counted (``--json`` has them all)."""


def show(value: Any) -> str:
    """A value as the table shows it: strings bare, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _capped(items: list[str]) -> str:
    more = len(items) - _MAX_ITEMS
    shown = ", ".join(items[:_MAX_ITEMS])
    return f"{shown} and {more} more" if more > 0 else shown


def differs_line(differs: Differs, version: Version) -> str:
    """``differs: data (data/raw.csv), params (params.yaml:train.C 1.0 -> 2.0)``; for a
    side or local version, ``differs from v5: ...`` (not the row above it)."""
    head = "differs" if version.number is not None else f"differs from {version.differs_from}"
    if not differs:
        return f"{head}: nothing recorded (same source data, code, environment and params)"
    parts: list[str] = []
    if differs.data:
        parts.append(f"data ({_capped(list(differs.data))})")
    if differs.code:
        parts.append(f"code ({_capped(list(differs.code))})")
    if differs.env:
        parts.append(f"env ({_capped([f'{k} {show(a)} -> {show(b)}' for k, a, b in differs.env])})")
    if differs.params:
        parts.append(f"params ({_capped(list(_param_changes(differs, version)))})")
    return f"{head}: " + ", ".join(parts)


def _param_changes(differs: Differs, version: Version) -> Iterable[str]:
    for key, old, new in differs.params:
        file, _, dotted = key.partition(":")
        if version.experiment and version.experiment.overrides_key(file, dotted):
            # the value it was set to: the version before may be another experiment's
            yield f"{key} = {show(new)} (set for experiment {version.experiment.name})"
        else:
            yield f"{key} {show(old)} -> {show(new)}"


def detail_lines(version: Version, *, params: bool = False) -> list[str]:
    """The lines under ``version``'s row (without their indent)."""
    lines: list[str] = []
    if version.differs is not None:
        lines.append(differs_line(version.differs, version))
    for note in version.notes:
        when = note.when[:16].replace("T", " ")
        text = " ".join(note.text.splitlines())  # a note's newline must not fake a row
        lines.append(f"note: {text} ({note.user}, {when})")
    if version.metrics:
        shown = ", ".join(f"{k.split(':', 1)[-1]}={v}" for k, v in version.metrics.items())
        lines.append(f"metrics: {shown}")
    if params and version.params:
        shown = ", ".join(f"{f}:{k}={show(v)}" for f, values in sorted(version.params.items())
                          for k, v in sorted(values.items()))
        lines.append(f"params: {shown}")
    return lines
