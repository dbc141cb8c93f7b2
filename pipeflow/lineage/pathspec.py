"""``PATH@VERSION`` arguments: which path, and which version of it (if any).

Kept apart from ``versions`` so that commands taking plain paths parse them without
loading the run index.
"""

from __future__ import annotations

import os

from pipeflow.errors import UsageError
from pipeflow.project.project import Project


def split_spec(repo: Project, text: str, declared: set[str]) -> tuple[str, str | None]:
    """``PATH@VERSION`` -> (root-relative path, version text or None).

    The version is the text after the last ``@``, unless the whole argument is an
    existing path or a declared output (``train@small`` style names use ``@`` too).
    """
    rel = _rel(repo, text)
    if rel in declared or (repo.root / rel).exists() or "@" not in text:
        return rel, None
    head, _, version = text.rpartition("@")
    return _rel(repo, head), version


def _rel(repo: Project, text: str) -> str:
    absolute = os.path.normpath(os.path.join(os.getcwd(), text))
    try:
        rel = os.path.relpath(absolute, repo.root)
    except ValueError:
        rel = text
    if rel.startswith(".."):
        raise UsageError(f"'{text}' is outside the project {repo.root}")
    return rel.replace(os.sep, "/")
