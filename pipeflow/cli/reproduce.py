"""``pipeflow reproduce``: rebuild a recorded version from scratch and say, stage by
stage, whether it comes out the same."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose, Wait
from pipeflow.cli.repro import EngineOpt, ExecutorOpt, Jobs, RemoteOpt, SchedulerOpt

if TYPE_CHECKING:
    from pipeflow.lineage.reproductions import (
        OutputDiff,
        Reproduction,
        StageVerdict,
        ValueDiff,
    )
    from pipeflow.reproduce.run import ReproduceEvent

_STYLE: dict[str, dict[str, Any]] = {
    "frozen": {"fg": "cyan"}, "bit-identical": {"fg": "green"},
    "within-tolerance": {"fg": "green"},
    "differs": {"fg": "yellow"}, "failed": {"fg": "red"}, "cannot-reproduce": {"fg": "red"},
}


class _Progress:
    """Says what the reproduction is doing (on stderr: stdout keeps the verdict)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def event(self, ev: ReproduceEvent) -> None:
        with self.lock:
            if ev.kind == "planned" and ev.plan is not None:
                p = ev.plan
                where = (f"at commit {p.commit[:12]}" if p.commit else
                         f"at commit {p.commits[0][:12]}, which this clone lacks"
                         if p.commits else "with no commit to check out")
                output.err(f"Reproducing {p.path}@{p.version or p.hash[:8]} ({p.hash[:8]}): "
                           f"{len(p.stages)} stage(s) {where}", bold=True)
                for d in ev.env:
                    output.err(f"  environment: {d.name} {d.current or 'absent'} here, "
                               f"{d.recorded or 'absent'} recorded", fg="yellow")
            elif ev.kind == "retry" and ev.plan is not None and ev.plan.commit:
                output.err(f"  commit {ev.plan.commit[:12]} does not hold the code its runs "
                           "read: trying the next", dim=True)
            elif ev.kind == "recording":
                output.err("  recording the verdict (after any repro holding the project's "
                           "lock)", dim=True)
            elif ev.kind == "stage" and ev.stage is not None:
                s = ev.stage
                if s.kind == "started":
                    output.err(f"  running '{s.stage}'", dim=True)
                elif s.kind == "finished" and s.result is not None:
                    output.err(f"  '{s.stage}' ran in {s.result.duration:.2f} s", dim=True)

    def line(self, _stage: str, _text: str) -> None:
        """Stage output goes to the stage's log, not the verdict."""


Target = Annotated[str, typer.Argument(
    metavar="PATH_OR_MODEL[@VERSION]",
    help="An output path or a declared model; @VERSION is vN, a hash prefix or an alias "
         "(default: the version pipeline.lock names).")]
PullInputs = Annotated[bool, typer.Option(
    "--pull", help="Get inputs the cache lacks from the remote.")]
StrictEnv = Annotated[bool, typer.Option(
    "--strict-env", help="Refuse to run when this environment differs from the recorded "
                         "one (Python, each distribution's version).")]


def reproduce_command(
    target: Target,
    pull: PullInputs = False,
    remote: RemoteOpt = None,
    strict_env: StrictEnv = False,
    executor: ExecutorOpt = "local",
    scheduler: SchedulerOpt = None,
    executor_option: EngineOpt = None,
    jobs: Jobs = 1,
    wait: Wait = 0.0,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Prove a version: rebuild it from its sources and compare, stage by stage.

    In a scratch workspace (a git worktree of the commit that holds the version's code,
    under .pipeflow/tmp, apart from your files), the source data the records name is
    checked out from the cache (--pull: from the remote), the recorded params values
    are set, and every stage of the version's lineage runs from the sources up with no
    cache hit. Each stage is `reproduced (bit-identical)`, `reproduced (within
    tolerance)` (declared `deterministic: false`), `differs` (which outputs, how),
    `failed` or `cannot reproduce` (why). A `reproduction` record keeps the verdict:
    `pipeflow lineage` shows the last one, `pipeflow verify --reproduced` lists them.
    Your workspace, pipeline.lock and history are not touched, and your own `repro`
    can run meanwhile.

    Exit 0 only when every stage reproduced; 1 otherwise; 2 when the target is not a
    version a stage made (an unknown version, source data, no records here).

    \b
    Examples:
      pipeflow reproduce models/model.pkl@v1
      pipeflow reproduce wine-classifier@production --pull
      pipeflow reproduce metrics/scores.json --json       # the version the lock names
    """
    from pipeflow.cli.history import record_warnings
    from pipeflow.cli.repro import engine_options
    from pipeflow.cli.signals import sigterm_as_interrupt
    from pipeflow.project.project import Project
    from pipeflow.reproduce.run import ReproduceOptions, reproduce

    options = ReproduceOptions(pull=pull, remote=remote, strict_env=strict_env,
                               executor=executor, jobs=jobs, wait=wait,
                               executor_options=engine_options(scheduler, executor_option))
    progress = _Progress()  # on stderr, --json or not: a CI log shows what ran
    with Project.find() as repo, sigterm_as_interrupt():
        try:
            result = reproduce(repo, target, options, on_event=progress.event,
                               sink=progress.line)
        finally:
            record_warnings(repo)
    if json_out:
        output.emit_json({"schema": 1, "ok": result.ok, "record": result.record,
                          "unrecorded": result.unrecorded, **result.to_json()})
    else:
        _print(result)
    if result.unrecorded:
        output.warn(result.unrecorded)
    if not result.ok:
        raise typer.Exit(1)


def _print(result: Reproduction) -> None:
    for verdict in result.stages:
        _print_stage(verdict)
    overall = result.verdict
    where = f"{result.path}@{result.version}" if result.version else result.path
    output.out(f"{where}: {overall.words}", bold=True, **_STYLE[overall.value])
    if result.record:
        output.out(f"recorded as reproduction {result.record[:12]} "
                   f"(`pipeflow lineage {where}` shows it)", dim=True)


def _print_stage(v: StageVerdict) -> None:
    output.out(f"{v.stage}: ", output.styled(v.verdict.words, **_STYLE[v.verdict.value]))
    if v.reason:
        output.out(f"  {v.reason}")
    if v.exit_status is not None and v.verdict.value == "failed" and (
            "exit" not in (v.reason or "")):
        output.out(f"  exit status {v.exit_status}")
    for line in (v.log_tail or "").splitlines()[-10:]:
        output.out(f"  | {line}", dim=True)
    for out in v.outputs:
        if not out.same:
            for line in describe(out):
                output.out(f"  {line}")


def describe(out: OutputDiff) -> list[str]:
    """How one output differs, as lines (the first names it)."""
    from pipeflow.lineage.render import size_text

    if out.produced is None:
        return [f"{out.path}: not written by the reproduction"]
    how = "within tolerance" if out.within_tolerance else "differs"
    first = (f"{out.path}: {how} ({size_text(out.recorded_size)} recorded, "
             f"{size_text(out.produced_size)} reproduced")
    first += f"; first differing byte at offset {out.first_byte})" if (
        out.first_byte is not None) else ")"
    lines = [first]
    for value in out.values[:12]:
        where = f"{value.file}: " if value.file else ""
        lines.append(f"  {where}{value.key} {_shown(value.recorded)} -> "
                     f"{_shown(value.produced)}{_change(value)}")
    if len(out.values) > 12:
        lines.append(f"  ... and {len(out.values) - 12} more values")
    if out.files:
        lines.append("  files that differ, were added or were removed:")
        lines += [f"    {f}" for f in out.files[:12]]
    if out.note:
        lines.append(f"  ({out.note})")
    return lines


def _change(value: ValueDiff) -> str:
    """`` (+0.001, 1.1e-03 relative)``: the absolute change beside the relative one (a
    clock 20 s off is a tiny relative change of a large number)."""
    a, b = value.recorded, value.produced
    if value.relative is None or isinstance(a, bool) or isinstance(b, bool) or not (
            isinstance(a, int | float) and isinstance(b, int | float)):
        return ""
    return f" ({b - a:+.3g}, {value.relative:.2g} relative)"


def _shown(value: object) -> str:
    import json

    return "absent" if value is None else value if isinstance(value, str) else json.dumps(value)
