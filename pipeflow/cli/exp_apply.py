"""``pipeflow exp apply`` and ``pipeflow exp remove``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose, Wait

if TYPE_CHECKING:
    from pipeflow.execution.scheduler import StageEvent
    from pipeflow.experiments.apply import Applied, Removed

Names = Annotated[list[str] | None, typer.Argument(
    help="Experiment names (or id prefixes of 4+ characters).", show_default=False,
    metavar="NAME...")]


def _stage_line(ev: StageEvent) -> None:
    if ev.kind == "started":
        output.out(f"Running '{ev.stage}' (the run cache could not restore it: see below)")
    elif ev.kind == "restored":
        output.out(f"'{ev.stage}' restored from the cache", fg="cyan")


def apply_command(
    name: Annotated[str, typer.Argument(help="The experiment (its name or an id prefix).",
                                        show_default=False)],
    force: Annotated[bool, typer.Option(
        "--force", help="Write over uncommitted changes to the params files it sets.")
    ] = False,
    wait: Wait = 0.0,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Make an experiment's params and outputs the workspace's.

    Writes the params the experiment ran with (its --set values, and every other
    value its stages read that differs now) into the params files (comments and layout
    kept) and brings the outputs and pipeline.lock to its results as `repro` would:
    from the run cache, so nothing trains (outputs missing here are downloaded from
    the default remote first). `status` is clean afterwards; commit to keep it. A
    stage that must run (its code changed since the experiment) is listed. If a stage
    fails, the apply is undone.

    Examples:

    \b
      pipeflow exp apply lr-high && git commit -am "train.C = 10 (lr-high)"
      pipeflow exp apply lr-high --force   # over uncommitted params edits

    Exit 2, nothing changed, for an unknown or failed experiment or params files with
    uncommitted changes (without --force); 1 when a stage failed (undone).
    """
    from pipeflow.cli.signals import sigterm_as_interrupt
    from pipeflow.experiments.apply import exp_apply
    from pipeflow.project.project import Project

    with Project.find() as repo, sigterm_as_interrupt():
        applied = exp_apply(repo, name, force=force, wait=wait,
                            on_event=None if json_out else _stage_line)
    if json_out:
        output.emit_json(_applied_json(applied))
        return
    _applied_text(applied)


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def _applied_text(a: Applied) -> None:
    if a.fetched:
        output.out(f"Downloaded {a.fetched} object(s) from remote '{a.remote}'")
    for p in a.params:
        if p.changed:
            output.out(f"{p.file}: {p.key} {_shown(p.old)} -> {_shown(p.new)}")
        else:
            output.out(f"{p.file}: {p.key} = {_shown(p.new)} (already)")
    for file, key in a.skipped_params:
        output.warn(f"{file}: {key} not set: the file has no such key now (the experiment "
                    "read it)")
    parts = []
    if a.restored:
        parts.append(f"restored {len(a.restored)} stage(s) from the cache "
                     f"({', '.join(a.restored)})")
    if a.up_to_date:
        parts.append(f"{len(a.up_to_date)} already up to date")
    output.out(f"Applied experiment '{a.name}': " + ("; ".join(parts) or "nothing to restore"),
               fg="green")
    if a.untrusted:
        from pipeflow.cli.repro import untrusted_warning

        output.warn(untrusted_warning(list(a.untrusted)))
    else:
        uncached = dict(a.uncached)
        for stage, why in a.uncached:
            output.warn(f"'{stage}' ran: its outputs are not kept in the run cache: {why}, "
                        "so it runs on apply")
        ran = [s for s in a.ran if s not in uncached]
        if ran:
            output.warn(f"{len(ran)} stage(s) had to run, their fingerprint not being the "
                        f"experiment's (code or data changed since, or outputs in no "
                        f"cache): {', '.join(ran)}")
    output.out("Commit the params files and pipeline.lock to keep it.")


def _applied_json(a: Applied) -> dict[str, Any]:
    return {"schema": 1, "name": a.name, "id": a.id,
            "params": [{"file": p.file, "key": p.key, "old": p.old, "new": p.new}
                       for p in a.params],
            "restored": list(a.restored), "ran": list(a.ran),
            "up_to_date": list(a.up_to_date), "fetched": a.fetched, "remote": a.remote,
            "lock_changed": a.lock_changed,
            "skipped_params": [{"file": f, "key": k} for f, k in a.skipped_params],
            "not_run_cached": [{"stage": s, "why": w} for s, w in a.uncached],
            "untrusted": [{"stage": stage, **verdict.to_json()}
                          for stage, verdict in a.untrusted]}


def remove_command(
    names: Names = None,
    all_failed: Annotated[bool, typer.Option(
        "--all-failed", help="Remove every failed experiment.")] = False,
    wait: Wait = 0.0,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Remove experiments from `exp show` (and `exp apply`).

    Each removal is a record of its own, so it travels with `pipeflow push`; the
    run records of the experiment's stages stay (lineage keeps them), and the cache
    objects only it kept become collectable by `pipeflow gc`. An unknown name is an
    error (exit 2) before anything is removed.

    Examples:

    \b
      pipeflow exp remove lr-high lr-low
      pipeflow exp remove --all-failed
    """
    from pipeflow.experiments.apply import exp_remove
    from pipeflow.project.project import Project

    with Project.find() as repo:
        removed = exp_remove(repo, names or [], all_failed=all_failed, wait=wait)
    _removed(removed, json_out)


def _removed(removed: Removed, json_out: bool) -> None:
    if json_out:
        output.emit_json({"schema": 1, "removed": [
            {"name": e.name, "id": e.id, "status": e.status.value}
            for e in removed.experiments]})
        return
    if not removed.experiments:
        output.out("No experiment to remove (none failed)")
        return
    for e in removed.experiments:
        output.out(f"Removed experiment '{e.name}' ({e.status.value}, id {e.id})")
