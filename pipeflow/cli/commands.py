"""Typer app: one small function per command, each calling one function of ``ops``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Targets, Verbose, Wait, resolve_target_paths

if TYPE_CHECKING:
    from pipeflow.repo import Repo


def _version(value: bool) -> None:
    if value:
        from pipeflow import __version__

        output.out(f"pipeflow {__version__}")
        raise typer.Exit()


def build_app() -> click.Command:
    """The click command behind ``pipeflow``."""
    from pipeflow.cli.gc import gc_command
    from pipeflow.cli.history import add_command, tag_command, versions_command
    from pipeflow.cli.lineage import lineage_command, metrics_app, params_app, verify_command
    from pipeflow.cli.remote import fetch_command, pull_command, push_command, remote_app
    from pipeflow.cli.repro import repro_command
    from pipeflow.cli.status import status_command

    app = typer.Typer(
        name="pipeflow",
        help="Declarative, reproducible pipelines: rerun exactly what changed.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    @app.callback()
    def root(
        version: Annotated[
            bool, typer.Option("--version", "-V", callback=_version, is_eager=True,
                               help="Print the version and exit.")
        ] = False,
        verbose: Verbose = False,
    ) -> None:
        """Declarative, reproducible pipelines: rerun exactly what changed.

        Typical day: `pipeflow init`, `pipeflow repro`, edit params.yaml,
        `pipeflow status` (says why), `pipeflow repro` (reruns only that).
        """

    app.command("init")(init_command)
    app.command("repro")(repro_command)
    app.command("status")(status_command)
    app.command("dag")(dag_command)
    app.command("checkout")(checkout_command)
    app.command("add")(add_command)
    app.command("versions")(versions_command)
    app.command("tag")(tag_command)
    app.command("lineage")(lineage_command)
    app.add_typer(metrics_app, name="metrics")
    app.add_typer(params_app, name="params")
    app.command("verify")(verify_command)
    app.add_typer(remote_app(), name="remote")
    app.command("push")(push_command)
    app.command("fetch")(fetch_command)
    app.command("pull")(pull_command)
    app.command("gc")(gc_command)
    return typer.main.get_command(app)


def _repo() -> Repo:
    from pipeflow.repo import Repo

    return Repo.find()


def init_command(
    path: Annotated[Path, typer.Argument(help="Project folder.")] = Path("."),
    verbose: Verbose = False,
) -> None:
    """Make a folder a pipeflow project.

    Creates .pipeflow/ (config, committed; cache, state, logs and config.local,
    git-ignored) and a commented starter pipeline.yaml if there is none. Running it
    again changes nothing. `repro` initializes a folder with a pipeline.yaml by itself.
    """
    from pipeflow.ops.init import init

    created = init(path.resolve())
    if created:
        for name in created:
            output.out(f"created {name}")
    else:
        output.out("already a pipeflow project: nothing to do")
    output.out("next: describe your stages in pipeline.yaml, then run `pipeflow repro`")


def dag_command(
    targets: Targets = None,
    fmt: Annotated[
        str, typer.Option("--format", metavar="ascii|mermaid|dot|json", help="Output format.")
    ] = "ascii",
    verbose: Verbose = False,
) -> None:
    """Draw the stage graph: an edge goes from the stage writing a path to each stage
    reading it. With TARGETS, only they and their upstream. TARGETS are stage names,
    template groups or output paths."""
    from pipeflow.errors import UsageError
    from pipeflow.ops.dag import FORMATS, dag

    if fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}'", hint=f"choose one of {', '.join(FORMATS)}")
    with _repo() as repo:
        text = dag(repo, fmt, list(resolve_target_paths(repo.root, targets)) or None)
    output.out(text.rstrip("\n") if text.strip() else "(no stages)")


def checkout_command(
    targets: Targets = None,
    wait: Wait = 0.0,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Put cached outputs and source data back as pipeline.lock records them; runs nothing.

    Restores what is missing or differs from the lock (everything, or TARGETS:
    stage names, template groups, output or source paths). PATH@VERSION (vN, a hash
    prefix or a tag) restores that version of one path instead; `status` then says
    so and `repro` restores the locked version. An output whose object is not in
    the cache is reported (exit 1); `pipeflow repro` recomputes it.
    """
    from pipeflow.ops.checkout import checkout

    with _repo() as repo:
        report = checkout(repo, list(resolve_target_paths(repo.root, targets)) or None,
                          wait=wait)
    if json_out:
        output.emit_json({"schema": 1, "restored": report.restored,
                          "unchanged": report.unchanged, "not_run": report.not_run})
        return
    for path in report.restored:
        output.out(f"restored {path}")
    if not report.restored:
        output.out("all outputs already match pipeline.lock")
    for name in report.not_run:
        output.warn(f"stage '{name}' has never run: nothing to restore")
    for note in report.notes:
        output.out(note)
