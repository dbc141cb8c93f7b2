"""Writing history as stages run: run records, run-cache pointers, the index.

Only the committing process (the local scheduler) writes records. Provenance
(git commit, modified files, user, host) is read once per invocation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from pipeflow.git.gitinfo import Provenance
from pipeflow.lineage.trust import Trust, TrustPolicy
from pipeflow.lock.lockfile import FileEntry, MetricEntry, StageLock
from pipeflow.planning.fingerprint import Components
from pipeflow.project.provenance import provenance
from pipeflow.records.records import (
    FileRef,
    OutputKind,
    OutputRef,
    RecordBody,
    RecordComponents,
    RecordGit,
    RecordKind,
    RunRecord,
    iso,
)
from pipeflow.spec.model import Stage
from pipeflow.version import __version__

if TYPE_CHECKING:
    from pipeflow.code.environment import EnvironmentProbe
    from pipeflow.execution.inflight import InFlight
    from pipeflow.project.project import Project

FetchObjects = Callable[[Sequence[str]], object]
"""Brings the objects (oids) a remote has into the local cache (``repro --pull``)."""


class Finished(Protocol):
    """What a record keeps of a finished command (the runner's ``RunResult``)."""

    @property
    def returncode(self) -> int: ...
    @property
    def started(self) -> float: ...
    @property
    def ended(self) -> float: ...
    @property
    def duration(self) -> float: ...


def file_ref(entry: FileEntry) -> FileRef:
    """A lock entry as a record's components list it."""
    return FileRef(entry.path, entry.hash, entry.size, entry.isdir,
                   entry.nfiles if entry.isdir else None)


def output_ref(entry: FileEntry, kind: OutputKind) -> OutputRef:
    """A lock output (or metric) entry as a record's outputs list it."""
    return OutputRef(entry.path, entry.hash, entry.size, entry.isdir,
                     entry.nfiles if entry.isdir else None, kind, entry.cache)


def record_components(comps: Components) -> RecordComponents:
    """A fingerprint's components as a record keeps them."""
    return RecordComponents(
        cmd=comps.cmd, deps=tuple(file_ref(d) for d in comps.deps),
        params={f: dict(v) for f, v in comps.params.items()},
        code=tuple(file_ref(c) for c in comps.code), env=dict(comps.env), outs=comps.outs)


def record_git(prov: Provenance) -> RecordGit:
    """Where a record was written, as it keeps it."""
    return RecordGit(prov.commit, prov.dirty_paths)


def run_cache_eligible(stage: Stage) -> bool:
    """DESIGN: stages with a persist or uncached output, always_changed, or no deps
    never use the run cache (their outputs are not a function of their inputs)."""
    return bool(stage.deps) and not stage.always_changed and all(
        o.cache and not o.persist for o in stage.outs
    )


def nondeterminism_detected(stage: Stage) -> bool:
    """Whether a run of ``stage`` is compared with earlier runs of its fingerprint
    (:mod:`pipeflow.lineage.nondeterminism`). Not for stages whose outputs are
    expected to differ for the same fingerprint: ``always_changed`` says the stage
    reads something its fingerprint cannot see (a URL, a database, the clock), a
    ``persist`` output starts from the previous run's content, and
    ``deterministic: false`` declares the differences already (``reproduce`` compares
    such a stage by tolerance). Stages with no deps are compared: their fingerprint
    (command, params, code, environment) is all they are taken to depend on."""
    return (not stage.always_changed and stage.deterministic
            and not any(o.persist for o in stage.outs))


@dataclass
class History:
    """The run-record side of a ``repro``: one per invocation."""

    repo: Project
    fetch: FetchObjects | None = None
    """With ``repro --pull``: fetches the objects of run-cache hits missing locally."""
    env_probe: EnvironmentProbe | None = None
    """The planner's: interpreter facts it looked up are not asked for again (each
    question can start an interpreter)."""
    _provenance: Provenance | None = None
    untrusted: list[tuple[str, Trust]] = dataclasses.field(default_factory=list)
    """(stage, verdict) of run-cache entries not used because their record is not
    trusted (pipeflow.lineage.trust): those stages ran instead."""
    _trust: TrustPolicy | None = None
    mark: Mapping[str, Any] | None = None
    """The experiment this run is for (``{"id", "name", "set"}``): every record it
    writes carries it (:mod:`pipeflow.lineage.experiments`)."""
    inflight: InFlight | None = None
    """Shared by the runs of one sweep: a fingerprint another run is computing is
    waited for, then restored from the run cache (:mod:`pipeflow.execution.inflight`)."""
    stopped: Callable[[], bool] = lambda: False
    """Whether the run is being cancelled (a wait for another run's stage ends then)."""

    @property
    def provenance(self) -> Provenance:
        if self._provenance is None:
            self._provenance = provenance(self.repo)
        return self._provenance

    def _base(self, kind: RecordKind, stage: Stage, comps: Components) -> RecordBody:
        prov = self.provenance
        return RecordBody(kind=kind, stage=stage.name, fingerprint=comps.digest(),
                          components=record_components(comps), command=stage.cmd,
                          user=prov.user, host=prov.host, pipeflow_version=__version__,
                          git=record_git(prov), experiment=self.mark)

    def _append(self, body: RecordBody, eligible: bool) -> RunRecord:
        record = self.repo.records.append(body)
        if eligible and body.exit_status == 0 and body.kind is RecordKind.RUN:
            self.repo.records.point(body.fingerprint, record)
        self.repo.index.add(record)
        if self.inflight is not None:
            self.inflight.release(body.fingerprint, self)
        return record

    def release(self) -> None:
        """The run ended: fingerprints it held but never recorded are free again."""
        if self.inflight is not None:
            self.inflight.release_all(self)

    def record_run(
        self,
        stage: Stage,
        comps: Components,
        result: Finished,
        entry: StageLock | None,
        error: str | None = None,
    ) -> RunRecord:
        """A record of one execution: successful with its lock ``entry``, or failed
        with ``error`` (a command that exited 0 but whose outputs could not be
        committed counts as failed, exit status 1)."""
        failed_status = result.returncode if result.returncode != 0 else 1
        body = replace(
            self._base(RecordKind.RUN, stage, comps),
            exit_status=0 if entry is not None else failed_status,
            started=iso(result.started), ended=iso(result.ended),
            duration=round(result.duration, 6), env_exact=self.exact_env(stage, comps),
            error=error or None)
        if entry is not None:
            body = replace(body, outputs=output_refs(entry),
                           metrics={m.path: dict(m.values) for m in entry.metrics})
            if nondeterminism_detected(stage):
                body = replace(body, nondeterministic=self._differing(body))
        return self._append(body, run_cache_eligible(stage))

    def _differing(self, body: RecordBody) -> dict[str, Any] | None:
        """The ``nondeterministic`` mark of a successful run: what earlier successful
        runs of its fingerprint wrote that it did not (one indexed query; no record
        file is read). Runs other clones wrote count, trusted for the run cache or not:
        the mark only informs (``lineage`` of the run it names says where that came
        from), and a teammate's machine making other bytes is worth knowing."""
        from pipeflow.lineage.nondeterminism import detect
        from pipeflow.records.index import sql_text

        earlier = self.repo.index.same_fingerprint(body.fingerprint)
        if not earlier:
            return None
        return detect(((str(sql_text(o.path)), o.hash) for o in body.outputs or ()), earlier)

    def record_restore(
        self, stage: Stage, comps: Components, source: RunRecord, when: float
    ) -> RunRecord:
        """A record of outputs restored from the run cache instead of running."""
        body = replace(
            self._base(RecordKind.RESTORE, stage, comps),
            exit_status=0, started=iso(when), ended=iso(when), duration=0.0,
            source_run=source.id, outputs=source.outputs, metrics=dict(source.metrics))
        return self._append(body, False)

    def exact_env(self, stage: Stage, comps: Components) -> dict[str, Any]:
        """The environment with exact versions (records always keep them): the
        interpreter's patch level, and the distributions the fingerprint found the
        code importing (their versions are exact there already) beside the declared
        ones, so that `env export` can recreate it."""
        if self.env_probe is None:
            from pipeflow.code.environment import EnvironmentProbe

            state = self.repo.state
            self.env_probe = EnvironmentProbe(state, root=self.repo.root)
        env = self.env_probe.component(stage.cmd, python_exact=True, variables=stage.env.vars,
                                       cwd=self.repo.root / stage.wdir,
                                       packages=stage.env.packages)
        packages = {**(comps.env.get("packages") or {}), **(env.get("packages") or {})}
        if packages:
            env["packages"] = dict(sorted(packages.items()))
        return env

    def cached_run(self, stage: Stage, comps: Components) -> RunRecord | None:
        """An earlier successful run with the same fingerprint whose outputs are all
        still in the cache, or None."""
        if not run_cache_eligible(stage):
            return None
        if self.inflight is not None:  # held until this stage's record is written
            self.inflight.acquire(comps.digest(), self, self.stopped)
        record = self.repo.records.lookup(comps.digest())
        if record is None or not record.ok or record.fingerprint != comps.digest():
            return None
        if self._trust is None:
            self._trust = TrustPolicy.of(self.repo)
        verdict = self._trust.trusted(record)
        if not verdict:
            self.untrusted.append((stage.name, verdict))
            return None
        declared = {o.path for o in stage.outs}
        if {o.path for o in record.outputs} != declared:
            return None
        infos = [o.hash_info() for o in record.outputs]
        if any(self.repo.store.missing(i) for i in infos) and self.fetch is not None:
            # manifests first, then the files they list
            self.fetch([i.hash for i in infos])
            self.fetch([oid for i in infos for oid in self.repo.store.missing(i)])
        if any(self.repo.store.missing(i) for i in infos):
            return None
        return record


def output_refs(entry: StageLock) -> tuple[OutputRef, ...]:
    """A lock entry's outputs and metrics as a record lists them."""
    return (*(output_ref(o, OutputKind.OUT) for o in entry.outs),
            *(output_ref(m, OutputKind.METRIC) for m in entry.metrics))


def entry_from_record(comps: Components, record: RunRecord) -> StageLock:
    """The lock entry for outputs restored from ``record`` (which produced them)."""
    outs: list[FileEntry] = []
    metrics: list[MetricEntry] = []
    for out in record.outputs:
        entry = FileEntry(path=out.path, hash=out.hash, size=out.size or 0, isdir=out.isdir,
                          nfiles=out.nfiles, cache=out.cache)
        if out.kind is OutputKind.METRIC:
            metrics.append(MetricEntry(**dataclasses.asdict(entry),
                                       values=dict(record.metrics.get(entry.path) or {})))
        else:
            outs.append(entry)
    source = record.body.source_run or record.id
    return StageLock(cmd=comps.cmd, fingerprint=comps.digest(), deps=comps.deps,
                     params=comps.params, code=comps.code, env=comps.env,
                     outs=tuple(outs), metrics=tuple(metrics), run=source)
