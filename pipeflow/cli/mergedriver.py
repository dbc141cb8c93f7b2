"""``merge-driver install`` and ``merge-driver run``: git merges pipeline.lock through pipeflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose


def merge_driver_app() -> typer.Typer:
    app = typer.Typer(help="Let git merge pipeline.lock stage by stage (a git merge driver).",
                      no_args_is_help=True, rich_markup_mode=None)

    @app.command("install")
    def install_(json_out: Json = False, verbose: Verbose = False) -> None:
        """Define the driver in this repository's git config (merge.pipeflow.*) and make
        sure .gitattributes names it. Running it again changes nothing. `init` does
        this, and every writing command does it in a fresh clone (git config is not
        cloned)."""
        from pipeflow.lock.mergedriver import DRIVER_NAME, install
        from pipeflow.project.project import Project

        done = install(Project.find().root)
        if json_out:
            output.emit_json({"schema": 1, "installed": done.changed,
                              "attributes_changed": done.attributes_changed,
                              "config": done.config, "name": DRIVER_NAME,
                              "driver": done.driver})
            return
        if done.changed:
            output.out(f"merge driver 'pipeflow' defined in {done.config}")
        else:
            output.out(f"merge driver 'pipeflow' already defined in {done.config}")
        if done.attributes_changed:
            output.out("added pipeline.lock merge=pipeflow to .gitattributes (commit it)")

    @app.command("run")
    def run_(
        base: Annotated[Path, typer.Argument(help="%O: the common ancestor's version.")],
        ours: Annotated[Path, typer.Argument(help="%A: our version; receives the result.")],
        theirs: Annotated[Path, typer.Argument(help="%B: the other branch's version.")],
        name: Annotated[str, typer.Argument(help="%P: the file's path.")] = "pipeline.lock",
        verbose: Verbose = False,
    ) -> None:
        """What git runs to merge pipeline.lock (not for typing by hand): writes the
        merge into OURS; exit 0 when clean, 1 when both branches changed one stage
        differently (left between conflict markers: `pipeflow repro` resolves it)."""
        from pipeflow.lock.mergedriver import run_driver

        result = run_driver(base, ours, theirs, name)
        if result.fallback is not None:
            output.err(f"pipeflow: cannot merge {name} stage by stage ({result.fallback}); "
                       "left git's text merge")
        elif result.merged is not None and not result.merged.clean:
            what = [f"stage '{n}'" for n in result.merged.stage_conflicts]
            what += [f"source '{p}'" for p in result.merged.source_conflicts]
            output.err(f"pipeflow: both branches changed {', '.join(what)} in {name}: "
                       "run `pipeflow repro` to resolve, then `git add` it")
        raise typer.Exit(result.exit_code)

    return app
