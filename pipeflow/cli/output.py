"""Everything pipeflow prints goes through here (styles drop away off a terminal)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

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


def out(text: str = "", **style: Any) -> None:
    click.echo(click.style(text, **style) if style else text)


def err(text: str, **style: Any) -> None:
    click.echo(click.style(text, **style) if style else text, err=True)


def warn(text: str) -> None:
    err(f"warning: {text}", fg="yellow")


def emit_json(body: Any) -> None:
    sys.stdout.write(json.dumps(body, indent=2, ensure_ascii=False, default=str) + "\n")


def error(exc: PipeflowError) -> None:
    """Print a user-facing error: message, hint, and for a failed stage its log tail."""
    err(f"error: {exc.message}", fg="red", bold=True)
    if isinstance(exc, StageFailed) and exc.log_tail:
        err("  last lines of its output:")
        for line in exc.log_tail.splitlines():
            err(f"  | {line}")
    if exc.hint:
        err(f"  hint: {exc.hint}")
