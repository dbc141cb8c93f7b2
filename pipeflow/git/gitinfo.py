"""Who and where a run happened: git commit, modified tracked files, user, host.

Read once per invocation (lazily, when the first record is written), never per
stage: three quick git calls at most.
"""

from __future__ import annotations

import getpass
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeflow.git import gitcmd


@dataclass(frozen=True)
class Provenance:
    """What a run record says about where it ran."""

    commit: str | None
    dirty_paths: tuple[str, ...]
    user: str
    host: str


def _git(root: Path, *args: str) -> str | None:
    try:
        out = gitcmd.run(root, *args, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.decode("utf-8", "surrogateescape")


def read_provenance(root: Path) -> Provenance:
    """The current commit (None outside git or before the first commit), the tracked
    files modified now (paths relative to the git top level), the user (git
    ``user.email``, else the login name) and the host name."""
    commit = _git(root, "rev-parse", "--verify", "-q", "HEAD")
    status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=no") or ""
    dirty = []
    for entry in status.split("\0"):
        if len(entry) > 3 and entry[2] == " ":
            dirty.append(entry[3:])
    email = (_git(root, "config", "user.email") or "").strip()
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return Provenance(
        commit=commit.strip() if commit else None,
        dirty_paths=tuple(sorted(set(dirty))),
        user=email or login,
        host=platform.node(),  # gethostname, without importing socket
    )
