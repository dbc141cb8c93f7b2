"""Which Python interpreters pipeflow may start to learn about a stage's environment,
and how it starts them.

The environment probe asks a stage's interpreter for its version and import path.
A repository is data, never instructions: a clone can ship ``venv/bin/python`` as a
shell script, or a committed virtualenv whose ``site-packages`` holds a ``.pth`` line
that runs at start-up. So an interpreter is started only when it is

- outside the project (its path as found and its real path), or
- a link in the project to an interpreter outside it, with no ``pyvenv.cfg`` beside
  it or one folder up and no ``<name>._pth`` beside it (the only files of the link's
  folders Python reads at start-up; it finds its library by its real path): running
  it runs that interpreter, whoever committed the link, or
- inside a virtualenv the user made here: a folder with a ``pyvenv.cfg`` whose
  ``home`` interpreter is outside the project, that git ignores (so it is not in a
  submodule: it did not come with the clone), in which git tracks no file (a pull
  cannot have put a ``.pth`` file in it), and that no declared output or source data
  covers (``pipeflow pull`` did not write it), or
- under an environment the user trusted on this machine (``pipeflow trust venv PATH``,
  see ``pipeflow.code.trustedenvs``).

Each refusal says its own reason and the fix that fits it.

A probe runs with ``-I`` (isolated: no script folder or cwd on ``sys.path``, no user
site, ``PYTHON*`` variables ignored), from ``/`` rather than the stage's folder, and
with the ``PYTHON*`` variables removed from its environment. What ``-I`` leaves out
that the stage would see (``PYTHONPATH`` folders, the user site folder) is added back
by pipeflow from what it knows, without running anything.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeflow.code.trustedenvs import env_kind, is_trusted_folder, trust_folder
from pipeflow.files.safepath import within
from pipeflow.git import gitcmd

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from pipeflow.keyvalue import KeyValue

__all__ = ["InterpreterTrust", "Refusal", "probe_env", "run_probe", "trust_folder"]

NEUTRAL_CWD = "/"


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


@dataclass(frozen=True)
class Refusal:
    """An interpreter pipeflow did not start, why, and what the user can do."""

    path: str
    """As the stage names it, relative to the project root when inside it."""
    reason: str
    hint: str

    def message(self) -> str:
        return (f"interpreter {self.path} {self.reason}: pipeflow did not run it, so the "
                f"stage's environment counts the interpreter file's content instead of its "
                f"version and packages. To fix: {self.hint}")


NOT_AN_ENV_HINT = ("pipeflow runs an interpreter inside the project only from a virtualenv "
                   "or conda env you made, e.g. `python3 -m venv .venv` with `.venv/` in "
                   ".gitignore; or name an interpreter outside the project in the stage's cmd")


class InterpreterTrust:
    """Decides, for one project, whether an interpreter may be started."""

    def __init__(self, root: str | os.PathLike[str] | None,
                 managed: Iterable[str] = (),
                 state: KeyValue | None = None) -> None:
        """``root``: the project (None: no project, every interpreter may run);
        ``managed``: root-relative outputs and source data paths pipeflow writes;
        ``state``: the state database, where a venv found made here is
        remembered until its ``pyvenv.cfg`` or git's index changes (saves two git
        runs per command)."""
        self._state = state
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
        assert self._real_root is not None
        if not self._inside(found):
            return None
        if is_trusted_folder(os.path.realpath(os.path.dirname(found)), self._real_root):
            return None
        shown = self._shown(found)
        venv = _venv_folder(found)
        conda = _conda_folder(found) if venv is None else None
        env = venv or conda
        if env is not None and within(self._real_root, os.path.realpath(env)):
            # the project itself (or a folder above it) as an environment: never trusted,
            # and no hint may name `.` (trusting it would cover every later pull)
            marker = "pyvenv.cfg" if venv else "conda-meta/"
            return Refusal(shown, f"is beside a {marker} that makes {self._shown(env)} an "
                                  "environment, and that folder holds the whole project",
                           NOT_AN_ENV_HINT)
        if venv is not None:
            return self._venv_refusal(shown, venv)
        if conda is not None:
            rel = self._shown(conda)
            return Refusal(shown, f"is in the conda env {rel}, which pipeflow does not trust "
                                  "by itself", f"if you made it: `pipeflow trust venv {rel}`")
        if os.path.isfile(found + "._pth"):
            return Refusal(shown, f"has a {os.path.basename(found)}._pth file beside it in the "
                                  "project, which would set its import path", NOT_AN_ENV_HINT)
        if not self._runs_inside(found):
            # a link to an interpreter outside, with no pyvenv.cfg or ._pth that would
            # make Python read the project: running it runs that interpreter
            return None
        return Refusal(shown, "is a file inside the project, not in a virtualenv",
                       NOT_AN_ENV_HINT)

    def _runs_inside(self, found: str) -> bool:
        assert self._real_root is not None
        return within(os.path.realpath(found), self._real_root)

    def _venv_refusal(self, shown: str, venv: str) -> Refusal | None:
        rel = self._shown(venv)
        why = self._not_made_here(venv)
        if why is None:
            return None
        trust = f"`pipeflow trust venv {rel}`"
        reasons = {
            "outside": (f"is in the virtualenv {rel}, reached through a link out of the project",
                        f"if you made it: {trust}"),
            "managed": (f"is in {rel}, which pipeflow writes as a stage output or source data "
                        "(`pipeflow pull` fills it)", f"if you checked it: {trust}"),
            "home": (f"is in the virtualenv {rel}, whose pyvenv.cfg names no base interpreter "
                     "outside the project", f"make it with `python3 -m venv {rel}` using a "
                     f"python outside the project, or if you made it: {trust}"),
            "tracked": (f"is in the virtualenv {rel}, where git tracks files: they came with "
                        "the repository or a pull", "if you made it and checked what git "
                        f"tracks there (`git ls-files {rel}`): {trust}"),
            "not-ignored": (f"is in the virtualenv {rel}, which git does not ignore",
                            f"add `{rel}/` to .gitignore (or run {trust})"),
        }
        reason, hint = reasons[why]
        return Refusal(shown, reason, hint)

    def _shown(self, found: str) -> str:
        assert self._root is not None and self._real_root is not None
        absolute = os.path.abspath(found)
        for root in (self._root, self._real_root):
            if within(absolute, root):
                return os.path.relpath(absolute, root)
        return absolute

    def _not_made_here(self, venv: str) -> str | None:
        """None for a virtualenv made on this machine (home outside the project, ignored
        by git so not from a submodule, no file tracked in it, not a declared output
        or source); else the first reason it is not, as a ``_venv_refusal`` key."""
        assert self._real_root is not None
        rel = os.path.relpath(os.path.realpath(venv), self._real_root).replace(os.sep, "/")
        if rel == ".." or rel.startswith("../"):
            return "outside"
        if any(within(rel, m) or within(m, rel) for m in self._managed):
            return "managed"
        cfg = os.path.join(venv, "pyvenv.cfg")
        stamp = _stamp(self._real_root, cfg)
        key = f"venv-made-here:{rel}"
        if stamp and self._state is not None and self._state.get(key) == stamp:
            return None
        home = _venv_home(cfg)
        if home is None or within(os.path.realpath(home), self._real_root):
            return "home"
        if _tracked_under(self._real_root, rel):
            return "tracked"
        if not _ignored_by_git(self._real_root, rel + "/pyvenv.cfg"):
            return "not-ignored"
        if stamp and self._state is not None:
            self._state.put(key, stamp)
        return None


def _venv_folder(executable: str) -> str | None:
    """The virtualenv folder (holding ``pyvenv.cfg``) of ``executable``, if any."""
    here = os.path.dirname(os.path.abspath(executable))
    for folder in (here, os.path.dirname(here)):
        if os.path.isfile(os.path.join(folder, "pyvenv.cfg")):
            return folder
    return None


def _conda_folder(executable: str) -> str | None:
    """The conda env folder (holding ``conda-meta/``) of ``executable``, if any."""
    here = os.path.dirname(os.path.abspath(executable))
    for folder in (here, os.path.dirname(here)):
        if env_kind(folder) == "conda env":
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
    if gitcmd.locate(Path(root)) is None:
        return False
    try:
        done = gitcmd.run(Path(root), "--literal-pathspecs", "ls-files", "-z", "--", rel,
                          timeout=30)
    except (OSError, subprocess.SubprocessError):
        return True
    return done.returncode != 0 or bool(done.stdout)


def _ignored_by_git(root: str, rel: str) -> bool:
    """Whether git ignores ``rel``; True outside a git work tree (nothing came with a
    clone). A tracked file, or one inside a submodule, is not ignored."""
    if gitcmd.locate(Path(root)) is None:
        return True
    try:
        done = gitcmd.run(Path(root), "check-ignore", "-q", "--", rel, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0
