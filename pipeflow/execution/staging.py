"""A worker's private tree: a scratch folder outside any project, filled with exactly
the inputs a task names, each object fetched from the remote and verified."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pipeflow.content.hashing import is_hash
from pipeflow.content.manifest import Manifest
from pipeflow.errors import StorageError
from pipeflow.execution.task import Input
from pipeflow.storage.exchange import download_verified
from pipeflow.storage.remote import Remote


def check_rel(path: str) -> None:
    """Refuse a task path that is empty, absolute or climbs out (``..``)."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", "..") for p in parts):
        raise StorageError(f"refusing the unsafe path {path!r} in a task")


def _enclosing_project(folder: Path) -> Path | None:
    for parent in (folder, *folder.parents):
        if (parent / ".pipeflow").is_dir() or (parent / "pipeline.yaml").is_file():
            return parent
    return None


def make_scratch(client_root: str = "") -> Path:
    """A fresh folder under this machine's temporary directory, checked to lie outside
    any pipeflow project (the stage must see only the tree it was given)."""
    scratch = Path(tempfile.mkdtemp(prefix="pipeflow-task-")).resolve()
    inside = _enclosing_project(scratch)
    if inside is None and client_root:
        root = Path(client_root)
        inside = root if scratch == root or root in scratch.parents else None
    if inside is not None:
        shutil.rmtree(scratch, ignore_errors=True)
        raise StorageError(f"the worker's temporary folder {scratch} lies inside the project "
                           f"{inside}", hint="set TMPDIR on the worker to a folder outside "
                                             "any project")
    return scratch


def materialize(remote: Remote, inputs: Iterable[Input], work: Path, objs: Path) -> None:
    """Build the tree of ``inputs`` under ``work`` from the remote, every object
    verified; manifests first, since a folder's files are known only from it."""
    inputs = list(inputs)
    for item in inputs:
        check_rel(item.path)
        if not is_hash(item.oid):
            raise StorageError(f"refusing the object id {item.oid!r} in a task")
    got: dict[str, Path] = {}

    def keep(tmp: Path, oid: str) -> None:
        final = objs / oid
        os.replace(tmp, final)
        got[oid] = final

    download_verified(remote, {i.oid for i in inputs if i.isdir}, objs, keep)
    places: list[tuple[str, Path, bool]] = []
    for item in inputs:
        if item.isdir:
            manifest = Manifest.from_bytes(got[item.oid].read_bytes())
            if manifest.hash != item.oid:
                raise StorageError(f"object {item.oid} is not a canonical folder manifest")
            (work / item.path).mkdir(parents=True, exist_ok=True)
            places += [(e.hash, work / item.path / e.path, e.executable)
                       for e in manifest.entries]
        else:
            places.append((item.oid, work / item.path, item.executable))
    download_verified(remote, {oid for oid, _p, _x in places} - set(got), objs, keep)
    _place(places, got)


def _place(places: list[tuple[str, Path, bool]], got: dict[str, Path]) -> None:
    uses: dict[str, int] = {}
    for oid, _p, _x in places:
        uses[oid] = uses.get(oid, 0) + 1
    for oid, dest, executable in places:
        dest.parent.mkdir(parents=True, exist_ok=True)
        uses[oid] -= 1
        if uses[oid] == 0:
            os.replace(got[oid], dest)  # last use: the download itself becomes the file
        else:
            shutil.copyfile(got[oid], dest)
        os.chmod(dest, 0o755 if executable else 0o644)
