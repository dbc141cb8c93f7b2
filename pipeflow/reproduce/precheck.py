"""Before anything runs: does the checkout hold what each recorded run read?

The command, the code files (hashed as the planner hashes them: Python sources in
normalized form) and the inputs git tracks are worked out for each stage in the
workspace — upstream outputs, not made yet, stand in with their recorded hashes — and
compared with the stage's run record. :mod:`.run` uses it to choose among the commits
that may hold the version's code (the one whose lock names it, the one its run was
made at): the first that holds what every run read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pipeflow.errors import PipeflowError

if TYPE_CHECKING:
    from pipeflow.lock.lockfile import FileEntry
    from pipeflow.planning.graph import Graph
    from pipeflow.project.project import Project
    from pipeflow.records.records import RecordComponents
    from pipeflow.reproduce.plan import ReproPlan


def mismatches(project: Project, graph: Graph, found: ReproPlan) -> dict[str, list[str]]:
    """Stage -> how the checkout differs from what its run read (empty: it holds it)."""
    from pipeflow.lock import lockfile
    from pipeflow.planning.plan import Planner
    from pipeflow.project.project import LOCK_FILE

    planner = Planner(project, graph, lockfile.read(project.lock_path, LOCK_FILE))
    out: dict[str, list[str]] = {}
    for step in found.stages:
        stage = graph.pipeline.stages.get(step.stage)
        recorded = step.record.body.components if step.record is not None else None
        if step.blocked or step.frozen or stage is None or recorded is None:
            continue
        substitute = _standing_in(project, recorded)
        try:
            comps = planner.components(stage, substitute)
        except PipeflowError as exc:
            out[step.stage] = [f"its components cannot be read ({exc.message})"]
            continue
        found_here = differences(recorded, comps.cmd, {c.path: c.hash for c in comps.code},
                                 {d.path: d.hash for d in comps.deps
                                  if d.path not in substitute})
        if found_here:
            out[step.stage] = found_here
    return out


def _standing_in(project: Project, recorded: RecordComponents) -> dict[str, FileEntry]:
    """Recorded deps that are not in the workspace yet (upstream outputs): their
    recorded entries stand in for them."""
    from pipeflow.lock.lockfile import FileEntry

    return {d.path: FileEntry(d.path, d.hash, d.size or 0, d.isdir, d.nfiles)
            for d in recorded.deps if not os.path.lexists(project.root / d.path)}


def differences(recorded: RecordComponents, cmd: tuple[str, ...],
                code: Mapping[str, str], deps: Mapping[str, str]) -> list[str]:
    """How a command, code hashes and (tracked) input hashes differ from a record's."""
    found: list[str] = []
    if tuple(recorded.cmd) != tuple(cmd):
        found.append(f"the command differs (recorded {_cmd(recorded.cmd)}, "
                     f"at the commit {_cmd(cmd)})")
    was = {c.path: c.hash for c in recorded.code}
    for path in sorted(set(was) | set(code)):
        if was.get(path) != code.get(path):
            found.append(_file("code", path, was.get(path), code.get(path)))
    before = {d.path: d.hash for d in recorded.deps}
    for path in sorted(deps):
        if path in before and before[path] != deps[path]:
            found.append(_file("input", path, before[path], deps[path]))
    return found


def _file(kind: str, path: str, was: str | None, now: str | None) -> str:
    if now is None:
        return f"{kind} {path} is not there"
    if was is None:
        return f"{kind} {path} was not read by the recorded run"
    return f"{kind} {path} is not the one the run read ({was[:8]} -> {now[:8]})"


def _cmd(cmd: tuple[str, ...] | list[str]) -> str:
    text = " && ".join(cmd)
    return f"`{text if len(text) <= 60 else text[:57] + '...'}`"
