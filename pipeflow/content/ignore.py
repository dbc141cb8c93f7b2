"""Which workspace paths hashing skips: built-in junk plus ``.pipeflowignore``.

The built-ins (``__pycache__/``, ``*.pyc``, ``.DS_Store``, ``.ipynb_checkpoints/``,
``.git/``, ``.pipeflow/``) are matched by name, at any depth, without ``pathspec``.
``<root>/.pipeflowignore`` uses gitignore syntax (patterns, ``!`` negation, a leading
``/`` anchors to the root, a trailing ``/`` matches directories only); only the file at
the project root is read. The file comes with a clone, so its patterns are matched by
:mod:`pipeflow.content.wildmatch`, in time linear in the path whatever a line says (a regular
expression per pattern let one crafted line stall ``status`` for hours).

As in git, a file inside an ignored directory stays ignored even if a later ``!``
pattern names it: the directory walk never enters an ignored directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pipeflow.content import wildmatch
from pipeflow.files import projectfile

IGNORE_FILE = ".pipeflowignore"

_BUILTIN_DIRS = frozenset({"__pycache__", ".ipynb_checkpoints", ".git", ".pipeflow"})
_BUILTIN_FILES = frozenset({".DS_Store"})
_BUILTIN_SUFFIXES = (".pyc",)

IGNORABLE_NAMES = _BUILTIN_DIRS | _BUILTIN_FILES
"""The only names the built-ins can ignore (a walk may skip testing any other name
when there is no ``.pipeflowignore``)."""
IGNORABLE_SUFFIXES = _BUILTIN_SUFFIXES


def read_patterns(root: Path) -> list[str]:
    """The lines of ``root/.pipeflowignore`` (none when there is no such file); a link
    leading out of the project or to a device, or a file past 4 MB, is a SpecError."""
    text = projectfile.read_text(root / IGNORE_FILE, "rules", name=IGNORE_FILE, inside=root)
    return text.splitlines() if text is not None else []


class IgnoreRules:
    """The ignore rules of one project: built-ins plus optional gitignore patterns."""

    def __init__(self, root: Path | None = None, *, patterns: Iterable[str] = ()) -> None:
        """Rules of the project at ``root`` (reads ``<root>/.pipeflowignore`` if there is
        one) plus extra gitignore-syntax ``patterns``; with neither, built-ins only."""
        self._patterns = wildmatch.parse(patterns, IGNORE_FILE)
        if root is not None:
            self._patterns += wildmatch.parse(read_patterns(Path(root)), IGNORE_FILE)

    @classmethod
    def load(cls, root: Path) -> IgnoreRules:
        """The rules of the project at ``root`` (same as ``IgnoreRules(root)``)."""
        return cls(root)

    @property
    def has_patterns(self) -> bool:
        """True when a ``.pipeflowignore`` contributed patterns."""
        return bool(self._patterns)

    def is_ignored(self, rel_posix_path: str, is_dir: bool) -> bool:
        """Whether the root-relative POSIX path (a directory if ``is_dir``) is skipped.

        Every component of the path is checked against the built-ins, so
        ``a/__pycache__/x`` is ignored even when asked about directly.
        """
        parts = rel_posix_path.split("/")
        last = len(parts) - 1
        for i, name in enumerate(parts):
            if (i < last or is_dir) and name in _BUILTIN_DIRS:
                return True
            if name in _BUILTIN_FILES or name.endswith(_BUILTIN_SUFFIXES):
                return True
        return self._pattern_match(rel_posix_path, is_dir)

    def is_ignored_entry(self, name: str, rel_posix_path: str, is_dir: bool) -> bool:
        """Like ``is_ignored`` for a walk that already checked the parent directories:
        only the last component (``name``) meets the built-ins."""
        if is_dir and name in _BUILTIN_DIRS:
            return True
        if name in _BUILTIN_FILES or name.endswith(_BUILTIN_SUFFIXES):
            return True
        return bool(self._patterns) and self._pattern_match(rel_posix_path, is_dir)

    def _pattern_match(self, rel_posix_path: str, is_dir: bool) -> bool:
        if not self._patterns:
            return False
        # Directory-only patterns ("build/") match a directory by its trailing slash, and
        # files under an ignored directory through the directory's own pattern.
        path = rel_posix_path + "/" if is_dir else rel_posix_path
        return wildmatch.ignored(self._patterns, path)
