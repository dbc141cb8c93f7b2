"""Metrics values of two versions of one file, and which of them differ and by how much.

Pure value code: bytes in, flat ``{key: value}`` mappings and :class:`ValueDiff` out.

- Keys: JSON/YAML/TOML are flattened as ``metrics show`` and the lock do
  (:func:`pipeflow.metrics.flatten_scalars`: ``a.b``, list items ``a.0.b``); a CSV or
  TSV file with a header row gives ``row N column`` (N from 1, the header not counted),
  its cells read as numbers where they look like one.
- Equal: ``==`` (so ``1`` and ``1.0`` are the same value), NaN equals NaN, and a bool
  is never the same as a number (``true`` -> ``1`` is a change of kind).
- ``relative``: ``|p - r| / |r|`` for two numbers (``|p - r|`` when ``r`` is 0); None
  when either is not a finite number.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from typing import Any

import yaml

from pipeflow.errors import PipeflowError
from pipeflow.files import safeload
from pipeflow.lineage.reproductions import ValueDiff
from pipeflow.metrics import flatten_scalars

METRICS_SUFFIXES = (".json", ".yaml", ".yml", ".toml", ".csv", ".tsv")
_MISSING = object()


class UnreadableMetrics(PipeflowError):
    """A metrics file that does not parse (said in an OutputDiff's note, never raised
    out of :mod:`pipeflow.reproduce.compare`)."""


def is_metrics_name(path: str) -> bool:
    """Whether ``path`` is compared value by value (by its extension)."""
    return path.lower().endswith(METRICS_SUFFIXES)


def max_metrics_bytes() -> int:
    """Larger files are compared by bytes, not parsed (``PIPEFLOW_MAX_METRICS_MB``)."""
    return safeload.limits("metrics").max_bytes


def parse_metrics(data: bytes, name: str) -> dict[str, Any]:
    """The flat values of metrics file ``name`` holding ``data``; UnreadableMetrics if
    it does not parse as what its extension says (no extension we know: JSON, then
    YAML)."""
    error = safeload.plain(UnreadableMetrics)
    lower = name.lower()
    try:
        if lower.endswith((".csv", ".tsv")):
            text = safeload.decode(data, name, error)
            return _table(text, "\t" if lower.endswith(".tsv") else ",")
        if lower.endswith(".toml"):
            import tomllib

            value: Any = tomllib.loads(safeload.decode(data, name, error))
        elif lower.endswith(".json") or (not lower.endswith((".yaml", ".yml"))
                                         and data.lstrip()[:1] in (b"{", b"[")):
            value = safeload.load_json(data, name, "metrics", error)
        else:
            value = safeload.load_yaml(data, name, "metrics", error)
    except UnreadableMetrics:
        raise
    except (ValueError, yaml.YAMLError, csv.Error, RecursionError) as exc:
        raise UnreadableMetrics(f"{name}: does not parse: {exc}") from None
    if not isinstance(value, (dict, list)):  # a file holding one number: "0.93"
        return {"value": value} if value is not None else {}
    return flatten_scalars(value)


def _table(text: str, delimiter: str) -> dict[str, Any]:
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        return {}
    header, flat = rows[0], {}
    for n, row in enumerate(rows[1:], start=1):
        for i, cell in enumerate(row):
            column = header[i] if i < len(header) and header[i] else str(i + 1)
            flat[f"row {n} {column}"] = _number(cell)
    return flat


def _number(cell: str) -> Any:
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            continue
    return cell


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def same_value(recorded: Any, produced: Any) -> bool:
    """Whether two metrics values are the same (see the module docstring)."""
    if isinstance(recorded, bool) != isinstance(produced, bool):
        return False
    if isinstance(recorded, float) and isinstance(produced, float) \
            and math.isnan(recorded) and math.isnan(produced):
        return True
    return bool(recorded == produced)


def relative(recorded: Any, produced: Any) -> float | None:
    """``|p - r| / |r|`` (``|p - r|`` when ``r`` is 0) for two finite numbers, else None."""
    if not (_is_number(recorded) and _is_number(produced)):
        return None
    r, p = float(recorded), float(produced)
    if not (math.isfinite(r) and math.isfinite(p)):
        return None
    delta = abs(p - r)
    return delta / abs(r) if r != 0 else delta


def diff_values(recorded: Mapping[str, Any], produced: Mapping[str, Any], *,
                file: str | None = None) -> tuple[ValueDiff, ...]:
    """Every key whose value differs, sorted; a key on one side only too (the other
    side None)."""
    diffs = []
    for key in sorted(set(recorded) | set(produced)):
        r, p = recorded.get(key, _MISSING), produced.get(key, _MISSING)
        if r is not _MISSING and p is not _MISSING and same_value(r, p):
            continue
        r = None if r is _MISSING else r
        p = None if p is _MISSING else p
        diffs.append(ValueDiff(key, r, p, relative(r, p), file))
    return tuple(diffs)


def within(diffs: tuple[ValueDiff, ...], tolerance: float, *,
           recorded: Mapping[str, Any], produced: Mapping[str, Any]) -> bool:
    """Whether every differing value is a number within ``tolerance`` of the recorded
    one (relative), and no key was added or removed."""
    for d in diffs:
        if d.key not in recorded or d.key not in produced:
            return False
        if d.relative is None or d.relative > tolerance:
            return False
    return True
