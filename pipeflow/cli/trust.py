"""``trust venv PATH``, ``trust list``, ``trust remove PATH``: which environments inside
the project pipeflow may start interpreters from, on this machine."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose


def _project_root() -> str | None:
    from pipeflow.errors import UsageError
    from pipeflow.project.project import find_root

    try:
        return str(find_root(Path.cwd()))
    except UsageError:
        return None


def trust_app() -> typer.Typer:
    """The ``trust`` command group."""
    app = typer.Typer(help="Trust a virtualenv or conda env so status and repro may ask its "
                           "interpreters (this machine only); list and remove trusts.",
                      no_args_is_help=True, rich_markup_mode=None)
    app.command("venv")(trust_venv)
    app.command("list")(trust_list)
    app.command("remove")(trust_remove)
    return app


def trust_venv(
    path: Annotated[Path, typer.Argument(help="The virtualenv (holds pyvenv.cfg) or conda "
                                              "env (holds conda-meta/) to trust.")],
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Let status and repro start the interpreters of the environment PATH to read
    their version and installed packages. Only for an environment you made or
    checked: a repository can ship a `python` that is a script. Refused (exit 2)
    for a folder that is not a virtualenv or conda env, for /, your home, the
    project root and folders above them. Kept per machine (in the machine cache),
    by real path; never read from the project. A git-ignored venv you made with
    `python3 -m venv` needs no trust.

    \b
    Examples:
      pipeflow trust venv .venv         # a venv git tracks files in, or not ignored
      pipeflow trust venv envs/conda    # a conda env inside the project
      pipeflow trust list               # what is trusted on this machine
      pipeflow trust remove .venv       # take it back
    """
    from pipeflow.code.trustedenvs import trust_folder

    real = trust_folder(str(path), _project_root())
    if json_out:
        output.emit_json({"schema": 1, "trusted": real})
        return
    output.out(f"trusted {real}: pipeflow may run the interpreters under it on this machine "
               f"(`pipeflow trust remove {path}` takes it back)")

def trust_list(json_out: Json = False, verbose: Verbose = False) -> None:
    """List the environments trusted on this machine (all projects). A record whose
    folder is gone or no longer an environment is shown, marked, and not used.

    \b
    Examples:
      pipeflow trust list
      pipeflow trust list --json
    """
    from pipeflow.code.trustedenvs import trusted_folders

    found = trusted_folders()
    if json_out:
        output.emit_json({"schema": 1, "trusted": [
            {"path": t.path, "trusted_ns": t.trusted_ns, "ignored": t.ignored}
            for t in found]})
        return
    if not found:
        output.out("no trusted environments: `pipeflow trust venv PATH`")
    for t in found:
        when = datetime.datetime.fromtimestamp(t.trusted_ns / 1e9).strftime("%Y-%m-%d %H:%M")
        note = f"  (not used: {t.ignored})" if t.ignored else ""
        output.out(f"{t.path}  trusted {when}{note}")

def trust_remove(
    path: Annotated[Path, typer.Argument(help="A trusted folder, as given or as listed.")],
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Take back the trust of PATH on this machine: its interpreters are judged
    like any other again (exit 2 when PATH was not trusted).

    \b
    Examples:
      pipeflow trust remove .venv
      pipeflow trust remove /home/me/proj/envs/conda
    """
    from pipeflow.code.trustedenvs import untrust_folder

    gone = untrust_folder(str(path))
    if json_out:
        output.emit_json({"schema": 1, "removed": gone})
        return
    output.out(f"no longer trusted: {gone}")
