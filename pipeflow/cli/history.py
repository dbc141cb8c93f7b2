"""``add``, ``versions`` and ``tag``: source data and the versions of a path."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose, Wait


def add_command(
    paths: Annotated[list[str], typer.Argument(help="Files or folders of source data.")],
    wait: Wait = 0.0,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Cache source data (files no stage produces) and record a version of it.

    The paths are listed under `sources:` in pipeline.lock, ignored by git, restored
    by `checkout`, and end every lineage. Run it again after changing the data.
    """
    from pipeflow.ops.add import add
    from pipeflow.repo import Repo

    with Repo.find() as repo:
        report = add(repo, paths, wait=wait)
    if json_out:
        output.emit_json({"schema": 1, "added": [
            {"path": e.path, "hash": e.hash, "size": e.size} for e in report.added],
            "unchanged": report.unchanged})
        return
    for entry in report.added:
        output.out(f"added {entry.path} ({entry.hash[:8]}, {entry.size} bytes)")
    for path in report.unchanged:
        output.out(f"{path} unchanged since it was added")


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def versions_command(
    path: Annotated[str, typer.Argument(help="An output or source path.")],
    sort: Annotated[
        str | None, typer.Option("--sort", metavar="KEY",
                                 help="time (default), size, or metrics.NAME (best first).")
    ] = None,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """List every version of a path: label, hash, size, when, run, params changed, metrics.

    vN labels count versions in order of first production in this clone; the hash
    prefix is the version's identity. `*` marks the version pipeline.lock names.
    """
    from pipeflow.ops.versions import versions
    from pipeflow.repo import Repo

    with Repo.find() as repo:
        rel, found = versions(repo, path, sort=sort)
    if json_out:
        output.emit_json({"schema": 1, "path": rel, "versions": [
            {"version": v.label, "hash": v.hash, "size": v.size, "isdir": v.isdir,
             "first_seen": v.first_seen, "first_run": v.first_run, "runs": v.runs,
             "tags": list(v.tags), "current": v.current, "in_cache": v.in_cache,
             "params_changed": v.params_changed, "metrics": v.metrics}
            for v in found]})
        return
    output.out(f"{rel}: {len(found)} version(s)")
    for v in found:
        mark = "*" if v.current else " "
        when = v.first_seen[:19].replace("T", " ")
        tags = f"  [{', '.join(v.tags)}]" if v.tags else ""
        gone = "  (not in cache)" if not v.in_cache else ""
        output.out(f"{mark} {v.label:>4}  {v.hash[:8]}  {_size(v.size):>9}  {when}  "
                   f"run {v.first_run[:8]}{tags}{gone}")
        for key, (old, new) in v.params_changed.items():
            output.out(f"          {key}: {old} -> {new}")
        if v.metrics:
            shown = ", ".join(f"{k.split(':', 1)[-1]}={val}" for k, val in v.metrics.items())
            output.out(f"          metrics: {shown}")


def tag_command(
    target: Annotated[str, typer.Argument(metavar="PATH@VERSION",
                                          help="The version to tag (vN, hash prefix, tag).")],
    name: Annotated[str, typer.Argument(help="Tag name, e.g. production.")],
    wait: Wait = 0.0,
    verbose: Verbose = False,
) -> None:
    """Point a team-shared tag at a version of a path (commit .pipeflow/tags.jsonl).

    Every move is appended to the tag history (who, when, from which version), so
    rolling back production is moving its tag and checking it out.
    """
    from pipeflow.ops.versions import tag
    from pipeflow.repo import Repo

    with Repo.find() as repo:
        chosen, previous = tag(repo, target, name, wait=wait)
    was = f" (was {previous[:8]})" if previous and previous != chosen.hash else ""
    output.out(f"{name} -> {chosen.path} {chosen.label} ({chosen.hash[:8]}){was}")
