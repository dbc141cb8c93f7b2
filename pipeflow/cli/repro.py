"""``pipeflow repro``: run what changed, showing each stage as it goes."""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Targets, Verbose, Wait, resolve_target_paths
from pipeflow.execution.executor import names as executor_names

if TYPE_CHECKING:
    from pipeflow.execution.scheduler import StageEvent
    from pipeflow.lineage.trust import Trust
    from pipeflow.ops.repro import ReproReport


class _Printer:
    """Renders scheduler events; prefixes stage output when stages run in parallel."""

    def __init__(self, jobs: int, quiet: bool) -> None:
        self.prefix = jobs != 1
        self.quiet = quiet
        self.lock = threading.Lock()

    def line(self, stage: str, text: str) -> None:
        if self.quiet:
            return
        with self.lock:
            output.out(f"[{stage}] {text}" if self.prefix else text)

    def event(self, ev: StageEvent) -> None:
        if self.quiet:
            return
        with self.lock:
            if ev.kind == "started":
                stage = ev.state.name if ev.state else ev.stage
                why = "; ".join(c.message for c in ev.state.reasons) if ev.state else ""
                output.out(f"Running '{stage}'" + (f" ({why})" if why else ""), bold=True)
            elif ev.kind == "finished" and ev.result is not None:
                output.out(f"'{ev.stage}' done in {ev.result.duration:.2f} s", fg="green")
            elif ev.kind == "skipped" and ev.state is not None and ev.state.word == "frozen":
                why = "; ".join(c.message for c in ev.state.reasons)
                output.out(f"'{ev.stage}' is frozen: not run" + (f" ({why})" if why else ""))
            elif ev.kind == "skipped":
                output.out(f"'{ev.stage}' is up to date", dim=True)
            elif ev.kind == "restored":
                notes = [c.message for c in ev.state.reasons if "checked out" in c.message] if (
                    ev.state) else []
                output.out(f"'{ev.stage}' restored from the cache: {ev.detail}"
                           + (f" ({'; '.join(notes)})" if notes else ""), fg="cyan")
            elif ev.kind == "blocked":
                output.err(f"'{ev.stage}' not run: upstream '{ev.detail}' failed", fg="red")
            elif ev.kind == "failed" and ev.error is not None:
                output.error(ev.error)
                if ev.result is not None:
                    output.err(f"  full log: {ev.result.log_path}")


def _flag(*names: str, help: str) -> Any:
    return typer.Option(*names, help=help)


Force = Annotated[bool, _flag("--force", "-f", help="Run even stages that are up to date.")]
Dry = Annotated[bool, _flag("--dry", help="Print what would run and why; run nothing.")]
Jobs = Annotated[
    int, typer.Option("--jobs", "-j", min=0, help="Stages to run at once (0: one per CPU).")
]
KeepGoing = Annotated[
    bool,
    _flag("--keep-going", "-k", help="After a failure, go on with stages not depending on it."),
]
SingleItem = Annotated[
    bool, _flag("--single-item", "-s", help="Only the targets, not their upstream.")
]
Pull = Annotated[
    bool, _flag("--pull", help="First get source data, missing outputs and run-cache hits "
                               "from the remote.")
]
RemoteOpt = Annotated[
    str | None, typer.Option("--remote", "-r",
                             help="Remote for --pull and for an --executor that stages through one "
                                  "(dask; default: the default remote).")
]
_ELSEWHERE = [n for n in executor_names() if n != "local"]
ExecutorOpt = Annotated[
    str, typer.Option("--executor", metavar="|".join(["local", *_ELSEWHERE]),
                      help="Where stages run: here, or with a registered engine (dask: as "
                           "tasks on a Dask cluster).")
]
SchedulerOpt = Annotated[
    str | None, typer.Option("--scheduler", metavar="ADDRESS",
                             help="The scheduler of an --executor that has one (dask: e.g. "
                                  "tcp://host:8786; default $PIPEFLOW_DASK_SCHEDULER).")
]
Downstream = Annotated[
    bool, _flag("--downstream", help="The targets and everything downstream of them.")
]
EngineOpt = Annotated[
    list[str] | None, typer.Option("--executor-option", "-O", metavar="KEY=VALUE",
                                   help="An option of the --executor engine (repeatable), "
                                        "e.g. -O partition=gpu for an engine that takes it.")
]


def engine_options(scheduler: str | None, pairs: list[str] | None) -> dict[str, str]:
    """``--scheduler`` and each ``-O KEY=VALUE`` as the engine's options."""
    from pipeflow.errors import UsageError

    found = {"scheduler": scheduler} if scheduler else {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--executor-option {pair!r} needs a name, '=' and a value",
                             hint="e.g. --executor-option partition=gpu")
        found[key] = value
    return found


def repro_command(
    targets: Targets = None,
    force: Force = False,
    dry: Dry = False,
    jobs: Jobs = 1,
    keep_going: KeepGoing = False,
    single_item: SingleItem = False,
    downstream: Downstream = False,
    pull: Pull = False,
    remote: RemoteOpt = None,
    executor: ExecutorOpt = "local",
    scheduler: SchedulerOpt = None,
    executor_option: EngineOpt = None,
    wait: Wait = 0.0,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Bring outputs up to date: run what changed, restore what the cache has, skip the rest.

    Runs in dependency order the stages that are not up to date; an output that is
    missing but whose stage is otherwise unchanged comes back from the cache; a
    rerun stage whose outputs come out identical does not rerun what depends on it.
    With TARGETS (stage names, template groups or output paths) only those and their
    stale upstream. Finished stages are committed at once: a failure or interrupt
    keeps them. Exit 1 when a stage failed, or before anything runs when pipeline.lock
    names source data that is in neither the workspace nor the local cache (`pipeflow
    pull` gets it; `pipeflow add PATH` records the workspace's data instead).
    """
    from pipeflow.cli.signals import sigterm_as_interrupt
    from pipeflow.ops.repro import ReproOptions, repro
    from pipeflow.project.project import Project

    # checked before the project is looked for, as the API checks them
    options = ReproOptions(
        force=force, dry=dry, jobs=jobs, keep_going=keep_going, single_item=single_item,
        downstream=downstream, wait=wait, pull=pull, remote=remote, executor=executor,
        executor_options=engine_options(scheduler, executor_option))
    printer = _Printer(jobs, quiet=json_out)
    with Project.find() as repo, sigterm_as_interrupt():
        options = dataclasses.replace(options,
                                      targets=resolve_target_paths(repo.root, targets))
        report = repro(repo, options, on_event=printer.event, sink=printer.line)
        for problem in repo.records.skipped:
            output.warn(problem)
    _print_report(report, dry=dry, json_out=json_out)


def _print_report(report: ReproReport, *, dry: bool, json_out: bool) -> None:
    for warning in report.warnings:
        output.warn(warning)
    if report.untrusted:
        output.warn(untrusted_warning(report.untrusted))
    outcome = report.outcome
    if not json_out:
        for note in report.sources:
            output.out(f"source data: {note}")
    if dry:
        _print_plan(report, json_out=json_out)
        return
    if json_out:
        output.emit_json({
            "schema": 1, "ok": outcome.ok, "ran": outcome.ran, "restored": outcome.restored,
            "skipped": outcome.skipped, "blocked": outcome.blocked,
            "not_started": outcome.not_started,
            "failed": [{"stage": e.stage, "message": e.message, "log_tail": e.log_tail}
                       for e in outcome.failed],
            "lock_changed": report.lock_changed,
            "untrusted": [{"stage": stage, **verdict.to_json()}
                          for stage, verdict in report.untrusted]})
    elif not outcome.ran and not outcome.restored and outcome.ok:
        output.out("Everything is up to date.")
    elif report.lock_changed:
        output.out("Updated pipeline.lock" if outcome.ok
                   else "pipeline.lock updated with the stages that finished")
    if outcome.not_started and not json_out:
        names = ", ".join(outcome.not_started)
        output.err(f"not started after the failure: {names} (--keep-going runs independent "
                   "stages on)")
    if not outcome.ok:
        raise typer.Exit(1)


def _print_plan(report: ReproReport, *, json_out: bool) -> None:
    from pipeflow.cli.status import print_states

    if json_out:
        output.emit_json({"schema": 1, "dry": True, "stages": [
            {"name": s.name, "status": s.word, "reasons": [c.to_json() for c in s.reasons]}
            for s in report.plan]})
        return
    todo = [s for s in report.plan if not s.up_to_date]
    if not todo:
        output.out("Everything is up to date: nothing would run.")
    else:
        print_states(todo)


def untrusted_warning(untrusted: list[tuple[str, Trust]]) -> str:
    """One warning for every run-cache entry left unused because of its record."""
    stages = ", ".join(dict.fromkeys(stage for stage, _ in untrusted))
    reasons = "; ".join(dict.fromkeys(r for _, v in untrusted for r in v.reasons))
    text = (f"ran {stages} instead of restoring from run-cache entries made elsewhere: "
            f"{reasons}")
    remotes = sorted({n for _, v in untrusted if not v.vouched and v.origin != "git"
                      for n in v.untrusted_remotes})
    if remotes:
        commands = " and ".join(f"`pipeflow remote modify {n} trust_run_cache true`"
                                for n in remotes)
        whom = "that remote" if len(remotes) == 1 else "those remotes"
        text += (f". If you trust everyone who can write to {whom}, run {commands} "
                 "(add --local for this machine only; docs/remotes.md)")
    return text
