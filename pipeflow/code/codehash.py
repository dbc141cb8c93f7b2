"""What pipeflow learns from one Python source: its normalized hash and its imports.

The normalized hash says what a file does, not how it is laid out.

A ``.py`` file's code hash is xxh3-128 over a canonical serialization of
``ast.parse(source)``:

- no positions (line, column): blank lines, comments, indentation style, line
  breaks inside brackets and quote style never reach the tree;
- the leading string statement of each module, class and function body (its
  docstring) is dropped;
- fields that are ``None`` or an empty list are left out, so that a field a newer
  Python adds to a node (``type_params`` in 3.12) does not change the hash of code
  that does not use it; every other field is written with its name;
- constants carry their type (``1``, ``1.0`` and ``True`` differ) and ``repr``.

Everything else counts: names (a renamed local variable reruns, since behaviour may
change through ``locals()`` or error messages), literals, annotations, decorators,
statement order. A docstring read through ``__doc__`` is a documented miss.

A file that does not parse is hashed by its bytes, and its facts say why.

``analyze`` also lists the imports a source makes (``pipeflow.code.codedeps`` resolves
them); ``SourceCache`` keeps both by the file's raw content hash, in memory and in the
state database, so each content is parsed once.
"""

from __future__ import annotations

import ast
import json
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeflow.content.hashing import HashInfo, hash_bytes

if TYPE_CHECKING:
    from pipeflow.keyvalue import KeyValue

FORMAT = 1
"""Changes whenever the serialization or the facts would: old cache entries are unused."""
# The tree depends on the parsing Python's minor version, so cached facts do too.
_FACTS_KEY = f"pyfacts:{FORMAT}:py{sys.version_info[0]}.{sys.version_info[1]}"

_PREFIX = f"pyast{FORMAT}:".encode()
_SKIPPED_FIELDS = frozenset({"kind", "type_comment"})
"""``Constant.kind`` is ``'u'`` for ``u"..."`` (same value); type comments are comments."""
_DOC_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def parse(source: bytes | str, filename: str = "<code>") -> ast.Module:
    """``ast.parse`` without the warnings some sources raise (invalid escapes).

    Raises SyntaxError, ValueError (NUL bytes), RecursionError or MemoryError (too
    deeply nested) as ``ast.parse`` does.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source, filename)


def _body(node: ast.AST, name: str, value: list[Any]) -> list[Any]:
    """A body without its leading docstring (for modules, classes and functions)."""
    if (
        name == "body"
        and isinstance(node, _DOC_OWNERS)
        and value
        and isinstance(value[0], ast.Expr)
        and isinstance(value[0].value, ast.Constant)
        and isinstance(value[0].value.value, str)
    ):
        return value[1:]
    return value


def serialize(tree: ast.AST) -> str:
    """The canonical text of ``tree`` (see the module docstring).

    Iterative, so a deeply nested expression that ``ast.parse`` accepted never hits
    the recursion limit here.
    """
    out: list[str] = []
    # Items are nodes, lists or already-rendered text; text is only ever pushed by
    # this function, so a str on the stack is never a source constant.
    stack: list[Any] = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, ast.AST):
            if isinstance(item, ast.Constant):
                const = item.value
                out.append(f"{type(const).__name__}:{const!r}")
                continue
            parts: list[Any] = [f"{type(item).__name__}("]
            for name in item._fields:
                if name in _SKIPPED_FIELDS:
                    continue
                value = getattr(item, name, None)
                if isinstance(value, list):
                    value = _body(item, name, value)
                if value is None or (isinstance(value, list) and not value):
                    continue
                parts.append(f"{name}=")
                parts.append(repr(value) if isinstance(value, str) else value)
                parts.append(",")
            parts.append(")")
            stack.extend(reversed(parts))
        elif isinstance(item, list):
            parts = ["["]
            for element in item:
                parts.append(repr(element) if isinstance(element, str) else element)
                parts.append(",")
            parts.append("]")
            stack.extend(reversed(parts))
        else:
            # str fields are rendered (repr) when pushed; other scalars (ints such
            # as ImportFrom.level, conversion flags) land here
            out.append(repr(item))
    return "".join(out)


def tree_hash(tree: ast.AST) -> str:
    """The normalized hash of a parsed module."""
    return hash_bytes(_PREFIX + serialize(tree).encode("utf-8", "surrogatepass"))


def _tree(source: bytes) -> ast.Module | str:
    """The parsed source, or why it does not parse."""
    try:
        return parse(source)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return str(exc) or type(exc).__name__


def source_hash(source: bytes) -> tuple[str, str | None]:
    """``(hash, problem)``: the normalized hash of Python ``source``, or, when it does
    not parse, the hash of its bytes and why it did not parse."""
    tree = _tree(source)
    if isinstance(tree, str):
        return hash_bytes(source), tree
    return tree_hash(tree), None


# --- what one source says -----------------------------------------------------------


@dataclass(frozen=True)
class ImportRef:
    """One import statement: ``from .a import b`` is ``ImportRef(1, "a", ("b",))``."""

    level: int
    module: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceFacts:
    """What pipeflow needs from one Python source: its code hash and its imports."""

    hash: str
    """The normalized hash (the hash of the bytes when it does not parse)."""
    imports: tuple[ImportRef, ...] = ()
    dynamic: tuple[tuple[int, str], ...] = ()
    """Imports computed at run time, not followed: (line, code)."""
    exports: tuple[str, ...] | None = None
    """A literal ``__all__`` (what ``from m import *`` takes)."""
    problem: str | None = None
    """Why the source does not parse."""

    def to_json(self) -> str:
        """Compact JSON, for the state database."""
        body = {"h": self.hash, "i": [[r.level, r.module, list(r.names)] for r in self.imports],
                "d": [list(d) for d in self.dynamic], "a": self.exports, "p": self.problem}
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SourceFacts:
        """Inverse of ``to_json``; raises ValueError (or KeyError/TypeError) on junk."""
        d = json.loads(text)
        exports = d["a"]
        return cls(
            hash=str(d["h"]),
            imports=tuple(ImportRef(int(lv), str(m), tuple(map(str, n))) for lv, m, n in d["i"]),
            dynamic=tuple((int(line), str(code)) for line, code in d["d"]),
            exports=None if exports is None else tuple(map(str, exports)),
            problem=None if d["p"] is None else str(d["p"]),
        )


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return None


_DYNAMIC = frozenset({"importlib.import_module", "import_module", "__import__"})


def _dynamic_import(node: ast.Call) -> ImportRef | str | None:
    """The import a call makes: an ImportRef when its target is a literal, the call's
    text when not, None when the call is no import."""
    if _call_name(node.func) not in _DYNAMIC:
        return None
    first = node.args[0] if node.args else None
    if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value:
        name = first.value
        level = len(name) - len(name.lstrip("."))
        return ImportRef(level, name[level:])
    text = ast.unparse(node)
    return text if len(text) <= 80 else text[:77] + "..."


def _exports(tree: ast.Module) -> tuple[str, ...] | None:
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets)
            and isinstance(stmt.value, ast.List | ast.Tuple)
        ):
            names = [e.value for e in stmt.value.elts
                     if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            return tuple(names)
    return None


def analyze(source: bytes | str) -> SourceFacts:
    """The normalized hash and the imports of one Python source.

    Imports anywhere count (inside functions, ``try``, ``if TYPE_CHECKING``): an
    import that may run is part of what the code can do.
    """
    data = source.encode("utf-8", "surrogatepass") if isinstance(source, str) else source
    tree = _tree(data)
    if isinstance(tree, str):
        return SourceFacts(hash_bytes(data), problem=tree)
    imports: list[ImportRef] = []
    dynamic: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports.extend(ImportRef(0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            imports.append(ImportRef(node.level, node.module or "", names))
        elif isinstance(node, ast.Call):
            found = _dynamic_import(node)
            if isinstance(found, ImportRef):
                imports.append(found)
            elif found is not None:
                dynamic.append((node.lineno, found))
    dynamic.sort()
    return SourceFacts(tree_hash(tree), tuple(dict.fromkeys(imports)), tuple(dynamic),
                       _exports(tree))


class SourceCache:
    """``SourceFacts`` of workspace files, by raw content hash.

    ``hash_path`` is the Hasher's (stat cache and memo), ``state`` the
    state database's ``get``/``put``; facts are computed from the bytes only for a
    content seen for the first time.
    """

    def __init__(
        self,
        root: Path,
        hash_path: Callable[[str], HashInfo],
        state: KeyValue | None = None,
    ) -> None:
        self.root = Path(root)
        self._hash_path = hash_path
        self._state = state
        self._memo: dict[str, SourceFacts] = {}
        self.parsed = 0  # how many sources were actually parsed (tests, benchmarks)

    def raw(self, rel: str) -> HashInfo | None:
        """The content hash of ``rel`` (None: missing or unreadable)."""
        try:
            return self._hash_path(rel)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None

    def facts(self, rel: str) -> SourceFacts | None:
        """Facts of the Python file ``rel`` (None: missing, unreadable or a folder)."""
        info = self.raw(rel)
        if info is None or info.isdir:
            return None
        found = self._memo.get(info.hash)
        if found is not None:
            return found
        key = f"{_FACTS_KEY}:{info.hash}"
        text = self._state.get(key) if self._state is not None else None
        if text is not None:
            try:
                found = SourceFacts.from_json(text)
            except (ValueError, KeyError, TypeError):
                found = None  # a damaged cache entry: recompute it
        if found is None:
            try:
                data = (self.root / rel).read_bytes()
            except OSError:
                return None
            found = analyze(data)
            self.parsed += 1
            if hash_bytes(data) == info.hash and self._state is not None:
                # only when the bytes are those the key names (not rewritten meanwhile)
                self._state.put(key, found.to_json())
        self._memo[info.hash] = found
        return found
