"""A full disk (or an exhausted quota): one clear error wherever pipeflow writes.

Every write site that knows its path turns such a failure into :class:`DiskFull`
through :func:`check`; the CLI turns any other one that escapes (a write deep in a
library, without a path) into the same error with :func:`error`. Other ``OSError``\\ s
are left to the caller.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from pipeflow.errors import DiskFull

_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13
"""``sqlite3.SQLITE_FULL``, written out so that this module imports no sqlite3."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full."""
    if isinstance(exc, OSError):
        return exc.errno in _ERRNOS
    return getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL


def error(exc: BaseException, path: str | os.PathLike[str] | None = None,
          what: str = "write") -> DiskFull:
    """The :class:`DiskFull` for ``exc`` (call only when :func:`is_disk_full`), naming
    ``path`` (else the file the OSError names) and what could not be done."""
    where = path if path is not None else getattr(exc, "filename", None)
    quota = isinstance(exc, OSError) and exc.errno == errno.EDQUOT
    why = "the disk quota is exceeded" if quota else "the disk is full"
    if where is None:
        return DiskFull(f"{why}: cannot {what}",
                        hint="free space (`df -h` shows which file system is full), then "
                             "run the command again")
    shown = os.fspath(where)
    folder = os.path.dirname(os.path.abspath(shown)) or shown
    return DiskFull(f"{why}: cannot {what} {shown}",
                    hint=f"free space on the file system that holds {folder} (`df -h "
                         f"{folder}` shows it), then run the command again")


def check(exc: BaseException, path: str | os.PathLike[str] | Path, what: str = "write") -> None:
    """Raise :class:`DiskFull` (from ``exc``) when ``exc`` says the disk is full."""
    if is_disk_full(exc):
        raise error(exc, path, what) from exc
