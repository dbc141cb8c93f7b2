"""``pipeflow gc``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose, Wait

if TYPE_CHECKING:
    from pipeflow.ops.gc import GcReport, Side


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
    grace: Annotated[str | None, typer.Option(
        "--grace", metavar="DURATION", show_default=False,
        help="Keep unreferenced objects and temporary files younger than this "
             "(30m, 2h, 1d, 0; default: config gc.grace, else 2h).")] = None,
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
    --keep-days (with --remote, the remote's runs too), the last --keep-versions of
    each path, and anything younger than --grace (a colleague's push in progress).
    Temporary files left by killed commands go once older than --grace. `versions`
    marks collected versions; the run cache skips them.
    """
    from pipeflow.duration import parse_duration
    from pipeflow.errors import UsageError
    from pipeflow.ops.gc import GcScope, gc
    from pipeflow.project.project import Project

    try:
        grace_s = parse_duration(grace) if grace is not None else None
    except ValueError as exc:
        raise UsageError(f"--grace: {exc}") from exc
    scope = GcScope(workspace, tuple(rev or ()), all_branches, all_commits, keep_days,
                    keep_versions)
    with Project.find() as repo:
        report = gc(repo, scope, dry=dry, remote=remote, yes=yes, wait=wait, grace=grace_s)
    if json_out:
        output.emit_json(_json(report))
        return
    _text(report)


def _side_json(side: Side) -> dict[str, Any]:
    return {"removed": side.removed, "removed_bytes": side.removed_bytes,
            "kept": sum(side.kept_by.values()), "kept_by": dict(side.kept_by),
            "temps_removed": side.temps_removed}


def _json(report: GcReport) -> dict[str, Any]:
    body: dict[str, Any] = {"schema": 1, "dry": report.dry, "grace_seconds": report.grace,
                            **_side_json(report.local)}
    body["remote"] = ({"name": report.remote_name, **_side_json(report.remote)}
                      if report.remote is not None else None)
    body["remote_removed"] = report.remote.removed if report.remote is not None else []
    body.update(manifests_fetched=report.manifests_fetched,
                records_fetched=report.records_fetched, notes=report.notes)
    return body


def _kept(side: Side) -> str:
    parts = ", ".join(f"{n} by {why}" for why, n in side.kept_by.most_common())
    return f"kept {sum(side.kept_by.values())}" + (f" ({parts})" if parts else "")


def _text(report: GcReport) -> None:
    from pipeflow.duration import describe

    verb = "would remove" if report.dry else "removed"
    where = f" on remote '{report.remote_name}'"
    if report.dry:
        for oid in report.local.removed:
            output.out(f"{verb} {oid}")
        for oid in report.remote.removed if report.remote else ():
            output.out(f"{verb} {oid}{where}")
        for temp in report.local.temps_removed + (report.remote.temps_removed
                                                  if report.remote else []):
            output.out(f"{verb} temporary file {temp}")
    local = report.local
    output.out(f"{verb} {len(local.removed)} object(s), {local.removed_bytes} bytes; "
               f"{_kept(local)}; grace {describe(report.grace)}")
    if local.temps_removed:
        output.out(f"{verb} {len(local.temps_removed)} temporary file(s) left by killed "
                   "commands")
    if report.remote is not None:
        temps = len(report.remote.temps_removed)
        output.out(f"{verb} {len(report.remote.removed)} object(s), "
                   f"{report.remote.removed_bytes} bytes{where}; "
                   f"{_kept(report.remote)}"
                   + (f"; {verb} {temps} temporary upload file(s)" if temps else ""))
    for note in report.notes:
        output.err(f"note: {note}")
