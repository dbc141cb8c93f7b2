"""Objects between the local store and a remote, by object id.

Transfers run on a few threads (:func:`pipeflow.storage.remote.parallel`: a Ctrl-C or
the first error stops them all); every download is checked against its id before it
enters the store, and an upload lands whole (:meth:`Remote.upload`). Deciding what
moves (what the other side lacks) is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
