"""A reproduction as people read it: ``reproduced (bit-identical) on 2026-12-05 10:02
by alice (record 1a2b3c4d5e6f)`` and, for a stage that did not reproduce, what
differed (``stage train: differs (models/model.pkl 1.2 MB -> 1.2 MB, first byte
4096)``). ``lineage`` and ``verify --reproduced`` print these."""

from __future__ import annotations

import json
from typing import Any

from pipeflow.lineage.render import size_text
from pipeflow.lineage.reproductions import OutputDiff, Reproduction, StageVerdict, Verdict

SHOWN = 3
"""Values, files and stages shown per line before ``and N more``."""


def minute(stamp: str | None) -> str:
    """A record's ISO time as ``YYYY-MM-DD HH:MM`` (UTC, as records keep it)."""
    return stamp[:16].replace("T", " ") if stamp else "?"


def headline(found: Reproduction, earlier: int = 0) -> str:
    """``<verdict> on <when> by <who> (record <id>)[; N earlier]``."""
    record = f" (record {found.record[:12]})" if found.record else ""
    line = f"{found.verdict.words} on {minute(found.when)} by {found.who.describe()}{record}"
    return line + (f"; {earlier} earlier" if earlier else "")


def stage_lines(found: Reproduction) -> list[str]:
    """One line per stage that did not reproduce (none when the version did)."""
    return [stage_text(s) for s in found.stages
            if not s.verdict.reproduced and s.verdict is not Verdict.FROZEN]


def stage_text(stage: StageVerdict) -> str:
    """``stage train: differs (models/model.pkl 1.2 MB -> 1.2 MB, first byte 4096)``."""
    details = [output_text(o) for o in stage.outputs if not o.same and not o.within_tolerance]
    if stage.exit_status not in (None, 0):
        details.insert(0, f"exit status {stage.exit_status}")
    if stage.reason:
        details.append(stage.reason)
    inner = f" ({'; '.join(_more(details))})" if details else ""
    return f"stage {stage.stage}: {stage.verdict.words}{inner}"


def output_text(diff: OutputDiff) -> str:
    """How one output differs: sizes, then the values or the first differing byte."""
    if diff.produced is None:
        return f"{diff.path} not written" + (f", {diff.note}" if diff.note else "")
    parts = [f"{diff.path} {size_text(diff.recorded_size)} -> {size_text(diff.produced_size)}"]
    if diff.values:
        parts += _more([f"{v.key} {_value(v.recorded)} -> {_value(v.produced)}"
                        for v in diff.values])
    elif diff.first_byte is not None:
        parts.append(f"first byte {diff.first_byte}")
    if diff.files:
        parts.append("files " + ", ".join(_more(list(diff.files))))
    if diff.note:
        parts.append(diff.note)
    return ", ".join(parts)


def _more(items: list[str]) -> list[str]:
    if len(items) <= SHOWN:
        return items
    return [*items[:SHOWN], f"and {len(items) - SHOWN} more"]


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)

