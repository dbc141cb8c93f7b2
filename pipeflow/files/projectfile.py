"""The one door through which pipeflow reads the project's own small files.

The spec, params and ``vars`` files, ``pipeline.lock``, ``.pipeflow/config``,
``.pipeflowignore``, ``.gitattributes``, an output folder's ``.gitignore`` and
``.pipeflow/tags.jsonl`` come from the repository, and git happily commits any of
them as a symlink. Read naively, a link to ``/dev/zero`` is read whole before any size
limit applies (a MemoryError, or all the RAM), ``/dev/stdin`` hangs a read command,
and a link to ``~/.ssh/id_rsa`` is read and, for the files pipeflow rewrites, copied
into a project file the next push publishes. So :func:`read`:

- refuses a symlink outright for a file pipeflow rewrites (``inside=None``): an
  atomic rewrite replaces the link, so anything read through it would be copied into
  the project (nothing is read, the error names the file);
- follows a link for a file pipeflow only reads when it resolves inside the project
  (``inside=root``), like params files and dependencies;
- never opens anything under ``/dev``, ``/proc`` or ``/sys``;
- opens without blocking (a FIFO cannot hang it), refuses anything ``fstat`` does not
  call a regular file, and reads at most the kind's limit plus one byte
  (:mod:`pipeflow.files.safeload` holds the limits).

Every refusal is the caller's error class (exit 2), naming the file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pipeflow.errors import Location, PipeflowError
from pipeflow.files import safeload
from pipeflow.files.safepath import is_special

_LINK_HINT = ("pipeflow rewrites this file and never reads or writes through a link: "
              "replace the link with a regular file (`rm {name}`; a link here came from "
              "the repository or was made by hand)")
_OUTSIDE_HINT = ("pipeflow reads only inside the project: if the repository committed "
                 "this link, remove it (`rm {name}`)")


def read(path: Path, kind: str, *, name: str | None = None,
         error: safeload.ErrorFactory = safeload.spec_error,
         inside: Path | None = None) -> bytes | None:
    """The bytes of the project file ``path`` (None when it does not exist), at most
    the limit of ``kind``.

    ``name`` is how errors show the file (default: ``path``). ``inside``: the folder a
    symlink may lead into (the project root) for a file pipeflow only reads; None for
    a file pipeflow rewrites, where any symlink is refused."""
    shown = name if name is not None else str(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:  # NotADirectoryError, EACCES, ...
        raise error(f"cannot read: {exc.strerror or exc}", Location(shown)) from None
    _check_place(path, shown, st, error, inside)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    if inside is None:
        flags |= os.O_NOFOLLOW  # a link swapped in since the lstat is refused, not read
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", Location(shown)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"is {_kind(st.st_mode)}, not a regular file: pipeflow reads it "
                        "only as a file", Location(shown))
        safeload.check_size(st.st_size, shown, kind, error)
        data = _read_at_most(fd, safeload.limits(kind).max_bytes + 1)
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", Location(shown)) from None
    finally:
        os.close(fd)
    safeload.check_size(len(data), shown, kind, error)  # it grew while we read
    return data


def read_text(path: Path, kind: str, *, name: str | None = None,
              error: safeload.ErrorFactory = safeload.spec_error,
              inside: Path | None = None) -> str | None:
    """:func:`read`, decoded as UTF-8 (a bad byte is a located error)."""
    data = read(path, kind, name=name, error=error, inside=inside)
    shown = name if name is not None else str(path)
    return None if data is None else safeload.decode(data, shown, error)


def _check_place(path: Path, shown: str, st: os.stat_result,
                 error: safeload.ErrorFactory, inside: Path | None) -> None:
    """Refuse a link pipeflow must not follow, and anything leading into a device."""
    if not stat.S_ISLNK(st.st_mode):
        real = os.path.realpath(path)  # a folder above may still be a link
        if is_special(real):
            raise error(f"leads to {real}, a device or kernel file: pipeflow never reads "
                        "/dev, /proc or /sys", Location(shown))
        return
    resolved = os.path.realpath(path)
    target = os.readlink(path)
    # both when they differ: "/dev/stdin (/proc/1/fd/pipe:[9])", "../x (/home/u/x)"
    where = resolved if target == resolved else f"{target} ({resolved})"
    if is_special(resolved):
        raise _with_hint(error(f"is a symlink to {where}, a device or kernel file: "
                               "pipeflow never reads /dev, /proc or /sys", Location(shown)),
                         _OUTSIDE_HINT.format(name=shown))
    if inside is None:
        raise _with_hint(error(f"is a symlink (to {where}); nothing was read through it",
                               Location(shown)), _LINK_HINT.format(name=shown))
    root = os.path.realpath(inside)
    if resolved != root and not resolved.startswith(root + os.sep):
        raise _with_hint(error(f"is a symlink leading outside the project, to {where}; "
                               "nothing was read through it", Location(shown)),
                         _OUTSIDE_HINT.format(name=shown))


def _with_hint(exc: PipeflowError, hint: str) -> PipeflowError:
    """``exc`` with ``hint``: the fix for a link is removing it, whatever the file."""
    exc.hint = hint
    return exc


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
