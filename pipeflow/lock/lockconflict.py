"""``pipeline.lock`` with merge conflicts: its text, and reading it back.

When both branches changed one stage (or source) differently, the merge driver writes
the lock with git's conflict markers around that entry only::

    stages:
      prepare:
        ...
    <<<<<<< ours: both branches changed stage 'train'; `pipeflow repro` resolves it
      train:
        ...ours...
    =======
      train:
        ...theirs...
    >>>>>>> theirs

Everything outside the markers is the clean merge. Keeping the markers outside the
YAML means each side's view (the text without the other side's blocks) is an
ordinary lock, so a reader recovers both sides exactly; the same holds for git's own
text conflicts (also in diff3 style, whose base blocks are skipped), so a lock git
merged without the driver is understood too, only with coarser conflicts. ``status``
and ``repro`` read a conflicted lock through :func:`read`; every other reader gets a
:class:`~pipeflow.errors.LockConflictError` from :func:`pipeflow.lock.lockfile.loads`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from pipeflow.errors import LockConflictError, LockfileError
from pipeflow.files import projectfile, safeload, yamlemit
from pipeflow.lock import lockfile
from pipeflow.lock.lockfile import FileEntry, Lock, StageLock
from pipeflow.lock.lockmerge import MergedLock, T

__all__ = [
    "CONFLICT_REASON", "RESOLVE_HINT", "conflict_error", "has_markers", "parse", "read",
    "render", "write",
]

RESOLVE_HINT = (
    "run `pipeflow repro` (it reruns those stages or restores them from the run cache "
    "and writes a clean lock), then `git add pipeline.lock` and commit"
)
CONFLICT_REASON = "merge conflict in pipeline.lock: both branches changed it"
"""What ``status`` says of a stage in conflict."""

_MARKER = 7
# A conflict marker: seven (git's default `conflict-marker-size`) or more of one
# character at the start of a line, then nothing or a space and a label.
_MARK = re.compile(r"(<{7,}|\|{7,}|={7,}|>{7,})(?: .*)?")
_ANY_MARK = re.compile(r"^(?:<{7}|>{7})", re.MULTILINE)


def has_markers(text: str) -> bool:
    """Whether ``text`` holds merge conflict markers (cheap when it does not)."""
    return ("<<<<<<<" in text or ">>>>>>>" in text) and _ANY_MARK.search(text) is not None


# --- writing ---------------------------------------------------------------


def _indented(key: str, body: object) -> list[str]:
    """The lines of ``key: body`` as an entry of a top-level section (2 spaces in)."""
    return ["  " + line for line in yamlemit.dump({key: body}).rstrip("\n").split("\n")]


def _stage_lines(name: str, entry: StageLock | None) -> list[str]:
    return [] if entry is None else _indented(name, lockfile.stage_to_dict(entry))


def _source_lines(path: str, entry: FileEntry | None) -> list[str]:
    if entry is None:
        return []
    return _indented(path, lockfile.lock_to_dict(Lock(sources={path: entry}))["sources"][path])


def _block(what: str, ours: list[str], theirs: list[str]) -> list[str]:
    # The marker line is one line whatever the name holds: a name with a line break
    # (a crafted or damaged lock can have one) would otherwise split it in two.
    what = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256
                   else f"\\u{ord(ch):04x}" for ch in what)
    return [
        "<" * _MARKER + f" ours: both branches changed {what}; `pipeflow repro` resolves it",
        *ours,
        "=" * _MARKER,
        *theirs,
        ">" * _MARKER + " theirs",
    ]


def render(merged: MergedLock) -> str:
    """The text of ``merged``: exactly :func:`pipeflow.lock.lockfile.dumps` when it is clean,
    else the same layout with each conflicting entry between markers."""
    if merged.clean:
        return lockfile.dumps(merged.lock)
    lines = [lockfile.HEADER.rstrip("\n"), f"schema: {lockfile.SCHEMA_VERSION}"]
    lock = merged.lock
    names = sorted({*lock.stages, *merged.stage_conflicts})
    lines.append("stages:" if names else "stages: {}")
    for name in names:
        if name in lock.stages:
            lines += _stage_lines(name, lock.stages[name])
        else:
            ours, theirs = merged.stage_conflicts[name]
            lines += _block(f"stage '{name}'", _stage_lines(name, ours),
                            _stage_lines(name, theirs))
    paths = sorted({*lock.sources, *merged.source_conflicts})
    if paths:
        lines.append("sources:")
    for path in paths:
        if path in lock.sources:
            lines += _source_lines(path, lock.sources[path])
        else:
            ours_src, theirs_src = merged.source_conflicts[path]
            lines += _block(f"source '{path}'", _source_lines(path, ours_src),
                            _source_lines(path, theirs_src))
    return "\n".join(lines) + "\n"


def write(path: Path, merged: MergedLock) -> None:
    """Replace the lock file at ``path`` atomically (and durably) with ``merged``."""
    lockfile.write_text(path, render(merged))


# --- reading ---------------------------------------------------------------


def _sides(text: str, file: str) -> tuple[str, str]:
    """The text as ours and as theirs: each without the other side's (and the base's)
    blocks and without the markers. Raises LockfileError for unbalanced markers."""
    ours: list[str] = []
    theirs: list[str] = []
    state = ""  # "", "ours", "base" or "theirs"
    allowed = {"<": ("", "ours"), "|": ("ours", "base"), "=": ("ours", "theirs"),
               "=b": ("base", "theirs"), ">": ("theirs", "")}
    for number, line in enumerate(text.split("\n"), 1):
        mark = _MARK.fullmatch(line.rstrip("\r"))
        if mark is None:
            if state in ("", "ours"):
                ours.append(line)
            if state in ("", "theirs"):
                theirs.append(line)
            continue
        char = mark.group(1)[0]
        key = "=b" if char == "=" and state == "base" else char
        before, after = allowed[key]
        if state != before:
            msg = f"{file}:{number}: unbalanced merge conflict marker {mark.group(1)!r}"
            raise LockfileError(msg, hint=_HAND_HINT)
        state = after
    if state:
        msg = f"{file}: a merge conflict block is not closed (no '{'>' * _MARKER}' line)"
        raise LockfileError(msg, hint=_HAND_HINT)
    return "\n".join(ours), "\n".join(theirs)


_HAND_HINT = (
    "pipeflow cannot read both sides of this conflict: take one side with "
    "`git checkout --ours pipeline.lock` (or --theirs), then run `pipeflow repro`"
)


def _side_lock(text: str, file: str, side: str) -> Lock:
    import yaml

    where = f"{file} ({side} side of its merge conflict)"
    try:
        data = yamlemit.load(text)
    except (yaml.YAMLError, ValueError, TypeError, ArithmeticError, LookupError,
            AttributeError, RecursionError) as exc:
        raise LockfileError(f"{where}: not valid YAML: {exc}", hint=_HAND_HINT) from exc
    if isinstance(data, dict):
        # a section whose every entry is on the other side reads as null here
        for section in ("stages", "sources"):
            if section in data and data[section] is None:
                data[section] = {}
    try:
        return lockfile.lock_from_dict(data, where)
    except LockfileError as exc:
        raise LockfileError(exc.message, hint=_HAND_HINT) from exc


def parse(text: str, file: str = "pipeline.lock") -> MergedLock:
    """Read lock text that may hold merge conflicts.

    Entries both sides agree on make the clean part; every entry the sides hold
    differently (or only one side holds) is a conflict. Raises LockfileError when the
    markers are unbalanced or a side is not a valid lock.
    """
    if not has_markers(text):
        return MergedLock(lockfile.loads(text, file))
    ours_text, theirs_text = _sides(text, file)
    ours = _side_lock(ours_text, file, "ours")
    theirs = _side_lock(theirs_text, file, "theirs")
    stages, stage_conflicts = _pair(ours.stages, theirs.stages)
    sources, source_conflicts = _pair(ours.sources, theirs.sources)
    return MergedLock(Lock(stages=stages, sources=sources), stage_conflicts, source_conflicts)


def _pair(
    ours: Mapping[str, T], theirs: Mapping[str, T]
) -> tuple[dict[str, T], dict[str, tuple[T | None, T | None]]]:
    """Entries the two sides hold alike, and (ours, theirs) of each one they do not:
    without a base, every difference is a conflict."""
    agreed: dict[str, T] = {}
    conflicts: dict[str, tuple[T | None, T | None]] = {}
    for key in sorted({*ours, *theirs}):
        o, t = ours.get(key), theirs.get(key)
        if o is not None and o == t:
            agreed[key] = o
        else:
            conflicts[key] = (o, t)
    return agreed, conflicts


def conflict_error(text: str, file: str) -> LockfileError:
    """The error a reader that cannot work on a conflicted lock raises: names the
    entries in conflict and says how to resolve them."""
    try:
        merged = parse(text, file)
    except LockfileError as exc:
        return LockfileError(f"{file} has merge conflict markers pipeflow cannot read: "
                             f"{exc.message}", hint=_HAND_HINT)
    what = [f"stage '{n}'" for n in merged.stage_conflicts]
    what += [f"source '{p}'" for p in merged.source_conflicts]
    msg = (f"{file} has unresolved merge conflicts ({', '.join(what) or 'none readable'}): "
           "both branches changed them")
    return LockConflictError(msg, hint=RESOLVE_HINT)


def read(path: Path, name: str | None = None) -> MergedLock:
    """Read the lock file at ``path``, conflicts included; empty when there is none."""
    shown = name or str(path)
    raw = projectfile.read(path, "lock", name=shown,
                           error=safeload.plain(LockfileError, lockfile.lock_hint(shown)))
    if raw is None:
        return MergedLock(Lock())
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return MergedLock(lockfile.read(path, name))  # raises the reader's own error
    return parse(text, name or str(path))
