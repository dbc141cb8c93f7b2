"""Objects between a remote and a local folder, by object id: which the remote holds,
send the ones it lacks, fetch some verified. What a remote task's two sides (the
client and the worker) exchange; ``storage.layout`` says where each object lives."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from pipeflow.credentials import redact
from pipeflow.errors import StorageError
from pipeflow.hashing import hash_file
from pipeflow.storage.layout import object_key
from pipeflow.storage.remote import Job, Remote, parallel

EXISTS_ONE_BY_ONE = 64
"""Up to this many objects, ask the remote about each; beyond, list it once."""


def present(remote: Remote, oids: Iterable[str], stop: threading.Event | None = None) -> set[str]:
    """Which of ``oids`` the remote holds: one question each for a few, one listing
    for many (a listing of a large bucket costs more than a handful of HEADs)."""
    wanted = sorted(set(oids))
    if len(wanted) > EXISTS_ONE_BY_ONE:
        return remote.objects() & set(wanted)

    def ask(oid: str) -> Job[bool]:
        def job(_stop: threading.Event) -> bool:
            try:
                return bool(remote.fs.exists(remote.path("objects", object_key(oid))))
            except remote.errors as exc:
                raise StorageError(f"remote '{remote.name}' ({redact(remote.url)}): cannot "
                                   f"look up objects: {redact(str(exc))}") from exc
        return job

    answers = parallel([ask(oid) for oid in wanted], stop=stop)
    return {oid for oid, there in zip(wanted, answers, strict=True) if there}


def upload_missing(remote: Remote, sources: Mapping[str, Path],
                   stop: threading.Event | None = None) -> int:
    """Upload the objects (oid -> local file) the remote lacks; returns how many.
    Setting ``stop`` (Ctrl-C on the client) ends it within a chunk: Cancelled."""
    todo = sorted(set(sources) - present(remote, sources, stop))

    def send(oid: str) -> Job[None]:
        return lambda halt: remote.upload(sources[oid], "objects", object_key(oid), halt)

    parallel([send(oid) for oid in todo], stop=stop)
    return len(todo)


def download_verified(remote: Remote, oids: Iterable[str], folder: Path,
                      accept: Callable[[Path, str], None],
                      stop: threading.Event | None = None) -> None:
    """Download each object into ``folder``, check its bytes against its name, then hand
    the file to ``accept(path, oid)`` (which must move or copy it away); an object
    whose bytes do not match is deleted and reported, never accepted."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = sorted(set(oids))

    def get(oid: str) -> Job[bool]:
        def job(halt: threading.Event) -> bool:
            """True once accepted, False when the bytes do not match ``oid``."""
            tmp = folder / f"{oid}.{os.getpid()}-{os.urandom(4).hex()}.part"
            try:
                remote.download("objects", object_key(oid), tmp, halt)
                if hash_file(tmp) != oid:
                    return False
                accept(tmp, oid)
                return True
            finally:
                tmp.unlink(missing_ok=True)
        return job

    accepted = parallel([get(oid) for oid in wanted], stop=stop)
    rejected = [oid for oid, ok in zip(wanted, accepted, strict=True) if not ok]
    if rejected:
        listed = ", ".join(o[:12] for o in rejected[:5])
        raise StorageError(f"{len(rejected)} object(s) on remote '{remote.name}' did not match "
                           f"their hash and were rejected: {listed}",
                           hint="push them again from a clone that has good copies")
