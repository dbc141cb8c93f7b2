"""A scratch workspace: where one experiment runs without touching the project's files.

The folder is ``.pipeflow/tmp/exp/<name>-<random>/``: beside the cache, so that
outputs checked out from it can be links, and ignored by git. In a git repository
with a commit it is a worktree of that repository (``git worktree add --detach
--no-checkout``, its index read from HEAD): a stage's own git commands
(``git rev-parse --show-toplevel``, ``git ls-files``, ``git describe``) see a
repository of their own with the project's history, never the user's work tree.
Without a commit it is a repository of its own (``git init``); outside git a plain
folder. :mod:`.scratchfill` says what it is filled with: the workspace's own files,
uncommitted edits included; outputs and source data then come from the cache as
the run needs them.

A :class:`ScratchProject` over it writes its own state (in memory), journal, lock
and logs, and shares the project's config, object store, run records and index:
what an experiment runs is in the run cache for everyone. The folder is removed
when the experiment ends, fails or is interrupted; one a killed ``exp run`` left
behind is removed by the next (:func:`sweep_scratch`), after ending the stage
processes still working in it.

DESIGN places scratch workspaces outside the project; this one sits under
``.pipeflow/tmp`` instead, for the links to the cache (one filesystem) and so that
the next command finds and removes a killed run's leftovers; as a worktree it is
outside the user's work tree in every way a command can see.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pipeflow.errors import StorageError
from pipeflow.project.project import DOT, Project

if TYPE_CHECKING:
    from pipeflow.git.committedstate import TrackedState
    from pipeflow.project.config import Config
    from pipeflow.records.index import RunIndex
    from pipeflow.records.records import RecordStore
    from pipeflow.state import StateDB

MEMORY = ":memory:"
"""SQLite's name for a database that lives in memory."""

SCRATCH = ("tmp", "exp")
"""Where scratch workspaces live, below ``.pipeflow``."""


@dataclass
class ScratchProject(Project):
    """A project in a scratch folder that shares ``home``'s config, cache and records."""

    home: Project = field(kw_only=True, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        # what reads the config files themselves (the check of what the committed
        # config may say about a remote) reads the project's: the scratch has none
        self.config_files = self.home.config_files

    @cached_property
    def config(self) -> Config:
        return self.home.config

    @property
    def cache_dir(self) -> Path:
        return self.home.cache_dir

    @cached_property
    def records(self) -> RecordStore:
        return self.home.records

    @cached_property
    def index(self) -> RunIndex:
        return self.home.index

    @cached_property
    def committed(self) -> TrackedState:
        return self.home.committed

    @cached_property
    def state(self) -> StateDB:
        """In memory: the folder goes when the experiment ends, and a crash loses
        nothing the project needs (each finished stage's run record is already in the
        project's chain, and a rerun restores it from the run cache)."""
        from pipeflow.state import StateDB

        db = StateDB(Path(MEMORY))
        self._closers.append(db)
        return db


@dataclass(frozen=True)
class Scratch:
    """One scratch workspace."""

    top: Path
    """The folder made (and removed): a git worktree of the project's repository
    when there is one with a commit, else a plain folder."""
    root: Path
    """The project's folder in it (below ``top`` when the project is a subfolder of
    its git repository)."""
    linked: tuple[str, ...] = ()
    """Git-ignored entries linked, not copied (:mod:`.scratchfill`)."""


def scratch_base(home: Project) -> Path:
    return home.dot.joinpath(*SCRATCH)


def sweep_scratch(home: Project) -> int:
    """Remove every scratch folder, ending the stage processes still working there
    (call holding ``home``'s repository lock: no experiment of this project is running
    then; these are a killed ``exp run``'s, whose run tokens lived in the folders'
    state). Returns how many folders went."""
    from pipeflow.execution.runner import kill_below

    base = scratch_base(home)
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return 0
    if names:
        kill_below(base)
    for name in names:
        _remove_worktree(base / name)
    return len(names)


def make_scratch(home: Project, name: str, skip: Iterable[str] = (),
                 persist: Iterable[str] = ()) -> Scratch:
    """A new scratch workspace filled from ``home``'s (:mod:`.scratchfill`): ``skip``
    the project paths never taken (declared outputs, sources), ``persist`` the
    outputs copied all the same."""
    from pipeflow.experiments.scratchfill import fill

    base = scratch_base(home)
    base.mkdir(parents=True, exist_ok=True)
    top = base / f"{name}-{secrets.token_hex(4)}"
    prefix = git_output(home.root, "rev-parse", "--show-prefix")
    worktree = prefix is not None and _worktree(home.root, top)
    if not worktree:
        top.mkdir()
    root = top / prefix.strip() if worktree and prefix else top
    try:
        root.mkdir(parents=True, exist_ok=True)
        if prefix is not None and not worktree:  # a repository without a commit yet
            from pipeflow.git.gitcmd import init

            init(top)
        (root / DOT).mkdir(exist_ok=True)
        done = fill(home.root, root, frozenset(skip), frozenset(persist))
    except OSError as exc:
        remove_scratch(Scratch(top, root))
        where = exc.filename or top
        raise StorageError(f"cannot make the experiment's scratch workspace: {where}: "
                           f"{exc.strerror or exc}",
                           hint="check free space and permissions under .pipeflow/tmp") from exc
    return Scratch(top, root, tuple(done.linked))


def _worktree(home: Path, top: Path) -> bool:
    """Make ``top`` a git worktree of ``home``'s repository at HEAD, its index
    filled and its files not checked out (they are the workspace's, copied): the
    stages' own git commands see a repository of their own, with the project's
    history, not the user's work tree."""
    made = git_output(home, "worktree", "add", "--detach", "--no-checkout", "-q", str(top), "HEAD")
    if made is None:
        return False
    if git_output(top, "read-tree", "HEAD") is None:
        _remove_worktree(top)
        return False
    return True


def git_output(cwd: Path, *args: str) -> str | None:
    """A git command's output (:mod:`pipeflow.git.gitcmd`: pinned to the repository
    around ``cwd``, no hooks, no fsmonitor), or None when it failed or there is none."""
    from pipeflow.git import gitcmd

    try:
        out = gitcmd.run(cwd, *args, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode("utf-8", "surrogateescape") if out.returncode == 0 else None


def remove_scratch(scratch: Scratch) -> None:
    """Remove a scratch workspace (and its worktree's entry in the repository)."""
    _remove_worktree(scratch.top)


def _remove_worktree(top: Path) -> None:
    """Remove ``top`` and, when it is a worktree, its entry in the repository's
    ``.git/worktrees`` — that entry only: ``git worktree prune`` would also drop the
    entries of the user's own worktrees whose folders are away (an unmounted disk)."""
    admin = _admin_dir(top)
    # the entry first: a Ctrl-C in between leaves a folder the next sweep removes, not
    # an entry no sweep sees (`git worktree list` would show it prunable)
    if admin is not None:
        shutil.rmtree(admin, ignore_errors=True)
    _remove_tree(top)


def _admin_dir(top: Path) -> Path | None:
    """The ``.git/worktrees/<name>`` folder of the worktree at ``top``, if its ``.git``
    file names one that names ``top`` back (anything else is left alone)."""
    from pipeflow.git.gitcmd import git_dir_of

    admin = git_dir_of(top)
    if admin is None:
        return None
    try:
        back = (admin / "gitdir").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if admin.parent.name != "worktrees" or (
            os.path.realpath(back) != os.path.realpath(top / ".git")):
        return None
    return admin


def _remove_tree(folder: Path) -> None:
    """Remove a folder; a file a stage made read-only does not stop it."""
    def unlock(_func: object, path: str, _exc: object) -> None:
        try:  # never chmod through a link: it may lead into the workspace
            os.chmod(os.path.dirname(path), 0o700)
            if not os.path.islink(path):
                os.chmod(path, 0o600)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass

    shutil.rmtree(folder, onerror=unlock)
