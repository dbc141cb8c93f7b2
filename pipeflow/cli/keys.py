"""``keys generate|trust|untrust|list``: signing keys (docs/registry.md, "The trust model")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose

if TYPE_CHECKING:
    from pipeflow.project.project import Project

Force = Annotated[bool, typer.Option("--force", help="Replace what is there.")]


def keys_app() -> typer.Typer:
    """The ``keys`` command group."""
    app = typer.Typer(help="Signing keys: make yours, trust a colleague's (in the committed "
                           "config), list them.", no_args_is_help=True, rich_markup_mode=None)
    app.command("generate")(keys_generate)
    app.command("trust")(keys_trust)
    app.command("untrust")(keys_untrust)
    app.command("list")(keys_list)
    return app


def _project() -> Project | None:
    from pipeflow.errors import UsageError
    from pipeflow.project.project import Project

    try:
        return Project.find()
    except UsageError:
        return None


def keys_generate(
    name: Annotated[str | None, typer.Option(
        "--name", help="Who your signatures name (default: your git user.email before the "
                       "@, else your login name).")] = None,
    force: Force = False,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Make your ed25519 signing key, in your config directory (never in a project;
    PIPEFLOW_CONFIG_DIR moves it, PIPEFLOW_SIGNING_KEY names a key file). From then
    on every run record you write is signed. Prints your public key and the command
    a colleague runs to trust it (then commits .pipeflow/config).

    \b
    Examples:
      pipeflow keys generate                 # name from git user.email
      pipeflow keys generate --name alice
      pipeflow keys generate --force         # a new key (have it trusted again)
    """
    from pipeflow.ops.keys import generate_key

    signer = generate_key(name, force=force)
    line = f"pipeflow keys trust {signer.name} {signer.public}"
    if json_out:
        output.emit_json({"schema": 1, "name": signer.name, "public": signer.public,
                          "file": str(signer.path), "trust_command": line})
        return
    output.out(f"signing key for '{signer.name}' written to {signer.path}")
    output.out(f"public key: {signer.public}")
    output.out("to trust it, run in the project and commit .pipeflow/config:")
    output.out(f"  {line}")


def keys_trust(
    name: Annotated[str, typer.Argument(help="Whose key: the name signatures by it show.")],
    public_key: Annotated[str, typer.Argument(
        help="The public key `keys generate` printed (ed25519:...).")],
    force: Force = False,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Trust NAME's public key: write keys.trusted.NAME into the committed
    .pipeflow/config. Records and alias moves signed by it then count as NAME's.
    Commit the change: it is a code change, review it like one.

    \b
    Examples:
      pipeflow keys trust alice ed25519:3q2+7w...=
      pipeflow keys trust alice ed25519:NEW...= --force   # alice has a new key
    """
    from pipeflow.ops.keys import trust_key
    from pipeflow.project.project import Project

    with Project.find() as repo:
        change = trust_key(repo, name, public_key, force=force)
    if json_out:
        output.emit_json({"schema": 1, "name": change.name, "public": change.public,
                          "previous": change.previous})
        return
    if change.previous == change.public:
        output.out(f"'{name}' already trusted with this key")
    else:
        was = " (replacing its old key)" if change.previous else ""
        output.out(f"trusted '{name}'{was} in .pipeflow/config: commit it")


def keys_untrust(
    name: Annotated[str, typer.Argument(help="The trusted name to remove.")],
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Stop trusting NAME's key (keys.trusted.NAME leaves .pipeflow/config): its
    signatures then count as untrusted.

    \b
    Example:
      pipeflow keys untrust bob
    """
    from pipeflow.ops.keys import untrust_key
    from pipeflow.project.project import Project

    with Project.find() as repo:
        change = untrust_key(repo, name)
    if json_out:
        output.emit_json({"schema": 1, "name": change.name, "previous": change.previous})
        return
    output.out(f"'{name}' no longer trusted in .pipeflow/config: commit it")


def keys_list(json_out: Json = False, verbose: Verbose = False) -> None:
    """Your key (name, public key, file) and, in a project, every key it trusts
    (yours marked with *).

    \b
    Examples:
      pipeflow keys list
      pipeflow keys list --json
    """
    from pipeflow.ops.keys import list_keys

    repo = _project()
    try:
        listing = list_keys(repo)
    finally:
        if repo is not None:
            repo.close()
    if json_out:
        output.emit_json(listing.to_json())
        return
    if listing.mine is None:
        output.out(f"no signing key ({listing.path}): `pipeflow keys generate`")
    else:
        output.out(f"your key: {listing.mine.name}  {listing.mine.public}  ({listing.mine.path})")
    if not listing.trusted:
        output.out("trusted: none (`pipeflow keys trust NAME KEY`)")
    for key in listing.trusted:
        output.out(f"{'*' if key.yours else ' '} {key.name}  {key.public}")


