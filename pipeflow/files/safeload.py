"""Parsing text that came from a clone or a remote: JSON and YAML within limits.

Every file pipeflow reads from a repository or a remote (the spec, params files,
``pipeline.lock``, manifests, run records, run-cache pointers, config, tag logs) is
data someone else may have crafted. A parser must then end quickly with a located
:class:`~pipeflow.errors.PipeflowError`, never a RecursionError, a MemoryError or a
minute of work:

- **size**: the bytes are counted before anything is parsed (a 45 MB spec is
  refused at once);
- **encoding**: text must be UTF-8; a bad byte is reported with its line;
- **depth**: containers nested deeper than ``max_depth`` are refused (the C
  parsers stop at about 1,000 levels; our own walks of values must not recurse
  past Python's limit);
- **expansion**: YAML aliases share one constructed value, but every walk over the
  value (interpolation, hashing, validation) visits it once per alias: a "billion
  laughs" document of 1 KB expands to 10^9 nodes. The walk below counts nodes as
  they would be expanded and stops at ``max_nodes``.

The limits are generous (see docs/limits.md for the sizes real projects reach);
``PIPEFLOW_MAX_<KIND>_MB`` raises the byte limit of one kind of file (e.g.
``PIPEFLOW_MAX_MANIFEST_MB=4096``).

The fast path stays fast: the C loaders do the parsing, and the walk only runs
where aliases are possible (YAML text containing ``*``) or the values are small
(records, config, tag lines).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeflow.errors import Location, PipeflowError, SpecError

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one kind of file may hold."""

    kind: str
    max_bytes: int
    max_depth: int = 100
    max_nodes: int = 2_000_000
    """Containers and scalars, counting a value reached through N aliases N times."""


KINDS: dict[str, Limits] = {
    # Parsing time grows with the size: 4 MiB is far above a 2,000-stage spec (about
    # 0.5 MB) and far below what takes minutes (benchmarks/RESULTS.md).
    "spec": Limits("spec", 4 * MiB),
    "params": Limits("params", 4 * MiB),
    "metrics": Limits("metrics", 4 * MiB),
    # A lock of 2,000 one-input stages is 1.4 MB, with 20 inputs each about 5 MB.
    "lock": Limits("lock", 16 * MiB, max_nodes=5_000_000),
    # A 100,000-file manifest is about 8.5 MB: this allows about 3 million files.
    "manifest": Limits("manifest", 256 * MiB),
    "record": Limits("record", 16 * MiB),
    "pointer": Limits("pointer", 4096),
    "config": Limits("config", 1 * MiB, max_nodes=100_000),
    "tagline": Limits("tagline", 64 * 1024, max_depth=20, max_nodes=10_000),
    # Read whole before parsing (pipeflow.files.projectfile): the tag log (1,000 lines of
    # 64 KB), and the rules files .pipeflowignore, .gitignore, .gitattributes (a few KB).
    "tags": Limits("tags", 64 * MiB),
    "rules": Limits("rules", 4 * MiB),
}

MAX_STAGES = 20_000
"""Stages one spec may declare (templates included): ten times a large real project;
every stage costs build time, so a spec of far more would hang every command instead
of failing it (benchmarks/RESULTS.md)."""

ErrorFactory = Callable[[str, Location], PipeflowError]
"""Builds the caller's error class from a message and where it happened."""


def limits(kind: str) -> Limits:
    """The limits of ``kind``, with ``PIPEFLOW_MAX_<KIND>_MB`` applied."""
    base = KINDS[kind]
    raw = os.environ.get(f"PIPEFLOW_MAX_{kind.upper()}_MB")
    if not raw:
        return base
    try:
        mb = float(raw)
    except ValueError:
        return base  # a typo must not lower a limit to nothing
    return Limits(kind, max(base.max_bytes, int(mb * MiB)), base.max_depth, base.max_nodes)


def spec_error(message: str, where: Location) -> PipeflowError:
    return SpecError(message, where)


def plain(cls: type[PipeflowError], hint: str | None = None) -> ErrorFactory:
    """An ErrorFactory for error classes that take a message (and a hint)."""
    return lambda message, where: cls(f"{where}: {message}", hint=hint)


def check_size(size: int, file: str, kind: str, error: ErrorFactory = spec_error) -> None:
    """Refuse a file larger than its kind allows, before reading it."""
    lim = limits(kind)
    if size > lim.max_bytes:
        env = f"PIPEFLOW_MAX_{kind.upper()}_MB"
        msg = (f"{size / MiB:.1f} MB is more than a {kind} file may hold "
               f"({lim.max_bytes / MiB:g} MB; set {env} to raise it)")
        raise error(msg, Location(file))


def decode(data: bytes, file: str, error: ErrorFactory = spec_error,
           errors: str = "strict") -> str:
    """UTF-8 text (a leading BOM dropped); a bad byte is reported with its line.
    ``errors="surrogatepass"`` reads what pipeflow itself writes that way (records)."""
    try:
        return data.decode("utf-8-sig", errors)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        msg = f"not UTF-8 text (byte 0x{data[exc.start]:02x} cannot start a character)"
        raise error(msg, Location(file, line, column)) from None


def load_json(data: bytes | str, file: str, kind: str,
              error: ErrorFactory = spec_error, errors: str = "strict") -> Any:
    """Parse JSON within the limits of ``kind`` (``errors`` as for :func:`decode`)."""
    check_size(len(data), file, kind, error)
    text = decode(data, file, error, errors) if isinstance(data, bytes) else data
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"not valid JSON: {exc.msg}", Location(file, exc.lineno, exc.colno)
                    ) from None
    except RecursionError:
        raise error(_too_deep(limits(kind)), Location(file)) from None
    bound(value, file, kind, error)
    return value


def load_yaml(data: bytes | str, file: str, kind: str, error: ErrorFactory = spec_error,
              load: Callable[[str], Any] | None = None) -> Any:
    """Parse YAML within the limits of ``kind`` (``load`` parses text: the C safe
    loader by default). Syntax errors are the caller's to locate: they propagate."""
    check_size(len(data), file, kind, error)
    text = decode(data, file, error) if isinstance(data, bytes) else data
    try:
        value = (load or _c_load)(text)
    except RecursionError:
        raise error(_too_deep(limits(kind)), Location(file)) from None
    if "*" in text:  # without an alias nothing is shared: the parser bounds the rest
        bound(value, file, kind, error)
    return value


def _c_load(text: str) -> Any:
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def bound(value: Any, file: str, kind: str, error: ErrorFactory = spec_error) -> None:
    """Refuse a value nested deeper, or expanding to more nodes, than ``kind`` allows,
    or containing itself (``&a [*a]``); the message names the key path.

    Iterative, and each shared container is measured once: a billion-laughs value
    costs the steps of its text, not of its expansion."""
    if not isinstance(value, dict | list):
        return
    lim = limits(kind)
    measured: dict[int, tuple[int, int]] = {}  # id -> (nodes when expanded, height)
    open_: set[int] = set()  # the containers on the current path (DFS)
    stack: list[tuple[Any, bool, tuple[Any, ...]]] = [(value, False, ())]
    while stack:
        item, children_done, path = stack.pop()
        key = id(item)
        if key in measured:
            continue
        pairs = list(item.items() if isinstance(item, dict) else enumerate(item))
        if not children_done:
            if key in open_:
                raise error(f"{_at(path)}a value contains itself (a YAML alias inside "
                            "its own anchor)", Location(file))
            open_.add(key)
            stack.append((item, True, path))
            stack.extend((c, False, (*path, k)) for k, c in pairs if isinstance(c, dict | list))
            continue
        open_.discard(key)
        nodes, height = 1 + (len(item) if isinstance(item, dict) else 0), 1
        for _k, c in pairs:
            n, h = measured[id(c)] if isinstance(c, dict | list) else (1, 0)
            nodes, height = nodes + n, max(height, h + 1)
        if height > lim.max_depth:
            raise error(f"{_at(path)}{_too_deep(lim)}", Location(file))
        if nodes > lim.max_nodes:
            msg = (f"{_at(path)}the value expands to more than {lim.max_nodes:,} values "
                   "(YAML aliases repeating one another?)")
            raise error(msg, Location(file))
        measured[key] = (nodes, height)


def _at(path: tuple[Any, ...]) -> str:
    """The key path of a value, as ``a.b.0.c: `` (shortened past 80 characters)."""
    text = ".".join(str(p) for p in path)
    text = text if len(text) <= 80 else text[:77] + "..."
    return f"{text}: " if text else ""


def _too_deep(lim: Limits) -> str:
    return f"values nest deeper than {lim.max_depth} levels"
