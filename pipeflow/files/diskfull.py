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
_SQLITE_IOERR, _SQLITE_FULL = 10, 13
"""``sqlite3.SQLITE_IOERR`` and ``SQLITE_FULL``, written out: no sqlite3 import here."""


def is_disk_full(exc: BaseException, path: str | os.PathLike[str] | None = None) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full. SQLite reports a
    failed write of its shared-memory file as a plain I/O error: with ``path``, such an
    error counts when that file system has no block or no inode left."""
    if isinstance(exc, OSError):
        return exc.errno in _ERRNOS
    code = getattr(exc, "sqlite_errorcode", None)
    if code == _SQLITE_FULL:
        return True
    return (path is not None and isinstance(code, int) and code & 0xFF == _SQLITE_IOERR
            and _no_space(path))


def _no_space(path: str | os.PathLike[str]) -> bool:
    folder = os.path.dirname(os.path.abspath(path))
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail == 0 or (st.f_files > 0 and st.f_favail == 0)


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
    if is_disk_full(exc, path):
        raise error(exc, path, what) from exc
