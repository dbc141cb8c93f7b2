"""Versions of a path: each distinct content it has had, and ``PATH@VERSION`` syntax.

A version's identity is its content hash. ``vN`` numbers the versions by first
appearance in the first-parent git history of ``pipeline.lock``
(``pipeflow.lineage.labels``), so a label names the same content in every clone with
that history; a version that a commit off that line names is ``side:<hash prefix>``,
one no commit names ``local:<hash prefix>``. ``VERSION`` is ``vN``, a hash prefix
(4+ hex digits, or ``local:PREFIX`` / ``side:PREFIX``) or a tag name.
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeflow.errors import UsageError
from pipeflow.lineage import tags as tagfile
from pipeflow.lineage.labels import (
    LOCAL_PREFIX,
    SIDE_PREFIX,
    VersionLabels,
    local_label,
    side_label,
    version_labels,
)
from pipeflow.lineage.makings import Differs, Makings, MakingsReader, compare
from pipeflow.lineage.model import ExperimentMark
from pipeflow.lineage.tags import Note
from pipeflow.project.project import Project
from pipeflow.records import batch
from pipeflow.records.index import RunIndex, VersionRow

_HEX = re.compile(r"^[0-9a-f]{4,32}$")


FETCH_ONE_HINT = ("`pipeflow get REMOTE MODEL_OR_PATH@VERSION -o FILE` fetches one version from "
                  "a remote that has it (`pipeflow fetch` brings only what pipeline.lock "
                  "names)")
"""What to do when a version's bytes are not in the cache."""

@dataclass(frozen=True)
class Version:
    """One distinct content of a path, with what made it."""

    path: str
    number: int | None
    """N of ``vN``; None for a version no commit of the lock's history names."""
    hash: str
    size: int | None
    isdir: bool
    first_run: str
    first_seen: str
    runs: int
    tags: tuple[str, ...] = ()
    in_cache: bool = True
    current: bool = False
    """The content pipeline.lock names for the path."""
    params_changed: dict[str, Any] = field(default_factory=dict)
    """Params that differ from the previous version's run: key -> [old, new]."""
    metrics: dict[str, Any] = field(default_factory=dict)
    side: bool = False
    """No number, but a commit some ref of this clone reaches names it (off this
    branch's first-parent line: e.g. after a fast-forward onto a colleague's merge)."""
    experiment: ExperimentMark | None = None
    """The experiment its first run was made for (``pipeflow exp run``), if any."""
    notes: tuple[Note, ...] = ()
    """Notes on this version (``pipeflow note``), oldest first."""
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Every params value the runs that made it read: file -> key -> value."""
    differs: Differs | None = None
    """What differs from the version before it (None for the first)."""
    differs_from: str | None = None
    """The label of that version: the one before by label for a vN; for a side or
    local version, the newest version first produced before it."""

    @property
    def label(self) -> str:
        """``vN``; ``side:<hash prefix>`` for a committed version off the first-parent
        line; ``local:<hash prefix>`` for a version that never reached a commit."""
        if self.number is not None:
            return f"v{self.number}"
        return side_label(self.hash) if self.side else local_label(self.hash)

    @property
    def local(self) -> bool:
        """Whether no commit names this version."""
        return self.number is None and not self.side

    @property
    def committed(self) -> bool:
        return not self.local


def ordered_rows(repo: Project, path: str, labels: VersionLabels | None = None
                 ) -> list[tuple[int | None, VersionRow]]:
    """(N or None, row) of every version of ``path``: committed ones by N, then the
    local ones in order of first production."""
    labels = labels or version_labels(repo.root, repo.index)
    numbers = labels.numbers(path)
    rows = [(numbers.get(row.hash), row) for row in repo.index.versions(path)]
    return sorted(rows, key=lambda nr: (nr[0] is None, nr[0] or 0, nr[1].number))


def tagged_hashes(tags: dict[str, str]) -> dict[str, list[str]]:
    """Hash -> the tag names pointing at it."""
    tagged: dict[str, list[str]] = {}
    for name, oid in tags.items():
        tagged.setdefault(oid, []).append(name)
    return tagged


def list_versions(repo: Project, path: str, *, current_hash: str | None = None,
                  tags: dict[str, str] | None = None,
                  labels: VersionLabels | None = None,
                  notes: Mapping[str, list[Note]] | None = None) -> list[Version]:
    """Every version of ``path``: committed ones by label, then the local ones, each
    with what made it and what differs from the one before (:mod:`.makings`).
    ``tags`` (name -> hash) and ``notes`` (hash -> notes) default to what the tag log
    says, problems unreported."""
    index = repo.index
    if tags is None or notes is None:
        log = tagfile.read(repo)
        tags = log.tags_of(path) if tags is None else tags
        notes = log.notes_of(path) if notes is None else notes
    tagged = tagged_hashes(tags)
    labels = labels or version_labels(repo.root, repo.index)
    from pipeflow.content.hashing import HashInfo

    out: list[Version] = []
    rows = ordered_rows(repo, path, labels)
    first_runs = [row.first_run for _, row in rows]
    marks = experiment_marks(index, first_runs)
    reader = MakingsReader(index)
    made = reader.of_versions(path, [(row.first_run, row.hash) for _, row in rows])
    all_metrics = _metrics_of_versions(index, path, [row for _, row in rows])
    before: Makings | None = None
    before_label: str | None = None
    by_time = sorted(((row.first_seen, row.hash, n) for n, row in rows), key=lambda t: t[:2])
    times = [t[0] for t in by_time]
    for number, row in rows:
        makings = made[row.hash]
        if number is None:  # off the numbered line: compare with what came just before
            at = bisect.bisect_left(times, row.first_seen)  # the first made at that time
            earlier = by_time[at - 1] if at > 0 else None
            before, before_label = ((made[earlier[1]], _label_of(earlier, labels, path))
                                    if earlier else (None, None))
        info = HashInfo(row.hash, row.size or 0, row.isdir)
        out.append(Version(
            path=path, number=number, hash=row.hash, size=row.size, isdir=row.isdir,
            first_run=row.first_run, first_seen=row.first_seen, runs=row.runs,
            tags=tuple(sorted(tagged.get(row.hash, []))),
            in_cache=not repo.store.missing(info), current=row.hash == current_hash,
            params_changed=_params_changed(
                reader.own_params(out[-1].first_run) if out else None,
                reader.own_params(row.first_run)),
            metrics=all_metrics[row.hash],
            side=number is None and labels.committed(path, row.hash),
            experiment=marks.get(row.first_run),
            notes=tuple(notes.get(row.hash, ())), params=makings.params,
            differs=None if before is None else compare(before, makings),
            differs_from=before_label if before is not None else None,
        ))
        before, before_label = makings, out[-1].label
    return out


def _label_of(row: tuple[str, str, int | None], labels: VersionLabels, path: str) -> str:
    _when, oid, number = row
    if number is not None:
        return f"v{number}"
    return side_label(oid) if labels.committed(path, oid) else local_label(oid)


def _params_changed(old: Mapping[str, Mapping[str, Any]] | None,
                    new: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``file:key`` -> [old, new] for the producing runs' own params (empty for the
    first version)."""
    if old is None:
        return {}
    before = {f"{f}:{k}": v for f, vals in old.items() for k, v in vals.items()}
    after = {f"{f}:{k}": v for f, vals in new.items() for k, v in vals.items()}
    return {key: [before.get(key), after.get(key)] for key in sorted(set(before) | set(after))
            if before.get(key) != after.get(key)}


def experiment_marks(index: RunIndex, run_ids: list[str]) -> dict[str, ExperimentMark]:
    """Run id -> the experiment it was made for, for those of ``run_ids`` that were
    (the index keeps each record's mark: no record file is read)."""
    marks: dict[str, ExperimentMark] = {}
    for run_id, (_, data) in batch.extras_of(index, run_ids).items():
        mark = ExperimentMark.of(data)
        if mark is not None:
            marks[run_id] = mark
    return marks


def _metrics_of_versions(index: RunIndex, path: str, rows: list[VersionRow]
                         ) -> dict[str, dict[str, Any]]:
    """Hash -> the metrics the version's own run wrote, then those of the newest
    successful runs that read this exact content (a model's evaluation), as
    ``file:key``: a few queries for all versions, not two per version."""
    readers = batch.readers_of(index, path)
    wanted = [row.first_run for row in rows] + [r for runs in readers.values() for r in runs]
    written = batch.metrics_of_runs(index, wanted)
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        metrics: dict[str, Any] = {}
        for run_id in (row.first_run, *readers.get(row.hash, ())):
            for p, vals in written.get(run_id, {}).items():
                metrics.update({f"{p}:{k}": v for k, v in vals.items()})
        out[row.hash] = metrics
    return out


def resolve(repo: Project, path: str, version: str, versions: list[Version]) -> Version:
    """The version of ``path`` that ``version`` (vN, hash prefix or tag) names."""
    if not versions:
        raise UsageError(f"'{path}' has no recorded versions",
                         hint="versions are recorded when `pipeflow repro` or `pipeflow add` "
                              "produces the path")
    found: list[Version] = []
    if re.fullmatch(r"v\d+", version):
        found = [v for v in versions if v.number == int(version[1:])]
    for prefix in (LOCAL_PREFIX, SIDE_PREFIX):
        if not found and version.startswith(prefix):
            version = version.removeprefix(prefix)
    # A hash prefix before a tag: a tag named like a prefix (a crafted tag log line can
    # have any name) must not redirect `PATH@6bba86c7` to another content.
    if not found and _HEX.match(version):
        found = [v for v in versions if v.hash.startswith(version)]
    if not found:
        found = [v for v in versions if version in v.tags]
    if len(found) == 1:
        return found[0]
    listing = ", ".join(f"{v.label} ({v.hash[:8]})" for v in versions[-12:])
    if len(found) > 1:
        raise UsageError(f"'{version}' matches several versions of {path}",
                         hint="give more hex digits")
    aliases = sorted({t for v in versions for t in v.tags})
    close = difflib.get_close_matches(version, aliases, n=1)
    named = f"; aliases: {', '.join(aliases)}" if aliases else ""
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise UsageError(f"{path} has no version '{version}'",
                     hint=f"{hint}it has: {listing}{named}")
