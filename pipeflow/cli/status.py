"""``pipeflow status``."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Annotated

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Targets, Verbose

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pipeflow.lineage.nondeterminism import Nondeterminism
    from pipeflow.planning.plan import StageState


def print_states(
    states: list[StageState] | tuple[StageState, ...],
    marks: Mapping[str, Nondeterminism] | None = None,
) -> None:
    """One line per stage with its status word, reasons indented beneath, then its
    notes (what pipeflow could not follow, e.g. dynamic imports) and, from ``marks``,
    whether its current outputs' run disagreed with an earlier one of the same inputs."""
    marks = marks or {}
    width = max((len(s.name) for s in states), default=0)
    for state in states:
        word = output.styled(state.word, fg=output.WORD_STYLE.get(state.word))
        output.out(f"{state.name.ljust(width)}  ", word)
        for change in state.reasons:
            output.out(f"{' ' * (width + 4)}{change.message}")
        for note in state.notes:
            output.out(f"{' ' * (width + 4)}note: {note}")
        if state.name in marks:
            output.out(f"{' ' * (width + 4)}{marks[state.name].sentence()}")


def print_marks(marks: Mapping[str, Nondeterminism]) -> None:
    """``stage: nondeterministic: ...`` for each marked stage (when everything is up
    to date and no per-stage lines are printed)."""
    for name, mark in marks.items():
        output.out(f"{name}: {mark.sentence()}")


def summary(states: list[StageState] | tuple[StageState, ...]) -> str:
    from pipeflow.planning.plan import StageWord

    counts = Counter(s.word for s in states)
    order = (StageWord.CHANGED, StageWord.MISSING_OUTPUT, StageWord.PENDING,
             StageWord.RUNNING, StageWord.FROZEN, StageWord.UP_TO_DATE)
    return ", ".join(f"{counts[w]} {w}" for w in order if counts[w])


def status_command(
    targets: Targets = None,
    json_out: Json = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if any stage is not up to date.")
    ] = False,
    remote: Annotated[
        bool, typer.Option("--remote",
                           help="Also show what the default remote lacks (with --check: "
                                "exit 1 when it lacks anything).")
    ] = False,
    verbose: Verbose = False,
) -> None:
    """Show each stage's state and why.

    States: changed (with its reasons: which file, param key old -> new, command
    line, environment), pending (only an upstream stage changed), missing-output,
    frozen, running (a repro is running it now), up-to-date. A stage whose current
    outputs came from a run that disagreed with an earlier run of the same inputs says
    `nondeterministic: outputs differed for the same inputs (runs A, B)` and which
    outputs (docs/reproduce.md). Exits 0 whatever it
    finds, unless --check. Never waits for or blocks a running repro. TARGETS (stage
    names, template groups or output paths) limit it to them and their upstream.
    """
    from pipeflow.cli.options import resolve_target_paths
    from pipeflow.ops.status import status
    from pipeflow.project.project import Project

    with Project.find() as repo:
        report = status(repo, list(resolve_target_paths(repo.root, targets)) or None)
        if remote:
            from pipeflow.ops.transfer import unpushed

            paths, records = unpushed(repo)
    if json_out:
        body = report.to_json()
        if remote:
            body["not_pushed"] = {"paths": paths, "records": records}
        output.emit_json(body)
    else:
        for warning in report.warnings:
            output.warn(warning)
        if report.up_to_date:
            output.out("Everything is up to date.")
            print_marks(report.nondeterministic)
        else:
            print_states(report.states, report.nondeterministic)
            output.out(summary(report.states))
            if report.missing_sources:
                output.out(f"source data not here: {', '.join(report.missing_sources)} "
                           "(`pipeflow pull`; see the warning above)")
        if remote:
            if paths or records:
                shown = ", ".join(paths) or "no outputs"
                output.out(f"not pushed: {shown}; {records} run record(s)")
            else:
                output.out("the remote has everything")
    lacking = remote and bool(paths or records)
    if check and (not report.up_to_date or lacking):
        raise typer.Exit(1)
