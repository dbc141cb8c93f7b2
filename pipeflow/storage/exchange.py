"""Objects between the local store (or a remote task's scratch folder) and a remote,
by object id.

Transfers run on a few threads (:func:`pipeflow.storage.remote.parallel`: a Ctrl-C or
the first error stops them all); every download is checked against its id before it
enters the store, and an upload lands whole (:meth:`Remote.upload`). Deciding what
moves (what the other side lacks) is the caller's.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeflow.errors import StorageError
from pipeflow.storage.remote import Job, Progress, Remote, parallel
from pipeflow.storage.store import ObjectStore


@dataclass(frozen=True)
class Fetched:
    """What a download of objects came to."""

    stored: int
    missing: tuple[str, ...]
    """Asked for, but not on the remote."""
    rejected: tuple[str, ...]
    """On the remote, but their bytes do not match their id: not stored."""


def push_objects(store: ObjectStore, remote: Remote, oids: Iterable[str],
                 progress: Progress | None = None) -> None:
    """Upload the objects ``oids`` (all held by ``store``) to ``remote``."""

    def send(oid: str) -> Job[None]:
        return lambda stop: remote.upload_object(oid, store.path_of(oid), stop)

    parallel([send(oid) for oid in oids], progress)


def fetch_objects(store: ObjectStore, remote: Remote, oids: Iterable[str],
                  have_remote: set[str], progress: Progress | None = None) -> Fetched:
    """Download ``oids`` into ``store``, each verified; ``have_remote``: what the
    remote holds (a listing the caller made)."""
    wanted = list(oids)
    present = [oid for oid in wanted if oid in have_remote]

    def get(oid: str) -> Job[bool]:
        return lambda stop: store.add_fetched(
            oid, lambda tmp: remote.download_object(oid, tmp, stop))

    stored = parallel([get(oid) for oid in present], progress)
    return Fetched(sum(stored), tuple(oid for oid in wanted if oid not in have_remote),
                   tuple(oid for oid, ok in zip(present, stored, strict=True) if not ok))


def download_objects(store: ObjectStore, remote: Remote, oids: Iterable[str],
                     listed: set[str] | None = None) -> list[str]:
    """Bring ``oids`` (those the remote has) into ``store``, verified; returns the oids
    that could not be had (absent or rejected). ``listed``: the remote's objects, when
    the caller has just listed them (else one listing is made, if anything is asked)."""
    wanted = sorted(set(oids))
    have_remote = listed if listed is not None else remote.objects() if wanted else set()
    got = fetch_objects(store, remote, wanted, have_remote)
    return sorted(set(got.missing) | set(got.rejected))


# --- a remote task's two sides (client and worker): a folder, not a store -----------

EXISTS_ONE_BY_ONE = 64
"""Up to this many objects, ask the remote about each; beyond, list it once."""


def present(remote: Remote, oids: Iterable[str], stop: threading.Event | None = None) -> set[str]:
    """Which of ``oids`` the remote holds: one question each for a few, one listing
    for many (a listing of a large bucket costs more than a handful of HEADs)."""
    wanted = sorted(set(oids))
    if len(wanted) > EXISTS_ONE_BY_ONE:
        return remote.objects() & set(wanted)

    def ask(oid: str) -> Job[bool]:
        return lambda _stop: remote.has_object(oid)

    answers = parallel([ask(oid) for oid in wanted], stop=stop)
    return {oid for oid, there in zip(wanted, answers, strict=True) if there}


def upload_missing(remote: Remote, sources: Mapping[str, Path],
                   stop: threading.Event | None = None) -> int:
    """Upload the objects (oid -> local file) the remote lacks; returns how many.
    Setting ``stop`` (Ctrl-C on the client) ends it within a chunk: Cancelled."""
    todo = sorted(set(sources) - present(remote, sources, stop))

    def send(oid: str) -> Job[None]:
        return lambda halt: remote.upload_object(oid, sources[oid], halt)

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
                if not remote.download_object(oid, tmp, halt):
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
