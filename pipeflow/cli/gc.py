"""``pipeflow gc``."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose, Wait


def gc_command(
    workspace: Annotated[bool, typer.Option("--workspace", "-w",
                                            help="Keep what the current lock needs.")] = False,
    rev: Annotated[list[str] | None, typer.Option(
        "--rev", metavar="REV", help="Keep what the lock at git revision REV needs (repeat).")
    ] = None,
    all_branches: Annotated[bool, typer.Option("--all-branches",
                                               help="Keep what every branch tip needs.")] = False,
    all_commits: Annotated[bool, typer.Option("--all-commits",
                                              help="Keep what any commit needs.")] = False,
    keep_days: Annotated[int, typer.Option("--keep-days", min=0,
                                           help="Keep outputs of runs this recent.")] = 30,
    keep_versions: Annotated[int | None, typer.Option(
        "--keep-versions", min=1, help="Keep the last K versions of every path.")] = None,
    dry: Annotated[bool, typer.Option("--dry", help="List what would go; delete nothing.")] = False,
    remote: Annotated[str | None, typer.Option("--remote", "-r",
                                               help="Clean this remote too.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm cleaning a remote.")] = False,
    wait: Wait = 0.0,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Delete cache objects nothing refers to. Run records are never deleted.

    Kept: what the chosen locks need (give at least one of --workspace, --rev,
    --all-branches, --all-commits), tagged versions, outputs of runs within
    --keep-days, and the last --keep-versions of each path. `versions` marks
    collected versions; the run cache skips them.
    """
    from pipeflow.ops.gc import GcScope, gc
    from pipeflow.repo import Repo

    scope = GcScope(workspace, tuple(rev or ()), all_branches, all_commits, keep_days,
                    keep_versions)
    with Repo.find() as repo:
        report = gc(repo, scope, dry=dry, remote=remote, yes=yes, wait=wait)
    if json_out:
        output.emit_json({"schema": 1, "dry": dry, "removed": report.removed,
                          "removed_bytes": report.removed_bytes, "kept": report.kept,
                          "remote_removed": report.remote_removed})
        return
    verb = "would remove" if dry else "removed"
    output.out(f"{verb} {len(report.removed)} object(s), {report.removed_bytes} bytes; "
               f"kept {report.kept}")
    if remote is not None:
        output.out(f"{verb} {len(report.remote_removed)} object(s) on remote '{remote}'")
