"""Everything pipeflow prints goes through here (styles drop away off a terminal).

Every text and JSON value passes :func:`pipeflow.credentials.redact` on its way out:
whatever a message, a record or an SDK's error quotes, URL credentials, signed
queries and connection-string keys are never printed. Then :func:`printable` writes
control characters as escapes (``\\x1b``): run records come from a shared remote
anyone with write access fills, and a name holding ``ESC]0;...`` would retitle or
clear the reader's terminal. pipeflow's own colours are applied after that, here
(:func:`styled` marks text; callers never pass pre-styled text)."""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import click

from pipeflow.credentials import redact, redact_data
from pipeflow.errors import PipeflowError, StageFailed

WORD_STYLE = {
    "changed": "yellow",
    "pending": "cyan",
    "missing-output": "magenta",
    "frozen": "blue",
    "running": "green",
    "up-to-date": "green",
}


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 controls but tab and newline, DEL, and C1 controls (``\\x9b`` is a one-byte CSI)."""


@dataclass(frozen=True)
class Styled:
    """A piece of a line and its click style, applied after the text is escaped."""

    text: str
    style: dict[str, Any] = field(default_factory=dict)


def styled(text: str, **style: Any) -> Styled:
    """``text`` to be printed in ``style`` (click's ``fg=``, ``bold=``) as a part of a
    line: ``out(name, "  ", styled(word, fg="green"))``."""
    return Styled(text, style)


def printable(text: str) -> str:
    """``text`` fit for a terminal: control characters but newline and tab written as
    ``\\x1b`` (escape sequences could move the cursor, retitle the window or clear
    the screen), lone surrogates (file names that are not UTF-8, read with
    surrogateescape) as ``\\udcff`` (printing them raised UnicodeEncodeError).
    Text without either comes back unchanged."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def render_line(parts: tuple[str | Styled, ...], style: dict[str, Any]) -> str:
    """The parts redacted, escaped, then styled (their own style, else the line's)."""
    shown = []
    for part in parts:
        text, own = (part.text, part.style) if isinstance(part, Styled) else (part, style)
        text = printable(redact(text))
        shown.append(click.style(text, **own) if own else text)
    return "".join(shown)


def out(*parts: str | Styled, **style: Any) -> None:
    """One line on stdout; ``out(name, "  ", styled(word, fg="green"))`` colours a part."""
    click.echo(render_line(parts, style))


def err(*parts: str | Styled, **style: Any) -> None:
    """One line on stderr, as :func:`out`."""
    click.echo(render_line(parts, style), err=True)


def warn(text: str) -> None:
    err(f"warning: {text}", fg="yellow")


def emit_json(body: Any) -> None:
    body = json.loads(json.dumps(body, ensure_ascii=False, default=str))  # plain values
    text = json.dumps(redact_data(_finite(body)), indent=2, ensure_ascii=False)
    sys.stdout.write(printable(json_escaped(text)) + "\n")


def _finite(value: Any) -> Any:
    """``value`` with each infinite or NaN float written as the string ``"inf"``,
    ``"-inf"`` or ``"nan"``: strict JSON parsers refuse the bare words Python writes."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def json_escaped(text: str) -> str:
    """JSON text (``json.dumps`` escapes C0 controls itself) with DEL and C1 controls,
    which only ever stand inside its strings, written as ``\\u009b`` too: valid JSON
    that :func:`printable` leaves alone."""
    return _JSON_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_JSON_CONTROL = re.compile(r"[\x7f-\x9f]")


def emit_csv(rows: list[list[str]]) -> None:
    """Rows as CSV (RFC 4180: ``\\r\\n`` line ends, quoting where needed), each cell
    redacted and escaped like text, and a cell a spreadsheet would run as a formula
    (starting with ``=``, ``+``, ``-``, ``@`` or a tab; not a plain number like ``-0.5``)
    given a leading ``'``."""
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer).writerows([[csv_cell(c) for c in row] for row in rows])
    sys.stdout.write(buffer.getvalue())


def csv_cell(text: str) -> str:
    """One CSV cell as :func:`emit_csv` writes it."""
    text = printable(redact(text))
    if text.startswith(("=", "+", "-", "@", "\t")) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def error(exc: PipeflowError) -> None:
    """Print a user-facing error: message, hint, and for a failed stage its log tail."""
    err(f"error: {exc.message}", fg="red", bold=True)
    if isinstance(exc, StageFailed) and exc.log_tail:
        err("  last lines of its output:")
        for line in exc.log_tail.splitlines():
            err(f"  | {line}")
    if exc.hint:
        err(f"  hint: {exc.hint}")


def traceback_() -> None:
    """The traceback of the exception being handled (``--verbose``), redacted."""
    import traceback

    err(traceback.format_exc().rstrip("\n"))
