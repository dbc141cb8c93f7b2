"""pipeflow's git merge driver for ``pipeline.lock``: defining it in git config, and the
merge git runs.

``.gitattributes`` (written by ``init``) says ``/pipeline.lock merge=pipeflow``; git
config, which is not cloned, says what ``pipeflow`` means: ``merge.pipeflow.driver``.
``init`` and ``merge-driver install`` define it, and every writing command defines it
when it is missing (:func:`ensure`: one small file read when it is there), so a fresh
clone has it from its first ``repro``/``checkout``/``pull``. Until then git merges the
lock as text, which still works, only with more conflicts.

The driver command runs this very interpreter (``<python> -m pipeflow``) when it still
exists, else ``pipeflow`` from PATH: the absolute interpreter works where PATH lacks
pipeflow (IDEs and GUI git clients, tests, a venv that is not activated); the PATH
fallback keeps merges working after that venv is deleted or rebuilt elsewhere.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeflow.files import atomicfile
from pipeflow.git import gitcmd
from pipeflow.lock import lockconflict, lockfile
from pipeflow.lock.lockfile import Lock
from pipeflow.lock.lockmerge import MergedLock, merge

__all__ = ["DRIVER_NAME", "DriverResult", "Installed", "driver_command", "ensure", "install",
           "run_driver"]

DRIVER_NAME = "pipeflow: merge pipeline.lock stage by stage"
_ARGS = "merge-driver run %O %A %B %P"
_SECTION = re.compile(r'^\s*\[\s*merge\s+"pipeflow"\s*\]', re.IGNORECASE | re.MULTILINE)


def driver_command(python: str | None = None) -> str:
    """The shell command git runs (it substitutes %O %A %B %P)."""
    exe = shlex.quote(python or sys.executable)
    return f"if [ -x {exe} ]; then {exe} -m pipeflow {_ARGS}; else pipeflow {_ARGS}; fi"


# --- git config -------------------------------------------------------------


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        done = gitcmd.run(root, *args, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    try:
        return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(),
                                           done.stderr.decode("utf-8", "replace"))
    except UnicodeDecodeError:
        return None


def _config_file(root: Path) -> Path | None:
    """The repository's own config file (shared by its worktrees), found without git."""
    git_dir = gitcmd.git_dir_of(root)
    if git_dir is None:
        return None
    try:  # a linked worktree: its config is the main repository's
        common = (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return git_dir / "config"
    return (git_dir / common).resolve() / "config"


def _defined(config: Path | None) -> bool:
    """Whether ``config`` has a ``[merge "pipeflow"]`` section with a driver (a quick
    textual check, good enough to skip the git calls)."""
    if config is None:
        return False
    try:
        text = config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    match = _SECTION.search(text)
    if match is None:
        return False
    section = text[match.end():].split("\n[", 1)[0]
    return re.search(r"^\s*driver\s*=", section, re.IGNORECASE | re.MULTILINE) is not None


@dataclass(frozen=True)
class Installed:
    """What ``merge-driver install`` found and did."""

    config: str | None
    """The git config file written (None: not inside a git repository)."""
    changed: bool
    attributes_changed: bool
    driver: str


def install(root: Path, python: str | None = None) -> Installed:
    """Define the driver in the repository's git config and make sure ``.gitattributes``
    names it (idempotent). Raises UsageError outside a git repository."""
    from pipeflow.errors import UsageError
    from pipeflow.git.gitattributes import ensure_attributes

    command = driver_command(python)
    config = _config_file(root)
    current = _git(root, "config", "--local", "--get", "merge.pipeflow.driver")
    if config is None or current is None or current.returncode not in (0, 1):
        msg = f"{root} is not inside a git repository (or git cannot be run)"
        raise UsageError(msg, hint="run `git init` first; the driver lives in git config")
    name = _git(root, "config", "--local", "--get", "merge.pipeflow.name")
    changed = current.stdout.strip() != command or name is None or (
        name.stdout.strip() != DRIVER_NAME)
    if changed:
        for key, value in (("name", DRIVER_NAME), ("driver", command)):
            done = _git(root, "config", "--local", f"merge.pipeflow.{key}", value)
            if done is None or done.returncode != 0:
                why = done.stderr.strip() if done is not None else "git cannot be run"
                raise UsageError(f"cannot write merge.pipeflow.{key} to {config}: {why}")
    return Installed(str(config), changed, ensure_attributes(root), command)


def ensure(root: Path) -> bool:
    """Define the driver when the repository's config lacks it; never fails over git
    (a writing command must not stop over this). Returns whether it defined it now.
    A ``.gitattributes`` that is a symlink or a device does stop it (exit 2, named):
    that file came from the repository, and nothing is read through it.

    The common case costs one read of ``.git/config``; git runs only when it is
    missing. A definition already there (the user's own, too) is left alone.
    """
    config = _config_file(root)
    if config is None or _defined(config):
        return False
    from pipeflow.errors import UsageError

    try:
        return install(root).changed
    except UsageError:
        return False


# --- the merge --------------------------------------------------------------


@dataclass(frozen=True)
class DriverResult:
    """What the driver did: ``merged`` when it merged (clean or with conflicts), else
    ``fallback`` says why it left git's text merge instead."""

    exit_code: int
    merged: MergedLock | None = None
    fallback: str | None = None


def _read(path: Path, label: str, name: str) -> Lock:
    text = path.read_bytes().decode("utf-8")
    if label == "base":
        # git's recursive merge may hand over a base that is itself a conflicted
        # merge of two bases: what those agreed on is the base.
        return lockconflict.parse(text, f"{name} ({label})").lock
    return lockfile.loads(text, f"{name} ({label})")


def run_driver(base: Path, ours: Path, theirs: Path, name: str) -> DriverResult:
    """Merge the three versions git gives into ``ours`` (written atomically).

    Exit 0: merged cleanly. Exit 1: entries both sides changed differently are left
    between conflict markers (``status`` names them, ``repro`` resolves them). When a
    version cannot be read as a lock, git's own text merge is left in ``ours``
    (``git merge-file``), also exit 1, so no side is ever lost.
    """
    try:
        locks = [_read(path, label, name)
                 for path, label in ((base, "base"), (ours, "ours"), (theirs, "theirs"))]
        merged = merge(*locks)
        atomicfile.write_text(ours, lockconflict.render(merged))
    # The driver must never lose a side: whatever stops the merge (a broken lock,
    # bytes that are not text, a bug), git's text merge is the answer.
    except Exception as exc:
        why = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return DriverResult(_text_merge(base, ours, theirs), fallback=why)
    return DriverResult(0 if merged.clean else 1, merged=merged)


def _text_merge(base: Path, ours: Path, theirs: Path) -> int:
    paths = [str(p.absolute()) for p in (ours, base, theirs)]
    done = gitcmd.run(Path.cwd(), "merge-file", "-L", "ours", "-L", "base", "-L", "theirs",
                      *paths, repo_optional=True)
    # merge-file exits with the number of conflicts (negative on error). Even a clean
    # text merge of a lock pipeflow cannot read is reported as a conflict: someone
    # has to look at it.
    return 2 if done.returncode < 0 else 1
