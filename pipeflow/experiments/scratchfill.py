"""What of the workspace a scratch workspace gets, and how: copies of the project's own
files, links to environments, copies (or, past a budget, links) of what git ignores.

- The workspace's own files — what git tracks or would track
  (``ls-files --cached --others --exclude-standard``), uncommitted edits included;
  outside git every file — are copied, except declared outputs and source data (the
  run restores them from the cache) and ``.pipeflow``/``.git``.
- ``persist`` outputs are copied too: a stage that appends to one finds what
  ``repro`` would find.
- What git ignores and no stage declares (a downloaded model, a notes folder) is
  copied, so that a command writing into it writes into the scratch's copy. A
  Python or conda environment (a folder holding ``pyvenv.cfg`` or ``conda-meta``) is
  linked instead: too big to copy, and its paths are absolute. So is whatever no
  longer fits in :data:`COPY_BUDGET`: those links are reported (a command writing
  into one writes into the workspace). An ignored folder holding a declared output
  is entered, and its other entries are taken one by one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeflow.project.project import DOT

COPY_BUDGET = 256 * 1024 * 1024
"""Bytes of git-ignored files copied into one scratch workspace; past it, links."""

ENVIRONMENT_MARKERS = ("pyvenv.cfg", "conda-meta")


@dataclass
class Fill:
    """What filling one scratch workspace did."""

    skip: frozenset[str]
    """Project paths never taken from the workspace (declared outputs, sources)."""
    budget: int = COPY_BUDGET
    linked: list[str] = field(default_factory=list)
    """Ignored entries linked because the budget ran out (environments aside)."""


def fill(home: Path, root: Path, skip: frozenset[str], persist: frozenset[str]) -> Fill:
    """Fill ``root`` (a scratch project folder) from the workspace at ``home``."""
    done = Fill(skip, COPY_BUDGET)
    listed = _git_ls(home, "--cached", "--others", "--exclude-standard", "--deduplicate")
    if listed is None:  # outside git: every entry, ignored or not
        for rel in _walk(home):
            if not _excluded(rel, skip):
                _take(home, root, rel, done)
    else:
        for rel in listed:
            if not _excluded(rel, skip):
                _copy(home / rel, root / rel)
        for rel in _ignored(home, skip):
            _take(home, root, rel, done)
    for rel in sorted(persist):
        if os.path.lexists(home / rel):
            _replace(root / rel)
            _copy_tree(home / rel, root / rel)
    return done


def environments(home: Path) -> list[str]:
    """The Python or conda environments git ignores in the workspace at ``home`` (a
    folder holding ``pyvenv.cfg`` or ``conda-meta``): what a checkout of a commit
    lacks, and a stage's command may name (``.venv/bin/python``)."""
    return [rel for rel in _ignored(home, frozenset())
            if any((home / rel / m).exists() for m in ENVIRONMENT_MARKERS)]


def _git_ls(root: Path, *options: str) -> list[str] | None:
    """``git ls-files -z OPTIONS`` in ``root``: paths relative to it, or None outside
    a git work tree."""
    from pipeflow.git import gitcmd

    try:
        out = gitcmd.run(root, "ls-files", "-z", *options, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return [p for p in out.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def _excluded(rel: str, skip: frozenset[str]) -> bool:
    return rel.split("/", 1)[0] in (DOT, ".git") or _under(rel, skip)


def _under(rel: str, skip: frozenset[str]) -> bool:
    """Whether ``rel`` is a path of ``skip`` or lies below one."""
    parts = rel.split("/")
    return any("/".join(parts[:i]) in skip for i in range(1, len(parts) + 1))


def _holds(rel: str, skip: frozenset[str]) -> bool:
    """Whether a path of ``skip`` lies below ``rel``."""
    return any(s.startswith(rel + "/") for s in skip)


def _ignored(home: Path, skip: frozenset[str]) -> Iterator[str]:
    listed = _git_ls(home, "--others", "--ignored", "--exclude-standard", "--directory")
    for entry in listed or ():
        rel = entry.rstrip("/")
        if _excluded(rel, skip) or rel.rsplit("/", 1)[-1] == "__pycache__":
            continue
        yield rel


def _take(home: Path, root: Path, rel: str, done: Fill) -> None:
    """One entry git ignores (or any entry, outside git): see the module docstring."""
    src = home / rel
    if src.is_dir() and not src.is_symlink():
        if any((src / m).exists() for m in ENVIRONMENT_MARKERS):
            _link(src, root / rel)
            return
        if _holds(rel, done.skip):
            for name in sorted(os.listdir(src)):
                child = f"{rel}/{name}"
                if not _excluded(child, done.skip):
                    _take(home, root, child, done)
            return
    size = _size(src, done.budget + 1)
    if size > done.budget:
        _link(src, root / rel)
        done.linked.append(rel)
        return
    done.budget -= size
    _copy_tree(src, root / rel)


def _size(path: Path, limit: int) -> int:
    """Bytes below ``path`` (links not followed), counting stopped past ``limit``."""
    try:
        st = path.lstat()
    except OSError:
        return 0
    if not path.is_dir() or path.is_symlink():
        return st.st_size
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
            if total > limit:
                return total
    return total


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dst)


def _replace(dst: Path) -> None:
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    elif os.path.lexists(dst):
        dst.unlink()


def _copy_tree(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True)
    else:
        shutil.copy2(src, dst, follow_symlinks=False)


def _copy(src: Path, dst: Path) -> None:
    """Copy one file git lists (a symlink as a symlink; a folder git lists, a
    submodule, is skipped; a file deleted since git listed it is skipped too)."""
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


def _walk(root: Path) -> Iterator[str]:
    """Outside git: every top-level entry but ``.pipeflow`` and ``.git`` (each taken
    whole by :func:`_take`, which enters only folders holding outputs)."""
    for name in sorted(os.listdir(root)):
        if name not in (DOT, ".git"):
            yield name
