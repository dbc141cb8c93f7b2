"""``pipeflow exp show`` and ``pipeflow exp diff``: the table as text (aligned, long
values cut), JSON, CSV or Markdown."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose

if TYPE_CHECKING:
    from pipeflow.experiments.table import Column, DiffEntry, ExpRow, ExpTable

CELL_WIDTH = 24
"""Text mode cuts longer values (and headers) to this many characters."""
DIFF_WIDTH = 40

Csv = Annotated[bool, typer.Option("--csv", help="Print CSV (RFC 4180, a header row).")]
Markdown = Annotated[bool, typer.Option(
    "--md", help="Print a Markdown table (e.g. for a CI to post on a pull request).")]
Every = Annotated[bool, typer.Option(
    "--all", help="Every params key and metric, not only those that differ.")]


def show_command(
    sort: Annotated[str | None, typer.Option(
        "--sort", metavar="KEY",
        help="metrics.NAME, params.KEY, created or name; a leading '-' sorts descending "
             "(rows without the value go last either way).")] = None,
    every: Every = False,
    delta: Annotated[bool, typer.Option(
        "--delta", help="Show each metric with its change to the workspace: 0.93 (+0.02).")
    ] = False,
    failed: Annotated[bool, typer.Option(
        "--failed/--no-failed", help="List the failed experiments too (default).")] = True,
    json_out: Json = False,
    csv_out: Csv = False,
    md_out: Markdown = False,
    verbose: Verbose = False,
) -> None:
    """List the experiments: one row each, under a first row for the workspace.

    Each row says the experiment's name, when it ended (local time), the git commit
    it started from, whether it failed (and at which stage), its params and every
    metric. Only the columns where some experiment differs from the workspace are
    shown, unless --all. When two rows share a name (clones that used the same
    --name, after a fetch), or with --all, an id column tells them apart: name one
    by its id for apply, diff and remove. A param of params.yaml is named by its key (train.C), of
    another file FILE:KEY; a metric by its key (accuracy), or PATH:KEY when two
    metrics files have that key. Values are absolute; --delta adds the change.

    \b
    Examples:

    \b
      pipeflow exp show
      pipeflow exp show --sort -metrics.accuracy --delta
      pipeflow exp show --sort params.train.C --all
      pipeflow exp show --no-failed --md >> comment.md
      pipeflow exp show --csv > experiments.csv
    """
    from pipeflow.cli.history import record_warnings
    from pipeflow.experiments.compare import show
    from pipeflow.project.project import Project

    _one_format(json_out, csv_out, md_out)
    with Project.find() as repo:
        table = show(repo, sort=sort, every=every, failed=failed)
        record_warnings(repo)
    ids = every or _names_clash(table)
    if json_out:
        output.emit_json(table.to_json())
    elif csv_out:
        output.emit_csv(_csv(table, delta, ids))
    elif md_out:
        for line in _markdown(_headers(table, ids), _cells(table, delta, ids),
                              _right(table, ids)):
            output.out(line)
    else:
        _print_show(table, delta, ids)


def diff_command(
    a: Annotated[str, typer.Argument(help="An experiment (name or id prefix).")],
    b: Annotated[str | None, typer.Argument(
        help="Another one (default: the workspace).", show_default=False)] = None,
    every: Every = False,
    json_out: Json = False,
    md_out: Markdown = False,
    verbose: Verbose = False,
) -> None:
    """Show two experiments' params and metrics side by side (B: the workspace unless
    given): each key, A's value, B's value and, for numbers, the delta A - B. Only the
    keys that differ, unless --all.

    \b
    Examples:

    \b
      pipeflow exp diff lr-high
      pipeflow exp diff lr-high lr-low --all
      pipeflow exp diff lr-high --md >> comment.md
    """
    from pipeflow.cli.history import record_warnings
    from pipeflow.experiments.compare import compare
    from pipeflow.project.project import Project

    _one_format(json_out, False, md_out)
    with Project.find() as repo:
        found = compare(repo, a, b)
        record_warnings(repo)
    if json_out:
        output.emit_json(found.to_json(every))
        return
    for exp in (found.a, found.b):  # on stderr: stdout stays the table (a CI posts it)
        if exp.failed_stage:
            output.warn(f"{exp.name} failed at stage '{exp.failed_stage}'")
    entries = found.entries if every else found.changed
    if not entries:
        output.out(f"no params or metrics differ between {found.a.name} and {found.b.name}")
        return
    if md_out:
        rows = [[e.column.kind.value, *_diff_cells(e)] for e in entries]
        for line in _markdown(["", "key", found.a.name, found.b.name, "delta"], rows):
            output.out(line)
        return
    table = [["", _cut(found.a.name, DIFF_WIDTH), _cut(found.b.name, DIFF_WIDTH), "delta"]]
    for kind in ("param", "metric"):
        part = [e for e in entries if e.column.kind == kind]
        if part:
            table.append([f"{kind}s", "", "", ""])
        table += [[f"  {name}", *rest] for name, *rest in
                  ([_cut(c, DIFF_WIDTH) for c in _diff_cells(e)] for e in part)]
    for line in _aligned(table):
        output.out(line)


def _diff_cells(entry: DiffEntry) -> list[str]:
    metric = entry.column.kind == "metric"
    return [entry.column.name, _show(entry.a, entry.has_a, metric=metric),
            _show(entry.b, entry.has_b, metric=metric), _delta(entry.delta)]


def _one_format(*chosen: bool) -> None:
    from pipeflow.errors import UsageError

    if sum(chosen) > 1:
        raise UsageError("choose one output format (--json, --csv or --md)")


# --- cells -----------------------------------------------------------------------------


def _show(value: Any, present: bool = True, *, metric: bool = False) -> str:
    """A value as text: strings as they are, a metric's float to 6 significant
    digits (--json and --csv give every digit), anything else as JSON; '-' when
    absent."""
    if not present:
        return "-"
    if isinstance(value, str):
        return value
    if metric and isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return json.dumps(value)


def _delta(value: float | None) -> str:
    return "" if value is None else f"{value:+.6g}"


def _when(iso: str | None) -> str:
    """A record's UTC time as local time, to the minute."""
    import datetime

    if not iso:
        return "-"
    try:
        moment = datetime.datetime.fromisoformat(iso)
    except ValueError:
        return iso[:16]
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _status(row: ExpRow) -> str:
    if row.baseline:
        return "baseline"
    return f"failed ({row.failed_stage})" if row.failed_stage else row.status or "-"


ID_WIDTH = 8
"""How much of an experiment's id the id column shows (apply, diff and remove take
a prefix of 4 or more characters)."""


def _names_clash(table: ExpTable) -> bool:
    """Whether two shown rows share a name: only an id tells them apart then."""
    names = [r.name for r in table.rows]
    return len(set(names)) < len(names)


def _headers(table: ExpTable, ids: bool) -> list[str]:
    return ["name", *(["id"] if ids else []), "when", "commit", "status",
            *(c.name for c in table.columns)]


def _cells(table: ExpTable, delta: bool, ids: bool) -> list[list[str]]:
    """The table's rows as text cells (a metric with its delta with ``delta``, the
    id's first characters after the name with ``ids``)."""
    return [[r.name, *([(r.id or "-")[:ID_WIDTH]] if ids else []),
             _when(r.created) if not r.baseline else "-",
             (r.commit or "-")[:7], _status(r),
             *(_cell(r, c, delta) for c in table.columns)] for r in table.rows]


def _cell(row: ExpRow, col: Column, delta: bool) -> str:
    values = row.values(col)
    text = _show(values.get(col.name), col.name in values, metric=col.kind == "metric")
    change = row.deltas.get(col.name)
    return f"{text} ({_delta(change)})" if delta and change is not None else text


# --- formats ---------------------------------------------------------------------------


def _cut(text: str, width: int = CELL_WIDTH, *, keep_end: bool = False) -> str:
    """``text`` in at most ``width`` characters, an ellipsis marking the cut (a header
    keeps its end: the key's last part tells columns apart)."""
    # escaped first, so that widths count what is printed; a newline or tab would
    # break the row
    text = " ".join(output.printable(text).split())
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1):] if keep_end else text[:width - 1] + "…"


def _aligned(rows: Sequence[Sequence[str]], right: Sequence[bool] = ()) -> list[str]:
    """Rows as columns two spaces apart (the first row is the header); a column marked
    in ``right`` is right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    flush = list(right) + [False] * (len(widths) - len(right))
    return ["  ".join(c.rjust(w) if f else c.ljust(w)
                      for c, w, f in zip(r, widths, flush, strict=True)).rstrip()
            for r in rows]


def _print_show(table: ExpTable, delta: bool, ids: bool) -> None:
    head = [_cut(h, keep_end=True) for h in _headers(table, ids)]
    body = [[_cut(c) for c in r] for r in _cells(table, delta, ids)]
    for line in _aligned([head, *body], _right(table, ids)):
        output.out(line)
    if len(table.rows) == 1:
        output.out("no experiments yet: `pipeflow exp run --set PARAM=VALUE` runs one")


def _right(table: ExpTable, ids: bool) -> list[bool]:
    """Which columns to right-align: those holding only numbers."""
    return [False] * (5 if ids else 4) + [all(_numeric(row, c) for row in table.rows)
                                          for c in table.columns]


def _numeric(row: ExpRow, col: Column) -> bool:
    values = row.values(col)
    value = values.get(col.name)
    return col.name not in values or (isinstance(value, int | float)
                                      and not isinstance(value, bool))


MD_WIDTH = 500
"""Markdown cells are cut only past this many characters (a page scrolls; a forge
refuses a comment of more than some 65,000)."""
_MD_ESCAPES = {"\\": "\\\\", "|": "\\|", "`": "\\`", "[": "\\[", "]": "\\]",
               "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MD_SPECIAL = re.compile("[" + re.escape("".join(_MD_ESCAPES)) + "]")


def md_cell(text: str) -> str:
    """One value as the text of a Markdown table cell, shown as it is and never as
    markup: whitespace runs (newlines) become one space, ``\\ | ` [ ]`` are
    backslash-escaped (no cell split, code span or link), ``& < >`` written as
    entities (no HTML)."""
    return _MD_SPECIAL.sub(lambda m: _MD_ESCAPES[m.group()], _cut(text, MD_WIDTH))


def _markdown(headers: Sequence[str], rows: Sequence[Sequence[str]],
              right: Sequence[bool] = ()) -> list[str]:
    """A GitHub-flavoured Markdown table (cells cut only past :data:`MD_WIDTH`); a
    column marked in ``right`` is right-aligned."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(md_cell(c) for c in cells) + " |"

    flush = list(right) + [False] * (len(headers) - len(right))
    rule = "|" + "".join("--:|" if f else "---|" for f in flush)
    return [line(headers), rule, *(line(r) for r in rows)]


def _csv(table: ExpTable, delta: bool, ids: bool) -> list[list[str]]:
    """The table's CSV rows: plain values (strings as they are, others as JSON, empty
    when absent); with ``delta`` a ``NAME delta`` column after each metric's; with
    ``ids`` an ``id`` column after the name."""
    def plain(values: Any, name: str) -> str:
        if name not in values:
            return ""
        value = values[name]
        return value if isinstance(value, str) else json.dumps(value)

    head = ["name", *(["id"] if ids else []), "created", "commit", "status", "failed_stage"]
    head += [c.name for c in table.params]
    for c in table.metrics:
        head += [c.name, f"{c.name} delta"] if delta else [c.name]
    rows = [head]
    for r in table.rows:
        cells = [r.name, *([(r.id or "")[:ID_WIDTH]] if ids else []), r.created or "",
                 r.commit or "", r.status or "", r.failed_stage or ""]
        cells += [plain(r.params, c.name) for c in table.params]
        for c in table.metrics:
            cells.append(plain(r.metrics, c.name))
            if delta:
                cells.append(plain(r.deltas, c.name))
        rows.append(cells)
    return rows
