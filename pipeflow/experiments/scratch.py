"""A scratch workspace: where one experiment runs without touching the project's files.

The folder is ``.pipeflow/tmp/exp/<name>-<random>/``: beside the cache (so checkouts
can link instead of copy), inside the project's git repository but ignored by it (so
the runs it records name the project's commit and uncommitted edits). It holds a copy
of the workspace's own files — what git tracks or would track, uncommitted edits
included — and the project's ``pipeline.lock``; outputs and source data come from the
cache as the run needs them. A :class:`ScratchProject` over it writes its own state,
journal, lock and logs there, and shares the project's config, object store, run
records and index: what an experiment runs is in the run cache for everyone.

The folder is removed when the experiment ends, fails or is interrupted; one a killed
``exp run`` left behind is removed by the next (:func:`sweep_scratch`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Iterator
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
        remove_scratch(base / name)
    return len(names)


def make_scratch(home: Project, name: str, skip: Iterable[str] = ()) -> Path:
    """A new scratch folder holding a copy of ``home``'s workspace files (not its
    outputs, source data or ``.pipeflow``); ``skip``: project paths never copied
    (declared outputs and sources: the run restores them from the cache)."""
    folder = scratch_base(home) / f"{name}-{secrets.token_hex(4)}"
    folder.mkdir(parents=True)
    (folder / DOT).mkdir()
    skipped = frozenset(skip)
    try:
        for rel in workspace_files(home.root, skipped):
            _copy(home.root / rel, folder / rel)
        for rel in ignored_entries(home.root, skipped):
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(home.root / rel, folder / rel)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        where = exc.filename or folder
        raise StorageError(f"cannot make the experiment's scratch workspace: {where}: "
                           f"{exc.strerror or exc}",
                           hint="check free space and permissions under .pipeflow/tmp") from exc
    return folder


def remove_scratch(folder: Path) -> None:
    """Remove a scratch folder; a file a stage made read-only does not stop it."""
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


def workspace_files(root: Path, skip: frozenset[str] = frozenset()) -> Iterator[str]:
    """Project-relative POSIX paths of the workspace's own files: in a git work tree,
    what git tracks or would track (``ls-files --cached --others --exclude-standard``:
    ignored files are outputs, data or junk); elsewhere every file. Never anything
    under ``.pipeflow`` or ``.git``, nor below a path in ``skip``."""
    listed = _git_files(root)
    for rel in listed if listed is not None else _walk(root):
        top = rel.split("/", 1)[0]
        if top in (DOT, ".git") or _under(rel, skip):
            continue
        yield rel


def ignored_entries(root: Path, skip: frozenset[str]) -> Iterator[str]:
    """What git ignores and no stage declares — a project's ``.venv``, a downloaded
    model — as project paths to link into the scratch folder: commands find them as
    in the workspace. Never an entry holding, or inside, a declared output or source
    (a stage would write through the link), ``__pycache__``, ``.pipeflow`` or ``.git``."""
    listed = _git(root, "--others", "--ignored", "--exclude-standard", "--directory")
    for entry in listed or ():
        rel = entry.rstrip("/")
        top = rel.split("/", 1)[0]
        if (top in (DOT, ".git") or rel.rsplit("/", 1)[-1] == "__pycache__"
                or _under(rel, skip) or any(_under(s, frozenset((rel,))) for s in skip)):
            continue
        yield rel


def _under(rel: str, skip: frozenset[str]) -> bool:
    if rel in skip:
        return True
    parts = rel.split("/")
    return any("/".join(parts[:i]) in skip for i in range(1, len(parts)))


def _git_files(root: Path) -> list[str] | None:
    return _git(root, "--cached", "--others", "--exclude-standard", "--deduplicate")


def _git(root: Path, *options: str) -> list[str] | None:
    """``git ls-files -z OPTIONS`` in ``root``: paths relative to it, or None outside
    a git work tree."""
    try:
        done = subprocess.run(["git", "-C", str(root), "ls-files", "-z", *options],
                              capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return [p for p in done.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def _walk(root: Path) -> Iterator[str]:
    for folder, dirs, files in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        if rel_folder == ".":
            dirs[:] = [d for d in dirs if d not in (DOT, ".git")]
        for name in files:
            rel = name if rel_folder == "." else f"{rel_folder}/{name}"
            yield rel.replace(os.sep, "/")


def _copy(src: Path, dst: Path) -> None:
    """Copy one file (a symlink as a symlink; a folder git lists, a submodule, is
    skipped; a file deleted since git listed it is skipped too)."""
    try:
        if src.is_dir() and not src.is_symlink():
            return
    except OSError:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copy2(src, dst, follow_symlinks=False)
    except FileNotFoundError:
        if os.path.lexists(src):
            raise
