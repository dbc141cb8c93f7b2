"""``SiteIndex`` per interpreter, remembered across runs.

An index is kept in the state database, and for a genuine interpreter binary in the
machine cache too (``pipeflow.files.machinecache``), under a key made of the interpreter's
real path and the modification times of the folders on its path: a ``pip install`` or
``uninstall`` changes a folder's mtime, so a stale index is never used. Absolute paths
live in those caches only, never in a fingerprint.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pipeflow.code.interptrust import run_probe
from pipeflow.code.pydists import FORMAT, SiteIndex, build_index
from pipeflow.code.pyinterp import (
    SELF_PROBE,
    as_the_stage_sees,
    is_genuine,
    is_this_interpreter,
    mtime_ns,
    own_path,
    resolve_launcher,
    user_site_stamp,
    venv_of,
)
from pipeflow.content.hasher import RACY_NS
from pipeflow.content.hashing import hash_bytes
from pipeflow.files.machinecache import Facts

# Run with -I: the user site folder is not on sys.path then, so it is named apart.
_PATH_PROBE = (
    "import json,os,site,sys;print(json.dumps([[p for p in sys.path if p],sys.prefix,"
    f"sys.base_prefix,{SELF_PROBE},site.getusersitepackages()]))"
)

if TYPE_CHECKING:
    from pipeflow.keyvalue import KeyValue


class SiteIndexes:
    """``SiteIndex`` per interpreter, remembered in the machine cache and the state
    database (``state``).
    """

    def __init__(
        self,
        state: KeyValue | None = None,
        allow: Callable[[str], bool] | None = None,
    ) -> None:
        """``allow(path)`` says whether interpreter ``path`` may be started (see
        ``pipeflow.code.interptrust``); None: any."""
        self.facts = Facts(state)
        self._allow = allow
        self._memo: dict[tuple[str, str], SiteIndex | None] = {}

    def for_program(
        self, program: str, cwd: str | os.PathLike[str] | None = None
    ) -> SiteIndex | None:
        """The index of the interpreter ``program`` names, found on PATH as the shell
        would (a relative path with a folder from ``cwd``); None when there is none or
        it cannot be asked."""
        folder = os.fspath(cwd) if cwd is not None else os.getcwd()
        if "/" in program and not os.path.isabs(program):
            program = os.path.join(folder, program)
        memo_key = (program, folder)
        if memo_key in self._memo:
            return self._memo[memo_key]
        index = None
        found = shutil.which(program)
        if found is not None:
            found = resolve_launcher(os.path.abspath(found), folder)
            allowed = self._allow is None or self._allow(found)
            probed = self._path_of(found, folder) if allowed else None
            if probed is not None:
                index = self._index(found, *probed)
        self._memo[memo_key] = index
        return index

    def _path_of(self, found: str, cwd: str) -> tuple[list[str], str, str, bool] | None:
        """The import path, prefix and base prefix of interpreter ``found``, and whether
        it is itself the interpreter (not a launcher that runs another one): only
        then may its answers be shared by every project (the machine cache)."""
        if is_this_interpreter(found):
            return (*own_path(), True)
        real = os.path.realpath(found)
        venv = venv_of(found)
        pythonpath = os.environ.get("PYTHONPATH", "")
        relative = any(p and not os.path.isabs(p) for p in pythonpath.split(os.pathsep))
        # what else decides the answer: PYTHONPATH, which Python a pyenv shim runs, and
        # the user site folders (one created later joins sys.path)
        key = json.dumps(["pypath", FORMAT, found, real, mtime_ns(real), venv,
                          mtime_ns(venv) if venv else 0, pythonpath, cwd if relative else "",
                          os.environ.get("PYENV_VERSION", ""), user_site_stamp()])
        key = f"pypath:{hash_bytes(key.encode('utf-8', 'surrogatepass'))}"
        # Only a genuine interpreter's answers were ever shared: asking is always safe.
        text = self.facts.get(key, True)
        fresh = text is None
        if text is None:
            try:
                out = run_probe(found, _PATH_PROBE, timeout=60, stage_dir=cwd)
            except (OSError, subprocess.SubprocessError):
                return None
            lines = out.strip().splitlines()
            text = lines[-1] if lines else ""  # a sitecustomize may print first
        try:
            isolated, prefix, base, said, user_site = json.loads(text)
            genuine = is_genuine(real, said)
            paths = as_the_stage_sees(
                [str(p) for p in isolated], str(prefix), str(base), str(user_site), venv,
                pythonpath)
            result = ([os.path.normpath(os.path.join(cwd, p)) for p in paths],
                      str(prefix), str(base), genuine)
        except (ValueError, TypeError):
            return None  # not a Python we can ask (or junk in the cache)
        if fresh and genuine:  # a launcher's answer may change with what it reads: not kept
            self.facts.put(key, text, True)
        return result

    def _index(self, found: str, paths: list[str], prefix: str, base: str,
               shared: bool = False) -> SiteIndex:
        real = os.path.realpath(found)
        mtimes = [mtime_ns(p) for p in paths]
        stamp = json.dumps([FORMAT, real, [list(pm) for pm in zip(paths, mtimes, strict=True)],
                            prefix, base])
        key = f"pydists:{hash_bytes(stamp.encode('utf-8', 'surrogatepass'))}"
        text = self.facts.get(key, True)
        if text is not None:
            try:
                return SiteIndex.from_json(text)
            except (ValueError, KeyError, TypeError):
                pass  # damaged: rebuild it
        index = build_index(paths, dict.fromkeys([prefix, base]))
        # A folder changed within the timestamp granularity of now could change again
        # without its mtime moving: such an index is used, not remembered.
        if max(mtimes, default=0) < time.time_ns() - RACY_NS:
            self.facts.put(key, index.to_json(), shared)
        return index
