"""Content hashing: xxh3-128 of files and bytes, and where hashing may reach.

A file's hash is xxh3-128 over its bytes, streamed with ``readinto`` into one reused
buffer per thread (``BUF_SIZE``; never ``mmap``: a dependency truncated while being
hashed would kill the process with SIGBUS; never fresh large ``read()`` buffers: their
page faults cost more than the hashing).

A repository is data: a committed link must not make a read command hash the machine.
``check_inside`` says when a path leaves the project or leads into
``/dev``, ``/proc`` or ``/sys``. Directory manifests live in ``pipeflow.content.manifest``;
hashing workspace paths with the stat cache in ``pipeflow.content.hasher``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import xxhash

from pipeflow.errors import OutsideProjectError
from pipeflow.files import safepath

HASH_NAME = "xxh3-128"
HASH_HEX_LEN = 32
BUF_SIZE = 1 << 17
"""Small enough to stay in the CPU's cache between the kernel's copy and the hash,
large enough that the per-read overhead does not count (benchmarks/RESULTS.md, W3)."""

_local = threading.local()


def thread_buffer() -> bytearray:
    """This thread's reusable read buffer (``BUF_SIZE``)."""
    buf: bytearray | None = getattr(_local, "buf", None)
    if buf is None:
        buf = bytearray(BUF_SIZE)
        _local.buf = buf
    return buf


def hash_file(path: Path | str, buf: bytearray | None = None) -> str:
    """xxh3-128 of a file's bytes as 32 lowercase hex digits.

    ``buf`` is the read buffer to reuse (default: one ``BUF_SIZE`` buffer per thread).
    """
    view = memoryview(buf if buf is not None else thread_buffer())
    h = xxhash.xxh3_128()
    update = h.update
    with open(path, "rb", buffering=0) as f:
        readinto = f.readinto
        while n := readinto(view):
            update(view[:n])
    return h.hexdigest()


def hash_bytes(data: bytes) -> str:
    """xxh3-128 of ``data`` as 32 lowercase hex digits."""
    return xxhash.xxh3_128_hexdigest(data)


def is_hash(text: str) -> bool:
    """True when ``text`` looks like one of our hashes (32 lowercase hex digits)."""
    # strip() stops at the first non-hex character from either end: C speed, no loop.
    return len(text) == HASH_HEX_LEN and not text.strip("0123456789abcdef")


@dataclass(frozen=True)
class HashInfo:
    """The hash of a workspace path; for a directory also its file count."""

    hash: str
    size: int
    isdir: bool = False
    nfiles: int | None = None


def check_inside(root: Path | str, rel: str, *, what: str = "path",
                 hint: str | None = None) -> None:
    """Raise OutsideProjectError when ``rel`` (root-relative) resolves outside ``root``
    or into /dev, /proc or /sys: for files read whole (params files), not hashed."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root, rel))
    if safepath.within(real, real_root):
        return
    raise OutsideProjectError(rel, rel, real, special=safepath.is_special(real), what=what,
                              hint=hint)
