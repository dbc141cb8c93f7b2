"""Writing history as stages run: run records, run-cache pointers, the index.

Only the committing process (the local scheduler) writes records. Provenance
(git commit, modified files, user, host) is read once per invocation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeflow import __version__
from pipeflow.fingerprint import Components
from pipeflow.gitinfo import Provenance, read_provenance
from pipeflow.lineage.records import RunRecord, iso
from pipeflow.lineage.trust import Trust, TrustPolicy
from pipeflow.lockfile import FileEntry, MetricEntry, StageLock
from pipeflow.spec.model import Stage

if TYPE_CHECKING:
    from pipeflow.environment import EnvironmentProbe
    from pipeflow.execution.runner import RunResult
    from pipeflow.repo import Repo
    from pipeflow.storage.remote import Remote


def _entry_json(entry: FileEntry, kind: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"path": entry.path, "hash": entry.hash, "size": entry.size}
    if entry.isdir:
        body["isdir"] = True
        body["nfiles"] = entry.nfiles
    if kind is not None:
        body["kind"] = kind
        if not entry.cache:
            body["cache"] = False
    return body


def components_json(comps: Components) -> dict[str, Any]:
    """A fingerprint's components as a record keeps them."""
    return {
        "cmd": list(comps.cmd),
        "deps": [_entry_json(d) for d in comps.deps],
        "params": {f: dict(v) for f, v in comps.params.items()},
        "code": [_entry_json(c) for c in comps.code],
        "env": dict(comps.env),
        "outs": list(comps.outs),
    }


def run_cache_eligible(stage: Stage) -> bool:
    """DESIGN: stages with a persist or uncached output, always_changed, or no deps
    never use the run cache (their outputs are not a function of their inputs)."""
    return bool(stage.deps) and not stage.always_changed and all(
        o.cache and not o.persist for o in stage.outs
    )


@dataclass
class History:
    """The run-record side of a ``repro``: one per invocation."""

    repo: Repo
    remote: Remote | None = None
    """With ``repro --pull``: where run-cache hits missing locally are fetched from."""
    env_probe: EnvironmentProbe | None = None
    """The planner's: interpreter facts it looked up are not asked for again (each
    question can start an interpreter)."""
    _provenance: Provenance | None = None
    untrusted: list[tuple[str, Trust]] = dataclasses.field(default_factory=list)
    """(stage, verdict) of run-cache entries not used because their record is not
    trusted (pipeflow.lineage.trust): those stages ran instead."""
    _trust: TrustPolicy | None = None

    @property
    def provenance(self) -> Provenance:
        if self._provenance is None:
            self._provenance = read_provenance(self.repo.root)
        return self._provenance

    def _base(self, kind: str, stage: Stage, comps: Components) -> dict[str, Any]:
        prov = self.provenance
        return {
            "kind": kind,
            "stage": stage.name,
            "fingerprint": comps.digest(),
            "components": components_json(comps),
            "command": list(stage.cmd),
            "user": prov.user,
            "host": prov.host,
            "pipeflow_version": __version__,
            "git": {"commit": prov.commit, "dirty_paths": list(prov.dirty_paths)},
        }

    def _append(self, body: dict[str, Any], stage: Stage, eligible: bool) -> RunRecord:
        record = self.repo.records.append(body)
        if eligible and body.get("exit_status") == 0 and body["kind"] == "run":
            self.repo.records.point(body["fingerprint"], record)
        self.repo.index.add(record)
        return record

    def record_run(
        self,
        stage: Stage,
        comps: Components,
        result: RunResult,
        entry: StageLock | None,
        error: str | None = None,
    ) -> RunRecord:
        """A record of one execution: successful with its lock ``entry``, or failed
        with ``error`` (a command that exited 0 but whose outputs could not be
        committed counts as failed, exit status 1)."""
        body = self._base("run", stage, comps)
        failed_status = result.returncode if result.returncode != 0 else 1
        body.update(
            exit_status=0 if entry is not None else failed_status,
            started=iso(result.started),
            ended=iso(result.ended),
            duration=round(result.duration, 6),
            env_exact=self.exact_env(stage),
        )
        if entry is not None:
            body["outputs"] = outputs_json(entry)
            body["metrics"] = {m.path: dict(m.values) for m in entry.metrics}
        if error:
            body["error"] = error
        return self._append(body, stage, run_cache_eligible(stage))

    def record_restore(
        self, stage: Stage, comps: Components, source: RunRecord, when: float
    ) -> RunRecord:
        """A record of outputs restored from the run cache instead of running."""
        body = self._base("restore", stage, comps)
        body.update(
            exit_status=0, started=iso(when), ended=iso(when), duration=0.0,
            source_run=source.id, outputs=source.outputs,
            metrics=dict(source.body.get("metrics") or {}),
        )
        return self._append(body, stage, False)

    def exact_env(self, stage: Stage) -> dict[str, Any]:
        """The environment with exact versions (records always keep them)."""
        if self.env_probe is None:
            from pipeflow.environment import EnvironmentProbe

            state = self.repo.state
            self.env_probe = EnvironmentProbe(state, root=self.repo.root)
        return self.env_probe.component(stage.cmd, python_exact=True, variables=stage.env.vars,
                               cwd=self.repo.root / stage.wdir, packages=stage.env.packages)

    def cached_run(self, stage: Stage, comps: Components) -> RunRecord | None:
        """An earlier successful run with the same fingerprint whose outputs are all
        still in the cache, or None."""
        if not run_cache_eligible(stage):
            return None
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
        outs = record.outputs
        if {o.get("path") for o in outs} != declared:
            return None
        from pipeflow.hashing import HashInfo

        infos = [HashInfo(str(o.get("hash")), int(o.get("size") or 0), bool(o.get("isdir")),
                          o.get("nfiles")) for o in outs]
        if any(self.repo.store.missing(i) for i in infos) and self.remote is not None:
            from pipeflow.ops.transfer import download_objects

            # manifests first, then the files they list
            download_objects(self.repo, self.remote, [i.hash for i in infos])
            download_objects(self.repo, self.remote,
                             [oid for i in infos for oid in self.repo.store.missing(i)])
        if any(self.repo.store.missing(i) for i in infos):
            return None
        return record


def outputs_json(entry: StageLock) -> list[dict[str, Any]]:
    return [_entry_json(o, "out") for o in entry.outs] + [
        _entry_json(m, "metric") for m in entry.metrics
    ]


def entry_from_record(comps: Components, record: RunRecord) -> StageLock:
    """The lock entry for outputs restored from ``record`` (which produced them)."""
    outs: list[FileEntry] = []
    metrics: list[MetricEntry] = []
    values = record.body.get("metrics") or {}
    for out in record.outputs:
        entry = FileEntry(path=str(out["path"]), hash=str(out["hash"]),
                          size=int(out.get("size") or 0), isdir=bool(out.get("isdir")),
                          nfiles=out.get("nfiles"), cache=bool(out.get("cache", True)))
        if out.get("kind") == "metric":
            metrics.append(MetricEntry(**dataclasses.asdict(entry),
                                       values=dict(values.get(entry.path) or {})))
        else:
            outs.append(entry)
    source = str(record.body.get("source_run") or record.id)
    return StageLock(cmd=comps.cmd, fingerprint=comps.digest(), deps=comps.deps,
                     params=comps.params, code=comps.code, env=comps.env,
                     outs=tuple(outs), metrics=tuple(metrics), run=source)
