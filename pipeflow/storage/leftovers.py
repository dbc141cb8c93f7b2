"""Temporary files a killed command left behind, found where pipeflow makes them.

pipeflow writes every file under a temporary name first (see ``atomicfile`` and the
object store), so a process killed mid-write leaves one behind; nothing reads them,
and ``gc`` removes those older than its grace period (a younger one may belong to a
command still running). Places searched: the project root and the folders of the
lock's outputs (temporary names of the lock, ``.gitignore`` edits and checkouts),
``.pipeflow/`` and the cache (objects, records, pointers, and ``cache/tmp/`` where
downloads land).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeflow.atomicfile import is_temp_name
from pipeflow.storage.links import TEMP_SUFFIX

_ATOMIC = re.compile(r"^\..+\.\d+\.[0-9a-f]{8}\.tmp$")
"""atomicfile's names exactly: outside pipeflow's own folders a loose ``.x.tmp``
may be the user's."""


@dataclass(frozen=True)
class Leftover:
    """One temporary file: where, when it was last written, how big."""

    path: Path
    modified: float
    size: int


def _ours_anywhere(name: str) -> bool:
    return name.endswith(TEMP_SUFFIX) or _ATOMIC.match(name) is not None


def _ours_inside(name: str) -> bool:
    return name.endswith(TEMP_SUFFIX) or is_temp_name(name)


def _stat(path: str) -> Leftover | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None  # gone meanwhile: its writer finished or another gc was first
    return Leftover(Path(path), st.st_mtime, st.st_size)


def _walk(folder: Path, cache_tmp: Path) -> Iterator[str]:
    """Temporary files under ``folder`` (pipeflow's own: every temp name counts)."""
    tmp_s = os.fspath(cache_tmp)
    for here, _dirs, files in os.walk(folder):
        everything = here == tmp_s  # downloads wait here under plain names
        for name in files:
            if everything or _ours_inside(name):
                yield os.path.join(here, name)


def _shallow(folder: Path) -> Iterator[str]:
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if entry.is_file(follow_symlinks=False) and _ours_anywhere(entry.name):
                    yield entry.path
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return


def local_leftovers(root: Path, dot: Path, cache_dir: Path,
                    output_paths: Iterable[str]) -> list[Leftover]:
    """Temporary files in the project at ``root`` (``.pipeflow`` at ``dot``, the cache
    at ``cache_dir``, possibly elsewhere), the folders of ``output_paths`` included."""
    found: dict[str, None] = {}
    dot, cache_dir = dot.resolve(), cache_dir.resolve()
    for folder in (dot,) if cache_dir.is_relative_to(dot) else (dot, cache_dir):
        for path in _walk(folder, cache_dir / "tmp"):
            found[path] = None
    folders = {root} | {(root / p).parent for p in output_paths}
    for folder in folders:
        for path in _shallow(folder):
            found[path] = None
    return [item for path in sorted(found) if (item := _stat(path)) is not None]
