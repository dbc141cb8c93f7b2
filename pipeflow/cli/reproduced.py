"""How ``pipeflow verify --reproduced`` prints its report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeflow.cli import output

if TYPE_CHECKING:
    from pipeflow.ops.reproduced import ReproducedReport


def print_reproduced(report: ReproducedReport) -> None:
    """One group per latest verdict (best first), a line per version, what differed
    beneath a version that did not reproduce; then declared models' versions never
    reproduced and damaged records."""
    from pipeflow.lineage.verdicttext import minute, stage_lines

    for problem in report.damaged:
        output.warn(problem)
    groups = report.by_verdict()
    if not groups:
        output.out("no version has been reproduced yet (`pipeflow reproduce PATH@VERSION` "
                   "rebuilds one and records the verdict)")
    for verdict, versions in groups.items():
        output.out(f"{verdict.words}: {len(versions)} version(s)", bold=True,
                   fg=None if verdict.reproduced else "red")
        for v in versions:
            last = v.last
            extra = f", {v.reproductions} reproductions" if v.reproductions > 1 else ""
            current = "  (current)" if v.current else ""
            output.out(f"  {last.path}  {_label(v.label, last.hash)}  {minute(last.when)}  "
                       f"{last.who.describe()}  record {(last.record or '?')[:12]}{extra}"
                       f"{current}")
            for line in stage_lines(last):
                output.out(f"      {line}")
    if report.never:
        output.out(f"never reproduced: {len(report.never)} version(s) of declared models",
                   bold=True, fg="yellow" if report.unproven else None)
        for n in report.never:
            current = "  (current)" if n.current else ""
            output.out(f"  {n.path}  {_label(n.label, n.hash)}  model {n.model}{current}")


def _label(label: str | None, oid: str) -> str:
    """``v3 (1a2b3c4d)``; ``local (1a2b3c4d)`` for a label that is the hash already."""
    kind, sep, _prefix = (label or "").partition(":")
    return f"{kind if sep else label or '?'} ({oid[:8]})"
