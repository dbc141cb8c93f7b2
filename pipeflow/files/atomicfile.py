"""One way to write a file: a unique temporary name in the same folder, then a rename.

Readers, a crash or a Ctrl-C at any moment see the old file or the new one, never
half of either. ``durable=True`` also fsyncs the file and its folder, for files whose
loss after a power cut would matter (the lock, config edits, logs the team shares).
Temporary names start with ``.`` and end with ``.tmp`` so that listings skip them and
``gc`` can clean any a killed process left behind.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TMP_SUFFIX = ".tmp"


def temp_name(path: Path) -> Path:
    """A fresh temporary name beside ``path`` (same folder, so the rename is atomic)."""
    return path.with_name(temp_filename(path.name))


def temp_filename(name: str) -> str:
    """A fresh temporary file name for a file called ``name``, for a folder that is
    not a local path (a remote's)."""
    return f".{name}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}"


def is_temp_name(name: str) -> bool:
    """Whether a file name is one :func:`temp_name` makes."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def write_bytes(path: Path, data: bytes, *, durable: bool = False, mode: int = 0o666) -> None:
    """Replace ``path`` with ``data`` atomically; raises OSError (nothing left behind).
    ``mode`` (before the umask): 0o600 for a file only its owner may read."""
    tmp = temp_name(path)
    try:
        # O_EXCL: never write through a file or link someone else put there; 0o666 lets
        # the user's umask decide the mode, as for any new file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            # write() and fsync() name no file: say which one (a full disk, say)
            raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc
        raise
    if durable:
        fsync_dir(path.parent)


def write_text(path: Path, text: str, *, durable: bool = False, mode: int = 0o666) -> None:
    """:func:`write_bytes` of ``text`` in UTF-8."""
    write_bytes(path, text.encode("utf-8"), durable=durable, mode=mode)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Staged:
    """A file filled under a temporary name beside ``path`` (by a download, say),
    then put in place by :meth:`publish`, which may wait until its siblings are
    checked too. As a context manager it is removed on the way out unless
    published: ``with Staged(final) as staged: fill(staged.tmp); staged.publish()``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = temp_name(path)

    def publish(self) -> None:
        """Rename the temporary file over ``path``."""
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        """Remove the temporary file, if it is there."""
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> Staged:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()
