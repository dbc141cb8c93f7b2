"""Reusable typer option aliases."""

from __future__ import annotations

from typing import Annotated

import typer

Json = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON (see docs/json.md).")
]
Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show tracebacks and more detail on errors.")
]
Wait = Annotated[
    float,
    typer.Option(
        "--wait", metavar="SECONDS",
        help="Wait up to SECONDS for another writer to finish (default: fail at once).",
    ),
]
Targets = Annotated[
    list[str] | None,
    typer.Argument(help="Stage names, template groups (train for train@*), or output paths.",
                   show_default=False),
]
