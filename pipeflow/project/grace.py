"""The grace period: how old an unreferenced object or a temporary file must be before
``gc`` (or, for temporary files, the next writer) may delete it (see docs/gc.md).

A module of its own so that every writer can read it without importing gc.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeflow.project.project import Project

DEFAULT_GRACE = 2 * 3600.0


def configured_grace(repo: Project) -> float:
    """The grace period from ``gc.grace`` (checked when the config is loaded)."""
    return repo.config.gc.grace
