"""Bytes between file descriptors, hashed on the way: one read both copies and checks.

Shared by the store's writer (bytes coming in) and the checkout (bytes going out);
every object the store writes is created exclusively, read-only for all.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TypeVar

import xxhash

from pipeflow import faults
from pipeflow.content.hashing import thread_buffer
from pipeflow.errors import StorageError

_T = TypeVar("_T")

OBJECT_MODE = 0o444
CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def view() -> memoryview:
    """This thread's copy buffer: the store may be used from several threads."""
    return memoryview(thread_buffer())


def copy_and_hash(sfd: int, dfd: int, buf: memoryview) -> tuple[str, int]:
    """Copy ``sfd`` to ``dfd`` through ``buf``, hashing the bytes on the way: one read
    of the source both verifies and copies. Returns the hash and the bytes copied."""
    h = xxhash.xxh3_128()
    total = 0
    while n := os.readv(sfd, [buf]):
        chunk = buf[:n]
        h.update(chunk)
        total += n
        faults.point("add.chunk")  # each buffer copied into the store (repro's commits too)
        while chunk:
            chunk = chunk[os.write(dfd, chunk) :]
    return h.hexdigest(), total


def hash_fd(fd: int, buf: memoryview) -> str:
    """The hash of what ``fd`` holds from its offset on."""
    h = xxhash.xxh3_128()
    while n := os.readv(fd, [buf]):
        h.update(buf[:n])
    return h.hexdigest()


def fill(src: str, tmp: str, write: Callable[[int, int], _T]) -> _T:
    """Open ``src`` and a new ``tmp``, let ``write`` fill it, make it read-only
    whatever the umask; ``tmp`` never survives a failure."""
    sfd = os.open(src, READ)
    try:
        dfd = os.open(tmp, CREATE, OBJECT_MODE)
        try:
            result = write(sfd, dfd)
            os.fchmod(dfd, OBJECT_MODE)
        finally:
            os.close(dfd)
    except BaseException:
        unlink_quietly(tmp)
        raise
    finally:
        os.close(sfd)
    return result


def check_copy(got: str, oid: str, src: str, tmp: str) -> None:
    """Refuse a copy of ``src`` whose bytes hash to ``got`` rather than ``oid``."""
    if got != oid:
        unlink_quietly(tmp)
        raise StorageError(
            f"{src} changed while being stored (expected {oid}, read {got})",
            hint="do not modify outputs while pipeflow stores them; run again",
        )


def unlink_quietly(path: str) -> None:
    """Remove ``path`` if it is there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
