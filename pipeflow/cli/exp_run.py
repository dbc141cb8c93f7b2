"""``pipeflow exp run``: try params without editing files, one or a sweep of them."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Targets, Verbose, Wait, resolve_target_paths
from pipeflow.cli.repro import EngineOpt, ExecutorOpt, SchedulerOpt, engine_options

if TYPE_CHECKING:
    from pipeflow.execution.scheduler import StageEvent
    from pipeflow.experiments.run import ExpEvent, SweepReport
    from pipeflow.lineage.experiments import Experiment

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-S", metavar="KEY=VALUE",
                 help="Override a param (repeatable): train.C=10, other.yaml:key=x; "
                      "train.C=0.1,1,10 tries each value (several make a grid)."),
]
SweepOpt = Annotated[
    Path | None,
    typer.Option("--sweep", metavar="FILE", help="A YAML file of combinations (a list) or a "
                                                 "grid (grid: {key: [values]})."),
]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", "-n", help="The experiment's name; for a sweep a template such as "
                                      "'C{train.C}' (default: generated)."),
]
JobsOpt = Annotated[
    int, typer.Option("--jobs", "-j", min=0, help="Experiments to run at once (0: one per CPU).")
]
RemoteOpt = Annotated[
    str | None, typer.Option("--remote", "-r",
                             help="The remote an --executor that stages through one uses "
                                  "(dask; default: the default remote).")
]
ReplaceOpt = Annotated[
    bool, typer.Option("--replace", help="A --name that is taken: supersede that experiment.")
]


class _Printer:
    """One line per thing that happens, each prefixed by its experiment's name."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.lock = threading.Lock()

    def event(self, ev: ExpEvent) -> None:
        if self.quiet:
            return
        with self.lock:
            if ev.kind == "started":
                output.out(f"[{ev.name}] started", bold=True)
            elif ev.kind == "finished" and ev.experiment is not None:
                _finished(ev.experiment)
            elif ev.stage is not None:
                _stage(ev.name, ev.stage)


def _stage(name: str, ev: StageEvent) -> None:
    if ev.kind == "started":
        output.out(f"[{name}] running '{ev.stage}'")
    elif ev.kind == "finished" and ev.result is not None:
        output.out(f"[{name}] '{ev.stage}' done in {ev.result.duration:.2f} s", fg="green")
    elif ev.kind == "restored":
        output.out(f"[{name}] '{ev.stage}' restored from the cache", fg="cyan")
    elif ev.kind == "failed" and ev.error is not None:
        output.err(f"[{name}] '{ev.stage}' failed", fg="red")


def _finished(exp: Experiment) -> None:
    if exp.ok:
        output.out(f"[{exp.name}] done in {exp.duration:.1f} s", fg="green")
        return
    output.err(f"[{exp.name}] failed: {exp.error or 'a stage failed'}", fg="red")
    for line in exp.log_tail.splitlines()[-10:]:
        output.err(f"  | {line}")


def run_command(
    targets: Targets = None,
    set_: SetOpt = None,
    sweep: SweepOpt = None,
    name: NameOpt = None,
    jobs: JobsOpt = 1,
    replace: ReplaceOpt = False,
    executor: ExecutorOpt = "local",
    scheduler: SchedulerOpt = None,
    executor_option: EngineOpt = None,
    remote: RemoteOpt = None,
    wait: Wait = 0.0,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Run the pipeline with params overridden, touching none of your files.

    Each experiment runs in its own scratch workspace (under .pipeflow/tmp, removed
    afterwards) holding your workspace's files with the --set values written into
    its params files; stages it did not change come from the cache, stages seen
    before with the same inputs from the run cache. params.yaml, pipeline.lock and
    your outputs stay as they are. Every run is recorded: `pipeflow exp show`
    compares them, `pipeflow exp apply NAME` makes one the workspace's, `pipeflow
    push` shares them.

    TARGETS (stage names, template groups or output paths) limit each experiment
    to those stages and their upstream.

    Examples:

    \b
      pipeflow exp run --set train.C=10 --name strong
      pipeflow exp run --set train.C=0.1,1,10 --set featurize.poly_degree=1,2 -j 2
      pipeflow exp run --sweep sweep.yaml --name 'C{train.C}' --executor dask

    Exit 1 when an experiment failed (the others still ran), 2 for a bad --set,
    sweep file or name (nothing runs then), 130/143 when interrupted (finished
    experiments are kept; none of your files changed).
    """
    from pipeflow.cli.signals import sigterm_as_interrupt
    from pipeflow.experiments.run import ExpOptions, exp_run
    from pipeflow.project.project import Project

    options = ExpOptions(sets=tuple(set_ or ()), sweep=sweep, name=name, jobs=jobs,
                         replace=replace, executor=executor, remote=remote, wait=wait,
                         executor_options=engine_options(scheduler, executor_option))
    printer = _Printer(quiet=json_out)
    with Project.find() as repo, sigterm_as_interrupt():
        options = dataclasses.replace(options,
                                      targets=resolve_target_paths(repo.root, targets))
        report = exp_run(repo, options, on_event=printer.event)
    _print_report(report, json_out)


def _print_report(report: SweepReport, json_out: bool) -> None:
    for warning in report.warnings:
        output.warn(warning)
    if json_out:
        output.emit_json({"schema": 1, "ok": report.ok, "cancelled": report.cancelled,
                          "experiments": [_json(e) for e in report.experiments]})
    else:
        done = [e for e in report.experiments if e.ok]
        failed = [e for e in report.experiments if not e.ok]
        output.out(f"{len(done)} experiment(s) done" + (f", {len(failed)} failed: "
                   + ", ".join(e.name for e in failed) if failed else "")
                   + "; compare them with `pipeflow exp show`")
    if not report.ok:
        raise typer.Exit(1)


def _json(exp: Experiment) -> dict[str, object]:
    return {"name": exp.name, "id": exp.id, "status": exp.status.value,
            "set": exp.overrides, "metrics": exp.metrics, "duration": exp.duration,
            "failed_stage": exp.failed_stage, "error": exp.error, "log_tail": exp.log_tail,
            "stages": {s.stage: s.how for s in exp.stages}}
