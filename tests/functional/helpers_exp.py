"""Experiments recorded for real (an ``experiment`` record appended to this clone's
chain and indexed, as ``exp run`` leaves one) but with the shapes ``exp run`` on a
small pipeline does not easily make (values with quotes or newlines, other params
files, metrics keys in two files), for the tests of ``exp show``/``diff``."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from pipeflow.lineage.experiments import Experiment, ExpStatus
from pipeflow.records.runrecord import RecordBody, RecordGit, RecordKind, iso
from tests.conftest import Project

CHAIN_PARAMS = {"prep.n": 3, "train.epochs": 2, "train.lr": 0.05, "eval.k": 1}
"""The keys the stages of ``helpers.chain`` read, as its params.yaml holds them."""
CHAIN_METRICS = {"lines": 4, "k": 1}
"""What ``helpers.chain``'s evaluate writes to metrics.json with those params."""


def record_experiment(p: Project, name: str, *, overrides: dict[str, Any] | None = None,
                      metrics: dict[str, Any] | None = None, failed_stage: str | None = None,
                      ended: str | None = None,
                      extra_params: dict[str, dict[str, Any]] | None = None,
                      extra_metrics: dict[str, dict[str, Any]] | None = None) -> str:
    """Append an experiment of ``helpers.chain`` with ``overrides`` (params.yaml keys),
    with ``metrics`` for metrics.json (none when it failed); its id."""
    ended = ended or iso(time.time())  # after the experiments run before it
    overrides = dict(overrides or {})
    params: dict[str, dict[str, Any]] = {"params.yaml": {**CHAIN_PARAMS, **overrides}}
    params.update(extra_params or {})
    found = {} if failed_stage else {"metrics.json": {**CHAIN_METRICS, **(metrics or {})}}
    found.update(extra_metrics or {})
    exp_id = hashlib.sha256(f"{name} {ended}".encode()).hexdigest()[:12]
    exp = Experiment(id=exp_id, name=name,
                     status=ExpStatus.FAILED if failed_stage else ExpStatus.DONE,
                     overrides={"params.yaml": overrides} if overrides else {},
                     params=params, metrics=found, failed_stage=failed_stage,
                     log_tail="Traceback: boom\n" if failed_stage else "")
    head = p.git("rev-parse", "HEAD").strip()
    from pipeflow.project.project import Project as Repo

    with Repo(p.root) as repo:
        record = repo.records.append(RecordBody(
            kind=RecordKind.EXPERIMENT, started=ended, ended=ended, duration=1.0,
            user="test@example.com", host="box", git=RecordGit(head, ()),
            error=f"stage '{failed_stage}' failed" if failed_stage else None,
            experiment=exp.summary()))
        repo.index.add(record)
    return exp_id
