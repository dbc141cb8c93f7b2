"""``exp show`` and ``exp diff``: the experiments the records hold, against the workspace.

The baseline is the workspace as the other commands read it, not a second reader:
its params are what ``params diff`` calls the values now (each stage's declared keys
in the params files), its metrics what ``metrics show`` reads from pipeline.lock, its
commit git's HEAD.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeflow.experiments.table import WORKSPACE, ExpDiff, ExpTable, build, diff
from pipeflow.lineage.experiments import Experiment, ExpStatus, experiments, find

if TYPE_CHECKING:
    from pipeflow.project.project import Project


def workspace(repo: Project, pool: list[Experiment] | None = None) -> Experiment:
    """The workspace as an experiment named ``workspace`` (id ``""``). A key of
    ``pool``'s experiments that no stage declares (read through ``${...}`` or from a
    ``vars:`` file) is read from its file too, so that the row says its value now."""
    from pipeflow.ops.metrics import show as metrics_now
    from pipeflow.ops.params_diff import workspace_params
    from pipeflow.project.provenance import provenance

    params: dict[str, dict[str, Any]] = {}
    for per_file in workspace_params(repo).values():
        for file, values in per_file.items():
            params.setdefault(file, {}).update(values)
    _undeclared(repo, params, pool or [])
    metrics = {m.path: dict(m.values) for m in metrics_now(repo)}
    where = provenance(repo)
    return Experiment(id="", name=WORKSPACE, status=ExpStatus.DONE, params=params,
                      metrics=metrics, commit=where.commit, dirty=where.dirty_paths,
                      user=where.user, host=where.host)


def _undeclared(repo: Project, params: dict[str, dict[str, Any]],
                pool: list[Experiment]) -> None:
    """Add to ``params`` the current value of each key ``pool`` has and it lacks (a
    file or key that is gone stays absent)."""
    from pipeflow import params as params_files
    from pipeflow.errors import PipeflowError

    wanted: dict[str, set[str]] = {}
    for exp in pool:
        for table in (exp.params, exp.overrides):
            for file, values in table.items():
                missing = {k for k in values if k not in params.get(file, {})}
                wanted.setdefault(file, set()).update(missing)
    for file, keys in wanted.items():
        if not keys:
            continue
        try:
            data = params_files.read_params(repo.root / file, name=file, root=repo.root)
        except (PipeflowError, OSError):
            continue
        for key in keys:
            try:
                params.setdefault(file, {})[key] = params_files.lookup(data, key)
            except params_files.MissingParamError:
                continue


def show(repo: Project, *, sort: str | None = None, every: bool = False,
         failed: bool = True) -> ExpTable:
    """The ``exp show`` table (:func:`pipeflow.experiments.table.build`)."""
    pool = experiments(repo)
    return build(workspace(repo, pool), pool, sort=sort, every=every, failed=failed)


def compare(repo: Project, a: str, b: str | None = None) -> ExpDiff:
    """Experiment ``a`` against ``b`` (default: the workspace). An unknown name is
    :func:`~pipeflow.lineage.experiments.find`'s UsageError; ``workspace`` names the
    workspace unless an experiment is called so."""
    pool = experiments(repo)

    def one(name: str) -> Experiment:
        if name == WORKSPACE and all(e.name != WORKSPACE for e in pool):
            return workspace(repo, pool)
        return find(repo, name, pool)

    first = one(a)
    return diff(first, workspace(repo) if b is None else one(b))
