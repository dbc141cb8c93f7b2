"""Keeping cached outputs out of git: lines in the ``.gitignore`` beside each output."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from pipeflow.files import atomicfile, projectfile, workspace_fs
from pipeflow.git import gitcmd

_SPECIAL = set("*?[]!#\\")


def pattern_for(name: str) -> str:
    """An anchored gitignore pattern matching exactly the entry ``name``."""
    escaped = "".join("\\" + ch if ch in _SPECIAL else ch for ch in name)
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return "/" + escaped


def ensure_ignored(root: Path, paths: Iterable[str]) -> list[Path]:
    """Add each root-relative path to the .gitignore of its folder; returns files changed.

    Raises OutsideProjectError (nothing written) for a folder that is a symlink
    leading out of the project."""
    by_folder: dict[str, list[str]] = defaultdict(list)
    for rel in paths:
        folder, _, name = rel.rpartition("/")
        by_folder[folder].append(name)
    changed = []
    for folder, names in sorted(by_folder.items()):
        ignore_file = root / folder / ".gitignore"
        rel = f"{folder}/.gitignore" if folder else ".gitignore"
        # never read or write a .gitignore through a link leading out of the project,
        # nor read one that is a link itself (the rewrite would copy what it names in)
        workspace_fs.check_parents(root, rel)
        text = projectfile.read_text(ignore_file, "rules", name=rel) or ""
        present = set(text.splitlines())
        missing = [p for p in dict.fromkeys(pattern_for(n) for n in names) if p not in present]
        if not missing:
            continue
        if text and not text.endswith("\n"):
            text += "\n"
        ignore_file.parent.mkdir(parents=True, exist_ok=True)
        atomicfile.write_text(ignore_file, text + "".join(p + "\n" for p in missing))
        changed.append(ignore_file)
    return changed


def tracked_by_git(root: Path, paths: list[str]) -> list[str]:
    """Which of ``paths`` (or files under them) git tracks; empty outside a git work tree."""
    if not paths:
        return []
    try:
        # literal: an output named ':x' or 'a*' is a path, not pathspec magic or a glob
        out = gitcmd.run(root, "--literal-pathspecs", "ls-files", "-z", "--", *paths, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    files = [f for f in out.stdout.decode("utf-8", "surrogateescape").split("\0") if f]
    return [p for p in paths if any(f == p or f.startswith(p + "/") for f in files)]
