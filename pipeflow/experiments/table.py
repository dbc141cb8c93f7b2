"""``exp show`` / ``exp diff`` as values: the columns (params and metrics), the rows
(the workspace baseline first, then one per experiment), their sort, and two
experiments side by side. Pure: the experiments and the baseline come in as
:class:`~pipeflow.lineage.experiments.Experiment` values (:mod:`.compare` reads them).

Names, as the user types them after ``--sort params.`` / ``--sort metrics.``:

- a param of ``params.yaml`` is its dotted key (``train.C``), of another file
  ``FILE:KEY`` (``other.yaml:train.C``);
- a metric is its key (``accuracy``) when no other metrics file has that key, else
  ``PATH:KEY`` (``scores.json:accuracy``). The ``FILE:KEY`` spelling is always accepted.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from pipeflow.errors import UsageError
from pipeflow.lineage.experiments import Experiment, ExpStatus, Table

DEFAULT_PARAMS = "params.yaml"
WORKSPACE = "workspace"
"""The name of the baseline row."""


class ColumnKind(StrEnum):
    PARAM = "param"
    METRIC = "metric"

    @property
    def prefix(self) -> str:
        """How ``--sort`` names this kind: ``params.`` or ``metrics.``."""
        return f"{self.value}s."


@dataclass(frozen=True)
class Column:
    """A params key or a metric, as a column of the table."""

    kind: ColumnKind
    file: str
    """The params file, or the metrics file's path."""
    key: str
    name: str
    """What the header says (module docstring)."""

    @property
    def full_name(self) -> str:
        return f"{self.file}:{self.key}"

    def sort_names(self) -> tuple[str, ...]:
        """The ``--sort`` spellings of this column."""
        names = dict.fromkeys((self.name, self.full_name))
        return tuple(self.kind.prefix + n for n in names)

    def table(self, exp: Experiment) -> Table:
        return exp.params if self.kind is ColumnKind.PARAM else exp.metrics

    def has(self, exp: Experiment) -> bool:
        return self.key in self.table(exp).get(self.file, {})

    def get(self, exp: Experiment) -> Any:
        """The experiment's value (None when it has none: ask :meth:`has` first)."""
        return self.table(exp).get(self.file, {}).get(self.key)

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind.value, "file": self.file,
                "key": self.key}


@dataclass(frozen=True)
class ExpRow:
    """One row of ``exp show``: an experiment, or the workspace (``baseline``)."""

    name: str
    baseline: bool
    status: str | None
    """``done`` or ``failed``; None for the baseline."""
    created: str | None
    """When the experiment ended (UTC ISO 8601); None for the baseline."""
    commit: str | None
    """The git commit it was based on (the baseline: HEAD)."""
    failed_stage: str | None = None
    id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    """Column name -> value, for the shown params columns it has a value for."""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    deltas: Mapping[str, float] = field(default_factory=dict)
    """Metric column name -> value minus the baseline's, where both are numbers."""

    def values(self, col: Column) -> Mapping[str, Any]:
        """The row's params or its metrics, as ``col`` is one or the other."""
        return self.params if col.kind is ColumnKind.PARAM else self.metrics

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "baseline": self.baseline, "id": self.id,
                "status": self.status, "failed_stage": self.failed_stage,
                "created": self.created, "commit": self.commit,
                "params": dict(self.params), "metrics": dict(self.metrics),
                "deltas": dict(self.deltas)}


@dataclass(frozen=True)
class ExpTable:
    """What ``exp show`` prints: columns, then rows (the baseline first)."""

    columns: tuple[Column, ...]
    rows: tuple[ExpRow, ...]

    @property
    def params(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.kind is ColumnKind.PARAM)

    @property
    def metrics(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.kind is ColumnKind.METRIC)

    def to_json(self) -> dict[str, Any]:
        return {"schema": 1, "columns": [c.to_json() for c in self.columns],
                "rows": [r.to_json() for r in self.rows]}


# --- columns ---------------------------------------------------------------------------


def columns(exps: Iterable[Experiment]) -> list[Column]:
    """Every params key and metric of any of ``exps``: params first (``params.yaml``'s,
    then other files' by name), then metrics by path; keys sorted."""
    pool = list(exps)
    params = {(f, k) for e in pool for f, keys in e.params.items() for k in keys}
    metrics = {(p, k) for e in pool for p, keys in e.metrics.items() for k in keys}
    per_key: dict[str, int] = {}
    for _path, key in metrics:
        per_key[key] = per_key.get(key, 0) + 1
    found = [Column(ColumnKind.PARAM, f, k, k if f == DEFAULT_PARAMS else f"{f}:{k}")
             for f, k in sorted(params, key=lambda fk: (fk[0] != DEFAULT_PARAMS, fk))]
    found += [Column(ColumnKind.METRIC, p, k, k if per_key[k] == 1 else f"{p}:{k}")
              for p, k in sorted(metrics)]
    return found


def as_set(exp: Experiment) -> Experiment:
    """``exp`` with its overrides laid over its params: the values of a stage that
    failed (or never started) are not in the lock its params come from, yet they are
    what the experiment set."""
    if not exp.overrides:
        return exp
    params = {f: dict(values) for f, values in exp.params.items()}
    for file, values in exp.overrides.items():
        params.setdefault(file, {}).update(values)
    return replace(exp, params=params)


def same(a: Any, b: Any) -> bool:
    """Equal as values a user compares: ``True`` is not ``1``, ``1`` is ``1.0``."""
    return isinstance(a, bool) == isinstance(b, bool) and bool(a == b)


def differs(column: Column, baseline: Experiment, exps: Iterable[Experiment]) -> bool:
    """Whether an experiment has a value for ``column`` other than the baseline's
    (an experiment without one, e.g. a failed run's metrics, differs in nothing)."""
    has_base, base = column.has(baseline), column.get(baseline)
    return any(column.has(e) and not (has_base and same(column.get(e), base))
               for e in exps)


def delta(value: Any, base: Any) -> float | None:
    """``value - base`` when both are numbers (booleans are not): an int for two ints,
    else a float rounded to 12 significant digits so that float noise (0.93 - 0.91)
    does not show."""
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (value, base)):
        return None
    if isinstance(value, int) and isinstance(base, int):
        return value - base
    diff = float(value - base)
    return float(f"{diff:.12g}") if math.isfinite(diff) else diff


# --- sorting ---------------------------------------------------------------------------

_ROW_FIELDS: dict[str, Callable[[Experiment], Any]] = {
    "created": lambda e: e.created or None,
    "name": lambda e: e.name,
}


def sort_names(cols: Iterable[Column]) -> list[str]:
    """Every spelling ``--sort`` accepts (without the ``-`` of a descending sort)."""
    return [*_ROW_FIELDS, *(n for c in cols for n in c.sort_names())]


def resolve_sort(spec: str, cols: Sequence[Column]) -> tuple[Column | str, bool]:
    """The column (or row field) ``spec`` names, and whether it sorts descending
    (a leading ``-``); a UsageError with the closest names when it names none."""
    descending = spec.startswith("-")
    name = spec[1:] if descending else spec
    if name in _ROW_FIELDS:
        return name, descending
    for col in cols:
        if name in col.sort_names():
            return col, descending
    known = sort_names(cols)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if close:
        hint = f"did you mean {', '.join(repr(c) for c in close)}?"
    else:
        shown = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
        hint = f"sort by one of: {shown} (a leading '-' sorts descending)"
    raise UsageError(f"cannot sort by '{spec}': no such column", hint=hint)


def _rank(value: Any) -> tuple[int, Any]:
    """Numbers before text before anything else, each compared within its kind."""
    if isinstance(value, int | float):
        return 0, float(value)
    if isinstance(value, str):
        return 1, value
    return 2, repr(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def sort_experiments(exps: Sequence[Experiment], by: Column | str,
                     descending: bool = False) -> list[Experiment]:
    """``exps`` ordered by a column or row field; those without a value last in both
    directions, in their given order (the sort is stable)."""
    def value(e: Experiment) -> Any:
        if isinstance(by, str):
            return _ROW_FIELDS[by](e)
        return by.get(e) if by.has(e) else None

    present = [e for e in exps if not _missing(value(e))]
    absent = [e for e in exps if _missing(value(e))]
    # reverse=True keeps equal values in their given order too
    return sorted(present, key=lambda e: _rank(value(e)), reverse=descending) + absent


# --- the table -------------------------------------------------------------------------


def build(baseline: Experiment, exps: Sequence[Experiment], *, sort: str | None = None,
          every: bool = False, failed: bool = True) -> ExpTable:
    """The ``exp show`` table: the baseline's row, then one per experiment (sorted by
    ``sort``, e.g. ``-metrics.accuracy``; else as given); the columns where some
    experiment differs from the baseline, or ``every`` column (the sort's column is
    always shown); without failed experiments unless ``failed``."""
    shown = [as_set(e) for e in exps if failed or e.status is not ExpStatus.FAILED]
    cols = columns([baseline, *shown])
    by: Column | str | None = None
    if sort:
        by, descending = resolve_sort(sort, cols)
        shown = sort_experiments(shown, by, descending)
    if not every:
        cols = [c for c in cols if c == by or differs(c, baseline, shown)]
    rows = [row(baseline, baseline, cols, is_baseline=True)]
    rows += [row(e, baseline, cols) for e in shown]
    return ExpTable(tuple(cols), tuple(rows))


def row(exp: Experiment, baseline: Experiment, cols: Sequence[Column],
        is_baseline: bool = False) -> ExpRow:
    """``exp``'s row: its values for ``cols``, its metrics' deltas to the baseline."""
    params = {c.name: c.get(exp) for c in cols
              if c.kind is ColumnKind.PARAM and c.has(exp)}
    metrics = {c.name: c.get(exp) for c in cols
               if c.kind is ColumnKind.METRIC and c.has(exp)}
    deltas = {} if is_baseline else {
        c.name: d for c in cols
        if c.kind is ColumnKind.METRIC and c.has(exp) and c.has(baseline)
        and (d := delta(c.get(exp), c.get(baseline))) is not None}
    if is_baseline:
        return ExpRow(exp.name, True, None, None, exp.commit, params=params,
                      metrics=metrics)
    return ExpRow(exp.name, False, exp.status.value, exp.created or None, exp.commit,
                  exp.failed_stage, exp.id, params, metrics, deltas)


# --- two side by side ------------------------------------------------------------------


@dataclass(frozen=True)
class DiffEntry:
    """One params key or metric of two experiments; ``a``/``b`` None where absent."""

    column: Column
    a: Any
    b: Any
    has_a: bool
    has_b: bool

    @property
    def changed(self) -> bool:
        return self.has_a != self.has_b or not same(self.a, self.b)

    @property
    def delta(self) -> float | None:
        """a - b for numbers."""
        return delta(self.a, self.b) if self.has_a and self.has_b else None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.column.kind.value, "name": self.column.name,
                "file": self.column.file, "key": self.column.key,
                "a": self.a, "b": self.b, "delta": self.delta}


@dataclass(frozen=True)
class ExpDiff:
    """``exp diff A B``: every params key and metric of either (changed or not)."""

    a: Experiment
    b: Experiment
    entries: tuple[DiffEntry, ...]

    @property
    def changed(self) -> tuple[DiffEntry, ...]:
        return tuple(e for e in self.entries if e.changed)

    def to_json(self, every: bool = False) -> dict[str, Any]:
        def side(e: Experiment) -> dict[str, Any]:
            return {"name": e.name, "id": e.id or None,
                    "status": e.status.value if e.id else None,
                    "failed_stage": e.failed_stage, "commit": e.commit}

        return {"schema": 1, "a": side(self.a), "b": side(self.b),
                "entries": [e.to_json() for e in (self.entries if every else self.changed)]}


def diff(a: Experiment, b: Experiment) -> ExpDiff:
    """``a`` and ``b`` side by side, params then metrics."""
    a, b = as_set(a), as_set(b)
    return ExpDiff(a, b, tuple(DiffEntry(c, c.get(a), c.get(b), c.has(a), c.has(b))
                               for c in columns([a, b])))
