"""``pipeflow get SOURCE MODEL@VERSION -o FILE``: serve a model without a clone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose

if TYPE_CHECKING:
    from pipeflow.registry.serve import Served


def get_command(
    source: Annotated[str, typer.Argument(
        help="A remote (folder, file://, s3://...) or the project's git URL or path.")],
    request: Annotated[str, typer.Argument(
        metavar="MODEL@VERSION", help="A declared model and an alias, vN or hash prefix.")],
    out: Annotated[Path, typer.Option("--output", "-o", help="The file to write.")],
    remote_name: Annotated[str | None, typer.Option(
        "--remote-name", help="From a git source: its remote to read (default: the "
                              "project's default remote).")] = None,
    keys: Annotated[list[str] | None, typer.Option(
        "--key", metavar="[NAME=]PUBLIC_KEY",
        help="Trust only signatures by this key (repeatable; `pipeflow keys list` prints "
             "one).")] = None,
    require_signature: Annotated[bool, typer.Option(
        "--require-signature", help="Refuse an unsigned snapshot (or alias move).")] = False,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Fetch a model version from the registry, with no clone, checked against its hash.

    From a remote, the registry snapshot `pipeflow push` publishes there names each
    model's versions and aliases; from a git URL, a shallow clone (removed at once)
    gives the aliases and the remote. Works in any folder.

    \b
    Examples:
      pipeflow get /shared/pipeflow-remote wine-classifier@production -o model.pkl
      pipeflow get s3://team/cache wine-classifier@v3 -o model.pkl --key ed25519:...
      pipeflow get git@github.com:team/wine.git wine-classifier@production -o model.pkl
    """
    from pipeflow.registry.serve import Trust, get

    served = get(source, request, out, remote_name=remote_name,
                 trust=Trust.of(keys or (), require_signature))
    version = served.version
    if served.signature != "trusted":
        output.warn(_unchecked(served, bool(keys)))
    if json_out:
        output.emit_json({"schema": 1, "model": served.model, "path": served.path,
                          "alias": served.alias, "label": version.label,
                          "hash": version.hash, "size": version.size,
                          "source": served.source, "remote": served.remote,
                          "signed_by": served.signed_by, "signature": served.signature,
                          "signed": served.signed_what, "output": str(served.output)})
        return
    named = f"{served.model}@{served.alias} = {version.label}" if served.alias else (
        f"{served.model}@{version.label}")
    signed = (f"; {served.signed_what} signed by {served.signed_by}"
              if served.signature == "trusted" else "")
    output.out(f"wrote {served.output}: {named} ({version.hash[:8]}; its bytes verified "
               f"against that hash{signed})")


def _unchecked(served: Served, keyed: bool) -> str:
    """The one-line warning for a version whose choice no trusted signature backs."""
    who = ("anyone who can push to the git repository" if served.source == "git"
           else f"anyone who can write to {served.remote}")
    what = (f"which version {served.alias} names" if served.alias
            else f"which version {served.version.label} is")
    why = (f"{served.signed_what} unsigned" if served.signature == "unsigned" else
           f"{served.signed_what} signed by {served.signed_by!r}, a key not checked")
    fix = "" if keyed else " (pass --key PUBLIC_KEY to check who published it)"
    return f"{why}: {who} could have changed {what}{fix}"
