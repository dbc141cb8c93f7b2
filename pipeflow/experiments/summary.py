"""What one finished experiment leaves: its summary record, and the logs of its stages."""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeflow.execution.history import output_refs, record_git
from pipeflow.lineage.experiments import Experiment, ExpStatus, StageOutcome
from pipeflow.records.records import OutputRef, RecordBody, RecordKind, RunRecord, iso
from pipeflow.version import __version__

if TYPE_CHECKING:
    from pipeflow.execution.scheduler import Outcome
    from pipeflow.experiments.overrides import Combination
    from pipeflow.git.gitinfo import Provenance
    from pipeflow.lock.lockfile import Lock
    from pipeflow.project.project import Project


@dataclass(frozen=True)
class Planned:
    """One experiment of a sweep, before it runs."""

    id: str
    name: str
    combo: Combination
    index: int
    sweep: str
    replaces: tuple[str, ...] = ()
    """Ids of the live experiments of the same name it supersedes (``--replace``)."""


_UNFINISHED = ("failed", "blocked", "not-started")


def _how(outcome: Outcome) -> dict[str, str]:
    how: dict[str, str] = {}
    for word, names in (("ran", outcome.ran), ("restored", outcome.restored),
                        ("skipped", outcome.skipped), ("blocked", outcome.blocked),
                        ("not-started", outcome.not_started)):
        for name in names:
            how[name] = word
    for failure in outcome.failed:
        how[failure.stage] = "failed"
    return how


def build(planned: Planned, table: Mapping[str, Mapping[str, Any]], lock: Lock,
          outcome: Outcome | None, error: str | None) -> Experiment:
    """The experiment a scratch run ended with: ``lock`` is the scratch's lock after
    the run; ``outcome`` None when the run stopped before scheduling (``error``).
    Only the stages the run looked at count: the lock's other entries are the
    workspace's, not this experiment's."""
    how = _how(outcome) if outcome is not None else {}
    params: dict[str, dict[str, Any]] = {}
    metrics: dict[str, dict[str, Any]] = {}
    stages = []
    outputs: list[OutputRef] = []
    for name, entry in lock.stages.items():
        word = how.get(name)
        if word is None:  # not selected (TARGETS), or the run stopped before it began
            continue
        for file, values in entry.params.items():  # the overrides are laid over below
            params.setdefault(file, {}).update(values)
        if word in _UNFINISHED:  # the lock still has the workspace's entry: not ours
            stages.append(StageOutcome(name, word))
            continue
        for m in entry.metrics:
            metrics[m.path] = dict(m.values)
        stages.append(StageOutcome(name, word, entry.run, entry.fingerprint))
        outputs.extend(o for o in output_refs(entry) if o.cache)
    for file, values in table.items():  # what a stage that never finished would read
        params.setdefault(file, {}).update(values)
    for name, word in how.items():
        if name not in lock.stages:
            stages.append(StageOutcome(name, word))
    failed_stage, tail = None, ""
    if outcome is not None and outcome.failed:
        first = outcome.failed[0]
        failed_stage, error, tail = first.stage, first.message, first.log_tail
    return Experiment(
        id=planned.id, name=planned.name,
        status=ExpStatus.FAILED if error else ExpStatus.DONE,
        overrides=table, params=params, metrics=metrics, stages=tuple(stages),
        outputs=tuple(outputs), failed_stage=failed_stage, error=error, log_tail=tail,
        sweep=planned.sweep, index=planned.index)


def write(home: Project, exp: Experiment, prov: Provenance, started: float) -> Experiment:
    """Append ``exp``'s summary record to the project's chain and index it; returns
    the experiment as read back (with its record, times and provenance)."""
    ended = time.time()
    body = RecordBody(
        kind=RecordKind.EXPERIMENT, exit_status=0 if exp.ok else 1, started=iso(started),
        ended=iso(ended), duration=round(ended - started, 6), user=prov.user,
        host=prov.host, git=record_git(prov), pipeflow_version=__version__,
        error=exp.error or None, experiment=exp.summary())
    record = _append(home, body)
    return Experiment.from_record(record)


def write_removal(home: Project, exp_id: str, name: str, prov: Provenance) -> RunRecord:
    """Record that experiment ``exp_id`` (``name``) is removed (a record of its own:
    removals travel too)."""
    now = iso(time.time())
    body = RecordBody(kind=RecordKind.EXPERIMENT, started=now, ended=now, user=prov.user,
                      host=prov.host, git=record_git(prov), pipeflow_version=__version__,
                      experiment={"id": exp_id, "name": name,
                                  "status": ExpStatus.REMOVED.value})
    return _append(home, body)


def _append(home: Project, body: RecordBody) -> RunRecord:
    record = home.records.append(body)
    home.index.add(record)
    return record


def keep_logs(scratch_logs: Path, home: Project, name: str) -> Path | None:
    """Copy an experiment's stage logs to ``.pipeflow/logs/exp/<name>/`` (the scratch
    folder goes); returns that folder, or None when there were none."""
    if not scratch_logs.is_dir():
        return None
    target = home.logs_dir / "exp" / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True)
    for log in scratch_logs.glob("*.log"):
        shutil.copyfile(log, target / log.name)
    return target
