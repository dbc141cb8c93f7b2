"""Which interpreter a stage's command runs, and the import path it has.

A pyenv shim is first resolved to the interpreter it would run (``resolve_launcher``);
an interpreter that is this very one in this very environment answers from this
process (``is_this_interpreter``); another one reports its path under ``-I`` and
``as_the_stage_sees`` adds what the stage's environment would (``PYTHONPATH``, the user
site folder). ``is_genuine`` tells an interpreter from a launcher that runs another.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pipeflow.errors import PipeflowError
from pipeflow.files import projectfile

# What an interpreter says of itself, to tell a genuine interpreter from a launcher
# that runs another one (only a genuine one's answers may be shared by all projects).
SELF_PROBE = ("[sys.executable,sys.base_prefix,"
              "os.path.realpath('/proc/self/exe') if os.path.exists('/proc/self/exe') else '']")


def is_genuine(real: str, said: object) -> bool:
    """Whether the interpreter at ``real`` (a real path) is what ran, given what it
    said of itself (``SELF_PROBE``). Where /proc exists the kernel answers; else its
    ``sys.executable`` must be ``real`` and lie under its ``sys.base_prefix`` (a
    launcher that keeps its own name as argv[0] fails the second test)."""
    if not (isinstance(said, list) and len(said) == 3):
        return False
    executable, base, proc_exe = (str(x) for x in said)
    if proc_exe:
        return proc_exe == real
    return (os.path.realpath(executable) == real
            and real.startswith(os.path.realpath(base) + os.sep))


def venv_of(executable: str) -> str | None:
    """The ``pyvenv.cfg`` that makes ``executable`` a virtual environment's, if any."""
    here = os.path.dirname(os.path.abspath(executable))
    for folder in (here, os.path.dirname(here)):
        cfg = os.path.join(folder, "pyvenv.cfg")
        if os.path.isfile(cfg):
            return cfg
    return None


def is_this_interpreter(found: str) -> bool:
    """True when ``found`` runs this very interpreter in this very environment (a
    venv's ``python`` links to its base interpreter but has another path)."""
    if os.path.abspath(found) == os.path.abspath(sys.executable):
        return True
    return (os.path.realpath(found) == os.path.realpath(sys.executable)
            and venv_of(found) == venv_of(sys.executable))


def own_path() -> tuple[list[str], str, str]:
    entries = list(sys.path)
    if entries and not sys.flags.safe_path:
        # sys.path[0] is the folder of pipeflow's own entry point (or the current
        # folder for ``-m``/``-c``); a stage's is its script's, found by codedeps.
        first = os.path.abspath(entries[0]) if entries[0] else ""
        argv0 = os.path.dirname(os.path.abspath(sys.argv[0])) if sys.argv and sys.argv[0] else ""
        if first in ("", os.getcwd(), argv0):
            entries = entries[1:]
    paths = [os.path.abspath(p) for p in entries if p]
    return paths, sys.prefix, sys.base_prefix


def resolve_launcher(found: str, cwd: str) -> str:
    """The interpreter a pyenv shim ``found`` would run from ``cwd``, when that is
    plain to see: one version, chosen as pyenv does by ``PYENV_VERSION``, else the
    nearest ``.python-version`` above ``PYENV_DIR`` (which pyenv exports to what its
    shims start, pipeflow included), then above ``cwd``, else pyenv's global
    ``version`` file; and installed under ``$PYENV_ROOT/versions``. Anything else (not
    a shim, ``system``, several versions, a prefix pyenv would expand) gives ``found``
    back."""
    shims = os.path.dirname(found)
    if os.path.basename(shims) != "shims":
        return found
    root = os.environ.get("PYENV_ROOT") or os.path.dirname(shims)
    if os.path.abspath(os.path.join(root, "shims")) != os.path.abspath(shims):
        return found
    selected = os.environ.get("PYENV_VERSION")
    if selected:
        versions: list[str] | None = selected.split(":")
    else:
        start = os.environ.get("PYENV_DIR") or cwd
        versions = _local_version_file(start)
        if versions is None and os.path.abspath(start) != os.path.abspath(cwd):
            versions = _local_version_file(cwd)
        if versions is None:
            versions = _versions_in(os.path.join(root, "version"))
    if not versions or len(versions) != 1 or versions[0] == "system":
        return found
    candidate = os.path.join(root, "versions", versions[0], "bin", os.path.basename(found))
    return candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else found


def _local_version_file(start: str) -> list[str] | None:
    """The versions in the nearest ``.python-version`` at or above ``start``."""
    folder = os.path.abspath(start)
    while True:
        local = os.path.join(folder, ".python-version")
        if os.path.isfile(local):
            return _versions_in(local)
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _versions_in(path: str) -> list[str] | None:
    try:
        # a committed .python-version: a regular file of a few bytes, never a device
        raw = projectfile.read(Path(path), "pointer", inside=Path("/"))
        text = raw.decode("utf-8") if raw is not None else None
    except (PipeflowError, UnicodeDecodeError):
        return None
    if text is None:
        return None
    return [word for line in text.splitlines() if not line.lstrip().startswith("#")
            for word in line.split()]


def user_site_stamp() -> list[object]:
    """What decides whether an interpreter has a user site folder on its path: the
    folders under the user base's ``lib`` (``pythonX.Y``) and their times."""
    base = os.environ.get("PYTHONUSERBASE") or os.path.join(os.path.expanduser("~"), ".local")
    lib = os.path.join(base, "lib")
    try:
        with os.scandir(lib) as it:
            found = sorted((e.name, mtime_ns(e.path)) for e in it if e.name.startswith("python"))
    except OSError:
        found = []
    return [bool(os.environ.get("PYTHONNOUSERSITE")), lib, mtime_ns(lib), found]


def mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def as_the_stage_sees(isolated: list[str], prefix: str, base: str, user_site: str,
                       venv: str | None, pythonpath: str) -> list[str]:
    """The import path a stage's interpreter has, from the one it reported under
    ``-I``: ``PYTHONPATH`` folders first (relative ones stay relative to the stage's
    folder), then the user site folder before the environment's site folders when
    Python would add it (it exists, ``PYTHONNOUSERSITE`` is unset, and a virtualenv
    includes the system site packages)."""
    extra = [p for p in pythonpath.split(os.pathsep) if p]
    paths = [*extra, *isolated]
    if user_site and os.path.isdir(user_site) and not os.environ.get("PYTHONNOUSERSITE"):
        system_site = prefix == base or (venv is not None and _includes_system_site(venv))
        if system_site and user_site not in paths:
            at = next((i for i, p in enumerate(paths)
                       if "site-packages" in p.split(os.sep) or "dist-packages" in p.split(os.sep)),
                      len(paths))
            paths.insert(at, user_site)
    return paths


def _includes_system_site(cfg: str) -> bool:
    try:
        with open(cfg, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return False
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "include-system-site-packages":
            return value.strip().lower() == "true"
    return False
