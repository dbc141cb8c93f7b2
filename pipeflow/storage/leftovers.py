"""Temporary files: the names the store and checkouts give them, and those a killed
command left behind, found where pipeflow makes them.

pipeflow writes every file under a temporary name first (see ``atomicfile`` and the
object store), so a process killed mid-write leaves one behind; nothing reads them.
Two collectors:

- ``gc`` removes every one older than its grace period (a younger one may belong to
  a command still running), searching the project root, the folders of the lock's and
  the spec's outputs and sources (inside folder outputs too), ``.pipeflow/`` and the
  cache (objects, records, pointers, and ``cache/tmp/`` where downloads land);
- the next writer (:func:`sweep`, called where it is about to write anyway) removes
  those of a *dead* writer: the pid in the name names no process here and the file
  has not been written for :data:`STALE_AGE` (a writer in another pid namespace, or
  on another machine sharing the cache, keeps writing its temp, so its mtime stays
  fresh), or older than the grace period whoever wrote it.
  A temp of a live writer is never removed: its pid is alive, or it is fresh.

Only exact pipeflow temp names (:func:`is_ours`) are ever removed, wherever they are.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeflow.files.repolock import pid_alive

TEMP_SUFFIX = ".pftmp"
"""The end of the temporary names the store and checkouts make (:func:`temp_path`)."""

STALE_AGE = 300.0
"""Seconds without a write after which a dead pid's temporary file is garbage."""

_WRITER = re.compile(r"\.(\d{1,10})[.-][0-9a-f]+(?:-\d+)?(?:\.tmp|\.part|\.pftmp)$")
"""The writer's pid in the names pipeflow makes: ``.NAME.PID.HEX.tmp`` (atomicfile),
``.NAME.PID-HEX[-N].pftmp`` (store, checkouts, links), ``OID.PID-HEX.part``
(downloads). Older names without a pid are left to gc's grace period."""

_ATOMIC = re.compile(r"^\..+\.\d{1,10}\.[0-9a-f]{8}\.tmp$")
"""atomicfile's names: ``.NAME.PID.HEX8.tmp``."""
_PFTMP = re.compile(r"^\..+\.\d{1,10}-[0-9a-f]{1,16}(?:-\d+)?\.pftmp$")
"""The store's, checkouts' and links' names: ``.NAME.PID-HEX[-N].pftmp``."""
_PART = re.compile(r"^[0-9a-f]{16,64}\.\d{1,10}-[0-9a-f]{8}\.part$")
"""Downloads in ``<cache>/tmp``: ``OID.PID-HEX8.part``."""
CACHE_FOLDERS = ("objects", "runs", "runcache", "tmp")
"""The folders pipeflow makes in the cache: the only ones gc searches there (the
cache may be a folder the user shares with other files, e.g. ``~`` by mistake)."""


def temp_path(dst: str, tag: str) -> str:
    """A temporary name beside ``dst`` (hidden, ending in ``.pftmp``); ``tag`` starts
    with the writer's pid and a ``-`` so that a later writer can tell a dead one's
    leftovers."""
    head, tail = os.path.split(dst)
    return os.path.join(head, f".{tail}.{tag}{TEMP_SUFFIX}")


class TempNames:
    """One writer's temporary names, unique per process and instance without a random
    call per file, and the sweep of a dead writer's leftovers from each folder it is
    about to write into (once per folder: one listing, no walk)."""

    def __init__(self) -> None:
        self.tag = f"{os.getpid()}-{os.urandom(3).hex()}-"
        self._counter = itertools.count()
        self._swept: set[str] = set()

    def beside(self, dst: str) -> str:
        """A fresh temporary name in ``dst``'s folder."""
        return temp_path(dst, f"{self.tag}{next(self._counter)}")

    def sweep_once(self, folder: str) -> None:
        """Remove the stale temporary files in ``folder``, the first time it is named."""
        if folder not in self._swept:
            self._swept.add(folder)
            sweep([Path(folder)])


@dataclass(frozen=True)
class Leftover:
    """One temporary file: where, when it was last written, how big."""

    path: Path
    modified: float
    size: int


def is_ours(name: str) -> bool:
    """Whether ``name`` is exactly a temporary name pipeflow makes. Nothing else is
    ever removed as a leftover, wherever it is: a plain file in ``<cache>/tmp`` or a
    ``.notes.tmp`` of the user's is not pipeflow's to delete."""
    return (_PFTMP.match(name) is not None or _ATOMIC.match(name) is not None
            or _PART.match(name) is not None)


def _stat(path: str) -> Leftover | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None  # gone meanwhile: its writer finished or another gc was first
    return Leftover(Path(path), st.st_mtime, st.st_size)


def _walk(folder: Path, skip: Path | None = None) -> Iterator[str]:
    """Temporary files at any depth under ``folder`` (not following links), the
    subtree ``skip`` left out."""
    skip_s = os.fspath(skip) if skip is not None else None
    for here, dirs, files in os.walk(folder):
        if skip_s is not None:
            dirs[:] = [d for d in dirs if os.path.join(here, d) != skip_s]
        yield from (os.path.join(here, n) for n in files if is_ours(n))


def _shallow(folder: Path) -> Iterator[str]:
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if entry.is_file(follow_symlinks=False) and is_ours(entry.name):
                    yield entry.path
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return


def local_leftovers(root: Path, dot: Path, cache_dir: Path, output_paths: Iterable[str],
                    output_folders: Iterable[str] = ()) -> list[Leftover]:
    """Temporary files in the project at ``root`` (``.pipeflow`` at ``dot``, the cache
    at ``cache_dir``, possibly elsewhere), the folders of ``output_paths`` included and
    everything inside ``output_folders``."""
    found: dict[str, None] = dict.fromkeys(inside_folders(root, output_folders))
    dot, cache_dir = dot.resolve(), cache_dir.resolve()
    found.update(dict.fromkeys(_walk(dot, skip=cache_dir)))
    found.update(dict.fromkeys(_shallow(cache_dir)))  # reflink probes
    for sub in CACHE_FOLDERS:  # never the rest of the cache's folder
        found.update(dict.fromkeys(_walk(cache_dir / sub)))
    folders = {root} | {p.parent for p in in_project(root, output_paths)}
    for folder in folders:
        for path in _shallow(folder):
            found[path] = None
    return [item for path in sorted(found) if (item := _stat(path)) is not None]


def writer_pid(name: str) -> int | None:
    """The pid of the process that made the temporary file ``name``, if it says."""
    found = _WRITER.search(name)
    return int(found.group(1)) if found else None


def stale(item: Leftover, now: float, grace: float) -> bool:
    """Whether :func:`sweep` may remove ``item``: older than ``grace``, or left by a
    writer that is dead here and silent for :data:`STALE_AGE` seconds."""
    age = now - item.modified
    if age > grace:
        return True
    pid = writer_pid(item.path.name)
    return pid is not None and age > STALE_AGE and not pid_alive(pid)


def sweep(folders: Iterable[Path], *, grace: float = float("inf")) -> int:
    """Remove the :func:`stale` temporary files directly in ``folders`` (no walk; only
    names :func:`is_ours` accepts). Returns how many went. Errors are ignored: a temp
    another sweeper took, or a folder we may not list, is no reason to stop the
    command that sweeps on its way."""
    import time

    now = time.time()
    removed = 0
    for folder in folders:
        for path in _shallow(folder):
            item = _stat(path)
            if item is not None and stale(item, now, grace):
                try:
                    os.unlink(path)
                    removed += 1
                except OSError:
                    pass
    return removed


def in_project(root: Path, rels: Iterable[str]) -> Iterator[Path]:
    """``root / rel`` for each ``rel`` that is a plain project path and does not leave
    the project through a link (paths come from a lock another clone may have made:
    gc never deletes outside the project because of them)."""
    from pipeflow.files.safepath import problem, within

    real_root = os.path.realpath(root)
    for rel in rels:
        if problem(rel) is not None:
            continue
        real = os.path.realpath(root / rel)
        if within(real, real_root):
            yield root / rel


def inside_folders(root: Path, folders: Iterable[str]) -> Iterator[str]:
    """Temporary files at any depth inside the output or source folders ``folders``
    (a checkout killed while replacing one of their files)."""
    for top in in_project(root, folders):
        if top.is_symlink() or not top.is_dir():
            continue
        for here, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d not in (".git", ".pipeflow")]
            yield from (os.path.join(here, n) for n in files if is_ours(n))
