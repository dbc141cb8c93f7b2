"""Everything pipeflow prints goes through here (styles drop away off a terminal).

Every text and JSON value passes :func:`pipeflow.credentials.redact` on its way out:
whatever a message, a record or an SDK's error quotes, URL credentials, signed
queries and connection-string keys are never printed."""

from __future__ import annotations

import json
import sys
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


def styled(text: str, **style: Any) -> str:
    return click.style(text, **style)


def printable(text: str) -> str:
    """``text`` with lone surrogates (file names that are not UTF-8, read with
    surrogateescape) written as ``\\udcff``: printing them raised UnicodeEncodeError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def out(text: str = "", **style: Any) -> None:
    text = printable(redact(text))
    click.echo(click.style(text, **style) if style else text)


def err(text: str, **style: Any) -> None:
    text = printable(redact(text))
    click.echo(click.style(text, **style) if style else text, err=True)


def warn(text: str) -> None:
    err(f"warning: {text}", fg="yellow")


def emit_json(body: Any) -> None:
    body = json.loads(json.dumps(body, ensure_ascii=False, default=str))  # plain values
    sys.stdout.write(printable(json.dumps(redact_data(body), indent=2, ensure_ascii=False))
                     + "\n")


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
