"""Experiment names: given (``--name lr-high``), templated for a sweep
(``--name 'C{train.C}'``), or generated: short, readable, unique in the project."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence

from pipeflow.experiments.overrides import Combination


def experiment_names(template: str | None, combos: Sequence[Combination],
                     taken: Collection[str]) -> list[str]:
    """One name per combination, none of them in ``taken`` (the live experiments'
    names) nor twice in the list."""
    if template:
        if len(combos) == 1:
            return [template]
        return [f"{template}-{i + 1}" for i in range(len(combos))]
    return [f"exp-{secrets.token_hex(3)}" for _ in combos]
