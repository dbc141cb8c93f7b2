"""Where an object lives in a store: the one place that knows the ``oid[:2]/oid[2:]``
fan-out, for the local cache and every remote alike. Nothing outside ``storage/``
imports this: other layers ask the store or the remote by object id."""

from __future__ import annotations

import os

from pipeflow.content.hashing import is_hash
from pipeflow.errors import StorageError


def object_key(oid: str) -> str:
    """The object's path under a store's ``objects/`` folder (``ab/cdef...``)."""
    return f"{oid[:2]}/{oid[2:]}"


def oid_of(key: str) -> str:
    """The object id a ``ab/cdef...`` key names (the inverse of :func:`object_key`)."""
    return key.replace("/", "", 1)


def is_object_key(key: str) -> bool:
    """Whether ``key`` (relative to ``objects/``) is where an object lives, rather than
    a temporary upload or a stray file."""
    return len(key) == 33 and key[2] == "/" and is_hash(oid_of(key))


def object_path(objects_dir: str, oid: str) -> str:
    """Where object ``oid`` lives in the local store at ``objects_dir`` (whether or not
    it exists); StorageError if ``oid`` is not an object id (never a path)."""
    if not is_hash(oid):
        raise StorageError(f"not an object id: {oid!r}")
    return f"{objects_dir}/{object_key(oid)}"


def shard_of(oid: str) -> str:
    """The folder (below ``objects/``) that holds ``oid``."""
    return oid[:2]


def local_oids(objects_dir: str) -> list[str]:
    """The ids of the objects a local store at ``objects_dir`` holds, sorted: names in
    two-letter shard folders that make an object id (temporary names are hidden and
    longer; anything else is not pipeflow's and is left alone, as on a remote)."""
    found: list[str] = []
    try:
        shards = sorted(os.scandir(objects_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return found
    for shard in shards:
        if len(shard.name) != 2 or not shard.is_dir():
            continue
        names = sorted(e.name for e in os.scandir(shard.path))
        found += [shard.name + n for n in names
                  if len(n) == 30 and not n.startswith(".") and is_hash(shard.name + n)]
    return found
