"""Deciding, without running anything, what state each stage is in and why.

Status words (DESIGN): ``changed`` (with reasons), ``pending`` (only an upstream
stage changed: it runs if that stage's outputs change), ``missing-output``,
``frozen``, ``running``, ``up-to-date``. ``status``, ``repro --dry`` and the
scheduler (one stage at a time, as its upstream finishes) all use ``Planner``.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

from pipeflow.code.codedeps import (
    MODULE_MAP,
    CodeDetector,
    CodeScan,
    describe_map_change,
    module_map_text,
)
from pipeflow.code.codehash import SourceCache
from pipeflow.code.environment import EnvironmentProbe, python_program
from pipeflow.content.hashing import HashInfo, check_inside
from pipeflow.errors import OutsideProjectError
from pipeflow.lock.lockconflict import CONFLICT_REASON
from pipeflow.lock.lockfile import FileEntry, Lock, StageLock, file_entry, hash_info, out_entries
from pipeflow.params import read_params, select
from pipeflow.planning.fingerprint import Change, ChangeKind, Components, explain, out_label
from pipeflow.planning.graph import Graph, source_deps_missing
from pipeflow.project.project import Project
from pipeflow.spec.model import Out, Stage


class StageWord(StrEnum):
    """Where a stage stands: the word ``status`` prints (and ``--json`` gives)."""

    CHANGED = "changed"
    PENDING = "pending"
    """Only a stage upstream changed."""
    MISSING_OUTPUT = "missing-output"
    """Up to date, but an output is missing or modified (the cache has it)."""
    FROZEN = "frozen"
    RUNNING = "running"
    """A live ``repro`` is running it now."""
    UP_TO_DATE = "up-to-date"


WORDS = tuple(StageWord)


@dataclass(frozen=True)
class StageState:
    """Where one stage stands, and why."""

    name: str
    word: StageWord
    reasons: tuple[Change, ...] = ()
    components: Components | None = None
    restorable: bool = False
    """Its fingerprint matches and every missing or modified output is in the cache."""

    @property
    def notes(self) -> tuple[str, ...]:
        """What status should say beside the state (e.g. dynamic imports not followed)."""
        return self.components.notes if self.components is not None else ()

    @property
    def up_to_date(self) -> bool:
        """Nothing to do: up to date, or frozen with its outputs in place."""
        return self.word is StageWord.UP_TO_DATE or (
            self.word is StageWord.FROZEN and not self.reasons)


def _plain(value: Any) -> Any:
    """Params values as JSON sees them (dates become ISO text), so that the lock,
    the journal and the fingerprint agree on one form."""
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Planner:
    """Computes components and states of stages against a lock."""

    def __init__(
        self,
        repo: Project,
        graph: Graph,
        lock: Lock,
        *,
        running: frozenset[str] = frozenset(),
        conflicts: frozenset[str] = frozenset(),
    ) -> None:
        self.repo = repo
        self.graph = graph
        self.lock = lock
        self.running = running
        self.conflicts = conflicts
        """Stages in merge conflict in pipeline.lock (absent from ``lock``): they run."""
        state = repo.state if repo.dot.is_dir() else None
        managed = [o.path for st in graph.pipeline.stages.values() for o in st.outs]
        self.env = EnvironmentProbe(
            state, root=repo.root, managed=[*managed, *lock.sources],
        )

    # components -------------------------------------------------------------
    def _hash(self, rel: str, external: bool = False) -> HashInfo | None:
        try:
            return self.repo.hasher.hash_path(rel, external=external)
        except FileNotFoundError:
            return None

    def _code_paths(self, stage: Stage) -> list[str]:
        paths: list[str] = []
        for pattern in stage.code:
            if any(ch in pattern for ch in "*?["):
                matches = sorted(glob.glob(pattern, root_dir=self.repo.root, recursive=True))
                paths.extend(m.replace(os.sep, "/") for m in matches)
            else:
                paths.append(pattern)
        return list(dict.fromkeys(paths))

    def params_of(self, stage: Stage) -> dict[str, dict[str, Any]]:
        values: dict[str, dict[str, Any]] = {}
        for ref in stage.params:
            check_inside(self.repo.root, ref.file, what=f"stage '{stage.name}': params file",
                         hint="keep params files inside the project")
            data = read_params(self.repo.root / ref.file, name=ref.file, root=self.repo.root)
            chosen = {k: _plain(v) for k, v in select(data, ref.keys).items()}
            values.setdefault(ref.file, {}).update(chosen)
        return {f: dict(sorted(v.items())) for f, v in sorted(values.items())}

    def components(self, stage: Stage, substitute: Mapping[str, FileEntry]) -> Components:
        """The stage's components now; deps in ``substitute`` take the given entry.

        Code is what ``code:`` declares plus, unless ``code: {auto: false}``, what its
        Python commands run (``pipeflow.code.codedeps``); a Python source is hashed in
        normalized form, also as a dep when it is a source file (no stage writes it).
        A dep, code file or params file that resolves outside the project (unless the
        dep is ``external``) or into /dev, /proc, /sys is an error naming the stage.
        """
        try:
            return self._components(stage, substitute)
        except OutsideProjectError as exc:
            if exc.what != "path":
                raise
            raise _located(stage, exc) from None

    def _components(self, stage: Stage, substitute: Mapping[str, FileEntry]) -> Components:
        cwd = self.repo.root / stage.wdir
        program = next((p for p in map(python_program, stage.cmd) if p is not None), None)
        scan = self._scan(stage, program)
        code, normalized, notes = self._code_entries(stage, scan)
        deps = []
        for path in stage.deps:
            if path in substitute:
                deps.append(substitute[path])
                continue
            as_code = code.get(path)
            if as_code is not None and path in normalized and (
                self.graph.producer_of(path) is None
            ):
                deps.append(as_code)
                continue
            info = self._hash(path, external=path in stage.external)
            deps.append(file_entry(path, info) if info else FileEntry(path, "", 0))
        exact = stage.env.python == "exact"
        return Components(
            cmd=stage.cmd,
            deps=tuple(deps),
            params=self.params_of(stage),
            code=tuple(code.values()),
            env=self.env.component(stage.cmd, python_exact=exact, variables=stage.env.vars,
                                   cwd=cwd, packages=stage.env.packages,
                                   imports=scan.external, root=self.repo.root),
            outs=tuple(out_label(o.path, o.kind, o.cache, o.persist) for o in stage.outs),
            notes=tuple(dict.fromkeys((*notes, *scan.notes))),
            details=self._map_details(stage.name, scan, code.get(MODULE_MAP)),
        )

    @cached_property
    def _sources(self) -> SourceCache:
        """Facts of Python sources by content hash, remembered in the state database."""
        state = self.repo.state if self.repo.dot.is_dir() else None
        return SourceCache(self.repo.root, self.repo.hasher.hash_path, state)

    @cached_property
    def _detector(self) -> CodeDetector:
        state = self.repo.state if self.repo.dot.is_dir() else None
        return CodeDetector(self.repo.root, self._sources, state)

    def _scan(self, stage: Stage, program: str | None) -> CodeScan:
        if not stage.code_auto or program is None:
            return CodeScan()
        site = self.env.site_index(program, self.repo.root / stage.wdir)
        return self._detector.scan(
            stage.cmd, "" if stage.wdir == "." else stage.wdir,
            site.project_paths(self._detector.root_str) if site else (),
            site.editable if site else None,
        )

    def _code_entries(
        self, stage: Stage, scan: CodeScan
    ) -> tuple[dict[str, FileEntry], set[str], list[str]]:
        """Code entries (declared first, in order; then detected files; then the module
        map), the paths among them hashed in normalized form, and notes."""
        entries: dict[str, FileEntry] = {}
        normalized: set[str] = set()
        notes: list[str] = []
        for path in (*self._code_paths(stage), *scan.files):
            if path in entries:
                continue
            info = self._hash(path)
            if info is None:
                entries[path] = FileEntry(path, "", 0)
                continue
            if path in scan.hashes and not info.isdir:
                entries[path] = FileEntry(path, scan.hashes[path], info.size)
                normalized.add(path)
                continue
            facts = self._sources.facts(path) if path.endswith(".py") else None
            if facts is None:
                entries[path] = file_entry(path, info)
                continue
            entries[path] = FileEntry(path, facts.hash, info.size)
            normalized.add(path)
            if facts.problem:
                notes.append(f"{path} does not parse ({facts.problem}): hashed by its bytes")
        if scan.ran_python:
            entries[MODULE_MAP] = FileEntry(MODULE_MAP, scan.map_hash(), len(scan.modules))
        return entries, normalized, notes

    def _map_details(
        self, name: str, scan: CodeScan, entry: FileEntry | None
    ) -> dict[str, str]:
        """How the module map differs from the one the lock recorded, in words.

        The lock keeps only the map's hash; each map seen is kept in the state
        database under its hash, so the earlier one can usually be named.
        """
        state = self.repo.state if self.repo.dot.is_dir() else None
        if entry is not None and state is not None:
            key = f"modmap:{entry.hash}"
            if state.get(key) is None:
                state.put(key, module_map_text(scan.modules))
        locked = self.lock.stages.get(name)
        before = next((e for e in locked.code if e.path == MODULE_MAP), None) if locked else None
        if (before.hash if before else None) == (entry.hash if entry else None):
            return {}
        text = state.get(f"modmap:{before.hash}") if (state and before) else None
        try:
            old = json.loads(text) if text else None
        except ValueError:
            old = None
        return {MODULE_MAP: describe_map_change(
            old if isinstance(old, dict) else None,
            scan.modules if entry is not None else None,
            recorded=before is not None,
        )}

    # states -----------------------------------------------------------------
    def _output_changes(self, stage: Stage, entry: StageLock) -> tuple[list[Change], bool]:
        recorded = out_entries(entry)
        changes: list[Change] = []
        restorable = True
        for out in stage.outs:
            rec = recorded.get(out.path)
            if rec is None:
                continue  # explained by the outs component
            now = self._hash(out.path)
            if now is not None and now.hash == rec.hash:
                continue
            if now is None:
                changes.append(Change(ChangeKind.OUTPUT, out.path, f"output missing: {out.path}"))
            elif out.persist:
                continue  # a persistent output is expected to differ between runs
            else:
                msg = self._checked_out(out.path, now.hash, rec.hash) or (
                    f"output modified in the workspace: {out.path}")
                changes.append(Change(ChangeKind.OUTPUT, out.path, msg, rec.hash, now.hash))
            if not self._restorable(out, rec):
                restorable = False
        return changes, restorable and bool(changes)

    def _checked_out(self, path: str, now: str, locked: str) -> str | None:
        """``models/m.pkl: v2 checked out, lock has v3`` when both are known versions."""
        if not self.repo.dot.is_dir():
            return None
        from pipeflow.lineage.labels import version_labels

        known = {row.hash for row in self.repo.index.versions(path)}
        if now in known and locked in known:
            labels = version_labels(self.repo.root, self.repo.index)
            return (f"{path}: {labels.label(path, now)} checked out, lock has "
                    f"{labels.label(path, locked)}")
        return None

    def _restorable(self, out: Out, rec: FileEntry) -> bool:
        return out.cache and rec.cache and not self.repo.store.missing(hash_info(rec))

    def evaluate(
        self, name: str, states: Mapping[str, StageState], *, force: bool = False
    ) -> StageState:
        """The state of stage ``name``, given the states of its upstream stages."""
        stage = self.graph.pipeline.stages[name]
        if name in self.running:
            return StageState(name, StageWord.RUNNING)
        entry = self.lock.stages.get(name)
        if stage.frozen:
            return self._frozen(stage, entry)
        recorded_deps = {d.path: d for d in entry.deps} if entry else {}
        substitute: dict[str, FileEntry] = {}
        waiting: list[str] = []
        for up in self.graph.upstream[name]:
            up_state = states.get(up)
            if up_state is None or up_state.up_to_date:
                continue
            # Restoring a missing output brings back what the lock records; an upstream
            # that runs instead (a missing output the cache cannot give) may write
            # something else, so this stage waits on it.
            if up_state.word is not StageWord.MISSING_OUTPUT or not up_state.restorable:
                waiting.append(up)
            for dep in stage.deps:
                if dep in recorded_deps and self.graph.producer_of(dep) == up:
                    substitute[dep] = recorded_deps[dep]
        comps = self.components(stage, substitute)
        absent = [
            Change(ChangeKind.DEP, path, f"dependency missing: {path} (no stage writes it)")
            for path in source_deps_missing(self.graph, name, self.repo.root)
        ] if any(d.hash == "" for d in comps.deps) else []
        if entry is None:
            first = (Change(ChangeKind.CONFLICT, "", CONFLICT_REASON) if name in self.conflicts
                     else Change(ChangeKind.NEW, "", "never run"))
            return StageState(name, StageWord.CHANGED, (first, *absent), comps)
        reasons = explain(entry, comps) if comps.digest() != entry.fingerprint else []
        if absent:
            gone = {a.subject for a in absent}
            reasons = [*absent, *(r for r in reasons if r.subject not in gone)]
        if force:
            reasons.insert(0, Change(ChangeKind.FORCED, "", "forced with --force"))
        if stage.always_changed:
            reasons.append(Change(ChangeKind.ALWAYS, "", "always_changed is set"))
        if reasons:
            return StageState(name, StageWord.CHANGED, tuple(reasons), comps)
        if waiting:
            why = tuple(Change(ChangeKind.UPSTREAM, up, f"upstream '{up}' changed")
                        for up in waiting)
            return StageState(name, StageWord.PENDING, why, comps)
        out_changes, restorable = self._output_changes(stage, entry)
        if out_changes:
            missing_only = all(c.old is None for c in out_changes)
            word = StageWord.MISSING_OUTPUT if missing_only else StageWord.CHANGED
            return StageState(name, word, tuple(out_changes), comps, restorable)
        return StageState(name, StageWord.UP_TO_DATE, (), comps)

    def _frozen(self, stage: Stage, entry: StageLock | None) -> StageState:
        """A frozen stage never runs; its missing outputs are restored when cached."""
        if entry is None and stage.name in self.conflicts:
            why = f"{CONFLICT_REASON} (frozen: unfreeze it to rerun, or resolve it by hand)"
            return StageState(stage.name, StageWord.FROZEN, (Change(ChangeKind.CONFLICT, "", why),))
        if entry is None:
            never = Change(ChangeKind.NEW, "", "frozen and never run")
            return StageState(stage.name, StageWord.FROZEN, (never,))
        changes, restorable = self._output_changes(stage, entry)
        if changes and restorable:
            return StageState(stage.name, StageWord.MISSING_OUTPUT, tuple(changes), restorable=True)
        return StageState(stage.name, StageWord.FROZEN, tuple(changes))

    def evaluate_all(self, names: list[str]) -> dict[str, StageState]:
        """States of ``names`` (in topological order), each seeing its upstream's."""
        states: dict[str, StageState] = {}
        for name in names:
            states[name] = self.evaluate(name, states)
        return states


def _located(stage: Stage, exc: OutsideProjectError) -> OutsideProjectError:
    """``exc`` naming the stage and what of it the path is, with the fix."""
    if exc.path in stage.deps:
        what = f"stage '{stage.name}': dependency"
        hint = ("remove the link" if exc.special else
                f"if the stage is meant to read it, mark it in the spec: deps: "
                f"[{{{exc.path}: {{external: true}}}}] (hashed by content all the same)")
    else:
        what = f"stage '{stage.name}': code"
        hint = ("remove the link" if exc.special else
                "keep the stage's code inside the project")
    return OutsideProjectError(exc.path, exc.link, exc.target, special=exc.special, what=what,
                               hint=hint)
