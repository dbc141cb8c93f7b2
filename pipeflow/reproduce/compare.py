"""One output of a reproduced stage against its recorded version: bit-identical, or
how it differs (metrics values and by how much; a file's sizes and first differing
byte; a folder's files that differ), and, for a stage declared ``deterministic:
false``, whether its metrics values are within the stage's ``tolerance``.

What a user reading ``differs`` wants is the one line that tells noise from a real
change, so:

- Same hash: bit-identical, nothing else is read.
- A metrics file (``.json .yaml .yml .toml .csv .tsv``, or any output the spec lists
  under ``metrics:``): both versions parsed and flattened (``a.b``, ``a.0.b``, CSV
  ``row N column``), every key that differs listed with both values and the relative
  difference (``accuracy 0.912 -> 0.913 (1.1e-03)``). The recorded version is read
  from the cache; when it is not there, from the values the recorded run's record
  kept (``recorded_metrics``). One that no longer parses is said in ``note`` and
  compared by bytes instead; one larger than a metrics file may be
  (``PIPEFLOW_MAX_METRICS_MB``) too.
- Any other file: both sizes and the offset of the first differing byte, both files
  streamed in chunks (a model of many GiB is never read whole). Without the recorded
  object in the cache only the sizes are known, and ``note`` says so.
- A folder: its manifest against the recorded one: the files that differ, were added
  or were removed (the first 20, sorted); when exactly one metrics file in it differs,
  its values (``ValueDiff.file`` names it).
- ``deterministic: false`` (``tolerance`` given): an output is ``within_tolerance``
  when every value of every metrics file in it differs by at most ``tolerance``
  (relative; ``|p - r|`` when the recorded value is 0) and no key, and no file of a
  folder, was added or removed. Its other files are not compared byte for byte at
  all: ``within_tolerance`` stays None for such a file and ``note`` says why, so a
  verdict reads "within tolerance" when its metrics are. A missing output, or a
  metrics file that no longer parses, is never within tolerance.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeflow.content.hashing import hash_file
from pipeflow.errors import StorageError
from pipeflow.lineage.reproductions import OutputDiff, ValueDiff
from pipeflow.records.runrecord import OutputKind
from pipeflow.reproduce.valuediff import (
    UnreadableMetrics,
    diff_values,
    is_metrics_name,
    max_metrics_bytes,
    parse_metrics,
    within,
)

if TYPE_CHECKING:
    from pipeflow.project.project import Project
    from pipeflow.records.records import OutputRef
    from pipeflow.storage.store import ObjectStore

CHUNK = 1 << 20
MAX_FILES = 20
MAX_VALUES = 100
"""Differing metrics values kept per output: a 4 MB CSV whose every cell moved would
make a record too large to read back."""
NOT_BYTES = "not compared byte for byte: the stage is declared deterministic: false"
NOT_CACHED = "the recorded version is not in the cache: sizes only"
SAME_VALUES = "the same values: the files differ only in formatting or key order"

Entries = dict[str, tuple[str, int]]
"""A folder's files: relative path -> (hash, size)."""


def compare_output(repo: Project, recorded: OutputRef, produced: OutputRef | None, *,
                   workspace: Path, recorded_metrics: Mapping[str, Any] | None = None,
                   tolerance: float | None = None) -> OutputDiff:
    """Compare ``recorded`` (read from ``repo``'s cache when it is there) with
    ``produced`` (the reproduction's output, at ``workspace / produced.path``; None
    when the stage did not write it). ``recorded_metrics``: the values the recorded
    run's record keeps for this metrics file (used when its object is not cached).
    ``tolerance`` (relative) is given for a stage declared ``deterministic: false``.
    Never raises for what it finds: what cannot be compared is said in ``note``. At
    most :data:`MAX_VALUES` differing values are kept (a record stays small)."""
    return _capped(_compare(repo, recorded, produced, workspace=workspace,
                            recorded_metrics=recorded_metrics, tolerance=tolerance))


def _capped(diff: OutputDiff) -> OutputDiff:
    if len(diff.values) <= MAX_VALUES:
        return diff
    more = f"{len(diff.values) - MAX_VALUES} more values differ (the first {MAX_VALUES} kept)"
    return replace(diff, values=diff.values[:MAX_VALUES], note=_join(diff.note, more))


def _compare(repo: Project, recorded: OutputRef, produced: OutputRef | None, *,
             workspace: Path, recorded_metrics: Mapping[str, Any] | None,
             tolerance: float | None) -> OutputDiff:
    base = OutputDiff(recorded.path, recorded.hash, produced.hash if produced else None,
                      recorded.size, produced.size if produced else None)
    if produced is None:
        return replace(base, note="the stage did not write it",
                       within_tolerance=False if tolerance is not None else None)
    if produced.hash == recorded.hash:
        return replace(base, same=True)
    store, here = repo.store, workspace / produced.path
    if recorded.isdir or produced.isdir:
        return _folder(base, store, recorded, produced, here, tolerance)
    metrics = is_metrics_name(recorded.path) or recorded.kind is OutputKind.METRIC
    if metrics:
        return _metrics_file(base, store, recorded.hash, here, recorded_metrics, tolerance)
    if tolerance is not None:
        return replace(base, note=NOT_BYTES)
    return _bytes(base, store, recorded.hash, here)


def _recorded_path(store: ObjectStore, oid: str) -> Path | None:
    return store.path_of(oid) if store.has(oid) else None


def _bytes(base: OutputDiff, store: ObjectStore, oid: str, here: Path,
           note: str | None = None) -> OutputDiff:
    old = _recorded_path(store, oid)
    if old is None:
        return replace(base, note=_join(note, NOT_CACHED))
    try:
        return replace(base, first_byte=first_difference(old, here), note=note)
    except OSError as exc:
        return replace(base, note=_join(note, f"cannot read it: {exc.strerror or exc}"))


def _join(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


def first_difference(a: Path, b: Path, chunk: int = CHUNK) -> int | None:
    """The offset of the first byte where files ``a`` and ``b`` differ (the shorter
    one's size when one is a prefix of the other), None when they are the same;
    read in chunks, never whole."""
    offset = 0
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(chunk), fb.read(chunk)
            if x != y:
                n = min(len(x), len(y))
                return offset + next((i for i in range(n) if x[i] != y[i]), n)
            if not x:
                return None
            offset += len(x)


def _metrics_file(base: OutputDiff, store: ObjectStore, oid: str, here: Path,
                  recorded_metrics: Mapping[str, Any] | None,
                  tolerance: float | None) -> OutputDiff:
    limit = max_metrics_bytes()
    if _larger(limit, store.path_of(oid), here):
        note = f"larger than a metrics file may be ({limit >> 20} MB): compared by bytes"
        return _failed(_bytes(base, store, oid, here, note), tolerance)
    try:
        old = _recorded_values(store, oid, base.path, recorded_metrics)
        if old is None:
            return _failed(replace(base, note=NOT_CACHED), tolerance)
        new = parse_metrics(here.read_bytes(), base.path)
    except UnreadableMetrics as exc:
        return _failed(_bytes(base, store, oid, here, exc.message), tolerance)
    except OSError as exc:
        return _failed(replace(base, note=f"cannot read it: {exc.strerror or exc}"), tolerance)
    values = diff_values(old, new)
    ok = within(values, tolerance, recorded=old, produced=new) if tolerance is not None \
        else None
    return replace(base, values=values, within_tolerance=ok, note=None if values else SAME_VALUES)


def _larger(limit: int, *paths: Path) -> bool:
    """Whether any of ``paths`` that exists holds more than ``limit`` bytes (the sizes
    the records give may be absent: the files are asked)."""
    for path in paths:
        try:
            if path.stat().st_size > limit:
                return True
        except OSError:  # absent: reading it says so
            continue
    return False


def _failed(diff: OutputDiff, tolerance: float | None) -> OutputDiff:
    """A metrics file whose values could not be compared: never within tolerance."""
    return replace(diff, within_tolerance=False) if tolerance is not None else diff


def _recorded_values(store: ObjectStore, oid: str, name: str,
                     recorded_metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if store.has(oid):
        try:
            return parse_metrics(store.read_bytes(oid), name)
        except StorageError:  # corrupt (now quarantined): the record's values still hold
            pass
    return dict(recorded_metrics) if recorded_metrics is not None else None


def _folder(base: OutputDiff, store: ObjectStore, recorded: OutputRef,
            produced: OutputRef, here: Path, tolerance: float | None) -> OutputDiff:
    if not (recorded.isdir and produced.isdir):
        what = "a folder" if recorded.isdir else "a file"
        return _failed(replace(base, note=f"recorded as {what}, reproduced as the other"),
                       tolerance)
    try:
        old = _manifest_entries(store, recorded.hash)
        new = _manifest_entries(store, produced.hash)
        if new is None:
            new = _walk(here)
    except (StorageError, OSError) as exc:
        return _failed(replace(base, note=f"cannot read the folder: {exc}"), tolerance)
    if old is None:
        return _failed(replace(base, note=NOT_CACHED), tolerance)
    changed = sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p))
    moved = any(p not in old or p not in new for p in changed)
    metrics = [p for p in changed if p in old and p in new and is_metrics_name(p)]
    diff = replace(base, files=tuple(changed[:MAX_FILES]))
    if not changed:  # the manifests differ in an executable bit only
        return replace(diff, note="the same files: only an executable bit differs",
                       within_tolerance=True if tolerance is not None else None)
    if tolerance is None and len(metrics) != 1:
        return diff
    values: list[ValueDiff] = []
    ok, notes = not moved, []
    for rel in metrics:
        found = _inner_values(store, old[rel][0], here / rel, rel, tolerance)
        if isinstance(found, str):
            ok = False
            notes.append(found)
        else:
            values += found[0]
            ok = ok and found[1]
    if tolerance is not None and len(changed) > len(metrics) and not notes:
        notes.append(NOT_BYTES + " (its other files)")
    return replace(diff, values=tuple(values), note=_join(*notes),
                   within_tolerance=ok if tolerance is not None else None)


def _inner_values(store: ObjectStore, oid: str, here: Path, rel: str,
                  tolerance: float | None) -> tuple[tuple[ValueDiff, ...], bool] | str:
    """One metrics file of a folder: its differing values and whether they are within
    ``tolerance``, or why they could not be compared."""
    try:
        if _larger(max_metrics_bytes(), store.path_of(oid), here):
            return f"{rel}: too large to compare as metrics"
        old = parse_metrics(store.read_bytes(oid), rel)
        new = parse_metrics(here.read_bytes(), rel)
    except UnreadableMetrics as exc:
        return exc.message
    except (StorageError, OSError) as exc:
        return f"{rel}: cannot read it: {exc}"
    values = diff_values(old, new, file=rel)
    ok = tolerance is not None and within(values, tolerance, recorded=old, produced=new)
    return values, ok


def _manifest_entries(store: ObjectStore, oid: str) -> Entries | None:
    if not store.has(oid):
        return None
    return {e.path: (e.hash, e.size) for e in store.manifest(oid).entries}


def _walk(folder: Path) -> Entries:
    """A produced folder whose manifest is not in the cache: hashed here, as the
    engine hashes a folder's files."""
    found: Entries = {}
    for top, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(top, name)
            rel = path.relative_to(folder).as_posix()
            found[rel] = (hash_file(path), path.stat().st_size)
    return found
