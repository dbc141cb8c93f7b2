"""One output of a reproduced stage against its recorded version: bit-identical, or
how it differs (metrics values and by how much; a file's sizes and first differing
byte; a folder's files that differ), and, for a stage declared ``deterministic:
false``, whether its metrics values are within the stage's ``tolerance``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeflow.lineage.reproductions import OutputDiff

if TYPE_CHECKING:
    from pipeflow.project.project import Project
    from pipeflow.records.records import OutputRef


def compare_output(repo: Project, recorded: OutputRef, produced: OutputRef | None, *,
                   workspace: Path, recorded_metrics: Mapping[str, Any] | None = None,
                   tolerance: float | None = None) -> OutputDiff:
    """Compare ``recorded`` (read from ``repo``'s cache when it is there) with
    ``produced`` (the reproduction's output, at ``workspace / produced.path``; None
    when the stage did not write it). ``recorded_metrics``: the values the recorded
    run's record keeps for this metrics file (used when its object is not cached).
    ``tolerance`` (relative) is given for a stage declared ``deterministic: false``."""
    same = produced is not None and produced.hash == recorded.hash
    return OutputDiff(recorded.path, recorded.hash, produced.hash if produced else None,
                      recorded.size, produced.size if produced else None, same=same)
