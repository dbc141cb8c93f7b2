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

This module reads the metadata into a ``SiteIndex``; ``pipeflow.code.pyinterp`` finds the
interpreter and its import path, and ``pipeflow.code.siteindexes`` keeps the indexes.
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from pipeflow.files.safepath import within

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    pass

FORMAT = 4  # 4: the path probe runs isolated (-I) and names the user site folder

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA = re.compile(r"\bextra\b")


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
