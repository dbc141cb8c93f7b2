"""``--set KEY=VALUE`` and ``--sweep FILE``: the combinations of params an ``exp run`` tries.

KEY is a dotted key of ``params.yaml`` (``train.C``) or ``FILE:KEY`` for another
params file; VALUE is YAML (``10``, ``true``, ``[1, 2]``, ``abc``); ``A,B,C`` is a
list of values to try, and several such ``--set`` make a grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_FILE = "params.yaml"


@dataclass(frozen=True)
class Override:
    """One params value set for an experiment."""

    file: str
    """The params file, relative to the project root (POSIX)."""
    key: str
    """A dotted key inside it."""
    value: Any


Combination = tuple[Override, ...]
"""The overrides of one experiment (by file, then key)."""


def combinations(root: Path, sets: Sequence[str], sweep: Path | None = None
                 ) -> list[Combination]:
    """The experiments ``--set`` texts and a sweep file ask for, each checked against
    the params files under ``root`` before anything runs (UsageError, exit 2): a text
    without ``=``, a value that does not parse, an unknown file or key (with the
    closest keys). One (maybe empty) combination when nothing makes a grid."""
    import itertools

    import yaml

    axes = []
    for text in sets:  # a stand-in until the real parser lands: no checks, naive commas
        key, _, value = text.partition("=")
        file, _, dotted = key.rpartition(":")
        axes.append([Override(file or DEFAULT_FILE, dotted, yaml.safe_load(v))
                     for v in value.split(",")])
    return [tuple(c) for c in itertools.product(*axes)]


def as_table(combo: Combination) -> dict[str, dict[str, Any]]:
    """file -> key -> value."""
    table: dict[str, dict[str, Any]] = {}
    for o in combo:
        table.setdefault(o.file, {})[o.key] = o.value
    return table


def write_overrides(root: Path, table: Mapping[str, Mapping[str, Any]]) -> None:
    """Write ``table`` (file -> key -> value) into the params files under ``root``."""
    from pipeflow.experiments.paramedit import set_values

    for file, values in table.items():
        set_values(root / file, values)
