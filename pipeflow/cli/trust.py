"""``trust venv PATH``: let pipeflow ask an interpreter inside the project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose


def trust_app() -> typer.Typer:
    app = typer.Typer(help="Trust an interpreter folder inside the project (this machine only).",
                      no_args_is_help=True, rich_markup_mode=None)

    @app.command("venv")
    def venv_(
        path: Annotated[Path, typer.Argument(help="The virtualenv (or any folder holding "
                                                  "interpreters) to trust.")],
        json_out: Json = False,
        verbose: Verbose = False,
    ) -> None:
        """Let status and repro start the interpreters under PATH to read their version
        and installed packages. Only for a folder you made or checked: a repository can
        ship a `python` that is a script. Kept per machine (in the machine cache), by
        real path; never read from the project."""
        from pipeflow.errors import UsageError
        from pipeflow.interptrust import trust_folder

        try:
            real = trust_folder(str(path))
        except OSError as exc:
            raise UsageError(f"cannot trust '{path}': {exc}",
                             hint="name an existing folder, e.g. .venv") from None
        if json_out:
            output.emit_json({"schema": 1, "trusted": real})
            return
        output.out(f"trusted {real}: pipeflow may run the interpreters under it on this machine")

    return app
