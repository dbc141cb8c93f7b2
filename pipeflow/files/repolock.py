"""The repository lock: one writer at a time, freed by the kernel when its holder dies.

``fcntl.flock`` on ``.pipeflow/lock``. The holder writes its pid, command line and
start time into the file so that a second writer can say who is in the way.
Readers (``status``, ``dag``) never take it.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path
from types import TracebackType

from pipeflow import faults
from pipeflow.errors import LockedError, PipeflowError, RepoLockError
from pipeflow.files import diskfull, projectfile


def read_holder(path: Path) -> dict[str, object] | None:
    """Who wrote the lock file last (may be stale: check the pid)."""
    try:
        # a link, a device or a huge file here came from elsewhere: no holder
        raw = projectfile.read(path, "config")  # a holder record: well under 1 MB
        data = json.loads(raw.decode("utf-8") if raw else "null")
    except (PipeflowError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def holder_alive(holder: dict[str, object] | None) -> bool:
    """Whether the process named in a holder record still exists."""
    return pid_alive(holder.get("pid") if holder else None)


def pid_alive(pid: object) -> bool:
    """Whether a process with id ``pid`` exists on this machine (one we may not signal
    counts as alive; anything but a positive int as dead)."""
    # 0 and negative pids name process groups for kill(): never a holder.
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False  # larger than any pid: nobody's
    return True


def describe(holder: dict[str, object] | None) -> str:
    if not holder:
        return "another pipeflow process"
    started = holder.get("started")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(started)))
        if isinstance(started, (int, float))
        else "?"
    )
    return f"pid {holder.get('pid')} (`{holder.get('command')}`, started {when})"


def _unwritable(path: Path, exc: OSError) -> RepoLockError:
    msg = f"cannot take the repository lock {path}: {exc.strerror or exc}"
    return RepoLockError(msg, hint="pipeflow writes its lock there: make the folder "
                                   "writable (and remove whatever else is in its place)")


class RepoLock:
    """Context manager holding the exclusive repository lock."""

    def __init__(self, path: Path, *, wait: float = 0.0) -> None:
        self.path = path
        self.wait = wait
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock (waiting up to ``wait`` seconds) and write who holds it.

        A full disk (the lock file is created, or its holder record written) is a
        :class:`~pipeflow.errors.DiskFull` naming the file; the lock is then not held.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            diskfull.check(exc, self.path, "create the repository lock")
            raise _unwritable(self.path, exc) from exc
        try:
            self._take(fd)
            info = {"pid": os.getpid(), "command": " ".join(["pipeflow", *sys.argv[1:]]),
                    "started": time.time()}
            os.ftruncate(fd, 0)
            faults.point("repolock.write")
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except BaseException as exc:
            os.close(fd)  # frees the flock too: a failed acquire holds nothing
            if isinstance(exc, OSError):
                diskfull.check(exc, self.path, "write the repository lock")
                raise _unwritable(self.path, exc) from exc
            raise
        self._fd = fd

    def _take(self, fd: int) -> None:
        deadline = time.monotonic() + max(self.wait, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = describe(read_holder(self.path))
                    msg = f"the repository is locked by {holder}"
                    hint = (
                        "wait for it to finish, or pass --wait SECONDS to wait for the lock"
                    )
                    raise LockedError(msg, hint=hint) from None
                time.sleep(0.05)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RepoLock:
        self.acquire()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
