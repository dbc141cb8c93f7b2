"""The journal: finished stages of the run in progress, and rendering the lock from it.

Each stage that finishes is committed at once as a row in the state database;
``pipeline.lock`` is rendered from lock + journal when the run ends (also on
failure or interrupt), or by the next writer after a crash. The journal is then
emptied, so it never overrides a lock the user changed with git.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from pipeflow.errors import LockfileError
from pipeflow.lock import lockfile
from pipeflow.lock.lockfile import Lock, StageLock
from pipeflow.state import StateDB


def append(state: StateDB, name: str, entry: StageLock) -> None:
    """Commit one finished stage."""
    state.journal_append(name, json.dumps(lockfile.stage_to_dict(entry), ensure_ascii=False))


def entries(state: StateDB) -> dict[str, StageLock]:
    """Journal rows folded by stage (a later row wins)."""
    folded: dict[str, StageLock] = {}
    for name, body in state.journal_entries():
        try:
            folded[name] = lockfile.stage_from_dict(json.loads(body), f"journal row '{name}'")
        except (ValueError, LockfileError):
            continue  # a row that cannot be read is dropped: the stage simply reruns
    return folded


def fold(lock: Lock, rows: dict[str, StageLock], keep: Iterable[str] | None = None) -> Lock:
    """``lock`` with journal rows applied; when ``keep`` is given, only those stages stay."""
    stages = {**lock.stages, **rows}
    if keep is not None:
        wanted = set(keep)
        stages = {n: s for n, s in stages.items() if n in wanted}
    return Lock(stages=dict(sorted(stages.items())), sources=lock.sources)
