"""The code a stage runs: the Python script or module its command starts, and every
module of the project that code imports, transitively.

Static analysis only (``ast``), nothing is imported or run. For each Python run of a
stage's commands (``python script.py``, ``python -m pkg.mod``, ``python -c CODE``, an
interpreter path, a ``.py`` file run directly: see ``pipeflow.code.pycommand``), the
script's imports are resolved
against, in order: the script's folder (``-m``, ``-c``: the folder the command runs
in), the interpreter's own search path entries that lie in the project (PYTHONPATH,
``.pth`` files of editable installs), the stage's ``wdir``, the project root and the
``src/`` folders of both. Relative imports, ``from pkg import mod``, package
``__init__`` files and ``importlib.import_module("literal")`` are followed; an import
whose target is computed at run time is reported as a note.

A module found in the project is code; any other top-level module that is not in the
standard library is *external*: the environment component maps it to the installed
distribution that provides it.

What one file says (normalized hash, imports: ``pipeflow.code.codehash``) is cached by its
raw content hash, and a stage's whole scan with the content hash of every file and
the listing of every folder it looked at (``CodeDetector``), so that a no-op
``status`` costs a stat per file (through the Hasher's stat cache) and one listing
per folder.
"""

from __future__ import annotations

import json
import os
import posixpath
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeflow.code import codehash
from pipeflow.code.codehash import ImportRef, SourceCache, SourceFacts, analyze
from pipeflow.code.pycommand import UNRESOLVED, Invocation, invocations
from pipeflow.content.hashing import hash_bytes

if TYPE_CHECKING:
    from pipeflow.keyvalue import KeyValue

FORMAT = 1
"""Of the scan results remembered in the state database."""

MODULE_MAP = "<modules>"
"""Path of the code entry whose hash is that of the resolved module-to-file map."""

_STDLIB = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)


# --- resolution ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Module:
    name: str
    file: str | None
    """Root-relative source file; None for a namespace package."""
    dirs: tuple[str, ...] = ()
    """Absolute folders holding its submodules (empty: not a package)."""


@dataclass(frozen=True)
class CodeScan:
    """The code a stage's commands run, as found in the workspace."""

    files: tuple[str, ...] = ()
    """Root-relative code files (scripts and project modules), sorted."""
    hashes: Mapping[str, str] = field(default_factory=dict)
    """Normalized hash of each file of ``files`` that exists."""
    modules: Mapping[str, str] = field(default_factory=dict)
    """Module name -> root-relative file of every project module imported."""
    external: tuple[str, ...] = ()
    """Top-level modules imported that are neither in the project nor the stdlib."""
    notes: tuple[str, ...] = ()
    ran_python: bool = False
    """Some command runs Python (then the module map is part of the code)."""

    def map_hash(self) -> str:
        """The hash of the module map (the ``<modules>`` code entry)."""
        return hash_bytes(module_map_text(self.modules).encode("utf-8", "surrogatepass"))

    def to_json(self) -> dict[str, Any]:
        """Plain data, for the state database."""
        return {"files": list(self.files), "hashes": dict(self.hashes),
                "modules": dict(self.modules), "external": list(self.external),
                "notes": list(self.notes), "python": self.ran_python}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CodeScan:
        """Inverse of ``to_json``; raises KeyError/TypeError/ValueError on junk."""
        return cls(tuple(map(str, d["files"])), {str(k): str(v) for k, v in d["hashes"].items()},
                   {str(k): str(v) for k, v in d["modules"].items()},
                   tuple(map(str, d["external"])), tuple(map(str, d["notes"])), bool(d["python"]))


def module_map_text(modules: Mapping[str, str]) -> str:
    """The canonical text of a module map (sorted, compact JSON)."""
    return json.dumps(dict(sorted(modules.items())), separators=(",", ":"), ensure_ascii=False)


def describe_map_change(
    old: Mapping[str, str] | None, new: Mapping[str, str] | None, *, recorded: bool = True
) -> str:
    """The words for a changed module map: ``import resolution changed: yaml ->
    src/yaml.py``. ``old`` None: the earlier map is not known here (``recorded``: the
    lock has one); ``new`` None: no Python command is analyzed any more."""
    if new is None:
        return "import resolution no longer recorded (no Python command analyzed)"
    if old is None:
        if not recorded:
            return f"import resolution recorded ({len(new)} project modules)"
        return "import resolution changed (the earlier module map is not known here)"
    parts = []
    for name in sorted(set(old) | set(new)):
        was, now = old.get(name), new.get(name)
        if was == now:
            continue
        if was is None:
            parts.append(f"{name} -> {now}")
        elif now is None:
            parts.append(f"{name}: {was} -> not in the project")
        else:
            parts.append(f"{name}: {was} -> {now}")
    shown = "; ".join(parts[:5]) + (f"; and {len(parts) - 5} more" if len(parts) > 5 else "")
    return f"import resolution changed: {shown}"


def _digest(files: Iterable[str], dirs: Iterable[str]) -> str:
    text = "\0".join(sorted(files)) + "\0/\0" + "\0".join(sorted(dirs))
    return hash_bytes(text.encode("utf-8", "surrogateescape"))


class _Reads:
    """Everything a scan looked at: folder listings and source files (by content
    hash). The scan's result holds as long as each of them is unchanged."""

    def __init__(self, sources: SourceCache) -> None:
        self.sources = sources
        self.listings: dict[str, tuple[frozenset[str], frozenset[str]] | None] = {}
        self.files: dict[str, str] = {}

    def listing(self, folder: str) -> tuple[frozenset[str], frozenset[str]] | None:
        """The ``.py`` files and the folders with importable names in ``folder``; None
        when it is not a folder. Nothing else can change how an import resolves, so
        an output or a data file written beside the code never voids a scan."""
        if folder in self.listings:
            return self.listings[folder]
        files: set[str] = set()
        dirs: set[str] = set()
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    name = entry.name
                    try:
                        # d_type answers without a syscall (symlinks are followed)
                        if name.endswith(".py"):
                            if entry.is_file():
                                files.add(name)
                        elif name.isidentifier() and entry.is_dir():
                            dirs.add(name)
                    except OSError:
                        continue
            got: tuple[frozenset[str], frozenset[str]] | None = (frozenset(files),
                                                                  frozenset(dirs))
        except OSError:
            got = None
        self.listings[folder] = got
        return got

    def facts(self, rel: str) -> SourceFacts | None:
        info = self.sources.raw(rel)
        self.files[rel] = info.hash if info is not None and not info.isdir else ""
        return self.sources.facts(rel) if self.files[rel] else None

    def record(self) -> dict[str, Any]:
        """What to check before trusting the result again."""
        return {"files": self.files,
                "dirs": {d: None if got is None else _digest(*got)
                         for d, got in self.listings.items()}}

    def unchanged(self, record: Mapping[str, Any]) -> bool:
        """True when every file and folder ``record`` lists is as it was."""
        for rel, digest in record["files"].items():
            info = self.sources.raw(rel)
            if (info.hash if info is not None and not info.isdir else "") != digest:
                return False
        for folder, digest in record["dirs"].items():
            got = self.listing(folder)
            if (None if got is None else _digest(*got)) != digest:
                return False
        return True


class _Walk:
    """Resolution of one Python run's imports, module by module."""

    def __init__(self, root: str, reads: _Reads, search: Sequence[str],
                 editable: Mapping[str, str]) -> None:
        self.root = root
        self.reads = reads
        self.search = [p for p in dict.fromkeys(search) if reads.listing(p) is not None]
        self.editable = editable
        self.found: dict[str, _Module | None] = {}
        self.files: dict[str, None] = {}
        self.hashes: dict[str, str] = {}
        self.modules: dict[str, str] = {}
        self.external: set[str] = set()
        self.notes: dict[str, None] = {}
        self.queue: list[tuple[str, str | None]] = []

    def rel(self, full: str) -> str | None:
        """Root-relative form of an absolute path, None when outside the project."""
        if full == self.root:
            return ""
        if full.startswith(self.root + os.sep):
            return full[len(self.root) + 1:].replace(os.sep, "/")
        return None

    def lookup(self, name: str, base: str, folders: Iterable[str]) -> _Module | None:
        """Module ``base`` (last part of ``name``) in ``folders``, as PathFinder would:
        a regular package, else a module file, else a namespace package."""
        portions: list[str] = []
        for folder in folders:
            files, dirs = self.reads.listing(folder) or (frozenset(), frozenset())
            if base in dirs:
                sub = os.path.join(folder, base)
                if "__init__.py" in (self.reads.listing(sub) or ((),))[0]:
                    return _Module(name, self.rel(os.path.join(sub, "__init__.py")), (sub,))
                portions.append(sub)
                continue
            if f"{base}.py" in files:
                return _Module(name, self.rel(os.path.join(folder, f"{base}.py")))
        return _Module(name, None, tuple(portions)) if portions else None

    def find(self, name: str) -> _Module | None:
        if name in self.found:
            return self.found[name]
        parent, _, base = name.rpartition(".")
        mod: _Module | None
        if parent:
            up = self.find(parent)
            mod = self.lookup(name, base, up.dirs) if up is not None and up.dirs else None
        else:
            mod = self.lookup(name, base, self.search)
            if (mod is None or mod.file is None) and name in self.editable:
                mod = self._editable(name) or mod
        if mod is not None and mod.file is None and not mod.dirs:
            mod = None  # a file outside the project: environment, not code
        self.found[name] = mod
        return mod

    def _editable(self, name: str) -> _Module | None:
        target = self.editable[name]
        if self.rel(target) is None:
            return None
        listed = self.reads.listing(target)
        if listed is not None:
            init = self.rel(os.path.join(target, "__init__.py")) if "__init__.py" in listed[0] \
                else None
            return _Module(name, init, (target,))
        parent = self.reads.listing(os.path.dirname(target))
        if parent is not None and os.path.basename(target) in parent[0]:
            return _Module(name, self.rel(target))
        return None

    def add_file(self, rel: str, package: str | None) -> None:
        if rel not in self.files:
            self.files[rel] = None
            self.queue.append((rel, package))

    def import_name(self, name: str) -> _Module | None:
        """Import ``name`` and its parent packages; the deepest module found."""
        parts = name.split(".")
        last: _Module | None = None
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            mod = self.find(prefix)
            if mod is None:
                if i == 1 and prefix not in _STDLIB and prefix.isidentifier():
                    self.external.add(prefix)
                break
            if i == 1 and mod.file is None:
                # a folder without __init__.py is a namespace package only when no
                # installed distribution provides the name: let the environment look
                self.external.add(prefix)
            if mod.file is not None:
                self.modules[prefix] = mod.file
                self.add_file(mod.file, prefix if mod.dirs else prefix.rpartition(".")[0])
            last = mod
        return last

    def follow(self, ref: ImportRef, package: str | None) -> None:
        if ref.level:
            if not package:
                return  # a relative import in a script fails at run time; nothing to follow
            parts = package.split(".")
            if ref.level > len(parts):
                return
            base = ".".join(parts[: len(parts) - ref.level + 1])
            target = f"{base}.{ref.module}" if ref.module else base
        else:
            target = ref.module
        if not target:
            return
        mod = self.import_name(target)
        if mod is None or not mod.dirs or not ref.names:
            return
        names = list(ref.names)
        if "*" in names and mod.file is not None:
            facts = self.reads.facts(mod.file)
            names = list(facts.exports or ()) if facts else []
        for name in names:
            if name != "*" and self.find(f"{target}.{name}") is not None:
                self.import_name(f"{target}.{name}")

    def drain(self) -> None:
        while self.queue:
            rel, package = self.queue.pop()
            facts = self.reads.facts(rel)
            if facts is not None:
                self.hashes[rel] = facts.hash
                self.take(facts, rel, package)

    def take(self, facts: SourceFacts, where: str, package: str | None) -> None:
        if facts.problem:
            self.notes[f"{where} does not parse ({facts.problem}): hashed by its bytes"] = None
        for line, code in facts.dynamic:
            self.notes[f"dynamic import not followed: {where}:{line} {code}"] = None
        for ref in facts.imports:
            self.follow(ref, package)


class CodeDetector:
    """Finds the code of stages (see the module docstring); one per process.

    A scan's result is remembered (``state``: the state database) with
    the content hash of every file and the listing of every folder it looked at; the
    next scan of the same commands checks those (a stat per file, through the stat
    cache, and a listing per folder) instead of walking the imports again.
    """

    def __init__(
        self,
        root: Path,
        sources: SourceCache,
        state: KeyValue | None = None,
    ) -> None:
        self.root = Path(root)
        self.root_str = os.path.abspath(self.root)
        self.sources = sources
        self._state = state
        self._inline: dict[str, SourceFacts] = {}
        self.walked = 0  # scans that walked the imports (tests, benchmarks)

    def scan(
        self,
        cmds: Iterable[str],
        wdir: str = "",
        paths: Sequence[str] = (),
        editable: Mapping[str, str] | None = None,
    ) -> CodeScan:
        """The code ``cmds`` (run in root-relative ``wdir``) run.

        ``paths`` are absolute import path entries of the interpreter (those outside
        the project are ignored: PYTHONPATH, ``.pth`` files); ``editable`` maps
        top-level modules of editable installs to their absolute location.
        """
        wdir = "" if wdir in ("", ".") else wdir
        runs = [inv for cmd in cmds for inv in invocations(cmd, wdir)]
        if not runs:
            return CodeScan()
        inside = [p for p in paths if p == self.root_str or p.startswith(self.root_str + os.sep)]
        editable = dict(sorted((editable or {}).items()))
        # the cached hashes are those of this Python's syntax trees
        what = json.dumps([codehash.FORMAT, sys.version_info[:2], [list(astuple(r)) for r in runs],
                           wdir, inside, editable])
        key = f"codescan:{FORMAT}:{hash_bytes(what.encode('utf-8', 'surrogatepass'))}"
        text = self._state.get(key) if self._state is not None else None
        if text is not None:
            try:
                doc = json.loads(text)
                if _Reads(self.sources).unchanged(doc["reads"]):
                    return CodeScan.from_json(doc["scan"])
            except (ValueError, KeyError, TypeError, AttributeError):
                pass  # a damaged entry: walk again
        reads = _Reads(self.sources)
        result = self._walk(runs, wdir, inside, editable, reads)
        self.walked += 1
        if self._state is not None:
            doc = {"reads": reads.record(), "scan": result.to_json()}
            self._state.put(key, json.dumps(doc, separators=(",", ":")))
        return result

    def _walk(self, runs: list[Invocation], wdir: str, paths: list[str],
              editable: Mapping[str, str], reads: _Reads) -> CodeScan:
        files: dict[str, None] = {}
        hashes: dict[str, str] = {}
        modules: dict[str, str] = {}
        external: set[str] = set()
        notes: dict[str, None] = {}
        for inv in runs:
            walk = self._one(inv, wdir, paths, editable, reads)
            files.update(walk.files)
            hashes.update(walk.hashes)
            modules.update(walk.modules)
            external |= walk.external
            notes.update(walk.notes)
        return CodeScan(tuple(sorted(files)), hashes, modules, tuple(sorted(external)),
                        tuple(notes), True)

    def _search(self, first: str, wdir: str, paths: Sequence[str]) -> list[str]:
        def full(rel: str) -> str:
            return os.path.normpath(os.path.join(self.root_str, rel)) if rel else self.root_str

        return [first, *paths, full(wdir), self.root_str, full(posixpath.join(wdir, "src")),
                os.path.join(self.root_str, "src")]

    def _one(self, inv: Invocation, wdir: str, paths: Sequence[str],
             editable: Mapping[str, str], reads: _Reads) -> _Walk:
        cwd_abs = os.path.normpath(os.path.join(self.root_str, inv.cwd))
        if inv.pythonpath:
            # PYTHONPATH=... in the command replaces the inherited one for that run
            added = [os.path.normpath(os.path.join(cwd_abs, p)) for p in inv.pythonpath
                     if not any(c in p for c in UNRESOLVED)]
            paths = [p for p in added if p == self.root_str
                     or p.startswith(self.root_str + os.sep)]
        if inv.kind == "script":
            return self._script(inv, cwd_abs, wdir, paths, editable, reads)
        walk = _Walk(self.root_str, reads, self._search(cwd_abs, wdir, paths), editable)
        if inv.kind == "other":
            return walk
        if inv.kind == "inline":
            facts = self._inline.get(inv.target)
            if facts is None:
                facts = self._inline[inv.target] = analyze(inv.target)
            walk.take(facts, "-c code", None)
        else:
            valid = inv.target.replace(".", "").isidentifier()
            mod = walk.import_name(inv.target) if valid else None
            if mod is not None and mod.dirs:
                main = walk.lookup(f"{inv.target}.__main__", "__main__", mod.dirs)
                if main is not None and main.file is not None:
                    walk.add_file(main.file, inv.target)
        walk.drain()
        return walk

    def _script(self, inv: Invocation, cwd_abs: str, wdir: str, paths: Sequence[str],
                editable: Mapping[str, str], reads: _Reads) -> _Walk:
        target = inv.target
        full = os.path.normpath(os.path.join(cwd_abs, target))
        if reads.listing(full) is not None:
            full = os.path.join(full, "__main__.py")  # python runs a folder's __main__.py
        walk = _Walk(self.root_str, reads, self._search(os.path.dirname(full), wdir, paths),
                     editable)
        if any(c in target for c in UNRESOLVED):
            walk.notes[f"cannot tell which script `{target}` runs: not followed"] = None
            return walk
        rel = walk.rel(full)
        if rel:  # a script outside the project is environment, not code
            walk.add_file(rel, None)  # recorded even when missing: "code missing" says so
            walk.drain()
        return walk
