"""Lineage: from one version of an output back to the source data it came from.

The walk starts at ``(path, hash)`` and the run that produced it, takes that run's
data inputs (its deps, with the hashes the run saw), and for each finds the run that
produced exactly that content — or, for a file inside an output folder, the run that
produced the folder version holding it — down to source data (an ``add`` record) or
an input nothing recorded ("untracked"). Restores from the run cache are followed to
the run whose outputs they restored.

Every lookup is an indexed query; records are read only for the runs on the path
(one file each). A record that is missing or fails its hash is marked (``problem``)
and the walk goes on with what the index remembers of it: the lineage of a damaged
history is shown as far as it can be, never a crash.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from pipeflow.credentials import conceal_env
from pipeflow.errors import StorageError
from pipeflow.lineage.model import (
    ArtifactStatus,
    CodeFile,
    ExperimentMark,
    Lineage,
    LineageArtifact,
    LineageRun,
    RunOutput,
    Within,
    artifact_id,
)
from pipeflow.lineage.nondeterminism import Nondeterminism
from pipeflow.lineage.trust import Trust
from pipeflow.records.batch import nondeterministic_of_runs
from pipeflow.records.index import RunIndex, sql_text
from pipeflow.records.records import RecordComponents, RecordGit, RecordKind, RunRecord

__all__ = ["GitTracked", "Labeler", "Lineage", "ManifestLookup", "Vouch", "trace"]
"""``trace`` and what it takes and returns (the values themselves live in
:mod:`pipeflow.lineage.model`)."""

Vouch = Callable[[RunRecord], Trust]
"""Who wrote a record, and whether anyone vouches for it (``TrustPolicy.trusted``)."""
GitTracked = Callable[[str, str], bool]
"""(commit, project-relative path) -> whether git tracks that path at that commit."""

Labeler = Callable[[str, str], str]
"""(path, hash) -> the version's label (``v3``, ``local:1a2b3c4d``)."""

ManifestLookup = Callable[[str], Mapping[str, str] | None]
"""Folder hash -> {relative file path: file hash}, or None when not in the cache."""

# A restore names the run it restored; a restore of a restore is not written
# today, but a bound keeps a hand-made loop of records from hanging the walk.
_MAX_RESTORE_HOPS = 16


class _Walker:
    def __init__(self, index: RunIndex, manifests: ManifestLookup,
                 tracked: GitTracked | None = None, labels: Labeler | None = None,
                 vouch: Vouch | None = None) -> None:
        self.index = index
        self.vouch = vouch
        self.labels = labels
        self.db = index.db
        self.manifests = manifests
        self.tracked = tracked
        self._reader: dict[str, LineageRun] = {}
        """Artifact id -> the run whose inputs listed it first."""
        self.artifacts: dict[str, LineageArtifact] = {}
        self.runs: dict[str, LineageRun] = {}
        self._labels: dict[str, dict[str, tuple[int, int]]] = {}
        self._sizes: dict[str, tuple[int | None, bool]] = {}
        self._damaged: int | None = None
        """Artifact id -> (size, isdir) as the reading run's record gave them."""

    # queries ------------------------------------------------------------------
    def label(self, path: str, oid: str) -> tuple[str | None, int]:
        """(label, number of runs) of content ``oid`` of ``path``: the label from
        ``self.labels`` (git history), else ``vN`` in order of first production."""
        known = self._labels.get(path)
        if known is None:
            rows = self.db.execute(
                """SELECT o.hash, COUNT(DISTINCT r.id) FROM outputs o
                   JOIN runs r ON r.id = o.run_id
                   WHERE o.path = ? AND r.exit_status = 0
                   GROUP BY o.hash ORDER BY MIN(r.ended), o.hash""",
                (sql_text(path),),
            ).fetchall()
            known = {str(h): (n, int(c)) for n, (h, c) in enumerate(rows, start=1)}
            self._labels[path] = known
        found = known.get(oid)
        if not found:
            return None, 0
        return (self.labels(path, oid) if self.labels else f"v{found[0]}"), found[1]

    def container(
        self, path: str, oid: str, before: str | None
    ) -> tuple[Within, str, str | None] | None:
        """The output folder version holding file ``path`` with content ``oid``:
        (folder, its producer, a note). The deepest folder wins; among its versions
        the newest produced before ``before`` (the reading run's start) is tried
        first, since that is the one the reader most likely saw."""
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]
        if not prefixes:
            return None
        marks = ",".join("?" * len(prefixes))
        rows = self.db.execute(
            f"""SELECT o.path, o.hash, r.id, r.ended FROM outputs o
                JOIN runs r ON r.id = o.run_id
                WHERE o.path IN ({marks}) AND o.isdir = 1 AND r.exit_status = 0
                ORDER BY LENGTH(o.path) DESC, r.ended DESC, r.seq DESC""",
            [sql_text(p) for p in prefixes],
        ).fetchall()
        if not rows:
            return None

        def rank(row: tuple[Any, ...]) -> tuple[int, int]:
            newer = before is not None and row[3] is not None and str(row[3]) > before
            return (-len(str(row[0])), 1 if newer else 0)

        seen: set[tuple[str, str]] = set()
        unconfirmed: tuple[str, str, str] | None = None
        for folder, fhash, run_id, _ended in sorted(rows, key=rank):
            key = (str(folder), str(fhash))
            if key in seen:
                continue
            seen.add(key)
            manifest = self.manifests(key[1])
            rel = path[len(key[0]) + 1:]
            if manifest is None:
                unconfirmed = unconfirmed or (key[0], key[1], str(run_id))
                continue
            if manifest.get(rel) == oid:
                first = self.index.producer(key[0], key[1]) or str(run_id)
                return Within(key[0], key[1], self.label(*key)[0]), first, None
        if unconfirmed is not None:
            folder, fhash, run_id = unconfirmed
            first = self.index.producer(folder, fhash) or run_id
            note = (f"matched by path only: the contents of {folder} "
                    f"({fhash[:8]}) are not in the cache to confirm it")
            return Within(folder, fhash, self.label(folder, fhash)[0]), first, note
        return None

    def damaged(self) -> int:
        """How many record files the index could not read (so could not index)."""
        if self._damaged is None:
            self._damaged = int(self.db.execute("SELECT COUNT(*) FROM broken").fetchone()[0])
        return self._damaged

    # records ------------------------------------------------------------------
    def find_record_file(self, run_id: str) -> str | None:
        """The ``chain/file`` of a record the index does not know (it failed its hash
        when indexed), found by name."""
        suffix = f"-{run_id}.json"
        runs = self.index.records.runs
        for chain in self.index.records.chains():
            try:
                names = os.listdir(runs / chain)
            except OSError:
                continue
            for name in names:
                if name.endswith(suffix):
                    return f"{chain}/{name}"
        return None

    def read(self, run_id: str) -> tuple[RunRecord | None, str | None]:
        rel = self.index.run_rel(run_id)
        if rel is None:
            rel = self.find_record_file(run_id)
            if rel is None:
                return None, f"run record {run_id[:12]} is missing from this clone"
        try:
            return self.index.records.read_rel(rel), None
        except StorageError as exc:
            return None, exc.message

    def run(self, run_id: str) -> LineageRun:
        """The run ``run_id``, following restores to the run they restored."""
        restored_by: str | None = None
        current = run_id
        for _ in range(_MAX_RESTORE_HOPS):
            if current in self.runs:
                return self.runs[current]
            record, problem = self.read(current)
            if record is None:
                return self._from_index(current, problem or "unreadable", restored_by)
            source = record.body.source_run
            if record.kind is RecordKind.RESTORE and source:
                restored_by = restored_by or record.id
                current = source
                continue
            return self._from_record(record, restored_by)
        return LineageRun(id=current, kind="run", stage="", restored_by=restored_by,
                          problem="restore records name each other in a loop")

    def _from_record(self, record: RunRecord, restored_by: str | None) -> LineageRun:
        b = record.body
        comps = b.components or RecordComponents()
        git = b.git or RecordGit()
        env = b.environment()
        deps = () if record.kind is RecordKind.ADD else comps.deps
        for d in deps:
            self._sizes[artifact_id(d.path, d.hash)] = (d.size, d.isdir)
        return LineageRun(
            id=record.id, kind=str(record.kind), stage=record.stage,
            command=b.command or comps.cmd, fingerprint=record.fingerprint,
            exit_status=b.exit_status, started=b.started, ended=b.ended,
            duration=_float(b.duration), user=b.user, host=b.host,
            pipeflow_version=b.pipeflow_version, git_commit=git.commit,
            dirty_paths=git.dirty_paths, params=comps.params,
            code=tuple(CodeFile(c.path, c.hash) for c in comps.code),
            # records pushed by an older pipeflow may hold a secret variable in clear
            env=conceal_env(env),
            inputs=tuple(artifact_id(d.path, d.hash) for d in deps),
            outputs=tuple(self._output(o.path, o.hash, o.size, str(o.kind))
                          for o in record.outputs),
            metrics=record.metrics, restored_by=restored_by,
            experiment=ExperimentMark.of(b.experiment),
            nondeterministic=Nondeterminism.of(record.id, b.nondeterministic),
            **self._trust(record),
        )

    def _trust(self, record: RunRecord) -> dict[str, Any]:
        """``trust`` (for a record this clone did not write) and ``signature``."""
        verdict = self.vouch(record) if self.vouch else None
        if verdict is None:
            return {}
        return {"trust": None if verdict.local else verdict, "signature": verdict.signature}

    def _output(self, path: str, oid: str, size: int | None, kind: str) -> RunOutput:
        return RunOutput(path, oid, size, kind, self.label(path, oid)[0])

    def _from_index(self, run_id: str, problem: str, restored_by: str | None) -> LineageRun:
        """What the index remembers of a run whose record cannot be read now."""
        row = self.db.execute(
            """SELECT kind, stage, fingerprint, exit_status, started, ended, duration,
                      user, host, git_commit FROM runs WHERE id = ?""",
            (run_id,),
        ).fetchone()
        if row is None:
            return LineageRun(id=run_id, kind="run", stage="", restored_by=restored_by,
                              problem=problem)
        inputs = self.db.execute(
            "SELECT role, path, hash FROM inputs WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        outputs = self.db.execute(
            "SELECT path, hash, size, kind FROM outputs WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        ).fetchall()
        return LineageRun(
            id=run_id, kind=str(row[0]), stage=str(row[1]), fingerprint=str(row[2]),
            exit_status=_int(row[3]), started=_str(row[4]), ended=_str(row[5]),
            duration=_float(row[6]), user=_str(row[7]), host=_str(row[8]),
            git_commit=_str(row[9]), params=self.index.params_of(run_id),
            code=tuple(CodeFile(str(p), str(h)) for role, p, h in inputs if role == "code"),
            inputs=tuple(artifact_id(str(p), str(h)) for role, p, h in inputs if role == "deps"),
            outputs=tuple(self._output(str(p), str(h), _int(s), str(k))
                          for p, h, s, k in outputs),
            metrics=self.index.metrics_of(run_id), restored_by=restored_by,
            nondeterministic=Nondeterminism.of(
                run_id, nondeterministic_of_runs(self.index, [run_id]).get(run_id)),
            problem=problem + " (shown as the index remembers it)",
        )

    # the walk -----------------------------------------------------------------
    def artifact(
        self, path: str, oid: str, size: int | None, isdir: bool, hint: str | None,
        before: str | None,
    ) -> LineageArtifact:
        aid = artifact_id(path, oid)
        if not oid:
            return LineageArtifact(aid, path, oid, size, isdir, "absent",
                                   note="did not exist when the run started")
        version, count = self.label(path, oid)
        run_id = hint or self.index.producer(path, oid)
        within: Within | None = None
        note: str | None = None
        if run_id is None:
            found = self.container(path, oid, before)
            if found is None:
                from_git = self._from_git(aid, path)
                if from_git is not None:
                    return LineageArtifact(aid, path, oid, size, isdir, "git", note=from_git)
                damaged = self.damaged()
                problem = (f"{damaged} damaged run record(s) could not be searched: one may "
                           "have produced it" if damaged else None)
                return LineageArtifact(aid, path, oid, size, isdir, "untracked",
                                       note="no run or `pipeflow add` recorded this content",
                                       problem=problem)
            within, run_id, note = found
        run = self.run(run_id)
        if run.id not in self.runs:
            self.runs[run.id] = run
        status: ArtifactStatus = "source" if run.kind == "add" else "output"
        return LineageArtifact(aid, path, oid, size, isdir, status, version=version,
                               producer=run.id, runs=count, within=within, note=note)

    def walk(self, path: str, oid: str, run_hint: str | None) -> Lineage:
        target = artifact_id(path, oid)
        size, isdir = self._size_of(path, oid)
        stack: list[tuple[str, str, int | None, bool, str | None, str | None]] = [
            (path, oid, size, isdir, run_hint, None)
        ]
        expanded: set[str] = set()
        while stack:
            p, h, s, d, hint, before = stack.pop()
            aid = artifact_id(p, h)
            if aid in self.artifacts:
                continue
            art = self.artifact(p, h, s, d, hint, before)
            self.artifacts[aid] = art
            run = self.runs.get(art.producer) if art.producer else None
            if run is None or run.id in expanded:
                continue
            expanded.add(run.id)
            deps = self._deps_of(run)
            for dep_path, dep_hash, dep_size, dep_isdir in reversed(deps):
                self._reader.setdefault(artifact_id(dep_path, dep_hash), run)
                stack.append((dep_path, dep_hash, dep_size, dep_isdir, None, run.started))
        return Lineage(target, dict(self.artifacts), dict(self.runs))

    def _from_git(self, aid: str, path: str) -> str | None:
        """A note when git tracked ``path`` at the commit of the run that read it."""
        reader = self._reader.get(aid)
        if reader is None or not reader.git_commit or self.tracked is None:
            return None
        if not self.tracked(reader.git_commit, path):
            return None
        where = f"in git at {reader.git_commit[:12]}"
        try:
            git = self.index.record(reader.id).body.git
        except StorageError:
            git = None
        dirty = git.dirty_paths if git else ()
        if any(d == path or d.endswith("/" + path) for d in dirty):
            return where + ", modified in the workspace when the run started"
        return where

    def _deps_of(self, run: LineageRun) -> list[tuple[str, str, int | None, bool]]:
        out = []
        for aid in run.inputs:
            p, _, h = aid.rpartition("@")
            size, isdir = self._size_of(p, h)
            out.append((p, h, size, isdir))
        return out

    def _size_of(self, path: str, oid: str) -> tuple[int | None, bool]:
        known = self._sizes.get(artifact_id(path, oid))
        if known is not None:
            return known
        row = self.db.execute(
            "SELECT size, isdir FROM outputs WHERE path = ? AND hash = ? LIMIT 1",
            (sql_text(path), oid)
        ).fetchone()
        return (_int(row[0]), bool(row[1])) if row else (None, False)


def trace(
    index: RunIndex, path: str, oid: str, *, run_id: str | None = None,
    manifests: ManifestLookup | None = None, tracked: GitTracked | None = None,
    labels: Labeler | None = None, vouch: Vouch | None = None,
) -> Lineage:
    """The lineage of content ``oid`` of ``path``.

    ``run_id`` names the run that produced it when known (the lock entry's ``run``);
    otherwise the first successful run that produced that content is used.
    ``manifests`` lets a file inside an output folder be matched to the folder
    version that holds it (without it, a file input that no run wrote directly is
    "untracked"). ``labels`` gives each version its label (``vN`` from git history,
    see ``pipeflow.lineage.labels``); without it versions are numbered in order of
    first production in the index. ``vouch`` says who wrote a record
    (``pipeflow.lineage.trust``): runs from a remote's unsigned records are marked.
    """
    walker = _Walker(index, manifests or (lambda _oid: None), tracked, labels, vouch)
    return walker.walk(path, oid, run_id)


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
