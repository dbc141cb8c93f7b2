"""``pipeline.lock``: per stage, the components of its fingerprint and its output hashes.

The lock is committed with the code and is the source of truth for what the
workspace should hold. It is deterministic text (stages sorted by name, a fixed
key order inside entries, defaults omitted) so that its git diffs read well, and
it carries a schema version so that an older pipeflow never misreads a newer
lock. It is written by :mod:`pipeflow.files.yamlemit` (never a round-trip YAML
library) and replaced atomically, so no reader and no killed process ever sees
half a file.

Layout (``docs/lockfile.md`` has the full reference)::

    # pipeline.lock: written by pipeflow; ...
    schema: 1
    stages:
      train:
        cmd: python train.py
        fingerprint: <xxh3-128 hex>
        deps: [{path, hash, size, isdir?, nfiles?}, ...]
        params: {params.yaml: {train.lr: 0.05}}
        code: [...]
        env: {platform: linux-x86_64, python: cpython-3.11}
        outs: [{path, hash, size, isdir?, nfiles?, cache?}, ...]
        metrics: [{path, hash, size, values: {acc: 0.93}}, ...]
        run: <sha256 of the run record>
    sources:
      data/raw.csv: {hash, size, isdir?, nfiles?}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeflow.errors import LockfileError, LockfileWriteError
from pipeflow.files import atomicfile, diskfull, projectfile, safeload, yamlemit
from pipeflow.lock.lockcheck import Checker, join_field, kind_of

if TYPE_CHECKING:
    from pipeflow.content.hashing import HashInfo

__all__ = [
    "HEADER",
    "SCHEMA_VERSION",
    "FileEntry",
    "Lock",
    "MetricEntry",
    "StageLock",
    "dumps",
    "file_entry",
    "hash_info",
    "loads",
    "lock_from_dict",
    "lock_to_dict",
    "out_entries",
    "read",
    "stage_from_dict",
    "stage_to_dict",
    "write",
]

SCHEMA_VERSION = 1
HEADER = "# pipeline.lock: written by pipeflow; commit it with your code. Do not edit by hand.\n"

_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class FileEntry:
    """A file or directory with its content hash (xxh3-128 hex) and size in bytes.

    For a directory, ``hash`` is the hash of its manifest, ``size`` the total of
    its files and ``nfiles`` their number.
    """

    path: str
    hash: str
    size: int
    isdir: bool = False
    nfiles: int | None = None
    cache: bool = True
    external: bool = field(default=False, kw_only=True)  # last: MetricEntry adds values
    """A source read through a link leading outside the project (``add --external``):
    read and versioned, never written through."""


@dataclass(frozen=True)
class MetricEntry(FileEntry):
    """A metrics output, with the values parsed from it (flat dotted keys)."""

    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageLock:
    """What the lock records for one stage: its fingerprint components and outputs."""

    cmd: tuple[str, ...]
    fingerprint: str
    deps: tuple[FileEntry, ...] = ()
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    code: tuple[FileEntry, ...] = ()
    env: Mapping[str, Any] = field(default_factory=dict)
    outs: tuple[FileEntry, ...] = ()
    metrics: tuple[MetricEntry, ...] = ()
    run: str | None = None


@dataclass(frozen=True)
class Lock:
    """The whole lock: stages by name, and source data (``pipeflow add``) by path."""

    stages: Mapping[str, StageLock] = field(default_factory=dict)
    sources: Mapping[str, FileEntry] = field(default_factory=dict)


# --- writing ---------------------------------------------------------------


def file_entry(path: str, info: HashInfo, *, cache: bool = True) -> FileEntry:
    """The lock entry of ``path`` holding ``info``."""
    return FileEntry(path=path, hash=info.hash, size=info.size, isdir=info.isdir,
                     nfiles=info.nfiles, cache=cache)


def hash_info(entry: FileEntry) -> HashInfo:
    """What a lock entry says of its content, as the hasher and the store speak it."""
    from pipeflow.content.hashing import HashInfo

    return HashInfo(hash=entry.hash, size=entry.size, isdir=entry.isdir, nfiles=entry.nfiles)


def out_entries(entry: StageLock | None) -> dict[str, FileEntry]:
    """A stage's outputs and metrics by path."""
    if entry is None:
        return {}
    return {e.path: e for e in (*entry.outs, *entry.metrics)}


def _sort_key(key: object) -> tuple[int, str]:
    # Keys of params values may be ints or bools (YAML params files); order
    # strings first, everything else by repr, so mixed keys never fail to sort.
    return (0, key) if isinstance(key, str) else (1, repr(key))


def _canonical(value: Any) -> Any:
    """``value`` with every mapping's keys sorted, so equal values give equal text."""
    if isinstance(value, Mapping):
        return {k: _canonical(value[k]) for k in sorted(value, key=_sort_key)}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _entry_to_dict(entry: FileEntry, *, with_path: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"path": entry.path} if with_path else {}
    out["hash"] = entry.hash
    out["size"] = entry.size
    if entry.isdir:
        out["isdir"] = True
    if entry.nfiles is not None:
        out["nfiles"] = entry.nfiles
    if not entry.cache:
        out["cache"] = False
    if entry.external:
        out["external"] = True
    if isinstance(entry, MetricEntry) and entry.values:
        out["values"] = _canonical(entry.values)
    return out


def stage_to_dict(s: StageLock) -> dict[str, Any]:
    """The plain-data form of a stage's lock entry, in the lock's key order.

    Empty sections and a missing ``run`` are omitted; a one-element ``cmd`` is a
    string. The result is also JSON-serializable (the state DB's journal rows).
    """
    out: dict[str, Any] = {
        "cmd": s.cmd[0] if len(s.cmd) == 1 else list(s.cmd),
        "fingerprint": s.fingerprint,
    }
    if s.deps:
        out["deps"] = [_entry_to_dict(e) for e in s.deps]
    if s.params:
        out["params"] = _canonical(s.params)
    if s.code:
        out["code"] = [_entry_to_dict(e) for e in s.code]
    if s.env:
        out["env"] = _canonical(s.env)
    if s.outs:
        out["outs"] = [_entry_to_dict(e) for e in s.outs]
    if s.metrics:
        out["metrics"] = [_entry_to_dict(e) for e in s.metrics]
    if s.run is not None:
        out["run"] = s.run
    return out


def lock_to_dict(lock: Lock) -> dict[str, Any]:
    """The plain-data form of the whole lock (what ``dumps`` writes, as a dict)."""
    doc: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "stages": {name: stage_to_dict(lock.stages[name]) for name in sorted(lock.stages)},
    }
    if lock.sources:
        sources: dict[str, Any] = {}
        for path in sorted(lock.sources):
            entry = lock.sources[path]
            if entry.path != path:
                msg = f"source entry for {path!r} has path {entry.path!r}"
                raise ValueError(msg)
            sources[path] = _entry_to_dict(entry, with_path=False)
        doc["sources"] = sources
    return doc


def dumps(lock: Lock) -> str:
    """Render ``lock`` as the text of ``pipeline.lock`` (deterministic)."""
    return HEADER + yamlemit.dump(lock_to_dict(lock))


def write(path: Path, lock: Lock) -> None:
    """Replace the lock file at ``path`` atomically with ``lock``.

    The text goes to a temporary file in the same directory, which is fsynced
    and then renamed over ``path``: readers and a crash at any moment see the
    old lock or the new one, never a mix.
    """
    write_text(path, dumps(lock))


def write_text(path: Path, text: str) -> None:
    """Replace the lock file at ``path`` with ``text``, atomically and durably; a
    full disk is :class:`DiskFull`, any other failure :class:`LockfileWriteError`."""
    try:
        atomicfile.write_text(path, text, durable=True)
    except OSError as exc:
        diskfull.check(exc, path)
        msg = f"cannot write {path}: {exc.strerror or exc}"
        raise LockfileWriteError(msg) from exc


# --- reading ---------------------------------------------------------------


def _hint(file: str) -> str:
    return (
        f"restore it with `git checkout {file}` (or resolve its merge conflict), or delete "
        "it and run `pipeflow repro`: stages then rerun"
    )


lock_hint = _hint
"""How to repair an unreadable lock (for the conflict reader's errors too)."""


_ENTRY_FIELDS = ("isdir", "nfiles", "cache")


def _entry(
    c: Checker, value: object, fld: str, path: str | None = None, *, inputs: bool = False
) -> FileEntry:
    d = c.mapping(value, fld)
    if path is None:
        c.fields(d, fld, ("path", "hash", "size"), _ENTRY_FIELDS)
        return FileEntry(**_entry_kwargs(c, d, fld, path, inputs=inputs))
    # a source (keyed by its path) may be external: read through a link leading out
    c.fields(d, fld, ("hash", "size"), (*_ENTRY_FIELDS, "external"))
    external = c.flag(d.get("external", False), join_field(fld, "external"))
    return FileEntry(**_entry_kwargs(c, d, fld, path, inputs=inputs), external=external)


def _metric(c: Checker, value: object, fld: str) -> MetricEntry:
    d = c.mapping(value, fld)
    c.fields(d, fld, ("path", "hash", "size"), (*_ENTRY_FIELDS, "values"))
    values = c.data_mapping(d.get("values", {}), join_field(fld, "values"))
    return MetricEntry(**_entry_kwargs(c, d, fld, None), values=values)


def _entry_kwargs(
    c: Checker, d: dict[Any, Any], fld: str, path: str | None, *, inputs: bool = False
) -> dict[str, Any]:
    nfiles = d.get("nfiles")
    hash_field = join_field(fld, "hash")
    # An input (dep or code file) that did not exist when the stage ran is
    # recorded with an empty hash; outputs and sources always have one.
    if inputs and d["hash"] == "":
        digest = ""
    else:
        digest = c.hexdigest(d["hash"], hash_field, _HEX32, "32 lowercase hex digits")
    return {
        "path": path if path is not None else c.path(d["path"], join_field(fld, "path")),
        "hash": digest,
        "size": c.count(d["size"], join_field(fld, "size")),
        "isdir": c.flag(d.get("isdir", False), join_field(fld, "isdir")),
        "nfiles": None if nfiles is None else c.count(nfiles, join_field(fld, "nfiles")),
        "cache": c.flag(d.get("cache", True), join_field(fld, "cache")),
    }


def _entries(
    c: Checker, value: object, fld: str, *, inputs: bool = False
) -> tuple[FileEntry, ...]:
    if not isinstance(value, list):
        c.fail(fld, f"expected a list, got {kind_of(value)}")
    return tuple(_entry(c, item, f"{fld}[{i}]", inputs=inputs) for i, item in enumerate(value))


def _cmd(c: Checker, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    c.fail("cmd", f"expected a string or a list of strings, got {kind_of(value)}")


_STAGE_OPTIONAL = ("deps", "params", "code", "env", "outs", "metrics", "run")


def _stage(c: Checker, value: object) -> StageLock:
    d = c.mapping(value, "")
    c.fields(d, "", ("cmd", "fingerprint"), _STAGE_OPTIONAL)
    params = c.mapping(d.get("params", {}), "params")
    for file, keys in params.items():
        if not isinstance(file, str) or not file:
            c.fail("params", f"file names must be non-empty strings, got {kind_of(file)}")
        c.path(file, "params")
        c.data_mapping(keys, f"params.{file}")
    metrics = d.get("metrics", [])
    if not isinstance(metrics, list):
        c.fail("metrics", f"expected a list, got {kind_of(metrics)}")
    run = d.get("run")
    return StageLock(
        cmd=_cmd(c, d["cmd"]),
        fingerprint=c.hexdigest(d["fingerprint"], "fingerprint", _HEX32, "32 lowercase hex digits"),
        deps=_entries(c, d.get("deps", []), "deps", inputs=True),
        params=params,
        code=_entries(c, d.get("code", []), "code", inputs=True),
        env=c.data_mapping(d.get("env", {}), "env"),
        outs=_entries(c, d.get("outs", []), "outs"),
        metrics=tuple(_metric(c, m, f"metrics[{i}]") for i, m in enumerate(metrics)),
        run=None if run is None else c.hexdigest(run, "run", _HEX64, "64 lowercase hex digits"),
    )


def stage_from_dict(d: Any, where: str) -> StageLock:
    """Build a StageLock from its plain-data form (a lock entry or a journal row).

    ``where`` names the entry in error messages, e.g. ``"pipeline.lock: stage
    'train'"``. Raises LockfileError naming the field when the shape is wrong.
    """
    return _stage(Checker(where, _hint("pipeline.lock")), d)


def _parse(text: str, file: str, hint: str) -> Any:
    import yaml

    try:
        return yamlemit.load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        msg = f"{at}: not valid YAML: {exc.problem or exc.context}"
        raise LockfileError(msg, hint=hint) from exc
    except yaml.YAMLError as exc:
        raise LockfileError(f"{file}: not valid YAML: {exc}", hint=hint) from exc
    # PyYAML's constructors raise whatever their conversion raises: ValueError
    # for "2001-02-30" or "!!int x", IndexError for "!!int ''"; a deeply nested
    # document hits the recursion limit. All of them mean a broken file.
    except (
        ValueError,
        TypeError,
        ArithmeticError,
        LookupError,
        AttributeError,
        RecursionError,
    ) as exc:
        raise LockfileError(f"{file}: not valid YAML: {exc}", hint=hint) from exc


def loads(text: str, file: str = "pipeline.lock") -> Lock:
    """Parse and validate the text of a lock file; ``file`` names it in errors.

    An empty document is an empty lock. Raises LockfileError naming the file,
    the stage and the field for any deviation from the layout (YAML syntax
    errors with their line), and a clear error for a lock written by a newer
    pipeflow. Text with merge conflict markers raises LockConflictError naming the
    stages in conflict (``pipeflow.lock.lockconflict`` reads such text).
    """
    if "<<<<<<<" in text or ">>>>>>>" in text:
        from pipeflow.lock import lockconflict

        if lockconflict.has_markers(text):
            raise lockconflict.conflict_error(text, file)
    data = _parse(text, file, _hint(file))
    if "*" in text:  # our emitter writes no aliases: bound what someone else's do
        safeload.bound(data, file, "lock", safeload.plain(LockfileError, _hint(file)))
    return lock_from_dict(data, file)


def lock_from_dict(data: Any, file: str = "pipeline.lock") -> Lock:
    """Validate the plain-data form of a lock (as parsed from YAML or JSON).

    ``None`` (an empty document) is an empty lock. Raises LockfileError like
    ``loads``.
    """
    if data is None:
        return Lock()
    hint = _hint(file)
    top = Checker(file, hint)
    d = top.mapping(data, "")
    schema = d.get("schema")
    if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA_VERSION:
        msg = (
            f"{file} was written by a newer pipeflow (lock schema {schema}; "
            f"this pipeflow reads schema {SCHEMA_VERSION})"
        )
        raise LockfileError(msg, hint="upgrade pipeflow to a release that reads it")
    top.fields(d, "", ("schema",), ("stages", "sources"))
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        top.fail("schema", f"expected {SCHEMA_VERSION}, got {kind_of(schema)}")
    stages: dict[str, StageLock] = {}
    for name, body in top.mapping(d.get("stages", {}), "stages").items():
        if not isinstance(name, str) or not name:
            top.fail("stages", f"stage names must be non-empty strings, got {kind_of(name)}")
        stages[name] = _stage(Checker(f"{file}: stage '{name}'", hint), body)
    sources: dict[str, FileEntry] = {}
    for path, body in top.mapping(d.get("sources", {}), "sources").items():
        if not isinstance(path, str) or not path:
            top.fail("sources", f"paths must be non-empty strings, got {kind_of(path)}")
        top.path(path, "sources")
        sources[path] = _entry(Checker(f"{file}: source '{path}'", hint), body, "", path)
    return Lock(stages=stages, sources=sources)


def read(path: Path, name: str | None = None) -> Lock:
    """Read the lock file at ``path`` (``name`` is how messages show it); an empty
    Lock when there is none."""
    shown = name or str(path)
    # a link is refused (pipeflow rewrites the lock), a device never read
    raw = projectfile.read(path, "lock", name=shown,
                           error=safeload.plain(LockfileError, _hint(shown)))
    if raw is None:
        return Lock()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"{name or path}: not UTF-8 text (invalid byte at offset {exc.start})"
        raise LockfileError(msg, hint=_hint(name or str(path))) from exc
    return loads(text, name or str(path))
