"""Paths written in a spec, made root-relative, POSIX and normal.

Everything downstream of the loader sees paths in one form: relative to the
project root, ``/``-separated, without ``.``/``..`` segments or trailing slashes
(``data/./raw/../x/`` -> ``data/x``). A path that is absolute, home-relative or
that leaves the project is refused here: no absolute path may reach a
fingerprint, and nothing outside the project can be cached or versioned.
"""

from __future__ import annotations

import posixpath


class PathError(ValueError):
    """A spec path that cannot be used; the message says why, without naming the path."""


def resolve(path: str, wdir: str = ".") -> str:
    """``path`` (relative to ``wdir``, itself root-relative) as a normal root-relative path.

    Raises PathError for an empty, absolute or ``~`` path, or one outside the project.
    The project root itself is ``"."``.
    """
    if not path:
        raise PathError("is empty")
    if path.startswith("/"):
        raise PathError("is absolute")
    if path.startswith("~"):
        raise PathError("starts with '~', which pipeflow does not expand")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        # the rule of pipeflow.files.safepath: a lock naming such a path would not read back
        raise PathError("contains a NUL or control character")
    joined = posixpath.normpath(posixpath.join(wdir, path))
    if joined == ".." or joined.startswith("../"):
        raise PathError("is outside the project")
    return joined


def check_output(path: str) -> None:
    """Refuse a resolved output path that is the root or inside a ``.pipeflow/`` or
    ``.git/`` folder, at any depth."""
    if path == ".":
        raise PathError("is the project root")
    # at any depth: a nested .git/ is a repository of its own (pipeflow.files.safepath)
    from pipeflow.files.safepath import is_reserved

    for part in path.split("/"):
        if is_reserved(part):
            name = part.rstrip(". ").lower()
            raise PathError(f"is inside {part}/, which belongs to {name[1:]}")
