"""What reproducing one output version takes, read from its lineage before anything
runs: the recorded runs (one per stage, sources up), the git commit to check out, the
inputs to place from the cache, the params values to set, and what stops a stage from
being reproduced at all (``cannot-reproduce``, with the reason)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeflow.errors import StorageError, UsageError
from pipeflow.lineage.model import Lineage, LineageArtifact, LineageRun

if TYPE_CHECKING:
    from pipeflow.project.project import Project
    from pipeflow.records.records import RunRecord


MAX_LOCK_COMMITS = 3
"""Commits naming the version tried at most (the first on this branch's line, then
others: a branch merged, a squash) before the run's own."""
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
"""A commit id as records keep them (SHA-1 or SHA-256): anything else (``HEAD~1``, an
option) in a record from elsewhere is never given to git."""


@dataclass(frozen=True)
class Placed:
    """An input the reproduction takes from the cache: source data (``pipeflow add``)
    or content no run recorded, at the hash the recorded run read."""

    path: str
    hash: str
    isdir: bool
    size: int | None = None
    required: bool = True
    """False for content no record made (git may hold it at the commit checked out:
    placed from the cache when there, else left to the checkout, whose hash the
    judging compares)."""


@dataclass(frozen=True)
class StagePlan:
    """One recorded run to reproduce."""

    stage: str
    run: LineageRun
    record: RunRecord | None
    """The run's record (None when it cannot be read: it cannot be reproduced)."""
    blocked: str | None = None
    """Why it cannot be reproduced, found before running (None: it can be tried)."""
    dirty: tuple[str, ...] = ()
    """Code files its run read with uncommitted changes: the commit checked out may
    not hold what it ran (judged after the run, by the code's hashes)."""
    blocked_by: str | None = None
    """The upstream stage whose block stops this one."""
    frozen: bool = False
    """Declared ``frozen`` at the commit: its recorded outputs are placed from the
    cache, never rebuilt."""


@dataclass
class ReproPlan:
    """Everything :func:`plan` found."""

    path: str
    hash: str
    version: str | None
    commits: tuple[str, ...]
    """The commits to check out, best first (:func:`_commits`); the first this clone
    has is taken (none: the runs were made outside git, before any commit named the
    version)."""
    stages: list[StagePlan] = field(default_factory=list)
    placed: list[Placed] = field(default_factory=list)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """params file -> dotted key -> the recorded value."""
    produced_by: dict[str, str] = field(default_factory=dict)
    """Output path -> the stage of the plan that writes it."""

    prefix: str = ""
    """The project's folder within its git repository (``""`` at the top)."""
    present: tuple[str, ...] = ()
    """Those of ``commits`` this clone has, in the same order."""
    commit: str | None = None
    """The one of ``present`` checked out (the first, until it is passed over)."""
    here_only: set[str] = field(default_factory=set)
    """Stages stopped by what this clone alone lacks (a commit, an input its cache and
    remote lack), and those downstream of them: a verdict made only of these says
    nothing of the version and is not recorded."""

    @property
    def runnable(self) -> list[str]:
        return [s.stage for s in self.stages if s.blocked is None and not s.frozen]


def plan(home: Project, lineage: Lineage) -> ReproPlan:
    """The plan for the version ``lineage`` traced. UsageError when there is nothing
    to reproduce: source data, or content no run record made."""
    root = lineage.root
    label = f"{root.path}@{root.version or root.hash[:8]}"
    if root.status == "source":
        raise UsageError(f"{label} is source data, recorded by `pipeflow add`: no stage made "
                         "it, so there is nothing to rebuild",
                         hint="reproduce an output a stage writes (one that reads it)")
    producer = lineage.producer_of(root)
    if root.status != "output" or producer is None or producer.kind == "add":
        raise UsageError(f"no run record made {label}: it was made before run records "
                         "existed, or outside pipeflow",
                         hint=f"`pipeflow lineage {root.path}` shows what is known of it")
    runs = _runs_sources_up(lineage)
    if not runs:
        lost = "; ".join(lineage.problems[:3]) or "none of its runs' records is here"
        raise UsageError(f"{label} cannot be rebuilt: no readable run record of the stages "
                         f"that made it is in this clone ({lost})",
                         hint="`pipeflow fetch` brings the records a colleague pushed; "
                              "`pipeflow verify` says whether records are damaged")
    commits, locked = _commits(home, runs, root)
    prefix = _prefix(home)
    present = tuple(c for c in commits if _has_commit(home, c))
    found = ReproPlan(root.path, root.hash, root.version, commits, prefix=prefix,
                      present=present, commit=next(iter(present), None))
    for run in runs:
        for out in run.outputs:
            found.produced_by.setdefault(out.path, run.stage)
    seen: set[str] = set()
    for run in runs:
        record, why = _record(home, run)
        dirty = _dirty(run, prefix)
        if dirty and locked is None:
            # no commit this clone has names the version: one it lacks may hold what
            # the run read (a colleague's, not pushed); a verdict here is not the version's
            found.here_only.add(run.stage)
        for aid in run.inputs:
            placed = _placed(lineage.artifacts[aid])
            if placed is not None and placed.path not in seen:
                seen.add(placed.path)
                found.placed.append(placed)
        for file, values in run.params.items():
            found.params.setdefault(file, {}).update(values)
        found.stages.append(StagePlan(run.stage, run, record, why, dirty))
    return found


def _runs_sources_up(lineage: Lineage) -> list[LineageRun]:
    """The lineage's runs of stages (``add`` records aside), upstream first."""
    by_stage = lineage.runs_by_stage()
    return list(reversed(list(by_stage.values())))


def _commits(home: Project, runs: list[LineageRun], root: LineageArtifact
             ) -> tuple[tuple[str, ...], str | None]:
    """Where the code, spec and params the runs read are, best first: the first commit
    whose pipeline.lock names the version (the everyday "edit, repro, commit" commits
    them with the outputs they made), then the commit the latest run was made at (the
    only one a version never committed has). The runs' code hashes are checked against
    the checkout after the run (:mod:`.verdicts`)."""
    from pipeflow.lineage.labels import version_labels

    dated = [r for r in runs if r.git_commit and _COMMIT.fullmatch(r.git_commit)]
    latest = max(dated, key=lambda r: r.started or "").git_commit if dated else None
    naming = [c for c in version_labels(home.root, home.index).commits_naming(
        root.path, root.hash) if _COMMIT.fullmatch(c)][:MAX_LOCK_COMMITS]
    locked = naming[0] if naming else None
    return tuple(dict.fromkeys(c for c in (*naming, latest) if c)), locked


def _record(home: Project, run: LineageRun) -> tuple[RunRecord | None, str | None]:
    if run.problem:
        return None, f"its run record is damaged ({run.problem})"
    try:
        return home.index.record(run.id), None
    except StorageError as exc:
        return None, f"its run record cannot be read ({exc.message})"


def _has_commit(home: Project, commit: str) -> bool:
    from pipeflow.experiments.scratch import git_output

    return git_output(home.root, "cat-file", "-e", f"{commit}^{{commit}}") is not None


def _prefix(home: Project) -> str:
    """The project's folder within its git repository (``""`` at the top)."""
    from pipeflow.experiments.scratch import git_output

    return (git_output(home.root, "rev-parse", "--show-prefix") or "").strip()


def _dirty(run: LineageRun, prefix: str) -> tuple[str, ...]:
    """What the run read with uncommitted changes: code files, inputs git tracks, the
    spec (the record lists modified paths from the top of the repository)."""
    dirty = {p[len(prefix):] for p in run.dirty_paths if p.startswith(prefix)}
    read = {c.path for c in run.code} | {a.rsplit("@", 1)[0] for a in run.inputs}
    return tuple(sorted((read | {"pipeline.yaml"}) & dirty))


def dirty_reason(paths: tuple[str, ...], commit: str | None = None) -> str:
    where = f"commit {commit[:12]}" if commit else "any commit"
    return (f"its run was recorded with uncommitted changes to {', '.join(paths)}, "
            f"and {where} does not hold the code it ran")



def _placed(artifact: LineageArtifact) -> Placed | None:
    """What of an input the cache must supply (None: git or an upstream stage does)."""
    if artifact.status == "source":
        if artifact.within is not None:
            return Placed(artifact.within.path, artifact.within.hash, True)
        return Placed(artifact.path, artifact.hash, artifact.isdir, artifact.size)
    if artifact.status == "untracked":
        return Placed(artifact.path, artifact.hash, artifact.isdir, artifact.size, False)
    return None

