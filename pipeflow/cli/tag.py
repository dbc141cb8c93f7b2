"""``pipeflow tag``: the alias mechanism under its older name. ``tag PATH@VERSION NAME``
is ``promote``; ``tag list``, ``tag log`` and ``tag delete`` read and remove."""

from __future__ import annotations

from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from pipeflow.cli.options import Json, Verbose, Wait
from pipeflow.cli.registry import AliasName, Note, Target

Owner = Annotated[str | None, typer.Argument(
    metavar="[MODEL_OR_PATH]", help="Only this model's (or path's) tags.")]


class _SetByDefault(TyperGroup):
    """``tag PATH@V NAME`` runs ``tag set``: the group's verbs are its other commands."""

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["set", *args]
        return super().resolve_command(ctx, args)


def set_command(target: Target, name: AliasName, note: Note = None, wait: Wait = 0.0,
                json_out: Json = False, verbose: Verbose = False) -> None:
    """Point tag NAME at a version (`pipeflow tag PATH@VERSION NAME` says the same).

    A tag is an alias: `pipeflow promote` is this command (docs/registry.md).

    \b
    Examples:
      pipeflow tag models/model.pkl@v3 production
    """
    from pipeflow.cli.registry import promote_command

    promote_command(target, name, note=note, wait=wait, json_out=json_out, verbose=verbose)


def list_command(owner: Owner = None, json_out: Json = False,
                 verbose: Verbose = False) -> None:
    """Where each tag points (`pipeflow aliases`).

    \b
    Examples:
      pipeflow tag list
      pipeflow tag list wine-classifier --json
    """
    from pipeflow.cli.registry import aliases_command

    aliases_command(owner, history=False, json_out=json_out, verbose=verbose)


def log_command(owner: Owner = None, json_out: Json = False,
                verbose: Verbose = False) -> None:
    """Every move of every tag: who, when, from, to, note (`pipeflow aliases --history`).

    \b
    Examples:
      pipeflow tag log
      pipeflow tag log models/model.pkl --json
    """
    from pipeflow.cli.registry import aliases_command

    aliases_command(owner, history=True, json_out=json_out, verbose=verbose)


def delete_command(
    owner: Annotated[str, typer.Argument(metavar="MODEL_OR_PATH",
                                         help="The model or path whose tag to delete.")],
    name: AliasName, wait: Wait = 0.0, json_out: Json = False, verbose: Verbose = False,
) -> None:
    """Delete a tag (kept in the history; promoting again brings it back).

    \b
    Examples:
      pipeflow tag delete wine-classifier canary
    """
    from pipeflow.cli.registry import print_move
    from pipeflow.project.project import Project
    from pipeflow.registry.aliases import delete

    with Project.find() as repo:
        move = delete(repo, owner, name, wait=wait)
    print_move(move, json_out)


def tag_app() -> typer.Typer:
    """The ``tag`` group."""
    app: Any = typer.Typer(
        cls=_SetByDefault,
        help="Team-shared names for versions: `pipeflow tag PATH@VERSION NAME` moves one "
             "(the same as `pipeflow promote`); list, log and delete read and remove them.",
        no_args_is_help=True, rich_markup_mode=None)
    app.command("set")(set_command)
    app.command("list")(list_command)
    app.command("log")(log_command)
    app.command("delete")(delete_command)
    return app  # type: ignore[no-any-return]
