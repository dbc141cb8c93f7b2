"""Where a workspace write really lands: never outside the project, whatever links say.

A repository can commit a symlink (``link -> /some/outside/dir``) and declare an
output ``link/out``. The path is lexically fine (relative, normal: it passes
:mod:`pipeflow.files.safepath`), but every write through it (a checkout, the pruning of a
folder checkout, the removal of outputs before a stage runs, a ``.gitignore``) would
land in the outside folder. So before pipeflow writes or deletes at a project path,
``check_parents`` resolves the folders above it and refuses the path when one of
them leads out of the project, or into ``.git/`` or ``.pipeflow/`` (a link
``hooks -> .git/hooks`` inside the project is as bad as one outside it). Symlinks
that stay inside the project keep working.

How: the project root is resolved once (``realpath``); then each component of the
path's folder below the root is ``lstat``-ed, and only a component that is a link is
resolved and checked. That is one ``lstat`` per folder level, right before the
operation, and nothing for a path at the root. It is a check, not an ``openat``
walk: pipeflow's writers are path-based (the object store's checkout, shutil's copy
and tree removal, threads placing links), and the attack this stops is a link
*committed in the repository*, which exists before pipeflow starts. A link swapped in
between the check and the write needs a process writing in the workspace at that
moment (a stage's own command): such a process can already write anywhere its user
can, so the check is not what stops it.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from pipeflow.errors import PipeflowError
from pipeflow.files.safepath import is_reserved


class UnsafeWriteError(PipeflowError):
    """A workspace path whose folder resolves outside the project (or into ``.git/``
    or ``.pipeflow/``) through a symlink: nothing is written or deleted there."""

    def __init__(self, rel: str, link: str, target: str, *, why: str) -> None:
        super().__init__(
            f"'{rel}': its folder '{link}' is a symlink to {target}, {why}; nothing was "
            "written or deleted there",
            hint="pipeflow writes only inside the project: replace the symlink with a real "
                 "folder, or declare the path somewhere else",
        )
        self.rel = rel
        self.link = link


ENV_MARKERS = ("pyvenv.cfg", "conda-meta")
"""What makes a folder a Python environment (virtualenv/venv, conda)."""


class EnvironmentFolderError(UnsafeWriteError):
    """A workspace path inside a Python environment (a folder holding ``pyvenv.cfg``
    or ``conda-meta/``): a file pipeflow put there (a ``.pth``, a module, a script in
    ``bin/``) would run the next time anyone uses that environment."""

    def __init__(self, rel: str, env: str, marker: str) -> None:
        PipeflowError.__init__(
            self,
            f"'{rel}' is inside the Python environment '{env}' (it holds {marker}); "
            "pipeflow never writes there, and nothing was written or deleted",
            hint="a file in a virtualenv or conda env runs when the environment is used: "
                 "keep data and outputs outside it, and remove the entry from "
                 "pipeline.lock or the spec",
        )
        self.rel = rel
        self.link = env


class EnvironmentInDataError(PipeflowError):
    """Cached data that would make a Python environment where it is checked out: a
    ``pyvenv.cfg`` or ``conda-meta`` anywhere in it. A folder pipeflow writes is no
    environment when the write starts, so the check of existing folders cannot see it;
    once the lock entry is gone it would look like a venv made here (issue 11)."""

    def __init__(self, entry: str, member: str) -> None:
        super().__init__(
            f"pipeline.lock entry '{entry}' holds '{member}', which would make it (or a "
            "folder in it) a Python environment; checkout and pull never write one, and "
            "nothing was written",
            hint="an environment is made on each machine (`python3 -m venv`, or a stage "
                 "that builds it), never restored from the cache: remove the entry from "
                 "pipeline.lock and keep the environment out of source data and outputs",
        )
        self.entry = entry
        self.member = member


def check_not_environment(entry: str, members: Iterable[str] = ()) -> None:
    """Raise EnvironmentInDataError when the lock entry ``entry`` (a file path, or a
    folder with the manifest member paths ``members``) names ``pyvenv.cfg`` or
    ``conda-meta`` at any depth."""
    for rel, shown in ((entry, entry), *((m, f"{entry}/{m}") for m in members)):
        if any(part in ENV_MARKERS for part in rel.split("/")):
            raise EnvironmentInDataError(entry, shown)


def _env_marker(folder: str) -> str | None:
    """The marker that makes ``folder`` a Python environment, or None."""
    for marker in ENV_MARKERS:
        if os.path.lexists(f"{folder}/{marker}"):
            return marker
    return None


@functools.lru_cache(maxsize=8)
def _real_root(root: str) -> str:
    return os.path.realpath(root)


def _problem(root_real: str, real: str) -> str | None:
    """Why the resolved folder ``real`` is no place to write, or None."""
    if real == root_real:
        return None
    if not real.startswith(root_real + "/"):
        return "outside the project"
    top = real[len(root_real) + 1:].split("/")
    if any(is_reserved(part) for part in top):
        return "inside .git/ or .pipeflow/"
    return None


def check_parents(root: Path | str, rel: str, *, made_by_stage: bool = False) -> None:
    """Raise UnsafeWriteError when a folder above the project path ``rel`` is a
    symlink leading out of the project (or into ``.git/``/``.pipeflow/``), and
    EnvironmentFolderError when ``rel`` is in (or is) a virtualenv or conda env.

    ``rel`` is root-relative and normal (a spec path, or one :mod:`pipeflow.files.safepath`
    accepted). Folders that do not exist yet are fine: pipeflow creates them as real
    folders (and a checkout never writes a folder that is an environment:
    ``check_not_environment``). ``made_by_stage``: ``rel`` is a stage's declared
    output that ``repro`` removes and stores; it may itself be an environment the
    stage builds (its command runs anyway), a folder above it may not."""
    if rel in ("", "."):
        return
    root_real = _real_root(os.fspath(root))
    cur = root_real
    parts = rel.split("/")
    for i, part in enumerate(parts):
        nxt = f"{cur}/{part}"
        try:
            st = os.lstat(nxt)
        except (FileNotFoundError, NotADirectoryError):
            return  # the rest is made by us, as real folders
        if not stat.S_ISDIR(st.st_mode) and i == len(parts) - 1:
            return  # the file itself: its folders were checked
        if stat.S_ISLNK(st.st_mode):
            nxt = os.path.realpath(nxt)
            why = _problem(root_real, nxt)
            if why is not None:
                raise UnsafeWriteError(rel, "/".join(parts[: i + 1]), nxt, why=why)
        marker = _env_marker(nxt)  # two stats per existing folder, no read
        if marker is not None and not (made_by_stage and i == len(parts) - 1):
            raise EnvironmentFolderError(rel, "/".join(parts[: i + 1]), marker)
        cur = nxt


def parent_problem(root: Path | str, rel: str, *, made_by_stage: bool = False) -> str | None:
    """The message of ``check_parents``' refusal of ``rel``, or None."""
    try:
        check_parents(root, rel, made_by_stage=made_by_stage)
    except UnsafeWriteError as exc:
        return exc.message
    return None


def check_place(root: Path | str, place: Path | str) -> None:
    """``check_parents`` for an absolute or cwd-relative ``place`` below ``root``; a
    place that is not below ``root`` at all is refused too."""
    rel = os.path.relpath(os.path.abspath(place), os.path.abspath(root))
    if rel == ".." or rel.startswith("../"):
        raise UnsafeWriteError(rel, ".", os.path.abspath(place), why="outside the project")
    check_parents(root, rel)
