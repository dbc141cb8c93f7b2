"""Typer app: one small function per command, each calling one function of ``ops``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Targets, Verbose, Wait, resolve_target_paths

if TYPE_CHECKING:
    from pipeflow.project.project import Project


def _version(value: bool) -> None:
    if value:
        from pipeflow.version import __version__
        output.out(f"pipeflow {__version__}")
        raise typer.Exit()


# name -> (module, attribute, kind): "command" a function, "group" a Typer app,
# "factory" a function returning a Typer app. In the order `--help` lists them.
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("pipeflow.cli.commands", "init_command", "command"),
    "repro": ("pipeflow.cli.repro", "repro_command", "command"),
    "status": ("pipeflow.cli.status", "status_command", "command"),
    "dag": ("pipeflow.cli.commands", "dag_command", "command"),
    "checkout": ("pipeflow.cli.commands", "checkout_command", "command"),
    "add": ("pipeflow.cli.history", "add_command", "command"),
    "versions": ("pipeflow.cli.history", "versions_command", "command"),
    "tag": ("pipeflow.cli.tag", "tag_app", "factory"),
    "models": ("pipeflow.cli.registry", "models_command", "command"),
    "promote": ("pipeflow.cli.registry", "promote_command", "command"),
    "rollback": ("pipeflow.cli.registry", "rollback_command", "command"),
    "aliases": ("pipeflow.cli.registry", "aliases_command", "command"),
    "note": ("pipeflow.cli.registry", "note_command", "command"),
    "lineage": ("pipeflow.cli.lineage", "lineage_command", "command"),
    "reproduce": ("pipeflow.cli.reproduce", "reproduce_command", "command"),
    "exp": ("pipeflow.cli.experiments", "exp_app", "factory"),
    "metrics": ("pipeflow.cli.lineage", "metrics_app", "group"),
    "params": ("pipeflow.cli.lineage", "params_app", "group"),
    "verify": ("pipeflow.cli.lineage", "verify_command", "command"),
    "remote": ("pipeflow.cli.remote", "remote_app", "factory"),
    "push": ("pipeflow.cli.remote", "push_command", "command"),
    "fetch": ("pipeflow.cli.remote", "fetch_command", "command"),
    "pull": ("pipeflow.cli.remote", "pull_command", "command"),
    "get": ("pipeflow.cli.registry_get", "get_command", "command"),
    "gc": ("pipeflow.cli.gc", "gc_command", "command"),
    "merge-driver": ("pipeflow.cli.mergedriver", "merge_driver_app", "factory"),
    "trust": ("pipeflow.cli.trust", "trust_app", "factory"),
    "keys": ("pipeflow.cli.keys", "keys_app", "factory"),
    "export": ("pipeflow.cli.registry_export", "export_command", "command"),
    "env": ("pipeflow.cli.registry_export", "env_app", "factory"),
}


def invoked_command(args: list[str]) -> str | None:
    """The subcommand ``args`` invoke, if it is one of ours: the first word that is
    not an option (the root options take no values)."""
    for arg in args:
        if arg in ("--", "--help", "-h"):
            return None  # `pipeflow --help status` shows the whole app's help
        if not arg.startswith("-"):
            return arg if arg in _COMMANDS else None
    return None


def build_app(only: str | None = None) -> click.Command:
    """The click command behind ``pipeflow``; with ``only``, just that subcommand is
    registered (its module alone is imported: start-up is paid on every keystroke)."""
    import importlib

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

    for name, (module, attr, kind) in _COMMANDS.items():
        if only is not None and name != only:
            continue
        found = getattr(importlib.import_module(module), attr)
        if kind == "command":
            app.command(name)(found)
        else:
            app.add_typer(found() if kind == "factory" else found, name=name)
    return typer.main.get_command(app)


def _repo() -> Project:
    from pipeflow.project.project import Project

    return Project.find()


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
    prefix or an alias; MODEL@VERSION too) restores that version of one path
    instead; `status` then says so and `repro` restores the locked version. An
    output whose object is not in the cache is reported (exit 1); `pipeflow repro`
    recomputes it.

    \b
    Examples:
      pipeflow checkout
      pipeflow checkout wine-classifier@production
    """
    from pipeflow.ops.checkout import checkout
    from pipeflow.registry.models import expand_model

    with _repo() as repo:
        expanded = [expand_model(repo, t) for t in targets or ()]
        report = checkout(repo, list(resolve_target_paths(repo.root, expanded)) or None,
                          wait=wait)
    for warning in report.warnings:
        output.warn(warning)
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
