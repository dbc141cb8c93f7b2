"""Loading what every verb needs: the checked pipeline, its graph, and the lock."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from pipeflow.errors import SpecError, UsageError
from pipeflow.execution import journal
from pipeflow.files import projectfile
from pipeflow.files.machinecache import machine_cache
from pipeflow.keyvalue import Layered
from pipeflow.lock import lockconflict, lockfile
from pipeflow.lock.lockfile import Lock, StageLock
from pipeflow.lock.lockmerge import MergedLock
from pipeflow.planning.graph import Graph, build_graph
from pipeflow.project.project import LOCK_FILE, Project
from pipeflow.spec.loader import load_pipeline
from pipeflow.version import __version__


@dataclass(frozen=True)
class LoadedPipeline:
    """A loaded pipeline with its graph."""

    graph: Graph

    @property
    def stages(self) -> list[str]:
        return list(self.graph.order)


def load_project(repo: Project) -> LoadedPipeline:
    """Load, validate and order the pipeline (validation remembered per spec digest)."""
    if not os.path.lexists(repo.spec_path):  # a link or device: the loader says what
        msg = f"no pipeline.yaml in {repo.root}"
        raise UsageError(msg, hint="write one (see `pipeflow init` for a starter)")
    has_state = repo.dot.is_dir()
    state = repo.state if has_state else None

    # The digest covers the spec's bytes and the schema's: a spec valid once is valid
    # in every clone, so the machine cache answers for a new clone too.
    machine = machine_cache()
    shared = f"valid:{__version__}:"  # this pipeflow's validation, not another's

    def validated(digest: str) -> bool:
        return ((state is not None and state.get("valid:" + digest) == "1")
                or machine.get(shared + digest) == "1")

    loaded = load_pipeline(repo.root, is_validated=validated)
    if loaded.validated_now:
        if state is not None:
            state.put("valid:" + loaded.digest, "1")
        machine.put(shared + loaded.digest, "1")
    # the order of a structure, like its validation, holds in every clone: a fresh
    # clone of a known project orders its stages without importing networkx
    orders = Layered(state, machine, far_prefix=f"{__version__}:")
    graph = build_graph(loaded.pipeline, state=orders)
    return LoadedPipeline(graph)


def check_outputs_inside(repo: Project, graph: Graph, names: Iterable[str] | None = None, *,
                         running: bool = False) -> None:
    """Refuse, before a write command acts, a declared output whose folder is a
    symlink leading out of the project (``link -> /elsewhere``, ``outs: [link/out]``):
    a SpecError at the stage's place in the spec. Write commands call it; ``status``
    does not pay for it (it writes nothing), and every writer checks again anyway
    (:mod:`pipeflow.files.workspace_fs`). ``running``: repro, whose stages may build an
    environment as an output (never restored by a checkout)."""
    from pipeflow.files import workspace_fs

    stages = graph.pipeline.stages
    for name in names if names is not None else graph.order:
        stage = stages[name]
        for out in stage.outs:
            problem = workspace_fs.parent_problem(repo.root, out.path, made_by_stage=running)
            if problem is not None:
                raise SpecError(f"stage '{name}': output {problem}", stage.location,
                                hint="pipeflow writes outputs only inside the project: "
                                     "replace the symlink with a real folder, or declare "
                                     "the output elsewhere")


def current_lock(repo: Project) -> Lock:
    """The lock as a reader sees it: pipeline.lock with the unfinished run's journal.

    Raises LockConflictError when pipeline.lock holds merge conflicts (only ``status``
    and ``repro`` work on such a lock: they use :func:`current_state`).
    """
    lock = lockfile.read(repo.lock_path, LOCK_FILE)
    if not repo.dot.is_dir():
        return lock
    rows = journal.entries(repo.state)
    return journal.fold(lock, rows) if rows else lock


def current_state(repo: Project) -> MergedLock:
    """:func:`current_lock`, merge conflicts included: a stage the running ``repro``
    has finished is no longer in conflict."""
    merged = lockconflict.read(repo.lock_path, LOCK_FILE)
    rows = journal.entries(repo.state) if repo.dot.is_dir() else {}
    return _fold(merged, rows) if rows else merged


def _fold(merged: MergedLock, rows: dict[str, StageLock],
          keep: Iterable[str] | None = None) -> MergedLock:
    """``merged`` with journal rows applied: a stage that ran is resolved; with
    ``keep``, a stage no longer in the pipeline is dropped, conflict or not."""
    kept = None if keep is None else frozenset(keep)
    conflicts = {n: pair for n, pair in merged.stage_conflicts.items()
                 if n not in rows and (kept is None or n in kept)}
    return MergedLock(journal.fold(merged.lock, rows, keep=keep), conflicts,
                      merged.source_conflicts)


def render_lock(repo: Project, graph: Graph | None = None) -> bool:
    """Write pipeline.lock from lock + journal and empty the journal (holder of the repo lock).

    Returns whether the lock file changed. Objects written by the run are synced
    first, once, so a lock never names an object a power loss could lose. Merge
    conflicts of stages that did not run stay in the file.
    """
    from pipeflow.storage.durability import sync_paths

    rows = journal.entries(repo.state)
    merged = _fold(lockconflict.read(repo.lock_path, LOCK_FILE), rows,
                   keep=graph.order if graph else None)
    text = lockconflict.render(merged)
    old = projectfile.read_text(repo.lock_path, "lock", name=LOCK_FILE)  # read above
    # universal newlines, as text mode reads: a CRLF lock is not rewritten for that alone
    changed = text != (old.replace("\r\n", "\n") if old is not None else None)
    new = merged.lock
    if changed and (new.stages or new.sources or not merged.clean or repo.lock_path.exists()):
        sync_paths(repo.written())
        lockconflict.write(repo.lock_path, merged)
    repo.state.journal_clear()
    return changed


def _sweep_temps(repo: Project) -> None:
    """Remove dead writers' temporary files where a look is cheap: the download folder
    and the top folders of the project and of ``.pipeflow`` (three listings, no walk;
    the store and checkouts sweep the folders they write into as they go)."""
    from pipeflow.storage.leftovers import sweep

    downloads = repo.cache_dir / "tmp"
    sweep([downloads, repo.dot, repo.root], grace=repo.config.gc.grace)


def recover(repo: Project, *, sweep: bool = True) -> bool:
    """Clean up after a killed run (call holding the repo lock): end the stage
    processes it left behind and render its journal into the lock.

    Every writer calls this first, so it is also where a fresh clone gets the lock's
    merge driver defined in its git config (not cloned): one small file read when
    it is already there, and where dead writers' temporary files go (``sweep``; gc,
    which collects and reports them itself and deletes nothing when dry, says False).
    """
    from pipeflow.execution.runner import kill_leftovers
    from pipeflow.lock import mergedriver

    mergedriver.ensure(repo.root)
    if sweep:
        _sweep_temps(repo)
    token = repo.state.get("run-token")
    if token:
        kill_leftovers(token)
        repo.state.put("run-token", "")
    if repo.state.journal_entries():
        render_lock(repo)
        return True
    return False
