"""The scratch workspace a reproduction runs in: a git worktree of the project's
repository at the recorded commit, under ``.pipeflow/tmp/reproduce/`` (beside the cache,
so that inputs are linked from it; ignored by git; outside the user's work tree in
every way a command can see — as for experiments, :mod:`pipeflow.experiments.scratch`).

Its :class:`ReproProject` shares the project's config and object store (inputs come
from the cache; what the reproduction makes is stored there too, so that a differing
output can be looked at) but keeps its run records, index, state and lock to itself:
a reproduction adds nothing to the project's history but its one ``reproduction``
record. The folder is removed when the reproduction ends, fails or is interrupted; a
killed one's is removed by the next (:func:`sweep`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeflow.errors import PipeflowError, StorageError
from pipeflow.experiments.scratch import Scratch, ScratchProject, git_output, remove_scratch
from pipeflow.project.project import DOT, Project
from pipeflow.reproduce.plan import Placed

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pipeflow.files.repolock import RepoLock
    from pipeflow.records.records import RecordStore

SCRATCH = ("tmp", "reproduce")
"""Where reproduction workspaces live, below ``.pipeflow``."""
LOCK_SUFFIX = ".lock"
"""Beside each workspace folder: the lock its reproduction holds while it runs."""


@dataclass
class ReproProject(ScratchProject):
    """A scratch project whose run records and index are its own (removed with it)."""

    @cached_property
    def records(self) -> RecordStore:
        from pipeflow.records.records import RecordStore

        return RecordStore(self.dot / "records", self.dot / "chain")

    index = Project.index
    """Its own, over its own records (a scratch project's is the home project's)."""


def base_of(home: Project) -> Path:
    return home.dot.joinpath(*SCRATCH)


@dataclass
class Workspace:
    """A reproduction's scratch workspace, its project, and the lock that tells a
    concurrent reproduction's :func:`sweep` it is alive."""

    scratch: Scratch
    project: ReproProject
    held: RepoLock

    def remove(self) -> None:
        """Close the project, remove the folder (and its worktree entry), free the lock."""
        try:
            self.project.close()
            remove_scratch(self.scratch)
        finally:
            self.held.release()
            Path(self.held.path).unlink(missing_ok=True)


def sweep(home: Project) -> int:
    """Remove the workspaces killed reproductions left — those whose lock no process
    holds (a running reproduction holds its own: reproductions of one project run side
    by side) — ending the stage processes still working there. Returns how many."""
    from pipeflow.errors import LockedError
    from pipeflow.execution.runner import kill_below
    from pipeflow.files.repolock import RepoLock

    base = base_of(home)
    try:
        names = [n for n in os.listdir(base) if not n.endswith(LOCK_SUFFIX)]
    except (FileNotFoundError, NotADirectoryError):
        return 0
    gone = 0
    for name in names:
        held = RepoLock(base / f"{name}{LOCK_SUFFIX}")
        try:
            held.acquire()
        except LockedError:
            continue  # alive
        try:
            kill_below(base / name)
            remove_scratch(Scratch(base / name, base / name))
            gone += 1
        finally:
            held.release()
            (base / f"{name}{LOCK_SUFFIX}").unlink(missing_ok=True)
    return gone


def make(home: Project, commit: str, prefix: str, label: str) -> Workspace:
    """A worktree of ``home``'s repository at ``commit``, the project in it, and its
    lock, held until :meth:`Workspace.remove`. StorageError when the folder cannot
    be made."""
    from pipeflow.files.repolock import RepoLock

    base = base_of(home)
    name = f"{_safe(label)}-{secrets.token_hex(4)}"
    top = base / name
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot(exc, base) from exc
    held = RepoLock(base / f"{name}{LOCK_SUFFIX}")
    held.acquire()
    try:
        scratch, project = _checkout(home, top, commit, prefix)
    except BaseException:
        held.release()
        (base / f"{name}{LOCK_SUFFIX}").unlink(missing_ok=True)
        raise
    return Workspace(scratch, project, held)


def _checkout(home: Project, top: Path, commit: str, prefix: str
              ) -> tuple[Scratch, ReproProject]:
    made = git_output(home.root, "worktree", "add", "--detach", "-q", str(top), commit)
    if made is None:
        remove_scratch(Scratch(top, top))
        raise StorageError(f"cannot make the reproduction's scratch workspace at {top}: "
                           f"`git worktree add` of commit {commit[:12]} failed",
                           hint="check free space and permissions under .pipeflow/tmp; "
                                "`git worktree list` shows the worktrees git knows")
    root = top / prefix if prefix else top
    scratch = Scratch(top, root)
    try:
        _inside(top, prefix, commit)
        _fresh_dot(root / DOT)
        _link_environments(home.root, root)
        return scratch, ReproProject(root, home=home)
    except BaseException as exc:
        remove_scratch(scratch)
        if isinstance(exc, OSError):
            raise _cannot(exc, root / DOT) from exc
        raise


def _inside(top: Path, prefix: str, commit: str) -> None:
    """Refuse a checkout where the project's folder is not a real folder of the
    worktree: a commit can make ``sub/proj`` a link to anywhere, and the workspace's
    ``.pipeflow`` is about to be emptied."""
    where = top
    for part in [p for p in prefix.split("/") if p]:
        where = where / part
        if where.is_symlink() or not where.is_dir():
            raise StorageError(
                f"at commit {commit[:12]} the project's folder {prefix.rstrip('/')} is "
                f"{'a link' if where.is_symlink() else 'not a folder'} "
                f"({where.relative_to(top)}): nothing was reproduced",
                hint="a commit can hold such a link; check where it came from "
                     f"(`git log -- {where.relative_to(top)}`)")


def _link_environments(home: Path, root: Path) -> None:
    """Link the project's git-ignored Python environments into the checkout, as the
    experiments' scratch workspace does: a stage run by ``.venv/bin/python`` finds it
    (the environment as it is now: ``reproduce`` compares it with the recorded one)."""
    from pipeflow.experiments.scratchfill import environments

    for rel in environments(home):
        place = root / rel
        if not os.path.lexists(place):
            place.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(home / rel, place)


def _fresh_dot(dot: Path) -> None:
    """An empty ``.pipeflow`` for the workspace: whatever the commit holds there (its
    config, or links a hostile commit put in place of pipeflow's folders) is removed
    first. The workspace's project reads the home project's config."""
    import shutil

    if dot.is_symlink() or (os.path.lexists(dot) and not dot.is_dir()):
        dot.unlink()
    elif dot.is_dir():
        shutil.rmtree(dot)
    dot.mkdir()


def noisy_at(home: Project, commit: str, prefix: str, stage: str) -> bool | None:
    """Whether pipeline.yaml at ``commit`` declares ``stage`` (or the template it comes
    from, ``train`` for ``train@a``) ``deterministic: false``; None when that cannot be
    read (no such file, a spec that does not parse, the stage not there)."""
    import yaml

    from pipeflow.errors import PipeflowError
    from pipeflow.files import safeload

    text = git_output(home.root, "show", f"{commit}:{prefix}pipeline.yaml")
    if text is None:
        return None
    try:
        spec = safeload.load_yaml(text, "pipeline.yaml", "spec")
    except (PipeflowError, yaml.YAMLError):
        return None
    stages = spec.get("stages") if isinstance(spec, dict) else None
    body = stages.get(stage.split("@", 1)[0]) if isinstance(stages, dict) else None
    if isinstance(body, dict) and isinstance(body.get("do"), dict):
        body = body["do"]
    if not isinstance(body, dict):
        return None
    return body.get("deterministic") is False


def place(project: ReproProject, items: Iterable[Placed],
          pull: Callable[[list[str]], object] | None) -> tuple[dict[str, str], set[str]]:
    """Check out each input from the cache into the workspace (``pull``: bring what the
    cache lacks from the remote first). Returns path -> why it could not be placed, and
    the paths among them that are missing here (not a fault of the version)."""
    from pipeflow.content.hashing import HashInfo

    store, problems, missing = project.store, {}, set()
    for item in items:
        info = HashInfo(item.hash, item.size or 0, item.isdir)
        if store.missing(info) and pull is not None:
            pull(store.missing(info))  # a folder: its manifest first, then its files
            if store.missing(info):
                pull(store.missing(info))
        if store.missing(info) and not item.required:
            continue
        if store.missing(info):
            where = "the cache or the remote" if pull else "the cache (try --pull)"
            problems[item.path] = (f"its input {item.path} ({item.hash[:8]}) is not in "
                                   f"{where}")
            if pull is None:  # the remote may have it: this clone's gap, not the version's
                missing.add(item.path)
            continue
        dest = project.root / item.path
        try:
            _clear(dest)
            store.checkout(info, dest, linker=project.linker, root=project.root)
        except (OSError, PipeflowError) as exc:
            problems[item.path] = f"its input {item.path} cannot be checked out ({exc})"
    return problems, missing


def set_params(root: Path, values: Mapping[str, Mapping[str, Any]],
               allowed: frozenset[str]) -> dict[str, str]:
    """Write the recorded params values into the workspace's params files: only the
    ``allowed`` ones (those the pipeline at the commit reads: a record from elsewhere
    may name any file). Returns file -> why it could not be written."""
    from pipeflow.experiments.overrides import write_overrides

    problems: dict[str, str] = {}
    for file, keys in values.items():
        if file not in allowed:
            problems[file] = (f"its run read params file {file!r}, which the pipeline at "
                              "the commit does not declare: its values were not set")
            continue
        try:
            write_overrides(root, {file: keys})
        except PipeflowError as exc:
            problems[file] = f"its params file {file} cannot take the recorded values " \
                             f"({exc.message})"
    return problems


def _clear(dest: Path) -> None:
    import shutil

    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    elif os.path.lexists(dest):
        dest.unlink()


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in label)[:40] or "version"


def _cannot(exc: OSError, where: Path) -> StorageError:
    return StorageError(f"cannot make the reproduction's scratch workspace: "
                        f"{exc.filename or where}: {exc.strerror or exc}",
                        hint="check free space and permissions under .pipeflow/tmp")
