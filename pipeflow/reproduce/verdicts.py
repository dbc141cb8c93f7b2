"""Judging each stage of a reproduction once it has run: its reproduced run (the
workspace's own record) against the recorded one — inputs first (were they the
recorded ones?), then outputs (:mod:`.compare`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pipeflow.lineage.reproductions import OutputDiff, StageVerdict, Verdict
from pipeflow.records.records import OutputKind, RecordKind, RunRecord
from pipeflow.reproduce import envdiff
from pipeflow.reproduce.compare import compare_output
from pipeflow.reproduce.plan import ReproPlan, StagePlan, dirty_reason
from pipeflow.reproduce.precheck import differences
from pipeflow.spec.normalize import DEFAULT_TOLERANCE

if TYPE_CHECKING:
    from pipeflow.execution.scheduler import Outcome
    from pipeflow.project.project import Project
    from pipeflow.spec.model import Stage

@dataclass(frozen=True)
class Judge:
    """What judging needs: the project (its cache holds the recorded outputs), the
    workspace's project (its records are the reproduced runs), the run's outcome and
    the stages as declared."""

    home: Project
    scratch: Project
    outcome: Outcome
    stages: Mapping[str, Stage]

    def reproduced(self) -> dict[str, RunRecord]:
        """Stage -> the workspace's latest run record of it."""
        found: dict[str, RunRecord] = {}
        for _chain, _seq, _rid, path in self.scratch.records.iter_all():
            record = self.scratch.records.read_path(path)
            if record.kind is RecordKind.RUN:
                found[record.stage] = record
        return found

    def judge(self, plan: ReproPlan) -> list[StageVerdict]:
        made = self.reproduced()
        verdicts: dict[str, StageVerdict] = {}
        for step in plan.stages:
            verdicts[step.stage] = self._one(plan, step, made.get(step.stage), verdicts)
        return [verdicts[s.stage] for s in plan.stages]

    def _one(self, plan: ReproPlan, step: StagePlan, made: RunRecord | None,
             before: Mapping[str, StageVerdict]) -> StageVerdict:
        base = StageVerdict(step.stage, Verdict.CANNOT, run=step.run.id,
                            fingerprint=step.run.fingerprint)
        if step.frozen and step.blocked is None:
            return _with(base, verdict=Verdict.FROZEN,
                         reason="frozen at the commit: its recorded outputs were restored "
                                "from the cache, not rebuilt")
        if step.blocked is not None or step.record is None:
            return _with(base, reason=step.blocked or "its run record cannot be read",
                         blocked_by=step.blocked_by)
        if made is None:
            culprit = _culprit(plan, step, before)
            return _with(base, reason=self._not_run(culprit, before),
                         blocked_by=culprit)
        if not made.ok:
            failure = next((f for f in self.outcome.failed if f.stage == step.stage), None)
            return _with(base, verdict=Verdict.FAILED, exit_status=made.body.exit_status,
                         reason=made.body.error or (failure.message if failure else None),
                         log_tail=failure.log_tail if failure else None)
        mismatch, notes = _inputs(plan, step.record, made, before)
        # inputs an upstream stage made within its tolerance are noise too: judged by
        # that stage's tolerance (the largest, when several)
        noisy = [self._tolerance(v.stage) or DEFAULT_TOLERANCE for v in before.values()
                 if v.stage in _upstream(plan, step)
                 and v.verdict is Verdict.WITHIN_TOLERANCE]
        outputs = self._outputs(step.stage, step.record, made, max(noisy, default=None))
        metrics = {o.path for o in step.record.outputs if o.kind is OutputKind.METRIC}
        verdict = self._verdict(step.stage, outputs, metrics, bool(noisy))
        if mismatch:
            why = "it ran with other inputs than recorded: " + "; ".join(mismatch)
            if step.dirty:
                why = f"{dirty_reason(step.dirty, plan.commit)} ({'; '.join(mismatch)})"
            return _with(base, outputs=outputs, reason=why)
        env = envdiff.between(step.record.body.environment(), made.body.environment())
        if env:
            notes.append("ran with " + ", ".join(
                f"{e.name} {e.current or 'absent'} (recorded {e.recorded or 'absent'})"
                for e in env))
        return _with(base, verdict=verdict, outputs=outputs,
                     reason="; ".join(notes) or None)

    @staticmethod
    def _not_run(culprit: str | None, before: Mapping[str, StageVerdict]) -> str:
        if culprit is not None:
            return f"not run: upstream stage {culprit} {before[culprit].verdict.words}"
        return "not run (the reproduction stopped before it)"

    def _tolerance(self, stage: str) -> float | None:
        """The tolerance of a stage declared ``deterministic: false`` (None: it is not)."""
        declared = self.stages.get(stage)
        if declared is None or declared.deterministic:
            return None
        # the loader always sets one; a Stage made by hand may not
        return declared.tolerance if declared.tolerance is not None else DEFAULT_TOLERANCE

    def _outputs(self, stage: str, recorded: RunRecord, made: RunRecord,
                 inherited: float | None) -> tuple[OutputDiff, ...]:
        """Each recorded output against the reproduced one; by tolerance for a stage
        declared ``deterministic: false`` or (``inherited``) reading one's outputs."""
        own = self._tolerance(stage)
        tolerance = own if own is not None else inherited
        produced = {o.path: o for o in made.outputs}
        found = tuple(
            compare_output(self.home, out, produced.get(out.path),
                           workspace=self.scratch.root,
                           recorded_metrics=recorded.metrics.get(out.path),
                           tolerance=tolerance)
            for out in recorded.outputs)
        if own is None and inherited is not None:  # say why, truly
            found = tuple(replace(o, note=o.note.replace(
                "the stage is declared deterministic: false",
                "its inputs come from a stage declared deterministic: false"))
                if o.note else o for o in found)
        return found

    def _verdict(self, stage: str, outputs: tuple[OutputDiff, ...],
                 metrics: set[str], noisy: bool) -> Verdict:
        """``within-tolerance`` needs a stage declared ``deterministic: false`` (at the
        commit) or reading what such a stage made (``noisy``), every output written,
        no metrics value beyond the tolerance, and at least one metrics value compared:
        outputs that are all bytes prove nothing."""
        if all(o.same for o in outputs):
            return Verdict.IDENTICAL
        declared = self.stages.get(stage)
        if not noisy and (declared is None or declared.deterministic):
            return Verdict.DIFFERS
        written = all(o.produced is not None for o in outputs)
        within = all(o.same or o.within_tolerance is not False for o in outputs)
        compared = any(o.within_tolerance is True or (o.same and o.path in metrics)
                       for o in outputs)
        return Verdict.WITHIN_TOLERANCE if written and within and compared else Verdict.DIFFERS


def overall(verdicts: list[StageVerdict], maker: str | None = None) -> Verdict:
    """A version's verdict: the worst of its stages' — those not run because an
    upstream one failed or could not be tried are left out (the upstream one says it),
    and so are frozen ones (restored, like source data) unless ``maker``, the stage that
    made the version, is one: restored is not rebuilt. Nothing rebuilt: cannot."""
    if any(v.stage == maker and v.verdict is Verdict.FROZEN for v in verdicts):
        return Verdict.CANNOT
    own = [v.verdict for v in verdicts
           if v.blocked_by is None and v.verdict is not Verdict.FROZEN]
    return Verdict.worst(own or [v.verdict for v in verdicts
                                 if v.verdict is not Verdict.FROZEN])


def _upstream(plan: ReproPlan, step: StagePlan) -> set[str]:
    """The plan's stages ``step`` reads from, directly or not."""
    runs = {s.stage: s.run for s in plan.stages}
    found: set[str] = set()
    todo = [step.run]
    while todo:
        for aid in todo.pop().inputs:
            stage = producer_of(plan, aid.rsplit("@", 1)[0])
            if stage is not None and stage not in found and stage != step.stage:
                found.add(stage)
                if stage in runs:
                    todo.append(runs[stage])
    return found


def _culprit(plan: ReproPlan, step: StagePlan, before: Mapping[str, StageVerdict]
             ) -> str | None:
    """The nearest upstream stage that failed or could not be tried."""
    upstream = _upstream(plan, step)
    bad = [v.stage for v in before.values() if v.stage in upstream
           and v.verdict in (Verdict.FAILED, Verdict.CANNOT)]
    return bad[-1] if bad else None


def _with(base: StageVerdict, **changes: object) -> StageVerdict:
    return replace(base, **changes)  # type: ignore[arg-type]


def _inputs(plan: ReproPlan, recorded: RunRecord, made: RunRecord,
            before: Mapping[str, StageVerdict]) -> tuple[list[str], list[str]]:
    """(inputs that differ from the recorded ones for no reason the reproduction
    explains, notes on those an upstream stage's differing output explains)."""
    old, new = recorded.body.components, made.body.components
    if old is None or new is None:
        return [], []
    notes: list[str] = []
    was = {d.path: d.hash for d in old.deps}
    deps: dict[str, str] = {}
    for dep in new.deps:
        upstream = producer_of(plan, dep.path)
        if was.get(dep.path) != dep.hash and upstream is not None and (
                upstream in before and before[upstream].verdict is not Verdict.IDENTICAL):
            notes.append(f"its input {dep.path} differs: stage {upstream}'s output "
                         f"{before[upstream].verdict.words}")
        else:
            deps[dep.path] = dep.hash
    mismatch = differences(old, new.cmd, {c.path: c.hash for c in new.code}, deps)
    for file in sorted(set(old.params) | set(new.params)):
        keys_a, keys_b = dict(old.params.get(file) or {}), dict(new.params.get(file) or {})
        for key in sorted(set(keys_a) | set(keys_b)):
            if keys_a.get(key) != keys_b.get(key):
                mismatch.append(f"param {file}:{key} {keys_a.get(key)!r} -> "
                                f"{keys_b.get(key)!r}")
    if len(mismatch) > 10:
        mismatch = [*mismatch[:10], f"and {len(mismatch) - 10} more"]
    return mismatch, notes


def producer_of(plan: ReproPlan, path: str) -> str | None:
    """The plan's stage that writes ``path`` (or the folder holding it)."""
    parts = path.split("/")
    for i in range(len(parts), 0, -1):
        stage = plan.produced_by.get("/".join(parts[:i]))
        if stage is not None:
            return stage
    return None
