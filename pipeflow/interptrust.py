"""Which Python interpreters pipeflow may start to learn about a stage's environment,
and how it starts them.

The environment probe asks a stage's interpreter for its version and import path.
A repository is data, never instructions: a clone can ship ``venv/bin/python`` as a
shell script, or a committed virtualenv whose ``site-packages`` holds a ``.pth`` line
that runs at start-up. So an interpreter is started only when it is

- outside the project (its path as found and its real path), or
- inside a virtualenv the user made here: a folder with a ``pyvenv.cfg`` whose
  ``home`` interpreter is outside the project, that git ignores (so it is not in a
  submodule: it did not come with the clone), in which git tracks no file (a pull
  cannot have put a ``.pth`` file in it), and that no declared output or source data
  covers (``pipeflow pull`` did not write it), or
- under a folder the user trusted on this machine (``pipeflow trust venv PATH``;
  kept in the machine cache by real path, never in a file of the project).

A probe runs with ``-I`` (isolated: no script folder or cwd on ``sys.path``, no user
site, ``PYTHON*`` variables ignored), from ``/`` rather than the stage's folder, and
with the ``PYTHON*`` variables removed from its environment. What ``-I`` leaves out
that the stage would see (``PYTHONPATH`` folders, the user site folder) is added back
by pipeflow from what it knows, without running anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipeflow.machinecache import machine_cache

NEUTRAL_CWD = "/"


def within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it (both absolute, normalized)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def probe_env(stage_dir: str | None = None) -> dict[str, str]:
    """This process's environment without ``PYTHON*`` variables; ``PYENV_DIR`` set to
    the stage's folder so that a pyenv shim picks the version it would pick there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    if stage_dir is not None and "PYENV_DIR" not in env:
        env["PYENV_DIR"] = stage_dir
    return env


def run_probe(found: str, code: str, args: Iterable[str] = (), *, timeout: float,
              stage_dir: str | None = None) -> str:
    """Run ``found -I -c code args...`` isolated, from ``/``; its standard output.
    Raises OSError or SubprocessError as ``subprocess.run`` does."""
    return subprocess.run(
        [found, "-I", "-c", code, *args], capture_output=True, text=True, timeout=timeout,
        check=True, cwd=NEUTRAL_CWD, env=probe_env(stage_dir), stdin=subprocess.DEVNULL,
    ).stdout


_TRUST_PREFIX = "trusted-interpreter-folder:"


def trust_folder(folder: str) -> str:
    """Record ``folder`` (a virtualenv or any folder holding interpreters) as trusted
    on this machine; returns its real path. Raises OSError when it is not a folder or
    the record cannot be kept."""
    real = os.path.realpath(folder)
    if not os.path.isdir(real):
        raise NotADirectoryError(f"{folder}: not a folder")
    cache = machine_cache()
    cache.put(_TRUST_PREFIX + real, json.dumps({"trusted_ns": time.time_ns()}))
    if cache.get(_TRUST_PREFIX + real) is None:
        raise OSError(f"cannot write the machine cache {cache.path}")
    return real


def is_trusted_folder(real: str) -> bool:
    """Whether real path ``real`` is at or below a folder recorded by ``trust_folder``."""
    cache = machine_cache()
    folder = real
    while True:
        if cache.get(_TRUST_PREFIX + folder) is not None:
            return True
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent


@dataclass(frozen=True)
class Refusal:
    """An interpreter pipeflow did not start, and why (for one warning)."""

    path: str
    """As the stage names it, relative to the project root when inside it."""
    reason: str

    def message(self) -> str:
        folder = os.path.dirname(self.path)
        if os.path.basename(folder) == "bin":  # a venv or conda env: trust all of it
            folder = os.path.dirname(folder)
        return (f"interpreter {self.path} {self.reason}: pipeflow did not run it; the stage's "
                f"environment counts the interpreter file's content instead of its version "
                f"and packages (if you made it, run `pipeflow trust venv {folder or '.'}`)")


class InterpreterTrust:
    """Decides, for one project, whether an interpreter may be started."""

    def __init__(self, root: str | os.PathLike[str] | None,
                 managed: Iterable[str] = (),
                 recall: Callable[[str], str | None] | None = None,
                 remember: Callable[[str, str], None] | None = None) -> None:
        """``root``: the project (None: no project, every interpreter may run);
        ``managed``: root-relative outputs and source data paths pipeflow writes;
        ``recall``/``remember``: the state database, where a venv found made here is
        remembered until its ``pyvenv.cfg`` or git's index changes (saves two git
        runs per command)."""
        self._recall = recall
        self._remember = remember
        self._root = os.path.abspath(root) if root is not None else None
        self._real_root = os.path.realpath(root) if root is not None else None
        self._managed = tuple(managed)
        self._memo: dict[str, Refusal | None] = {}
        self.refused: dict[str, Refusal] = {}

    def _inside(self, path: str) -> bool:
        assert self._root is not None and self._real_root is not None
        absolute = os.path.abspath(path)
        # the folder as reached (a link inside pointing out is still the project's
        # entry point) and the file it finally is
        parent = os.path.realpath(os.path.dirname(absolute))
        return (within(absolute, self._root) or within(parent, self._real_root)
                or within(os.path.realpath(absolute), self._real_root))

    def allows(self, found: str) -> bool:
        """Whether interpreter ``found`` (an absolute path) may be started; a refusal
        is kept in ``refused`` (one per path)."""
        if self._root is None:
            return True
        if found not in self._memo:
            refusal = self._judge(found)
            self._memo[found] = refusal
            if refusal is not None:
                self.refused.setdefault(refusal.path, refusal)
        return self._memo[found] is None

    def _judge(self, found: str) -> Refusal | None:
        if not self._inside(found):
            return None
        if is_trusted_folder(os.path.realpath(os.path.dirname(found))):
            return None
        shown = self._shown(found)
        venv = _venv_folder(found)
        if venv is None:
            return Refusal(shown, "is inside the project")
        if self._made_here(venv):
            return None
        return Refusal(shown, "is in a virtualenv that came with the repository or a pull")

    def _shown(self, found: str) -> str:
        assert self._root is not None and self._real_root is not None
        absolute = os.path.abspath(found)
        for root in (self._root, self._real_root):
            if within(absolute, root):
                return os.path.relpath(absolute, root)
        return absolute

    def _made_here(self, venv: str) -> bool:
        """A virtualenv made on this machine: home outside the project, ignored by git
        (not from a submodule), no file tracked in it, not a declared output or source."""
        assert self._real_root is not None
        rel = os.path.relpath(os.path.realpath(venv), self._real_root).replace(os.sep, "/")
        if rel == ".." or rel.startswith("../"):
            return False
        if any(within(rel, m) or within(m, rel) for m in self._managed):
            return False
        cfg = os.path.join(venv, "pyvenv.cfg")
        stamp = _stamp(self._real_root, cfg)
        key = f"venv-made-here:{rel}"
        if stamp and self._recall is not None and self._recall(key) == stamp:
            return True
        home = _venv_home(cfg)
        made = (home is not None and not within(os.path.realpath(home), self._real_root)
                and _ignored_by_git(self._real_root, rel + "/pyvenv.cfg")
                and not _tracked_under(self._real_root, rel))
        if made and stamp and self._remember is not None:
            self._remember(key, stamp)
        return made


def _venv_folder(executable: str) -> str | None:
    """The virtualenv folder (holding ``pyvenv.cfg``) of ``executable``, if any."""
    here = os.path.dirname(os.path.abspath(executable))
    for folder in (here, os.path.dirname(here)):
        if os.path.isfile(os.path.join(folder, "pyvenv.cfg")):
            return folder
    return None


def _venv_home(cfg: str) -> str | None:
    import configparser

    parser = configparser.ConfigParser()
    try:
        with open(cfg, encoding="utf-8") as fh:
            text = fh.read(65536)
        parser.read_string("[venv]\n" + text)
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None
    home = parser.get("venv", "home", fallback=None)
    return home if home and os.path.isabs(home) else None


def _stamp(root: str, cfg: str) -> str | None:
    """What the made-here answer depends on: the ``pyvenv.cfg`` file (a checkout
    replacing it changes inode and ctime) and git's index (a pull or an add that
    tracks a file in the venv rewrites it); None when either cannot be read."""
    dot_git = os.path.join(root, ".git")
    try:
        if os.path.isdir(dot_git):
            index = os.path.join(dot_git, "index")
        elif os.path.isfile(dot_git):
            with open(dot_git, encoding="utf-8") as fh:
                line = fh.read(4096).strip()
            if not line.startswith("gitdir:"):
                return None
            index = os.path.join(root, line[7:].strip(), "index")
        else:
            index = ""
        parts = []
        for path in (cfg, index) if index else (cfg,):
            st = os.stat(path)
            parts.append(f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}")
    except (OSError, UnicodeDecodeError):
        return None
    return "|".join(parts)


def _tracked_under(root: str, rel: str) -> bool:
    """Whether git tracks any file under folder ``rel`` (True when git cannot say)."""
    if not os.path.exists(os.path.join(root, ".git")):
        return False
    try:
        done = subprocess.run(
            ["git", "--literal-pathspecs", "ls-files", "-z", "--", rel], cwd=root,
            capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return True
    return done.returncode != 0 or bool(done.stdout)


def _ignored_by_git(root: str, rel: str) -> bool:
    """Whether git ignores ``rel``; True outside a git work tree (nothing came with a
    clone). A tracked file, or one inside a submodule, is not ignored."""
    if not os.path.exists(os.path.join(root, ".git")):
        return True
    try:
        done = subprocess.run(
            ["git", "check-ignore", "-q", "--", rel], cwd=root,
            capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0
