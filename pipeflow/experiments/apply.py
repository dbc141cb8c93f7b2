"""``exp apply``: make an experiment's params and outputs the workspace's; ``exp remove``.

Apply writes the params the experiment ran with into the params files (formatting
kept: :mod:`pipeflow.experiments.paramedit`): its overrides and every other value its
stages read that differs now (a seed committed since at another value would give
another fingerprint, so the stage would train again). Then it runs ``repro`` on the
project for the experiment's targets. With the params equal to the experiment's, every stage's
fingerprint is one the experiment recorded, so the run cache restores its outputs and
``repro`` renders the lock as if it had made them: nothing trains, ``status`` is clean
and the next ``repro`` runs nothing. A stage whose fingerprint differs (its code
changed since the experiment), whose outputs are in no cache, or which never uses the
run cache (``run_cache_eligible``) runs, and the report lists it.

Before a byte of the workspace changes, holding the repository lock for the whole
apply: the experiment must exist and have succeeded, its params files must have no
uncommitted changes (unless ``force``; outside git there is nothing to compare), and
its outputs missing from the local cache are downloaded from the default remote when
one is configured (a colleague's experiment after ``pipeflow fetch``). Downloading
first, rather than through the run cache's fetcher while stages are being decided,
means an unreachable remote refuses the apply with nothing changed.

If ``repro`` fails or is interrupted, apply is undone: the params files and
``pipeline.lock`` get their old bytes back and the outputs are checked out as that
lock records them (stages that finished stay in the run cache, so nothing is lost).
An undo that cannot finish says what is left (never silently half-applied).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeflow.errors import (
    Cancelled,
    Interrupted,
    PipeflowError,
    StageFailed,
    StorageError,
    UsageError,
)
from pipeflow.experiments import summary
from pipeflow.experiments.overrides import write_overrides
from pipeflow.files import atomicfile, safepath
from pipeflow.files.repolock import RepoLock
from pipeflow.lineage.experiments import Experiment, experiments, find, require_project
from pipeflow.project.project import LOCK_FILE, Project

if TYPE_CHECKING:
    from pipeflow.execution.cancel import CancelToken
    from pipeflow.execution.scheduler import EventSink, StageEvent
    from pipeflow.lineage.trust import Trust
    from pipeflow.ops.repro import ReproReport


@dataclass(frozen=True)
class ParamSet:
    """One value an apply wrote: ``old`` is what the params file held before."""

    file: str
    key: str
    old: Any
    new: Any

    @property
    def changed(self) -> bool:
        return bool(self.old != self.new or type(self.old) is not type(self.new))


@dataclass(frozen=True)
class Applied:
    """What ``exp apply`` did."""

    name: str
    id: str
    params: tuple[ParamSet, ...]
    restored: tuple[str, ...]
    """Stages whose outputs came from the run cache (nothing ran)."""
    ran: tuple[str, ...]
    """Stages that had to run: their fingerprint was not the experiment's (code or
    data changed since), their outputs were in no cache, or they never use the run
    cache (``uncached``)."""
    up_to_date: tuple[str, ...]
    fetched: int = 0
    """Objects downloaded from ``remote`` first."""
    remote: str | None = None
    lock_changed: bool = False
    untrusted: tuple[tuple[str, Trust], ...] = ()
    """(stage, verdict): the experiment's run-cache entry was not used because its
    record is not trusted (a colleague's, from a remote whose run cache the project
    does not trust: docs/remotes.md), so the stage ran."""
    skipped_params: tuple[tuple[str, str], ...] = ()
    """(file, key) the experiment's stages read that the params file no longer has:
    not written (the stages reading them ran)."""
    uncached: tuple[tuple[str, str], ...] = ()
    """(stage, why) of the stages in ``ran`` that never use the run cache (no deps,
    always_changed, a persist or ``cache: false`` output): they run on every apply."""


@dataclass(frozen=True)
class Removed:
    """What ``exp remove`` removed, in the order asked."""

    experiments: tuple[Experiment, ...]


class _HeldLock(RepoLock):
    """The repository lock apply already holds: ``repro`` and ``checkout`` take the
    lock themselves, and a second ``flock`` in this process would wait for the first."""

    def acquire(self) -> None:
        return None

    def release(self) -> None:
        return None


class _Held(Project):
    """The project while ``exp apply`` holds its repository lock."""

    def lock(self, *, wait: float = 0.0) -> RepoLock:
        return _HeldLock(self.dot / "lock")


def exp_apply(home: Project, name: str, *, force: bool = False, wait: float = 0.0,
              on_event: EventSink | None = None, cancel: CancelToken | None = None
              ) -> Applied:
    """Make experiment ``name``'s params and outputs the workspace's (see the module
    docstring). UsageError (nothing changed) for an unknown or failed experiment, or
    params files with uncommitted changes without ``force``; LockedError when another
    writer holds the repository lock past ``wait``."""
    require_project(home)
    with home.lock(wait=wait), _Held(home.root) as repo:
        exp = _applicable(repo, name)
        changes, skipped = param_changes(repo, exp)
        writes: dict[str, dict[str, Any]] = {}
        for c in changes:
            if c.changed:
                writes.setdefault(c.file, {})[c.key] = c.new
        files = sorted(writes)
        if not force:
            _refuse_uncommitted(repo, exp, files)
        fetched, remote = _fetch_outputs(repo, exp)
        saved = _Saved.take(repo, files)
        try:
            write_overrides(repo.root, writes)
        except BaseException:  # a second file not written: the first goes back
            _undo(repo, saved, outputs=False)
            raise
        report = _repro_or_undo(repo, exp, saved, on_event, cancel)
        uncached = _not_run_cached(repo, report.outcome.ran)
    out = report.outcome
    return Applied(exp.name, exp.id, tuple(changes), tuple(out.restored), tuple(out.ran),
                   tuple(out.skipped), fetched, remote, report.lock_changed,
                   tuple(report.untrusted), tuple(skipped), uncached)


def _not_run_cached(repo: Project, ran: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """(stage, why) for the stages that ran and never use the run cache."""
    from pipeflow.execution.history import run_cache_eligible
    from pipeflow.ops.project import load_project

    stages = load_project(repo).graph.pipeline.stages
    found = []
    for name in ran:
        stage = stages.get(name)
        if stage is None or run_cache_eligible(stage):
            continue
        if not stage.deps:
            why = "it has no deps"
        elif stage.always_changed:
            why = "it is always_changed"
        else:
            out = next(o for o in stage.outs if o.persist or not o.cache)
            why = f"its output {out.path} is {'persist' if out.persist else 'cache: false'}"
        found.append((name, why))
    return tuple(found)


def _applicable(repo: Project, name: str) -> Experiment:
    exp = find(repo, name)
    if not exp.ok:
        where = f" at stage '{exp.failed_stage}'" if exp.failed_stage else ""
        raise UsageError(f"experiment '{exp.name}' failed{where}: it has no results to apply",
                         hint=f"its logs are in .pipeflow/logs/exp/{exp.name}/ (in the "
                              "clone that ran it); run it again after a fix "
                              f"(`pipeflow exp run --name {exp.name} --replace ...`)")
    return exp


_GONE = object()
"""A key the params file does not have (any value, None included, may be a param's)."""


def param_changes(repo: Project, exp: Experiment
                  ) -> tuple[list[ParamSet], list[tuple[str, str]]]:
    """The values applying ``exp`` writes, with the values they replace, and the
    (file, key) pairs it skips. Every value the experiment's stages read (its recorded
    params, its overrides laid over them) that differs from the params file now is
    written: with the experiment's values, each stage's fingerprint is the one it
    recorded, so the run cache restores it. A recorded key (or file) that no longer
    exists is skipped (the stage reading it will run); a key the experiment set with
    ``--set`` must exist. A path that is not a plain project path (records come from
    other clones), or a missing key it set: UsageError, before anything is written."""
    changes: list[ParamSet] = []
    skipped: list[tuple[str, str]] = []
    allowed = params_files(repo)
    for file, values in sorted(_recorded(exp).items()):
        safepath.check(file, where=f"experiment '{exp.name}': set")
        if file not in allowed and file in exp.overrides:
            raise UsageError(
                f"experiment '{exp.name}' sets values in {file}, which is not a params "
                "file of this pipeline: nothing was written",
                hint="an experiment's record may come from another clone; only the params "
                     "files the pipeline reads (" + ", ".join(sorted(allowed)) + ") are "
                     "written by `exp apply`")
        if file not in allowed:  # read by a stage once, or named by a crafted record
            skipped.extend((file, key) for key in sorted(values))
            continue
        data = _read_params(repo, exp, file)
        _file_changes(exp, file, values, data, changes, skipped)
    return changes, skipped


def _file_changes(exp: Experiment, file: str, values: Mapping[str, Any], data: Any,
                  changes: list[ParamSet], skipped: list[tuple[str, str]]) -> None:
    """:func:`param_changes` for one params file (``data``: None when it is gone). A
    section a stage read whole (``train``) is compared key by key, as a file's
    section cannot be written at once and only its changed lines should change."""
    from pipeflow.params import MissingParamError, lookup

    pending = sorted(values.items(), reverse=True)
    done: set[str] = set()
    while pending:
        key, value = pending.pop()
        if key in done:
            continue
        done.add(key)
        explicit = key in exp.overrides.get(file, {})
        try:
            old = lookup(data, key) if data is not None else _GONE
        except MissingParamError:
            old = _GONE
        if old is _GONE:
            if not explicit:
                skipped.append((file, key))
                continue
            raise UsageError(f"experiment '{exp.name}' sets {key} in {file}, which has "
                             f"no such key now", hint="put the key back in the params "
                             "file to apply this experiment")
        if isinstance(value, Mapping) and isinstance(old, Mapping) and not explicit:
            inner = [(f"{key}.{sub}", v) for sub, v in value.items()
                     if f"{key}.{sub}" not in values]
            pending.extend(sorted(inner, reverse=True))
            continue
        change = ParamSet(file, key, old, value)
        if change.changed or explicit:
            changes.append(change)


def params_files(repo: Project) -> frozenset[str]:
    """The files ``exp apply`` may write (:func:`.overrides.params_files_of`)."""
    from pipeflow.experiments.overrides import params_files_of
    from pipeflow.ops.project import load_project

    return params_files_of(load_project(repo).graph.pipeline)


def _recorded(exp: Experiment) -> dict[str, dict[str, Any]]:
    """file -> key -> value the experiment's stages read, its overrides laid over."""
    table: dict[str, dict[str, Any]] = {}
    for source in (exp.params, exp.overrides):
        for file, values in source.items():
            table.setdefault(file, {}).update(values)
    return table


def _read_params(repo: Project, exp: Experiment, file: str) -> Any:
    """The params file's data; None when a file only read (never set) is gone."""
    from pipeflow.params import read_params

    try:
        return read_params(repo.root / file, name=file, root=repo.root)
    except PipeflowError as exc:
        if file not in exp.overrides and not (repo.root / file).exists():
            return None
        raise UsageError(f"experiment '{exp.name}' sets keys of {file}: {exc.message}",
                         hint="restore that params file (it was renamed or removed "
                              "since the experiment ran)") from exc


def _refuse_uncommitted(repo: Project, exp: Experiment, files: Sequence[str]) -> None:
    """UsageError naming the params files with uncommitted changes (staged, unstaged
    or never committed); outside git, or with git missing, nothing to compare."""
    from pipeflow.git import gitcmd

    dirty = []
    for file in files:
        try:
            done = gitcmd.run(repo.root, "status", "--porcelain", "-z", "--",
                              f":(literal){file}")
        except (OSError, subprocess.SubprocessError):
            return
        if done.returncode != 0:
            return  # not a git repository (or git cannot tell): nothing to compare
        if done.stdout.strip(b"\0"):
            dirty.append(file)
    if dirty:
        shown = ", ".join(dirty)
        raise UsageError(
            f"{shown} {'has' if len(dirty) == 1 else 'have'} uncommitted changes: "
            f"applying experiment '{exp.name}' would write over them; nothing was changed",
            hint=f"commit them (`git commit {' '.join(dirty)}`) or discard them first, "
                 f"or pass --force to write the experiment's values over them")


def _fetch_outputs(repo: Project, exp: Experiment) -> tuple[int, str | None]:
    """Download the experiment's outputs this cache lacks from the default remote
    (manifests first, then the files they list); (objects fetched, remote name)."""
    from pipeflow.ops.remotes import list_remotes, open_remote
    from pipeflow.ops.transfer import download_objects

    infos = [o.hash_info() for o in exp.outputs if o.cache and safepath.problem(o.path) is None]
    if not any(repo.store.missing(i) for i in infos) or not list_remotes(repo):
        return 0, None
    try:
        remote = open_remote(repo)
    except UsageError:
        return 0, None  # several remotes and no default: the stages will say
    fetched = 0
    for _ in range(2):  # a folder's files are known once its manifest is here
        wanted = sorted({oid for i in infos for oid in repo.store.missing(i)})
        if not wanted:
            break
        failed = download_objects(repo, remote, wanted)
        fetched += len(wanted) - len(failed)
    return fetched, remote.name


@dataclass(frozen=True)
class _Saved:
    """The bytes apply may change, to put back on failure (None: the file was absent)."""

    files: dict[str, bytes]
    lock: bytes | None

    @classmethod
    def take(cls, repo: Project, files: Iterable[str]) -> _Saved:
        lock = repo.lock_path.read_bytes() if repo.lock_path.is_file() else None
        return cls({f: (repo.root / f).read_bytes() for f in files}, lock)


def _repro_or_undo(repo: Project, exp: Experiment, saved: _Saved,
                   on_event: EventSink | None, cancel: CancelToken | None) -> ReproReport:
    from pipeflow.ops.repro import ReproOptions, repro

    touched: list[str] = []

    def seen(ev: StageEvent) -> None:
        if ev.kind != "skipped":
            touched.append(ev.stage)
        if on_event is not None:
            on_event(ev)

    try:
        report = repro(repo, ReproOptions(targets=exp.targets), on_event=seen, cancel=cancel)
    except BaseException as exc:
        left = _undo(repo, saved, bool(touched))
        if left:
            raise _undo_failed(exp, left) from exc
        if isinstance(exc, Interrupted):  # repro's text would say its stages were kept
            raise Interrupted(exc.terminated, f"interrupted: {_undone(exp)}; nothing changed",
                              hint=f"run `pipeflow exp apply {exp.name}` again") from exc
        raise
    outcome = report.outcome
    if outcome.ok:
        return report
    left = _undo(repo, saved, True)
    if left:
        raise _undo_failed(exp, left)
    undone = _undone(exp)
    if outcome.failed:
        first = outcome.failed[0]
        what = first.message.split(": ", 1)[-1]  # StageFailed names the stage itself
        raise StageFailed(first.stage, f"{what}; {undone}", log_tail=first.log_tail)
    raise Cancelled(f"cancelled; {undone}")


def _undone(exp: Experiment) -> str:
    return (f"`exp apply {exp.name}` was undone: the params files, {LOCK_FILE} and the "
            "outputs are as they were (stages that finished are in the run cache)")


def _undo(repo: Project, saved: _Saved, outputs: bool) -> list[str]:
    """Put the saved bytes back and, when ``outputs`` (a stage was touched), check out
    the outputs the old lock records; what could not be put back, as sentences."""
    from pipeflow.ops.checkout import checkout

    left = []
    for file, data in saved.files.items():
        try:
            atomicfile.write_bytes(repo.root / file, data)
        except OSError as exc:
            left.append(f"{file} keeps the experiment's values ({exc.strerror or exc})")
    try:
        if saved.lock is None:
            repo.lock_path.unlink(missing_ok=True)
        else:
            atomicfile.write_bytes(repo.lock_path, saved.lock)
    except OSError as exc:
        left.append(f"{LOCK_FILE} keeps the stages that finished ({exc.strerror or exc})")
    if outputs and not left:
        try:
            checkout(repo)
        except PipeflowError as exc:
            left.append(f"some outputs are the experiment's ({exc.message})")
    return left


def _undo_failed(exp: Experiment, left: list[str]) -> StorageError:
    return StorageError(
        f"`exp apply {exp.name}` failed and could not be fully undone: " + "; ".join(left),
        hint=f"go back with `git checkout -- {LOCK_FILE} PARAMS_FILES` and "
             "`pipeflow checkout`, or finish the apply with `pipeflow repro`")


def exp_remove(home: Project, names: Sequence[str], *, all_failed: bool = False,
               wait: float = 0.0) -> Removed:
    """Record the removal of the experiments ``names`` (names or id prefixes) and,
    with ``all_failed``, of every failed one; an unknown name is a UsageError before
    anything is removed. Removals are records: they travel with ``push``."""
    from pipeflow.project.provenance import provenance

    if not names and not all_failed:
        raise UsageError("name the experiments to remove, or pass --all-failed",
                         hint="`pipeflow exp show` lists them")
    require_project(home)
    with home.lock(wait=wait):
        pool = experiments(home)
        chosen: dict[str, Experiment] = {}
        for name in names:
            exp = find(home, name, pool)
            chosen.setdefault(exp.id, exp)
        if all_failed:
            for exp in pool:
                if not exp.ok:
                    chosen.setdefault(exp.id, exp)
        prov = provenance(home)
        for exp in chosen.values():
            summary.write_removal(home, exp.id, exp.name, prov)
        live = {e.name for e in pool if e.id not in chosen}
        for exp in chosen.values():
            if exp.name not in live and safepath.problem(exp.name) is None and (
                    "/" not in exp.name):  # a failed experiment's kept stage logs go too
                with contextlib.suppress(OSError):
                    shutil.rmtree(home.logs_dir / "exp" / exp.name)
    return Removed(tuple(chosen.values()))
