"""The ``reproduction`` record each ``pipeflow reproduce`` writes to the project's
chain (:mod:`pipeflow.lineage.reproductions` reads them).

It is an ordinary record of the clone's chain (signed by ``records.append`` when
the clone has a key, indexed at once): it travels with ``push``/``fetch``, ``verify``
walks it, and no reader of outputs or runs mistakes it for a run (it lists no
outputs, inputs or params: the version it is about is in its ``reproduction``
field)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pipeflow.execution.history import record_git
from pipeflow.lineage.reproductions import Reproduction, from_record
from pipeflow.records.records import RecordBody, RecordKind, iso
from pipeflow.version import __version__

if TYPE_CHECKING:
    from pipeflow.git.gitinfo import Provenance
    from pipeflow.project.project import Project


def write(home: Project, reproduction: Reproduction, prov: Provenance,
          started: float) -> Reproduction:
    """Append ``reproduction``'s record to ``home``'s chain and index it; returns it
    with its record id, time and user."""
    ended = time.time()
    body = RecordBody(
        kind=RecordKind.REPRODUCTION, exit_status=0 if reproduction.ok else 1,
        started=iso(started), ended=iso(ended), duration=round(ended - started, 6),
        user=prov.user, host=prov.host, git=record_git(prov), pipeflow_version=__version__,
        reproduction=reproduction.to_json())
    record = home.records.append(body)
    home.index.add(record)
    return from_record(record)
