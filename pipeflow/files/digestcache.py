"""This machine's memory of the digests of secret ``env.vars``.

A secret variable counts in a stage's fingerprint by a slow salted digest (scrypt, see
:func:`pipeflow.credentials.env_value`), so that the digest in ``pipeline.lock`` cannot
be guessed fast. Every command that fingerprints stages (``status`` included) needs it
again, and recomputing it would make every no-op ``status`` pay that slowness once per
variable (benchmarks/RESULTS.md). So the digest is kept in the machine cache
(``pipeflow.files.machinecache``), found by a fast hash of the variable — but a KEYED one
(BLAKE2b keyed with 32 random bytes of this machine), never the value and never an
unkeyed hash of it: reading the machine cache alone gives no way to test a guess, fast
or slow.

The key lives beside the machine cache in ``env-digest.key``, readable by its owner
only (0600); a key file that others may read or that another user owns is not used
(the digest is then recomputed each time, as before). Deleting either file is safe.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from functools import cache
from pathlib import Path

KEY_FILE = "env-digest.key"
_PREFIX = "env-digest:"


def _key_path() -> Path:
    from pipeflow.files.machinecache import machine_cache_path

    return machine_cache_path().parent / KEY_FILE


@cache
def _machine_key(path: Path) -> bytes | None:
    """This machine's key (made on first use), or None when it cannot be kept safely."""
    found = _read_key(path)
    if found is None and not path.exists():
        from pipeflow.files import atomicfile

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomicfile.write_text(path, secrets.token_hex(32) + "\n", mode=0o600)
        except OSError:
            return None
        found = _read_key(path)  # another process may have written its own first
    return found


def _read_key(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            return None  # someone else could read it, or planted it
        text = os.read(fd, 200).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        return None
    return key if len(key) == 32 else None


def _entry(name: str, value: str, team_key: str) -> str | None:
    key = _machine_key(_key_path())
    if key is None:
        return None
    h = hashlib.blake2b(key=key, digest_size=32, person=b"pipeflow-envvar")
    for part in (name, team_key, value):
        data = part.encode("utf-8", "surrogateescape")
        h.update(len(data).to_bytes(8, "big") + data)  # lengths: no ambiguous joins
    return _PREFIX + h.hexdigest()


def recall(name: str, value: str, team_key: str) -> str | None:
    """The digest of ``name=value`` (with the team key) this machine computed, or None."""
    from pipeflow.files.machinecache import machine_cache

    entry = _entry(name, value, team_key)
    return None if entry is None else machine_cache().get(entry)


def remember(name: str, value: str, team_key: str, digest: str) -> None:
    """Keep ``digest`` for the next command (silently skipped when it cannot be)."""
    from pipeflow.files.machinecache import machine_cache

    entry = _entry(name, value, team_key)
    if entry is not None:
        machine_cache().put(entry, digest)
