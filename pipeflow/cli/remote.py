"""``remote``, ``push``, ``fetch``, ``pull``: sharing the cache through any fsspec URL."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from pipeflow.cli import output
from pipeflow.cli.options import (
    Json,
    Local,
    RemoteName,
    Targets,
    Verbose,
    Wait,
    resolve_target_paths,
)

if TYPE_CHECKING:
    from pipeflow.registry.snapshotwrite import Published


def _progress(verb: str, quiet: bool):  # type: ignore[no-untyped-def]
    if quiet or not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if total:
            end = "\n" if done == total else ""
            sys.stderr.write(f"\r{verb} {done}/{total}{end}")
            sys.stderr.flush()

    return show


def remote_app() -> typer.Typer:
    """The ``remote`` command group."""
    app = typer.Typer(help="Configure remotes: where push, fetch and pull send and get data.",
                      no_args_is_help=True, rich_markup_mode=None)
    app.command("add")(remote_add)
    app.command("list")(remote_list)
    app.command("modify")(remote_modify)
    app.command("remove")(remote_remove)
    return app


def remote_add(
    name: Annotated[str, typer.Argument(help="A short name, e.g. origin.")],
    url: Annotated[str, typer.Argument(
        help="Any fsspec URL: /shared/folder, file://, s3://bucket/prefix, gs://, az://.")],
    default: Annotated[bool, typer.Option("--default", "-d",
                                          help="Make it the default remote.")] = False,
    local: Local = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing one.")] = False,
    verbose: Verbose = False,
) -> None:
    """Add a remote (the first one becomes the default)."""
    from pipeflow.ops.remotes import add_remote
    from pipeflow.project.project import Project

    with Project.find() as repo:
        add_remote(repo, name, url, default=default, local=local, force=force)
    output.out(f"remote '{name}' -> {url}")  # redacted by output

def remote_list(json_out: Json = False, verbose: Verbose = False) -> None:
    """List remotes; the default one is marked with *."""
    from pipeflow.credentials import redact
    from pipeflow.ops.remotes import list_remotes
    from pipeflow.project.project import Project

    with Project.find() as repo:
        remotes = list_remotes(repo)
    if json_out:
        output.emit_json({"schema": 1, "remotes": [
            {"name": r.name, "url": redact(r.url), "default": r.default} for r in remotes]})
        return
    if not remotes:
        output.out("no remotes: `pipeflow remote add NAME URL`")
    for r in remotes:
        output.out(f"{'*' if r.default else ' '} {r.name}  {redact(r.url)}")

def remote_modify(
    name: Annotated[str, typer.Argument(help="The remote, e.g. origin.")],
    key: Annotated[str, typer.Argument(help="url, or an fsspec option (endpoint_url, ...).")],
    value: Annotated[str | None, typer.Argument(help="New value (omit with --unset).")] = None,
    unset: Annotated[bool, typer.Option("--unset", help="Remove the option.")] = False,
    local: Local = False,
    verbose: Verbose = False,
) -> None:
    """Set or unset an option of a remote.

    KEY is url, trust_run_cache, or an fsspec option of the remote's filesystem.
    A credential (a password, a secret key, a token, a connection string) goes to
    the git-ignored .pipeflow/config.local with --local: the committed config
    refuses it (docs/remotes.md, "Credentials").

    \b
    Examples:
      pipeflow remote modify origin endpoint_url https://minio.internal:9000
      pipeflow remote modify origin trust_run_cache true
      pipeflow remote modify origin profile ci --local
      pipeflow remote modify origin secret "$MINIO_SECRET" --local
      pipeflow remote modify origin connection_string "$AZ_CONN" --local
      pipeflow remote modify origin endpoint_url --unset
      pipeflow remote modify origin secret --unset --local
    """
    from pipeflow.errors import UsageError
    from pipeflow.ops.remotes import modify_remote
    from pipeflow.project.project import Project

    if (value is None) != unset:
        raise UsageError("give a VALUE, or --unset")
    with Project.find() as repo:
        modify_remote(repo, name, key, value, local=local)
    output.out(f"remote '{name}': {key} {'unset' if unset else 'set'}")

def remote_remove(name: str, verbose: Verbose = False) -> None:
    """Remove a remote from both config files."""
    from pipeflow.ops.remotes import remove_remote
    from pipeflow.project.project import Project

    with Project.find() as repo:
        remove_remote(repo, name)
    output.out(f"remote '{name}' removed")


def _report(verb: str, report, json_out: bool,  # type: ignore[no-untyped-def]
            lacking_said: bool = False, published: Published | None = None) -> None:
    """``lacking_said``: pull's error names what the remote lacks; no warning too.
    ``published``: the registry snapshot push wrote."""
    from pipeflow.planning.lacking import warning

    for problem in report.skipped:
        output.warn(problem)
    if published is not None and not published.written:
        output.warn("registry snapshot not published: the remote's registry snapshot has "
                    "alias moves this clone has not seen ("
                    + ", ".join(published.unseen[:5]) + "); kept it. `git pull`, then "
                    "push again (the data was pushed). If you are up to date, a colleague "
                    "pushed a move before committing it: it reaches you once they commit "
                    "and push .pipeflow/tags.jsonl")
    if json_out:
        body = {"schema": 1, "remote": report.remote, "objects": report.objects,
                "records": report.records, "pointers": report.pointers,
                "signatures": report.signatures,
                "up_to_date": report.up_to_date, "missing": report.missing,
                "lacking": [item.to_json() for item in report.lacking]}
        if published is not None:
            body["registry"] = {"models": published.models, "objects": published.objects,
                                "signed_by": published.signed_by,
                                "published": published.written,
                                "unseen_moves": list(published.unseen),
                                "kept_versions": published.kept_versions}
        output.emit_json(body)
        return
    output.out(f"{verb} {report.objects} object(s), {report.records} run record(s) "
               f"({report.up_to_date} already there)")
    if published is not None and published.written:
        signed = f", signed by {published.signed_by}" if published.signed_by else ", unsigned"
        extra = (f" (and {published.objects} object(s) of aliased versions)"
                 if published.objects else "")
        output.out(f"published the registry snapshot: {published.models} model(s)"
                   f"{signed}{extra}")
    if report.lacking:
        if not lacking_said:
            output.warn(warning(report.lacking, report.remote))
    elif report.missing:
        output.warn(f"{len(report.missing)} object(s) needed are on neither side "
                    "(recompute them with `pipeflow repro`)")


def push_command(targets: Targets = None, remote: RemoteName = None, json_out: Json = False,
                 verbose: Verbose = False) -> None:
    """Send cache objects (all, or what TARGETS need) and run records to a remote.

    Only what the remote lacks is sent. Run records travel too, so lineage,
    versions and the run cache work in every clone that pulls. When the pipeline
    declares models, a registry snapshot (signed with your key, if you have one) is
    published too, with the aliased versions' objects: `pipeflow get` reads it.
    A clone whose tag log lacks an alias move the remote's snapshot names leaves
    the snapshot as it is (`git pull`, then push again).

    \b
    Examples:
      pipeflow push                    # everything, to the default remote
      pipeflow push train -r backup    # what stage train needs, to remote backup
      pipeflow push --json
    """
    from pipeflow.errors import SpecError
    from pipeflow.ops.remotes import open_remote
    from pipeflow.ops.transfer import push
    from pipeflow.project.project import Project
    from pipeflow.registry.snapshotwrite import publish

    with Project.find() as repo:
        report = push(repo, remote, list(resolve_target_paths(repo.root, targets)) or None,
                      _progress("pushing", json_out))
        # here, not in ops.transfer: the registry lies above ops (docs/architecture.md)
        try:
            published = publish(repo, open_remote(repo, report.remote))
        except SpecError as exc:  # the data went; only the registry view waits
            published = None
            output.warn(f"registry snapshot not published: {exc.message} (fix "
                        "pipeline.yaml, then push again)")
    _report("pushed", report, json_out, published=published)


def fetch_command(targets: Targets = None, remote: RemoteName = None, json_out: Json = False,
                  verbose: Verbose = False) -> None:
    """Get the objects pipeline.lock needs, and all run records, into the local cache.

    Every object is verified against its hash before it enters the cache.
    """
    from pipeflow.ops.transfer import fetch
    from pipeflow.project.project import Project

    with Project.find() as repo:
        report = fetch(repo, remote, list(resolve_target_paths(repo.root, targets)) or None,
                       _progress("fetching", json_out))
    _report("fetched", report, json_out)


def pull_command(targets: Targets = None, remote: RemoteName = None, wait: Wait = 0.0,
                 json_out: Json = False, verbose: Verbose = False) -> None:
    """fetch, then checkout: outputs and source data appear as pipeline.lock records them."""
    from pipeflow.ops.checkout import checkout
    from pipeflow.ops.transfer import fetch
    from pipeflow.project.project import Project

    with Project.find() as repo:
        chosen = list(resolve_target_paths(repo.root, targets)) or None
        report = fetch(repo, remote, chosen, _progress("fetching", json_out))
        # what was fetched is said even when the checkout then stops on what was not
        _report("fetched", report, json_out, lacking_said=True)
        done = checkout(repo, chosen, wait=wait, fetched_from=report.remote)
    if not json_out:
        output.out(f"restored {len(done.restored)} path(s)")
        for note in done.notes:
            output.out(note)
