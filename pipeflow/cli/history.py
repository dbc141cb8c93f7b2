"""``add``, ``versions`` and ``tag``: source data and the versions of a path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose, Wait

if TYPE_CHECKING:
    from pipeflow.lineage.tags import LogProblem
    from pipeflow.ops.versions import VersionList
    from pipeflow.project.project import Project


def add_command(
    paths: Annotated[list[str], typer.Argument(help="Files or folders of source data.")],
    external: Annotated[bool, typer.Option(
        "--external", help="The path is a link leading outside the project (a shared "
        "dataset): read and version it there; checkout never writes through it.")] = False,
    wait: Wait = 0.0,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Cache source data (files no stage produces) and record a version of it.

    The paths are listed under `sources:` in pipeline.lock, ignored by git, restored
    by `checkout`, and end every lineage. Run it again after changing the data.
    """
    from pipeflow.ops.add import add
    from pipeflow.project.project import Project

    with Project.find() as repo:
        report = add(repo, paths, wait=wait, external=external)
    if json_out:
        output.emit_json({"schema": 1, "added": [
            {"path": e.path, "hash": e.hash, "size": e.size, "external": e.external}
            for e in report.added],
            "unchanged": report.unchanged})
        return
    for entry in report.added:
        kind = ", external" if entry.external else ""
        output.out(f"added {entry.path} ({entry.hash[:8]}, {entry.size} bytes{kind})")
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


VersionSort = Annotated[
    str | None, typer.Option("--sort", metavar="KEY",
                             help="time (default), size, or metrics.NAME (best first).")
]


def versions_command(
    path: Annotated[str, typer.Argument(metavar="PATH_OR_MODEL",
                                        help="An output or source path, or a declared model.")],
    sort: VersionSort = None,
    params: Annotated[bool, typer.Option(
        "--params", help="Also print every params value that made each version.")] = False,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """List every version of a path or model: label, hash, size, when, run, aliases;
    below it, what differs from the version before (data, code, env, params), notes,
    metrics, and with --params every params value that made it.

    vN labels number versions by first appearance in the first-parent git history of
    pipeline.lock, so they mean the same in every clone with that history. A version
    with no number is shown by hash prefix: `side` if a commit off that line names it
    (e.g. your own after a fast-forward onto a colleague's merge), `local` if no
    commit does yet. `*` marks the version pipeline.lock names; `exp NAME` a version
    first made by an experiment (`pipeflow exp run`). `differs` compares with the
    version before by label: data means a source file upstream changed.

    \b
    Examples:
      pipeflow versions models/model.pkl
      pipeflow versions wine-classifier --params
      pipeflow versions models/model.pkl --sort metrics.accuracy --json
    """
    from pipeflow.ops.versions import versions
    from pipeflow.project.project import Project

    with Project.find() as repo:
        listing = versions(repo, path, sort=sort)
        record_warnings(repo)
    tag_warnings(listing.problems)
    for change in listing.relabeled:
        output.warn(change.message)
    if json_out:
        output.emit_json(_versions_json(listing))
    else:
        _print_versions(listing, params=params)


def _versions_json(listing: VersionList) -> dict[str, object]:
    return {"schema": 1, "path": listing.path, "model": listing.model,
            "in_git": listing.in_git,
            "not_fetched": [{"version": label, "hash": oid}
                            for label, oid in listing.unfetched],
            "versions": [
        {"version": v.label, "local": v.local, "committed": v.committed,
         "hash": v.hash, "size": v.size, "isdir": v.isdir,
         "first_seen": v.first_seen, "first_run": v.first_run,
         "runs": v.runs, "tags": list(v.tags), "current": v.current,
         "in_cache": v.in_cache, "params_changed": v.params_changed,
         "metrics": v.metrics, "first_run_trust": listing.unsigned.get(v.first_run),
         **(listing.who[v.first_run].to_json() if v.first_run in listing.who else {}),
         "experiment": v.experiment.to_json() if v.experiment else None,
         "notes": [{"text": n.text, "user": n.user, "when": n.when} for n in v.notes],
         "params": {f: dict(sorted(values.items())) for f, values in sorted(v.params.items())},
         "differs": v.differs.to_json() if v.differs is not None else None,
         "differs_from": v.differs_from}
        for v in listing.versions]}


def _print_versions(listing: VersionList, *, params: bool = False) -> None:
    from pipeflow.cli.versionview import detail_lines

    found = listing.versions
    model = f" (model {listing.model})" if listing.model else ""
    output.out(f"{listing.path}{model}: {len(found)} version(s)")
    if not listing.in_git:
        output.out("not in a git repository: versions have no vN label, only their hash "
                   "(local:PREFIX)")
    if listing.unfetched:
        shown = ", ".join(f"{label} ({oid[:8]})" for label, oid in listing.unfetched)
        output.out(f"named by git history but not recorded in this clone: {shown} "
                   "(`pipeflow fetch` brings their records)")
    for v in found:
        mark = "*" if v.current else " "
        when = v.first_seen[:19].replace("T", " ")
        tags = f"  [{', '.join(v.tags)}]" if v.tags else ""
        gone = "  (not in cache)" if not v.in_cache else ""
        label = v.label.split(":", 1)[0]  # vN, side or local
        unsigned = listing.unsigned.get(v.first_run)
        trust = f" ({unsigned})" if unsigned else ""
        if v.first_run in listing.who:
            trust += f" by {listing.who[v.first_run].describe()}"
        exp = f"  exp {v.experiment.name}" if v.experiment else ""
        output.out(f"{mark} {label:>5}  {v.hash[:8]}  {_size(v.size):>9}  {when}  "
                   f"run {v.first_run[:8]}{trust}{exp}{tags}{gone}")
        for line in detail_lines(v, params=params):
            output.out(f"           {line}")


def record_warnings(repo: Project) -> None:
    """One warning per damaged run record this command met and skipped (if the
    command opened the index at all)."""
    index = repo.open_index()  # never open it just for this
    for problem in index.skipped if index is not None else ():
        output.warn(problem)


def tag_warnings(problems: Sequence[LogProblem]) -> None:
    """One warning per skipped line of the tag log, then how to fix them."""
    for problem in problems:
        output.warn(f"{problem.message}: skipped")
    if problems:
        output.warn("`pipeflow verify` explains; `pipeflow verify --repair` sets the damaged "
                    "lines aside")
