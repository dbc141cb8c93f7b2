"""Every git command pipeflow runs, pinned to the repository around the project.

A clone is data, never instructions, and git's own discovery can be led astray by
committed files: a project in ``ml/`` that also commits ``ml/HEAD``, ``ml/config``,
``ml/objects/`` and ``ml/refs/`` is a bare repository to git, which checks "is this
folder a repository" before walking up to the real ``.git``; its committed config
then runs ``core.fsmonitor`` on every git call. So pipeflow finds the repository
itself, the way git does minus the bare check (the nearest folder holding a ``.git``
folder or ``gitdir:`` file, which git never checks out from a commit), lets git
confirm it from that work tree (so git's ``safe.directory`` ownership check still
applies), and pins every later call there with ``--git-dir``/``--work-tree``.

Each call also runs with ``safe.bareRepository=explicit`` (git >= 2.38; older git
ignores the key), no fsmonitor, no hooks, no pager, and without the environment
variables that choose another repository (they would describe some other
repository than the one around the project). No project outside a repository
reaches git at all: the answer is "not a git repository".
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NOT_A_REPO", "Located", "clone", "init", "locate", "run"]

NOT_A_REPO = 128
"""The exit status of a call that did not run because there is no repository."""

_HARDENED = ("--no-pager", "-c", "safe.bareRepository=explicit", "-c", "core.fsmonitor=false",
             "-c", "core.hooksPath=/dev/null")
_REPO_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE",
              "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE",
              "GIT_CEILING_DIRECTORIES", "GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_PAGER",
              "GIT_EXTERNAL_DIFF")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _REPO_VARS}


def _found(start: Path) -> tuple[Path, Path] | None:
    """(work tree, git dir) of the nearest folder at or above ``start`` holding a
    ``.git`` folder or a ``gitdir:`` file (a linked worktree or submodule), found
    without git."""
    for folder in (start, *start.parents):
        dotgit = folder / ".git"
        if dotgit.is_dir():
            return folder, dotgit
        if dotgit.is_file():
            try:
                with open(dotgit, encoding="utf-8", errors="replace") as fh:
                    head = fh.read(4096).strip()
            except OSError:
                return None
            if not head.startswith("gitdir:"):
                return None
            return folder, folder / head[len("gitdir:"):].strip()  # an absolute one stays
    return None


def work_tree_of(start: Path) -> Path | None:
    """The work tree around ``start``, found without git (see :func:`_found`)."""
    found = _found(start)
    return found[0] if found else None


def git_dir_of(start: Path) -> Path | None:
    """The git dir of the repository around ``start`` (a linked worktree's own), found
    without git: for the quick file checks (index, config) that need no git call."""
    found = _found(start)
    return found[1] if found else None


@dataclass(frozen=True)
class Located:
    """The repository around a folder: its git dir and work tree (absolute)."""

    git_dir: str
    work_tree: str


_confirmed: dict[Path, Located] = {}  # per process; only found ones (a `git init` may follow)


def locate(root: Path) -> Located | None:
    """The repository holding ``root`` (None: none, or git cannot be run there)."""
    top = work_tree_of(Path(os.path.abspath(root)))
    if top is None:
        return None
    if top not in _confirmed:
        found = _confirm(top)
        if found is None:
            return None
        _confirmed[top] = found
    return _confirmed[top]


def _confirm(top: Path) -> Located | None:
    try:  # git confirms from the work tree itself (its ownership check applies there)
        done = subprocess.run(["git", *_HARDENED, "rev-parse", "--absolute-git-dir"],
                              cwd=top, env=_env(), capture_output=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    git_dir = done.stdout.decode("utf-8", "surrogateescape").strip()
    if done.returncode != 0 or not git_dir:
        return None
    return Located(git_dir, str(top))


def run(root: Path, *args: str, stdin: bytes | None = None, timeout: float = 60,
        repo_optional: bool = False) -> subprocess.CompletedProcess[bytes]:
    """``git ARGS`` run from ``root`` against the repository holding it, hardened.

    Outside a repository nothing runs (the answer has status ``NOT_A_REPO``), unless
    ``repo_optional`` (``git merge-file``, absolute paths): then it runs from ``/``
    with no repository. Raises OSError (no git) or SubprocessError (timeout) as
    ``subprocess.run`` does.
    """
    located = locate(root)
    argv = ["git", *args]
    if located is None and repo_optional:
        return subprocess.run(["git", *_HARDENED, *args], cwd="/", env=_env(), input=stdin,
                              capture_output=True, timeout=timeout,
                              stdin=None if stdin is not None else subprocess.DEVNULL)
    if located is None:
        return subprocess.CompletedProcess(argv, NOT_A_REPO, b"",
                                           b"fatal: not a git repository (pipeflow found no "
                                           b".git folder around the project)")
    return subprocess.run(
        ["git", f"--git-dir={located.git_dir}", f"--work-tree={located.work_tree}",
         *_HARDENED, *args],
        cwd=root, env=_env(), input=stdin, capture_output=True, timeout=timeout,
        stdin=None if stdin is not None else subprocess.DEVNULL)


def init(folder: Path) -> bool:
    """``git init`` of ``folder`` as a repository of its own (never the repository
    around it, which :func:`run` would pin), hardened; whether it worked."""
    try:
        done = subprocess.run(["git", *_HARDENED, "init", "-q", str(folder)], cwd="/",
                              env=_env(), capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def clone(url: str, dest: Path, *, depth: int | None = 1,
          timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    """``git clone URL DEST`` (a new folder), hardened as every call here and more: no
    submodules, no ``ext::`` transport, the URL never read as an option. Raises OSError
    (no git) or SubprocessError (timeout) as ``subprocess.run`` does."""
    args = ["clone", "-q", "--no-recurse-submodules"]
    if depth is not None:
        args += ["--depth", str(depth)]
    return subprocess.run(["git", *_HARDENED, "-c", "protocol.ext.allow=never", *args, "--",
                           url, str(dest)], cwd="/", env=_env(), capture_output=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def blob_sizes(root: Path, specs: list[str]) -> list[int | None]:
    """The size of each blob ``REV:PATH`` names (None where there is none), from one
    ``git cat-file --batch-check``: read before a blob, so that a huge file in an old
    commit is refused by its size instead of being read into memory."""
    if not specs:
        return []
    out = run(root, "cat-file", "--batch-check",
              stdin="".join(f"{s}\n" for s in specs).encode("utf-8", "surrogateescape"))
    lines = out.stdout.split(b"\n") if out.returncode == 0 else []
    sizes: list[int | None] = []
    for i in range(len(specs)):
        fields = lines[i].split() if i < len(lines) else []
        ok = len(fields) == 3 and fields[1] == b"blob" and fields[2].isdigit()
        sizes.append(int(fields[2]) if ok else None)
    return sizes
