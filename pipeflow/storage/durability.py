"""Durability against power loss, paid once per run rather than once per object.

On Linux, ``syncfs(2)`` on one descriptor per distinct file system flushes everything
the run wrote there (objects, their directories, workspace files) in one call. Elsewhere
each file and each distinct parent directory is fsync'ed. Never ``os.sync()``, which
would wait for every file system of the machine.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterable
from functools import cache

from pipeflow.errors import StorageError


@cache
def _syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only a run that wrote something pays for ctypes

    try:
        # The running process already maps libc; find_library would spawn ldconfig.
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def sync_paths(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Make the given files (and their directory entries) durable. Paths that no
    longer exist are skipped; a failed sync raises StorageError."""
    parents: dict[str, list[str]] = {}
    for p in paths:
        s = os.fspath(p)
        parents.setdefault(os.path.dirname(s) or ".", []).append(s)
    if not parents:
        return
    syncfs = _syncfs()
    if syncfs is not None:
        _sync_filesystems(syncfs, parents)
    else:
        _fsync_each(parents)


class SyncAhead:
    """Starts writing back what a run has stored so far on a background thread, while
    the run goes on (the next stage's command runs meanwhile): the one sync that
    must precede the lock then finds little left to do. Best effort: its errors are
    left to that final sync, which alone makes the lock's promise."""

    def __init__(self, min_objects: int = 1000, min_bytes: int = 256 << 20) -> None:
        self._thread: threading.Thread | None = None
        self._min_objects = min_objects
        self._min_bytes = min_bytes
        self._objects = 0
        self._bytes = 0

    def offer(self, written: Callable[[], list[str]], objects: int, nbytes: int) -> None:
        """Start a background sync of ``written()`` when at least ``min_objects``
        objects or ``min_bytes`` bytes were stored since the last one (``objects`` and
        ``nbytes`` are running totals). Below that it is not worth it: each sync
        forces a journal commit that the next small stage would wait for (a chain of
        100 one-line stages ran 15 % slower with one per stage)."""
        if (objects - self._objects < self._min_objects
                and nbytes - self._bytes < self._min_bytes):
            return
        self._objects, self._bytes = objects, nbytes
        self.start(written())

    def start(self, paths: list[str]) -> None:
        """Sync ``paths`` in the background, unless a sync is still running (the final
        one covers what this would) or only per-file fsync exists here."""
        if not paths or _syncfs() is None:
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, args=(paths,), daemon=True,
                                        name="pipeflow-sync-ahead")
        self._thread.start()

    @staticmethod
    def _run(paths: list[str]) -> None:
        with contextlib.suppress(Exception):
            sync_paths(paths)


def _sync_filesystems(syncfs: Callable[[int], int], parents: dict[str, list[str]]) -> None:
    # A file lives on the file system of its directory (a mount point aside), so one
    # stat per distinct directory finds every device involved.
    by_device: dict[int, str] = {}
    for folder in parents:
        try:
            by_device.setdefault(os.stat(folder).st_dev, folder)
        except FileNotFoundError:
            continue
    for folder in by_device.values():
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            continue  # removed since: nothing of it left to make durable
        try:
            if syncfs(fd) != 0:
                import ctypes

                err = ctypes.get_errno()
                raise StorageError(f"cannot sync the file system of {folder}: {os.strerror(err)}")
        finally:
            os.close(fd)


def _fsync_each(parents: dict[str, list[str]]) -> None:
    try:
        for folder, files in parents.items():
            for f in files:
                try:
                    fd = os.open(f, os.O_RDONLY)
                except (FileNotFoundError, IsADirectoryError):
                    continue
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            try:
                dfd = os.open(folder, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                # Some platforms refuse fsync on a directory; the files are synced anyway.
                with contextlib.suppress(OSError):
                    os.fsync(dfd)
            finally:
                os.close(dfd)
    except OSError as exc:
        raise StorageError(f"cannot sync written files: {exc}") from exc
