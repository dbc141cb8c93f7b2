"""The Python API: ``pipeflow.Repo(path)`` and ``pipeflow.open(path, version=...)``.

A thin front over :mod:`pipeflow.ops`, like the CLI: every method opens the project,
calls one verb and returns plain frozen dataclasses — nothing is printed. Errors are
the same ``pipeflow.errors.PipeflowError`` family the CLI reports.

    >>> import pipeflow
    >>> repo = pipeflow.Repo("my-project")
    >>> result = repo.repro()              # ReproResult(ok=True, ran=(...), ...)
    >>> [v.label for v in repo.versions("models/model.pkl")]
    ['v1', 'v2', 'v3']
    >>> tree = repo.lineage("models/model.pkl", "v2")   # a Lineage
    >>> with pipeflow.open("my-project/models/model.pkl", version="v1") as f:
    ...     data = f.read()

Paths given to ``Repo`` methods are relative to the project root (or absolute).

The library never touches the process's signal handlers: the host program owns its
signals. To stop a run (from a signal handler, a timeout, another thread), pass a
:class:`CancelToken` and call its ``cancel()``: only that run's stage processes are
stopped, and several runs (of different projects) may go on in threads of one process.

    >>> token = pipeflow.CancelToken()
    >>> worker = threading.Thread(target=repo.repro, kwargs={"cancel": token})
    >>> worker.start(); ...; token.cancel()   # the result says cancelled=True
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pipeflow.errors import StorageError, UsageError
from pipeflow.execution.cancel import CancelToken

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pipeflow.experiments.apply import Applied, Removed
    from pipeflow.experiments.table import ExpDiff, ExpRow
    from pipeflow.lineage.experiments import Experiment
    from pipeflow.lineage.graph import Lineage
    from pipeflow.lineage.nondeterminism import Nondeterminism
    from pipeflow.lineage.reproductions import Reproduction
    from pipeflow.lineage.versions import Version
    from pipeflow.project.project import Project
    from pipeflow.registry.aliases import AliasMove
    from pipeflow.registry.aliaslist import AliasReport
    from pipeflow.registry.catalog import Model
    from pipeflow.registry.notes import Noted

__all__ = ["CancelToken", "ExpRunResult", "Repo", "ReproResult", "StageFailure",
           "StageStatus", "Status", "open"]
"""What this module defines for the public API; :mod:`pipeflow` re-exports it, with the
lineage and version types the methods return and the errors they raise."""


@dataclass(frozen=True)
class StageFailure:
    """A stage that failed during ``repro``."""

    stage: str
    message: str
    log_tail: str


@dataclass(frozen=True)
class ReproResult:
    """What ``Repo.repro`` did to each stage."""

    ok: bool
    ran: tuple[str, ...]
    restored: tuple[str, ...]
    """Stages whose outputs came back from the cache instead of running."""
    skipped: tuple[str, ...]
    failed: tuple[StageFailure, ...]
    blocked: tuple[str, ...]
    """Not run because an upstream stage failed."""
    not_started: tuple[str, ...]
    lock_changed: bool
    cancelled: bool = False
    """Stopped through its CancelToken: the stages that finished are in the lock."""
    planned: tuple[StageStatus, ...] = ()
    """With ``dry``: each selected stage's state and why (nothing ran)."""


@dataclass(frozen=True)
class ExpRunResult:
    """What ``Repo.exp_run`` did: each experiment that ended (done or failed), in the
    order they ended."""

    ok: bool
    experiments: tuple[Experiment, ...]
    cancelled: bool = False
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageStatus:
    """One stage's state (``changed``, ``pending``, ``missing-output``, ``frozen``,
    ``running`` or ``up-to-date``) and the reasons, as ``pipeflow status`` says them."""

    name: str
    status: str
    """One of the values of :class:`StageWord` (a plain ``str``)."""
    reasons: tuple[str, ...]
    nondeterministic: Nondeterminism | None = None
    """Set when the run that made its current outputs wrote other outputs than an
    earlier run with the same fingerprint (``status`` only; None from a dry ``repro``)."""


@dataclass(frozen=True)
class Status:
    up_to_date: bool
    stages: tuple[StageStatus, ...]
    warnings: tuple[str, ...]


class _Project:
    """A pipeflow project, found at or above ``path``: what every verb opens."""

    def __init__(self, path: str | os.PathLike[str] = ".") -> None:
        from pipeflow.project.project import find_root

        self.root: Path = find_root(Path(path))

    def __repr__(self) -> str:
        return f"pipeflow.Repo({str(self.root)!r})"

    def _open(self) -> Project:
        from pipeflow.project.project import Project

        return Project(self.root)

    def _abs(self, path: str | os.PathLike[str]) -> str:
        return str(self.root / Path(path))


class _Registry(_Project):
    """The registry's verbs: models and aliases (docs/registry.md)."""

    def _model_path(self, repo: Project, path: str) -> str:
        """The absolute path of ``path``: a declared model's output, or a path."""
        from pipeflow.registry.models import declared

        model = declared(repo).get(path) if not (self.root / path).exists() else None
        return str(self.root / model.path) if model is not None else self._abs(path)

    def _target(self, repo: Project, text: str) -> str:
        """``MODEL[@V]`` as it is; ``PATH[@V]`` made absolute (paths are root-relative)."""
        from pipeflow.registry.models import declared

        head, sep, version = text.rpartition("@")
        name = head if sep else text
        if name in declared(repo) and not (self.root / name).exists():
            return text
        return self._abs(name) + (sep + version if sep else "")

    def models(self) -> list[Model]:
        """Every declared model (``pipeflow models``): a list of
        :class:`~pipeflow.registry.catalog.Model` (name, path, versions, latest,
        current, aliases -> :class:`~pipeflow.registry.catalog.ModelVersion`)."""
        from pipeflow.registry.catalog import catalog

        with self._open() as repo:
            return catalog(repo).models

    def promote(self, target: str, alias: str, *, note: str | None = None,
                wait: float = 0.0) -> AliasMove:
        """Point ``alias`` at ``MODEL_OR_PATH@VERSION`` (``pipeflow promote``; signed
        with this user's key if there is one). A protected alias without a trusted
        key, an unknown version or model, or a bad alias name raise UsageError with
        nothing written."""
        from pipeflow.registry.aliases import promote

        with self._open() as repo:
            return promote(repo, self._target(repo, target), alias, note=note, wait=wait)

    def rollback(self, alias: str, model: str | None = None, *, note: str | None = None,
                 wait: float = 0.0) -> AliasMove:
        """Move ``alias`` back to the version it named before (``pipeflow rollback``)."""
        from pipeflow.registry.aliases import rollback

        with self._open() as repo:
            owner = self._target(repo, model) if model is not None else None
            return rollback(repo, alias, owner, note=note, wait=wait)

    def aliases(self, model: str | None = None) -> AliasReport:
        """Where each alias points (``.aliases``) and every move (``.history``), of one
        model or path or of all (``pipeflow aliases --history``)."""
        from pipeflow.registry.aliaslist import aliases

        with self._open() as repo:
            return aliases(repo, self._target(repo, model) if model is not None else None)

    def note(self, target: str, text: str, *, wait: float = 0.0) -> Noted:
        """Add a note to ``MODEL_OR_PATH@VERSION`` (``pipeflow note``)."""
        from pipeflow.registry.notes import note

        with self._open() as repo:
            return note(repo, self._target(repo, target), text, wait=wait)


class Repo(_Registry):
    """A pipeflow project, found at or above ``path``."""

    def repro(
        self,
        *targets: str,
        force: bool = False,
        dry: bool = False,
        jobs: int = 1,
        keep_going: bool = False,
        single_item: bool = False,
        downstream: bool = False,
        pull: bool = False,
        remote: str | None = None,
        executor: str = "local",
        scheduler: str | None = None,
        executor_options: Mapping[str, str] | None = None,
        wait: float = 0.0,
        cancel: CancelToken | None = None,
    ) -> ReproResult:
        """Bring outputs up to date (``pipeflow repro``, with the same options and the
        same UsageErrors); stage output goes only to ``.pipeflow/logs/``. A failed stage
        is reported in the result (``ok`` False), not raised; a spec or usage error is
        raised. ``executor``: a registered engine (``local``, ``dask`` with
        ``scheduler``); ``executor_options``: an engine's other options. ``dry``: run
        nothing, the result's ``planned`` says what would run and why.
        ``cancel.cancel()`` (from any thread) stops this run: its stages get SIGTERM, no
        new one starts, the finished ones are kept, and the result says ``cancelled``.
        No signal handler is touched."""
        from pipeflow.ops.repro import ReproOptions
        from pipeflow.ops.repro import repro as run_repro

        engine = dict(executor_options or {})
        if scheduler is not None:
            engine["scheduler"] = scheduler
        options = ReproOptions(
            targets=targets, force=force, dry=dry, jobs=jobs, keep_going=keep_going,
            single_item=single_item, downstream=downstream, wait=wait, pull=pull,
            remote=remote, executor=executor, executor_options=engine)
        with self._open() as repo:
            report = run_repro(repo, options, cancel=cancel)
        o = report.outcome
        return ReproResult(
            ok=o.ok, ran=tuple(o.ran), restored=tuple(o.restored), skipped=tuple(o.skipped),
            failed=tuple(StageFailure(e.stage, e.message, e.log_tail) for e in o.failed),
            blocked=tuple(o.blocked), not_started=tuple(o.not_started),
            lock_changed=report.lock_changed, cancelled=o.cancelled,
            planned=tuple(StageStatus(s.name, str(s.word), tuple(c.message for c in s.reasons))
                          for s in report.plan),
        )

    def status(self, *targets: str) -> Status:
        """Every stage's state and why (``pipeflow status``)."""
        from pipeflow.ops.status import status as run_status

        with self._open() as repo:
            report = run_status(repo, list(targets) or None)
        return Status(
            up_to_date=report.up_to_date,
            stages=tuple(StageStatus(s.name, str(s.word), tuple(c.message for c in s.reasons),
                                     report.nondeterministic.get(s.name))
                         for s in report.states),
            warnings=tuple(report.warnings),
        )

    def lineage(self, path: str, version: str | None = None) -> Lineage:
        """Where ``path`` (or a declared model; at ``version``: vN, hash prefix or
        alias; default the version the lock names) came from: a
        :class:`pipeflow.Lineage` (its artifacts and runs are
        :class:`pipeflow.LineageArtifact` and :class:`pipeflow.LineageRun`)."""
        from pipeflow.ops.lineage import lineage as run_lineage

        with self._open() as repo:
            return run_lineage(repo, self._model_path(repo, path), version)

    def versions(self, path: str) -> list[Version]:
        """Every version of ``path`` (or of a declared model), oldest first (empty when
        it has none): a list of :class:`pipeflow.Version`."""
        from pipeflow.ops.lineage import versions_of

        with self._open() as repo:
            rel = os.path.relpath(self._model_path(repo, path), self.root)
            return versions_of(repo, rel.replace(os.sep, "/"))

    def reproduce(self, path: str, version: str | None = None, *, pull: bool = False,
                  remote: str | None = None, strict_env: bool = False,
                  executor: str = "local", executor_options: Mapping[str, str] | None = None,
                  jobs: int = 1, wait: float = 0.0,
                  cancel: CancelToken | None = None) -> Reproduction:
        """Rebuild ``path`` (or a declared model) at ``version`` (vN, hash prefix or
        alias; default the version the lock names) from scratch, as ``pipeflow
        reproduce`` does, and record the verdict: a :class:`pipeflow.Reproduction`
        whose ``stages`` are :class:`pipeflow.StageVerdict` values (``verdict`` a
        :class:`pipeflow.Verdict`; ``ok`` when every stage reproduced)."""
        from pipeflow.reproduce.run import ReproduceOptions
        from pipeflow.reproduce.run import reproduce as run_reproduce

        options = ReproduceOptions(pull=pull, remote=remote, strict_env=strict_env,
                                   executor=executor, jobs=jobs, wait=wait,
                                   executor_options=dict(executor_options or {}))
        with self._open() as repo:
            target = self._target(repo, path if version is None else f"{path}@{version}")
            return run_reproduce(repo, target, options, cancel=cancel)

    def exp_run(
        self,
        *targets: str,
        set: Mapping[str, Any] | None = None,
        grid: Mapping[str, Sequence[Any]] | None = None,
        sweep: str | os.PathLike[str] | None = None,
        name: str | None = None,
        jobs: int = 1,
        replace: bool = False,
        executor: str = "local",
        scheduler: str | None = None,
        executor_options: Mapping[str, str] | None = None,
        wait: float = 0.0,
        cancel: CancelToken | None = None,
    ) -> ExpRunResult:
        """Run experiments (``pipeflow exp run``), touching none of the project's files.

        ``set``: single values (``{"train.C": 10, "other.yaml:key": [1, 2]}``: a list is
        one list value); ``grid``: values to try (``{"train.C": [0.1, 1, 10]}``, several
        keys make a grid); ``sweep``: a sweep file. A bad key or value is a UsageError
        before anything runs; a failed experiment is in the result (``ok`` False).
        ``jobs`` experiments run at once; ``cancel`` stops them all."""
        from pipeflow.experiments.run import ExpOptions, exp_run, grid_texts, set_texts

        engine = dict(executor_options or {})
        if scheduler is not None:
            engine["scheduler"] = scheduler
        options = ExpOptions(
            targets=targets, sets=set_texts(set or {}) + grid_texts(grid or {}),
            sweep=Path(sweep) if sweep is not None else None, name=name, jobs=jobs,
            replace=replace, executor=executor, executor_options=engine, wait=wait)
        with self._open() as repo:
            report = exp_run(repo, options, cancel=cancel)
        return ExpRunResult(ok=report.ok, experiments=tuple(report.experiments),
                            cancelled=report.cancelled, warnings=tuple(report.warnings))

    # --- experiments: compare (``exp show`` / ``exp diff``) -------------------------

    def experiments(self, sort: str | None = None, *, failed: bool = True) -> list[ExpRow]:
        """The rows of ``pipeflow exp show --all``: the workspace first (``baseline``
        True), then each experiment (oldest first, or by ``sort``: ``metrics.NAME``,
        ``params.KEY``, ``created``, ``name``, ``-`` for descending), each with every
        params key and metric it has (``row.params["train.C"]``,
        ``row.metrics["accuracy"]``, ``row.deltas`` to the workspace)."""
        from pipeflow.experiments.compare import show

        with self._open() as repo:
            return list(show(repo, sort=sort, every=True, failed=failed).rows)

    def exp_diff(self, a: str, b: str | None = None) -> ExpDiff:
        """Experiment ``a`` against ``b`` (default: the workspace), as ``pipeflow exp
        diff``: ``.entries`` (every key of either) and ``.changed``, each with
        ``a``, ``b`` and ``delta``. An unknown name raises UsageError."""
        from pipeflow.experiments.compare import compare

        with self._open() as repo:
            return compare(repo, a, b)
    # experiments: apply and remove -----------------------------------------------
    def exp_apply(self, name: str, force: bool = False, wait: float = 0.0,
                  cancel: CancelToken | None = None) -> Applied:
        """Make experiment ``name``'s params and outputs the workspace's (``pipeflow
        exp apply``): an :class:`~pipeflow.experiments.apply.Applied` saying which
        values were written and which stages were restored or had to run. An unknown
        or failed experiment, or params files with uncommitted changes without
        ``force``, raise UsageError with nothing changed; a failed stage raises
        StageFailed after undoing the apply."""
        from pipeflow.experiments.apply import exp_apply

        with self._open() as repo:
            return exp_apply(repo, name, force=force, wait=wait, cancel=cancel)

    def exp_remove(self, names: Sequence[str] = (), all_failed: bool = False,
                   wait: float = 0.0) -> Removed:
        """Remove experiments (``pipeflow exp remove``): a
        :class:`~pipeflow.experiments.apply.Removed` listing them. An unknown name
        raises UsageError before anything is removed."""
        from pipeflow.experiments.apply import exp_remove

        if isinstance(names, str):
            names = (names,)
        with self._open() as repo:
            return exp_remove(repo, list(names), all_failed=all_failed, wait=wait)


def open(  # shadows the builtin on purpose: pipeflow.open reads like it
    path: str | os.PathLike[str],
    version: str | None = None,
    mode: str = "rb",
    *,
    encoding: str | None = None,
    remote: str | None = None,
    repo: str | os.PathLike[str] | None = None,
    remote_name: str | None = None,
    keys: str | Sequence[str] = (),
    require_signature: bool = False,
) -> IO[Any]:
    """Read output (or source) ``path`` as it was at ``version`` (vN, hash prefix or
    tag; default the version pipeline.lock names), from the cache.

    The bytes are checked against the content hash before anything is returned; a
    corrupt object raises StorageError (and is moved aside). ``mode`` is ``"rb"``
    (a binary file object) or ``"r"``/``"rt"`` (text, ``encoding`` default UTF-8).
    A file inside an output folder takes the folder's version.

    With ``remote=URL`` (a remote's URL: the registry snapshot ``push`` publishes
    there) or ``repo=GIT_URL_OR_PATH`` (a shallow clone, removed at once), ``path`` is
    a declared model (or its path) and ``version`` defaults to ``"production"``: no
    clone or project is needed (a serving process). ``remote_name`` picks the git
    project's remote; ``keys`` (``[NAME=]ed25519:...``, one or a list) and ``require_signature``
    refuse a snapshot (or alias move) not signed by one of them (docs/registry.md, "Serving").
    """
    if mode not in ("rb", "r", "rt"):
        raise UsageError(f"pipeflow.open reads only: mode must be 'rb', 'r' or 'rt' "
                         f"(got {mode!r})")
    if remote is not None or repo is not None:
        handle = _served(str(path), version or "production", remote, repo, remote_name,
                         keys, require_signature)
        return handle if mode == "rb" else io.TextIOWrapper(handle,
                                                             encoding=encoding or "utf-8")
    from pipeflow.ops.lineage import content_at
    from pipeflow.project.project import Project, find_root

    absolute = os.path.abspath(path)
    with Project(find_root(Path(absolute).parent)) as project:
        content = content_at(project, absolute, version)
        if content.isdir:
            raise UsageError(f"'{path}' is a folder", hint="open a file inside it")
        handle = _verified(project, content.oid, str(path))
    if mode == "rb":
        return handle
    return io.TextIOWrapper(handle, encoding=encoding or "utf-8")


def _served(model: str, version: str, remote: str | None,
            repo: str | os.PathLike[str] | None, remote_name: str | None,
            keys: str | Sequence[str], require_signature: bool) -> io.BufferedReader:
    """``pipeflow.open`` from a registry: a remote's snapshot or a git project."""
    from pipeflow.registry.serve import Trust, open_model

    if remote is not None and repo is not None:
        raise UsageError("pipeflow.open: give remote= or repo=, not both")
    source = remote if remote is not None else os.fspath(repo or "")
    if isinstance(keys, str):  # one key: its characters are not keys
        keys = (keys,)
    return open_model(source, f"{model}@{version}", remote_name=remote_name,
                      trust=Trust.of(keys, require_signature))


def _verified(repo: Project, oid: str, shown: str) -> io.BufferedReader:
    """The object's file, open and rewound, after hashing the very bytes it serves."""
    import xxhash

    from pipeflow.lineage.versions import FETCH_ONE_HINT

    store = repo.store
    try:
        # Returned open to the caller, who closes it; `io.open` since `open` is ours.
        handle = io.open(store.path_of(oid), "rb")  # noqa: SIM115, UP020
    except FileNotFoundError as exc:
        raise StorageError(f"the content of {shown} ({oid[:8]}) is not in the cache",
                           hint=FETCH_ONE_HINT) from exc
    digest = xxhash.xxh3_128()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    while n := handle.readinto(buf):
        digest.update(view[:n])
    if digest.hexdigest() != oid:
        handle.close()
        store.verify(oid)  # moves the corrupt object aside so it is never served
        raise StorageError(f"the cached content of {shown} ({oid[:8]}) is corrupt",
                           hint="`pipeflow repro` or `pipeflow pull` stores a good copy")
    handle.seek(0)
    return handle
