"""Paths read from files a clone or a remote supplies, checked before any use.

pipeline.lock, folder manifests, run records and the tag log are data that
anyone with write access to the repository or the remote can craft. A path in
them is used only when it is a plain project path: relative, ``/``-separated,
already normal (no ``.``/``..`` segments, no empty segments, no trailing
slash), free of NUL and control characters, inside neither ``.git/`` nor
``.pipeflow/`` at any depth, and within the length limits of common file
systems. Anything else is refused with the file and entry that named it, before
a byte is written: these checks are what keep ``pull`` from writing
``../x``, ``/etc/x`` or ``.git/hooks/pre-commit``.

The spec's own paths go through :mod:`pipeflow.spec.paths`, which also joins a
stage's ``wdir``; the rule for what a stored path may be is this module's.
"""

from __future__ import annotations

from pipeflow.errors import PipeflowError

# A whole path and one segment, as Linux file systems bound them.
MAX_PATH = 4096
MAX_SEGMENT = 255
# Folders a path may be nested in: os.makedirs recurses once per level (a 3,000-level
# path in a manifest crashed checkout), and no real project comes near 128.
MAX_DEPTH = 128
# Directories that belong to git and to pipeflow: never written through data.
RESERVED = frozenset({".git", ".pipeflow"})


class UnsafePathError(PipeflowError):
    """A path read from a file (lock, manifest, record, tag log) that must not be used."""

    def __init__(self, path: object, problem: str, *, where: str, hint: str | None = None
                 ) -> None:
        shown = repr(path) if not isinstance(path, str) else repr(path[:200])
        super().__init__(
            f"{where}: path {shown} {problem}; nothing was written",
            hint=hint or "this file may have been crafted or damaged: restore it from git "
                         "(`git checkout -- FILE`) or ask who changed it",
        )
        self.path = path
        self.where = where


def within(path: str, folder: str) -> bool:
    """Whether the absolute, normalized ``path`` is ``folder`` or below it."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def is_reserved(segment: str) -> bool:
    """Is ``segment`` git's or pipeflow's folder on some file system? Case-insensitive
    (macOS and Windows file systems: ``.GIT`` is ``.git`` there), and trailing dots and
    spaces ignored (Windows drops them: ``.git.`` is ``.git``)."""
    return segment.rstrip(". ").lower() in RESERVED


def problem(path: object) -> str | None:
    """Why ``path`` is not a plain project path, or None when it is one."""
    if not isinstance(path, str):
        return "is not a string"
    if not path:
        return "is empty"
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH:
        return f"is longer than {MAX_PATH} bytes"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        return "contains a NUL or control character"
    if path.startswith("/"):
        return "is absolute"
    segments = path.split("/")
    if len(segments) > MAX_DEPTH:
        return f"is nested deeper than {MAX_DEPTH} folders"
    for seg in segments:
        if seg in ("", ".", ".."):
            return "is not a normal relative path (empty, '.' or '..' segment)"
        if len(seg.encode("utf-8", "surrogatepass")) > MAX_SEGMENT:
            return f"has a segment longer than {MAX_SEGMENT} bytes"
        if is_reserved(seg):
            name = seg.rstrip(". ").lower()
            alias = "" if seg == name else f" ({name}/ on some file systems)"
            return f"goes into {seg}/{alias}, which belongs to {name[1:]}"
    return None


def check(path: object, *, where: str) -> str:
    """``path`` itself when it is a plain project path; else UnsafePathError naming ``where``
    (the file and entry that held it, for example ``pipeline.lock: sources``)."""
    why = problem(path)
    if why is not None:
        raise UnsafePathError(path, why, where=where)
    assert isinstance(path, str)
    return path


SPECIAL_ROOTS = ("/dev", "/proc", "/sys")
"""Where a file is a device or a kernel view, never data: no hash walk enters them."""
ORDINARY_IN_DEV = "/dev/shm"
"""A tmpfs of ordinary files (projects and test folders live there), not a device."""


def is_special(real: str) -> bool:
    """Whether real path ``real`` lies in ``/dev`` (but not ``/dev/shm``), ``/proc`` or
    ``/sys``."""
    if real.startswith(ORDINARY_IN_DEV + "/"):
        return False
    return any(real == d or real.startswith(d + "/") for d in SPECIAL_ROOTS)
