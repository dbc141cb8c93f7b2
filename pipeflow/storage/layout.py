"""Where an object lives in a store: the one place that knows the ``oid[:2]/oid[2:]``
fan-out, for the local cache and every remote alike. Nothing outside ``storage/``
imports this: other layers ask the store or the remote by object id."""

from __future__ import annotations


def object_key(oid: str) -> str:
    """The object's path under a store's ``objects/`` folder (``ab/cdef...``)."""
    return f"{oid[:2]}/{oid[2:]}"


def oid_of(key: str) -> str:
    """The object id a ``ab/cdef...`` key names (the inverse of :func:`object_key`)."""
    return key.replace("/", "", 1)
