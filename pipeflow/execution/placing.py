"""The client side of a task's outputs: fetch what the worker uploaded into the local
cache (each object verified against its hash) and check it out into the workspace,
all or nothing, so the scheduler commits it as it commits a local run."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

from pipeflow.content.hashing import HashInfo
from pipeflow.errors import TaskFailed
from pipeflow.execution.task import TaskOutput
from pipeflow.files import workspace_fs
from pipeflow.project.project import Project
from pipeflow.storage.exchange import download_verified
from pipeflow.storage.remote import Remote


def fetch(repo: Project, remote: Remote, oids: Iterable[str],
          stop: threading.Event | None = None) -> None:
    """Bring the objects the local cache lacks from ``remote``, verified."""
    store = repo.store
    todo = {oid for oid in oids if not store.has(oid)}

    def accept(tmp: Path, oid: str) -> None:
        store.add_file(tmp, oid, move=True)

    if todo:
        download_verified(remote, todo, repo.cache_dir / "tmp", accept, stop)


def place_outputs(repo: Project, remote: Remote, declared: Iterable[str],
                  outputs: Iterable[TaskOutput], stop: threading.Event | None = None) -> None:
    """Download (verified) and check out what the worker made; TaskFailed when it
    is not exactly the ``declared`` outputs, and on any failure nothing of it stays
    in the workspace."""
    store, outputs = repo.store, list(outputs)
    wanted, got = sorted(declared), sorted(o.path for o in outputs)
    if got != wanted:
        raise TaskFailed(f"the worker returned outputs {got}, not {wanted}")
    fetch(repo, remote, {o.oid for o in outputs if o.isdir}, stop)
    files: set[str] = set()
    for out in outputs:
        if out.isdir:
            files.update(e.hash for e in store.manifest(out.oid).entries)
        else:
            files.add(out.oid)
    fetch(repo, remote, files, stop)
    for out in outputs:  # all checked first: the cleanup below deletes
        workspace_fs.check_parents(repo.root, out.path)
    placed: list[Path] = []
    try:
        for out in outputs:
            dest = repo.root / out.path
            placed.append(dest)
            info = HashInfo(out.oid, out.size, out.isdir, out.nfiles)
            store.checkout(info, dest, linker=repo.linker, executable=out.executable,
                           root=repo.root)
    except BaseException:
        for dest in placed:
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest, ignore_errors=True)
            else:
                dest.unlink(missing_ok=True)
        raise
