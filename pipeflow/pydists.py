"""Installed distributions as a stage's own interpreter sees them.

``importlib.metadata.packages_distributions()`` answers "which distribution provides
module ``sklearn``" for the running interpreter only; a stage may run another one (a
venv, ``python3.12``, a conda env). So pipeflow reads, for the interpreter the
stage's shell would run:

- its import path (``sys.path``, asked once by running it, or taken from this process
  when it is the same interpreter in the same environment);
- the ``*.dist-info`` and ``*.egg-info`` folders on that path: name, version and
  ``Requires-Dist`` from ``METADATA``, the top-level modules from ``top_level.txt``
  or, without it, from ``RECORD``; editable installs from ``direct_url.json`` and
  setuptools' ``__editable___*_finder.py`` (their ``MAPPING``).

The result (a ``SiteIndex``) is kept in the state database, and for an interpreter
binary in the machine cache too (``pipeflow.machinecache``), under a key made of the
interpreter's real path and the modification times of the folders on its path: a
``pip install`` or ``uninstall`` changes a folder's mtime, so a stale index is never
used. A pyenv shim is first resolved to the interpreter it would run
(``resolve_launcher``). Absolute paths live in those caches only, never in a
fingerprint.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from pipeflow import projectfile
from pipeflow.errors import PipeflowError
from pipeflow.hasher import RACY_NS
from pipeflow.hashing import hash_bytes
from pipeflow.interptrust import run_probe
from pipeflow.machinecache import Facts
from pipeflow.safepath import within

FORMAT = 4  # 4: the path probe runs isolated (-I) and names the user site folder

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"\bextra\b")
# What an interpreter says of itself, to tell a genuine interpreter from a launcher
# that runs another one (only a genuine one's answers may be shared by all projects).
SELF_PROBE = ("[sys.executable,sys.base_prefix,"
              "os.path.realpath('/proc/self/exe') if os.path.exists('/proc/self/exe') else '']")
# Run with -I: the user site folder is not on sys.path then, so it is named apart.
_PATH_PROBE = (
    "import json,os,site,sys;print(json.dumps([[p for p in sys.path if p],sys.prefix,"
    f"sys.base_prefix,{SELF_PROBE},site.getusersitepackages()]))"
)


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


def normalize(name: str) -> str:
    """A distribution name in its comparable form (PEP 503): ``Scikit_Learn`` ->
    ``scikit-learn``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Distribution:
    """One installed distribution."""

    name: str
    version: str
    requires: tuple[str, ...] = ()
    """Normalized names of what it requires (requirements of extras left out)."""
    location: str | None = None
    """The source folder of an editable install (absolute), else None."""


@dataclass(frozen=True)
class SiteIndex:
    """What is installed for one interpreter, and which modules each distribution
    provides."""

    paths: tuple[str, ...]
    """The interpreter's import path (absolute folders; no script folder)."""
    prefixes: tuple[str, ...] = ()
    """``sys.prefix`` and ``sys.base_prefix``: the environment's own folders."""
    dists: Mapping[str, Distribution] = field(default_factory=dict)
    """Normalized name -> the distribution first found on the path."""
    provides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Top-level module -> normalized names of the distributions providing it."""
    editable: Mapping[str, str] = field(default_factory=dict)
    """Top-level module -> absolute location, from setuptools' editable finders."""

    def version(self, name: str) -> str | None:
        """The installed version of distribution ``name`` (None: not installed)."""
        dist = self.dists.get(normalize(name))
        return dist.version if dist else None

    def closure(self, modules: Iterable[str], root: str | None = None) -> dict[str, str]:
        """``{name: version}`` of the distributions providing top-level ``modules``
        and everything they require, transitively (installed ones only).

        Editable installs whose source lies under ``root`` are left out (their files
        are the project's code); what they require is not.
        """
        todo = [key for m in modules for key in self.provides.get(m, ())]
        seen: set[str] = set()
        found: dict[str, str] = {}
        inside = None if root is None else os.path.abspath(root)
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            dist = self.dists.get(key)
            if dist is None:
                continue
            if not (inside and dist.location and within(dist.location, inside)):
                found[dist.name] = dist.version
            todo.extend(dist.requires)
        return dict(sorted(found.items()))

    def project_paths(self, root: str) -> list[str]:
        """Import path folders inside ``root`` that hold the project's own code:
        PYTHONPATH entries, editable ``.pth`` folders; not an environment kept there
        (``.venv``)."""
        inside = os.path.abspath(root)
        found = []
        for path in self.paths:
            parts = path.split(os.sep)
            if not within(path, inside) or "site-packages" in parts or "dist-packages" in parts:
                continue
            if any(within(path, prefix) for prefix in self.prefixes):
                continue
            found.append(path)
        return found

    def to_json(self) -> str:
        """Compact JSON, for the state database."""
        body = {
            "format": FORMAT,
            "paths": list(self.paths),
            "prefixes": list(self.prefixes),
            "dists": {k: [d.name, d.version, list(d.requires), d.location]
                      for k, d in self.dists.items()},
            "provides": {k: list(v) for k, v in self.provides.items()},
            "editable": dict(self.editable),
        }
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SiteIndex:
        """Inverse of ``to_json``; raises ValueError (or KeyError/TypeError) on junk."""
        d = json.loads(text)
        if d.get("format") != FORMAT:
            raise ValueError("unknown site index format")
        return cls(
            paths=tuple(d["paths"]),
            prefixes=tuple(d["prefixes"]),
            dists={k: Distribution(str(n), str(v), tuple(r), loc)
                   for k, (n, v, r, loc) in d["dists"].items()},
            provides={k: tuple(v) for k, v in d["provides"].items()},
            editable=dict(d["editable"]),
        )


# --- reading metadata ---------------------------------------------------------------


def _headers(text: str) -> dict[str, list[str]]:
    """Email-style headers of a METADATA / PKG-INFO file (the part before the body)."""
    found: dict[str, list[str]] = {}
    for line in text.split("\n"):
        if not line.strip():
            break
        if line[0] in " \t":
            continue  # a continuation line: only of headers we do not read
        key, sep, value = line.partition(":")
        if sep:
            found.setdefault(key.strip().lower(), []).append(value.strip())
    return found


def _requirement(spec: str) -> str | None:
    """The normalized name a ``Requires-Dist`` value needs, None for an extra's."""
    name, _, marker = spec.partition(";")
    if _EXTRA.search(marker):
        return None
    m = _NAME.match(name)
    return normalize(m.group(1)) if m else None


def _egg_requires(text: str) -> list[str]:
    """Requirements of ``requires.txt``: unconditional ones and marker-only sections."""
    found = []
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif line and (not section or section.startswith(":")):
            m = _NAME.match(line)
            if m:
                found.append(normalize(m.group(1)))
    return found


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _inferred_top_level(record: str) -> set[str]:
    """Top-level modules of a distribution from the files its RECORD lists."""
    found = set()
    for line in record.splitlines():
        path = line.split(",", 1)[0]
        first, sep, _ = path.partition("/")
        if not first or first.startswith("..") or first == "__pycache__":
            continue
        if sep:
            if not first.endswith((".dist-info", ".data")) and first.isidentifier():
                found.add(first)
        elif first.endswith((".py", ".so", ".pyd")):
            found.add(first.split(".", 1)[0])
    return found


def _editable_location(info_dir: str) -> str | None:
    text = _read(os.path.join(info_dir, "direct_url.json"))
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not (isinstance(doc, dict) and isinstance(doc.get("dir_info"), dict)
            and doc["dir_info"].get("editable") and isinstance(doc.get("url"), str)):
        return None
    url = urlparse(doc["url"])
    return os.path.abspath(unquote(url.path)) if url.scheme == "file" else None


def _finder_mapping(path: str) -> dict[str, str]:
    """``MAPPING`` of a setuptools editable finder module (a literal dict)."""
    text = _read(path)
    if text is None:
        return {}
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    for stmt in tree.body:
        target: ast.expr
        value: ast.expr | None
        if isinstance(stmt, ast.AnnAssign):
            target, value = stmt.target, stmt.value
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "MAPPING" and value is not None:
            try:
                found = ast.literal_eval(value)
            except ValueError:
                return {}
            if isinstance(found, dict):
                return {str(k): str(v) for k, v in found.items() if isinstance(v, str)}
    return {}


def _distribution(folder: str, name: str) -> tuple[Distribution, set[str]] | None:
    """A distribution and its top-level modules from a ``.dist-info``/``.egg-info``."""
    full = os.path.join(folder, name)
    if name.endswith(".dist-info"):
        meta = _read(os.path.join(full, "METADATA"))
    elif os.path.isdir(full):
        meta = _read(os.path.join(full, "PKG-INFO"))
    else:
        meta = _read(full)  # a single-file .egg-info is the PKG-INFO itself
    if meta is None:
        return None
    headers = _headers(meta)
    names, versions = headers.get("name"), headers.get("version")
    if not names or not versions:
        return None
    if name.endswith(".dist-info"):
        requires = [r for r in map(_requirement, headers.get("requires-dist", [])) if r]
    else:
        requires = _egg_requires(_read(os.path.join(full, "requires.txt")) or "")
    top = _read(os.path.join(full, "top_level.txt"))
    if top is not None:
        modules = {line.strip() for line in top.splitlines() if line.strip()}
    else:
        modules = _inferred_top_level(_read(os.path.join(full, "RECORD")) or "")
    dist = Distribution(names[0], versions[0], tuple(dict.fromkeys(requires)),
                        _editable_location(full))
    return dist, modules


def build_index(paths: Iterable[str], prefixes: Iterable[str] = ()) -> SiteIndex:
    """Read every distribution on ``paths`` (earlier folders win, as for imports)."""
    paths = tuple(paths)
    dists: dict[str, Distribution] = {}
    provides: dict[str, list[str]] = {}
    editable: dict[str, str] = {}
    for folder in paths:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                found = _distribution(folder, name)
                if found is None:
                    continue
                dist, modules = found
                key = normalize(dist.name)
                if key in dists:
                    continue  # shadowed by an earlier folder of the path
                dists[key] = dist
                for module in modules:
                    provides.setdefault(module, []).append(key)
            elif name.startswith("__editable__") and name.endswith("_finder.py"):
                for module, location in _finder_mapping(os.path.join(folder, name)).items():
                    editable.setdefault(module, location)
    return SiteIndex(paths, tuple(prefixes), dists,
                     {k: tuple(v) for k, v in sorted(provides.items())}, editable)


# --- which interpreter, which path --------------------------------------------------


def _venv_of(executable: str) -> str | None:
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
            and _venv_of(found) == _venv_of(sys.executable))


def _own_path() -> tuple[list[str], str, str]:
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


def _user_site_stamp() -> list[object]:
    """What decides whether an interpreter has a user site folder on its path: the
    folders under the user base's ``lib`` (``pythonX.Y``) and their times."""
    base = os.environ.get("PYTHONUSERBASE") or os.path.join(os.path.expanduser("~"), ".local")
    lib = os.path.join(base, "lib")
    try:
        with os.scandir(lib) as it:
            found = sorted((e.name, _mtime(e.path)) for e in it if e.name.startswith("python"))
    except OSError:
        found = []
    return [bool(os.environ.get("PYTHONNOUSERSITE")), lib, _mtime(lib), found]


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _as_the_stage_sees(isolated: list[str], prefix: str, base: str, user_site: str,
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
    text = _read(cfg) or ""
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "include-system-site-packages":
            return value.strip().lower() == "true"
    return False


class SiteIndexes:
    """``SiteIndex`` per interpreter, remembered in the machine cache and the state
    database (``recall``/``remember`` are the state database's ``get``/``put``).
    """

    def __init__(
        self,
        recall: Callable[[str], str | None] | None = None,
        remember: Callable[[str, str], None] | None = None,
        allow: Callable[[str], bool] | None = None,
    ) -> None:
        """``allow(path)`` says whether interpreter ``path`` may be started (see
        ``pipeflow.interptrust``); None: any."""
        self.facts = Facts(recall, remember)
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
            return (*_own_path(), True)
        real = os.path.realpath(found)
        venv = _venv_of(found)
        pythonpath = os.environ.get("PYTHONPATH", "")
        relative = any(p and not os.path.isabs(p) for p in pythonpath.split(os.pathsep))
        # what else decides the answer: PYTHONPATH, which Python a pyenv shim runs, and
        # the user site folders (one created later joins sys.path)
        key = json.dumps(["pypath", FORMAT, found, real, _mtime(real), venv,
                          _mtime(venv) if venv else 0, pythonpath, cwd if relative else "",
                          os.environ.get("PYENV_VERSION", ""), _user_site_stamp()])
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
            paths = _as_the_stage_sees(
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
        mtimes = [_mtime(p) for p in paths]
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
