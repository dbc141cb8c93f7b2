"""``lineage``, ``metrics show|diff``, ``params diff`` and ``verify``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose

if TYPE_CHECKING:
    from pipeflow.lineage.diff import LineageDiff
    from pipeflow.ops.signed import SignatureReport
    from pipeflow.ops.verify import VerifyReport


def _table(rows: list[list[str]]) -> list[str]:
    """Rows as left-aligned columns (the first row is the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def _value(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value)


# --- lineage -----------------------------------------------------------------------


def lineage_command(
    target: Annotated[str, typer.Argument(
        metavar="PATH[@VERSION]",
        help="An output or source path, or a model; @VERSION is vN, a hash prefix or an "
             "alias.")],
    fmt: Annotated[str, typer.Option(
        "--format", metavar="text|json|dot|mermaid|openlineage",
        help="Output format (json: docs/lineage.schema.json; openlineage: one RunEvent "
             "a line).")] = "text",
    other: Annotated[str | None, typer.Option(
        "--diff", metavar="OTHER_VERSION",
        help="Show what differs between the two versions' histories instead.")] = None,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Show where an output version came from: the run that made it (stage, command,
    params values, code, environment, git commit, user, time), its inputs, the runs
    that made those, down to source data.

    Without @VERSION, the version pipeline.lock names. A run made for an experiment
    shows its name and the params it set (`train.C = 10 (set for experiment lr-high)`).
    A damaged run record is marked and the walk goes on (`pipeflow verify` says more).
    Example: `pipeflow lineage models/model.pkl@v2 --json`.
    """
    from pipeflow.cli.history import record_warnings
    from pipeflow.errors import UsageError
    from pipeflow.lineage.render import FORMATS, render
    from pipeflow.project.project import Project
    from pipeflow.registry.models import expand_model

    fmt = "json" if json_out else fmt
    if fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}'", hint=f"choose one of {', '.join(FORMATS)}")
    with Project.find() as repo:
        target = expand_model(repo, target)
        if "@" in target or other is not None:  # a version may be a tag: say what was skipped
            from pipeflow.cli.history import tag_warnings
            from pipeflow.lineage.tags import read

            tag_warnings(read(repo).problems)
        if other is not None:
            from pipeflow.ops.lineage import lineage_diff

            if fmt not in ("text", "json"):
                raise UsageError("--diff prints text or json")
            found = lineage_diff(repo, target, other)
            if fmt == "json":
                output.emit_json(found.to_json())
            else:
                _print_diff(found)
            return
        from pipeflow.ops.lineage import lineage

        result = lineage(repo, target)
        record_warnings(repo)
    shown = render(result, fmt).rstrip("\n")
    output.out(output.json_escaped(shown) if fmt in ("json", "openlineage") else shown)
    if result.problems and fmt != "text":
        output.warn(f"{len(result.problems)} damaged record(s) on the way: run `pipeflow "
                    "verify`")


def _print_diff(found: LineageDiff) -> None:
    old = f"{found.old_version or '?'} ({found.old_hash[:8]})"
    new = f"{found.new_version or '?'} ({found.new_hash[:8]})"
    output.out(f"{found.path}: {old} -> {new}")
    if not found:
        output.out("the two histories do not differ upstream" if found.old_hash != found.new_hash
                   else "same version: nothing differs")
        return
    for stage in found.stages:
        if not stage:
            continue
        runs = f"run {(stage.old_run or '-')[:8]} -> {(stage.new_run or '-')[:8]}"
        output.out(f"  {stage.stage}  ({runs})", bold=True)
        for d in stage.differences:
            output.out(f"    {d.message}")


# --- metrics -----------------------------------------------------------------------

metrics_app = typer.Typer(
    help="Metrics values kept in pipeline.lock: show them, compare with a git revision.",
    no_args_is_help=True, add_completion=False, rich_markup_mode=None,
)


@metrics_app.command("show")
def metrics_show(
    all_versions: Annotated[bool, typer.Option(
        "--all-versions", help="Every recorded version of each metrics file.")] = False,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Show the metrics values pipeline.lock records (or, with --all-versions, every
    version the run records keep)."""
    from pipeflow.ops import metrics
    from pipeflow.project.project import Project

    with Project.find() as repo:
        files = metrics.show_all_versions(repo) if all_versions else metrics.show(repo)
    if json_out:
        output.emit_json({"schema": 1, "metrics": [
            {"path": m.path, "stage": m.stage, "hash": m.hash, "version": m.version,
             "run": m.run, "when": m.when, "current": m.current, "values": m.values}
            for m in files]})
        return
    if not files:
        output.out("no metrics recorded (declare `metrics:` in a stage and run `pipeflow "
                   "repro`)")
        return
    if all_versions:
        rows = [["", "path", "version", "hash", "when", "values"]]
        for m in files:
            shown = ", ".join(f"{k}={_value(v)}" for k, v in m.values.items())
            rows.append(["*" if m.current else "", m.path, m.version or "", m.hash[:8],
                         (m.when or "")[:19].replace("T", " "), shown])
        for line in _table(rows):
            output.out(line)
        return
    rows = [["path", "metric", "value", "stage"]]
    for m in files:
        for key, value in m.values.items():
            rows.append([m.path, key, _value(value), m.stage])
    for line in _table(rows):
        output.out(line)


@metrics_app.command("diff")
def metrics_diff(
    rev: Annotated[str, typer.Argument(help="A git revision (default HEAD).")] = "HEAD",
    show_all: Annotated[bool, typer.Option("--all", help="Unchanged metrics too.")] = False,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Compare the metrics values in the lock committed at REV with the workspace's
    pipeline.lock. Reads only git: nothing to pull."""
    from pipeflow.ops import metrics
    from pipeflow.project.project import Project

    with Project.find() as repo:
        found = metrics.diff(repo, rev)
    changes = found.changes if show_all else found.changed
    if not _diff_head(found.lock_at_rev, changes, rev, json_out, "metrics"):
        return
    rows = [["path", "metric", rev, "workspace", "change"]]
    for c in changes:
        delta = c.delta
        rows.append([c.path, c.key, _value(c.old), _value(c.new),
                     "" if delta is None else f"{delta:+.6g}"])
    for line in _table(rows):
        output.out(line)


def _diff_head(lock_at_rev: bool, changes: Any, rev: str, json_out: bool, what: str) -> bool:
    """What metrics and params diffs print first; True when a table should follow."""
    if json_out:
        output.emit_json({"schema": 1, "rev": rev, "lock_at_rev": lock_at_rev,
                          "changes": [c.to_json() for c in changes]})
        return False
    if not lock_at_rev:
        output.warn(f"{rev} has no pipeline.lock: every value is new")
    if not changes:
        output.out(f"no {what} changed since {rev}")
        return False
    return True


# --- params ------------------------------------------------------------------------

params_app = typer.Typer(
    help="Params values: compare the params files now with those a git revision ran.",
    no_args_is_help=True, add_completion=False, rich_markup_mode=None,
)


@params_app.command("diff")
def params_diff(
    rev: Annotated[str, typer.Argument(help="A git revision (default HEAD).")] = "HEAD",
    show_all: Annotated[bool, typer.Option("--all", help="Unchanged params too.")] = False,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Compare the params values recorded in the lock committed at REV with the values
    the params files hold now, for the keys stages declare."""
    from pipeflow.ops import params_diff as ops
    from pipeflow.project.project import Project

    with Project.find() as repo:
        found = ops.diff(repo, rev)
    changes = found.changes if show_all else found.changed
    if not _diff_head(found.lock_at_rev, changes, rev, json_out, "params"):
        return
    rows = [["param", rev, "workspace", "stages"]]
    for c in changes:
        rows.append([f"{c.file}:{c.key}", _value(c.old), _value(c.new), ", ".join(c.stages)])
    for line in _table(rows):
        output.out(line)


# --- verify ------------------------------------------------------------------------


def _print_unsigned(report: Any) -> None:
    """Records from other clones: intact, but nothing vouches for who wrote them."""
    for u in report.unsigned:
        where = ("an unknown origin" if u.origin == "unknown" else
                 "git (committed into the repository)" if u.origin == "git" else
                 f"remote '{u.origin}'")
        users = f" by {', '.join(u.users)} (their word)" if u.users else ""
        new = " (new chain: not seen by an earlier verify)" if u.new else ""
        output.out(f"unsigned: chain {u.chain}: {u.records} record(s) from {where}{users}"
                   f"{new}", fg="yellow" if u.new else None)
    if report.ok and report.unsigned:
        total = sum(u.records for u in report.unsigned)
        output.out(f"no damage found; {total} record(s) in {len(report.unsigned)} chain(s) "
                   "from other clones are unsigned: intact, but nothing vouches for who "
                   "wrote them (docs/remotes.md)")


def _print_signatures(sigs: SignatureReport) -> None:
    """Who signed what; untrusted keys and refused alias moves (invalid signatures
    are among the problems)."""
    for name in sorted(set(sigs.records) | set(sigs.tags)):
        output.out(f"signed by {name}: {sigs.records[name]} run record(s), "
                   f"{sigs.tags[name]} tag-log entr{'y' if sigs.tags[name] == 1 else 'ies'}")
    if sigs.records or sigs.tags or sigs.invalid or sigs.untrusted:
        output.out(f"no signature: {sigs.unsigned['records']} run record(s), "
                   f"{sigs.unsigned['tags']} tag-log entr(ies)")
    for bad in sigs.untrusted:
        output.out(f"untrusted: {bad.message}", fg="yellow")
    for refused in sigs.refused:
        output.out(f"refused: {refused}", fg="yellow")


def _print_report(report: VerifyReport) -> None:
    output.out(f"checked {report.objects} object(s), {report.records} run record(s) in "
               f"{report.chains} chain(s), {report.lock_runs} record(s) named by "
               "pipeline.lock")
    for note in report.notes:
        output.out(f"note: {note}")
    for problem in report.problems:
        output.out(f"PROBLEM [{problem.kind}] {problem.message}", fg="red")
    _print_signatures(report.signatures)
    _print_unsigned(report)
    if report.ok and not report.unsigned:
        output.out("everything verified", fg="green")


Reproduced = Annotated[bool, typer.Option(
    "--reproduced", help="Instead, list every reproduced version by the verdict of its "
                         "latest `pipeflow reproduce` (exit 1 when one is not reproduced).")]
Strict = Annotated[bool, typer.Option(
    "--strict", help="With --reproduced: also exit 1 when the version pipeline.lock names "
                     "of a declared model was never reproduced.")]


def verify_command(
    repair: Annotated[bool, typer.Option(
        "--repair", help="First rewrite .pipeflow/tags.jsonl with its valid lines; the "
                         "damaged ones go to .pipeflow/state/tags.jsonl.damaged.")] = False,
    reproduced: Reproduced = False,
    strict: Strict = False,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Re-hash every cached object and walk every chain of run records.

    Reports (exit 1) corrupt objects (moved aside, never served), rewritten records,
    gaps and forks in a chain, broken links, lock entries naming a missing record, and
    damaged lines of the tag log (file:line, what is wrong), and signatures of run
    records or tag-log entries that do not verify. Says who signed what (by the names
    in keys.trusted) and lists, without failing, keys that signed but are not
    trusted, refused moves of protected aliases, and records from other clones that
    are unsigned (chains not seen before marked new).

    --reproduced lists instead the versions `pipeflow reproduce` rebuilt by their
    latest verdict, and declared models' versions never reproduced (docs/reproduce.md).

    docs/history.md (records) and docs/registry.md (signatures, the trust model) say
    what this protects against.

    \b
    Examples:
      pipeflow verify
      pipeflow verify --repair
      pipeflow verify --json | jq .signatures
      pipeflow verify --reproduced --strict
    """
    from pipeflow.errors import CheckFailed

    if reproduced or strict:
        _verify_reproduced(reproduced, strict, json_out)
        return
    from pipeflow.ops.verify import verify
    from pipeflow.ops.versions import repair_tags
    from pipeflow.project.project import Project

    with Project.find() as repo:
        if repair:
            fixed = repair_tags(repo)
            if fixed.aside is not None:
                output.err(f"tag log repaired: kept {fixed.kept} line(s), moved "
                           f"{len(fixed.moved)} damaged line(s) to {fixed.aside} (commit "
                           "the repaired .pipeflow/tags.jsonl)")
        report = verify(repo)
    if json_out:
        output.emit_json(report.to_json())
    else:
        _print_report(report)
    if not report.ok:
        raise CheckFailed(f"verify found {len(report.problems)} problem(s)")


def _verify_reproduced(asked: bool, strict: bool, json_out: bool) -> None:
    """``verify --reproduced``: exit 1 when a version's latest verdict is not a
    reproduction, a reproduction record is damaged, or (``--strict``) the current
    version of a declared model was never reproduced."""
    from pipeflow.cli.reproduced import print_reproduced
    from pipeflow.errors import CheckFailed, UsageError
    from pipeflow.ops.reproduced import reproduced

    if not asked:
        raise UsageError("--strict goes with --reproduced",
                         hint="`pipeflow verify --reproduced --strict`")
    from pipeflow.project.project import Project

    with Project.find() as repo:
        report = reproduced(repo, strict=strict)
    if json_out:
        output.emit_json(report.to_json())
    else:
        print_reproduced(report)
    if report.ok:
        return
    parts = [f"{len(report.failing)} version(s) not reproduced"] if report.failing else []
    parts += [f"{len(report.damaged)} damaged reproduction record(s)"] if report.damaged else []
    parts += ([f"{len(report.unproven)} current model version(s) never reproduced"]
              if report.unproven else [])
    raise CheckFailed("; ".join(parts))
