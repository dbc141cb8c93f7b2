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
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeflow.errors import PipeflowError, StorageError
from pipeflow.experiments.scratch import Scratch, ScratchProject, remove_scratch
from pipeflow.project.project import DOT, Project
from pipeflow.reproduce.plan import Placed

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pipeflow.records.index import RunIndex
    from pipeflow.records.records import RecordStore

SCRATCH = ("tmp", "reproduce")
"""Where reproduction workspaces live, below ``.pipeflow``."""


@dataclass
class ReproProject(ScratchProject):
    """A scratch project whose run records and index are its own (removed with it)."""

    @cached_property
    def records(self) -> RecordStore:
        from pipeflow.records.records import RecordStore

        return RecordStore(self.dot / "records", self.dot / "chain")

    @cached_property
    def index(self) -> RunIndex:
        from pipeflow.records.index import RunIndex

        index = RunIndex(self.dot / "state" / "index.db", self.records)
        self._closers.append(index)
        index.refresh()
        return index


def base_of(home: Project) -> Path:
    return home.dot.joinpath(*SCRATCH)


def sweep(home: Project) -> int:
    """Remove the workspaces a killed reproduction left (call holding ``home``'s
    repository lock), ending the stage processes still working there."""
    from pipeflow.execution.runner import kill_below

    base = base_of(home)
    try:
        names = os.listdir(base)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    if names:
        kill_below(base)
    for name in names:
        remove_scratch(Scratch(base / name, base / name))
    return len(names)


def make(home: Project, commit: str, label: str) -> tuple[Scratch, ReproProject]:
    """A worktree of ``home``'s repository at ``commit`` and the project in it.
    StorageError when the folder cannot be made; UsageError-free: a commit that is not
    in this clone was refused by :func:`has_commit` before."""
    base = base_of(home)
    top = base / f"{_safe(label)}-{secrets.token_hex(4)}"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot(exc, base) from exc
    prefix = _git(home.root, "rev-parse", "--show-prefix") or ""
    made = _git(home.root, "worktree", "add", "--detach", "-q", str(top), commit)
    if made is None:
        remove_scratch(Scratch(top, top))
        raise StorageError(f"cannot make the reproduction's scratch workspace at {top}: "
                           f"`git worktree add` of commit {commit[:12]} failed",
                           hint="check free space and permissions under .pipeflow/tmp")
    root = top / prefix.strip() if prefix.strip() else top
    scratch = Scratch(top, root)
    try:
        (root / DOT).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        remove_scratch(scratch)
        raise _cannot(exc, root / DOT) from exc
    return scratch, ReproProject(root, home=home)


def has_commit(home: Project, commit: str) -> bool:
    return _git(home.root, "cat-file", "-e", f"{commit}^{{commit}}") is not None


def place(project: ReproProject, items: Iterable[Placed],
          pull: Callable[[list[str]], object] | None) -> dict[str, str]:
    """Check out each input from the cache into the workspace (``pull``: bring what the
    cache lacks from the remote first). Returns path -> why it could not be placed."""
    from pipeflow.content.hashing import HashInfo

    store, problems = project.store, {}
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
            continue
        dest = project.root / item.path
        try:
            _clear(dest)
            store.checkout(info, dest, linker=project.linker, root=project.root)
        except (OSError, PipeflowError) as exc:
            problems[item.path] = f"its input {item.path} cannot be checked out ({exc})"
    return problems


def set_params(root: Path, values: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Write the recorded params values into the workspace's params files. Returns
    file -> why it could not be written."""
    from pipeflow.experiments.overrides import write_overrides

    problems: dict[str, str] = {}
    for file, keys in values.items():
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


def _git(cwd: Path, *args: str) -> str | None:
    """A git command's output, or None when it failed (:mod:`pipeflow.git.gitcmd`)."""
    from pipeflow.git import gitcmd

    try:
        out = gitcmd.run(cwd, *args, timeout=300)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode("utf-8", "surrogateescape") if out.returncode == 0 else None
