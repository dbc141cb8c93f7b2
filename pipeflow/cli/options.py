"""Reusable typer option aliases."""

from __future__ import annotations

import os
from pathlib import Path
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
        "--wait", metavar="SECONDS", min=0, show_default=False,
        help="Wait up to SECONDS for another writer to finish (default: fail at once).",
    ),
]
Targets = Annotated[
    list[str] | None,
    typer.Argument(help="Stage names, template groups (train for train@*), or output paths.",
                   show_default=False, metavar="[TARGETS]..."),
]
RemoteName = Annotated[
    str | None, typer.Option("--remote", "-r", help="Remote name (default: the default one).")
]
Local = Annotated[
    bool, typer.Option("--local", help="Write to .pipeflow/config.local (this machine only).")
]

TARGETS_HELP = (
    "TARGETS are stage names, template groups (`train` for every `train@...`) or "
    "output paths (relative to the current folder)."
)


def resolve_target_paths(root: Path, targets: list[str] | None) -> tuple[str, ...]:
    """Targets with output paths made relative to the project root.

    Paths are typed relative to the current folder, as a shell user expects;
    anything that is not an existing path or has no slash is passed on as is
    (a stage name or template group).
    """
    resolved = []
    cwd = Path.cwd()
    for target in targets or ():
        if "/" in target or (cwd / target).exists():
            absolute = Path(os.path.normpath(cwd / target))
            try:
                resolved.append(absolute.relative_to(root).as_posix())
                continue
            except ValueError:
                pass
        resolved.append(target)
    return tuple(resolved)
