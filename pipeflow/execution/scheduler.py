"""The ready-set scheduler: runs stages as their upstream finishes, up to ``jobs`` at once.

Deciding (``Planner.evaluate``), committing and journaling happen on the calling
thread; worker threads only wait on stage processes. On a failure no new stage
starts unless ``keep_going``; running stages finish and are committed if they
succeed. Dependents of a failed stage are never started. A cancel (the run's
:class:`CancelToken`, or an exception such as Ctrl-C on the calling thread) stops
this run's stage processes and no other run's.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from pipeflow.errors import StageFailed, StorageError
from pipeflow.execution import journal
from pipeflow.execution.cancel import CancelToken
from pipeflow.execution.commit import commit_outputs, restore_outputs, restore_run_outputs
from pipeflow.execution.executor import Executor
from pipeflow.execution.history import History, entry_from_record
from pipeflow.execution.local import LocalExecutor
from pipeflow.execution.runner import LineSink, RunResult, prepare_outputs
from pipeflow.files.workspace_fs import UnsafeWriteError
from pipeflow.planning.fingerprint import Change, ChangeKind, Components
from pipeflow.planning.plan import Planner, StageState, StageWord
from pipeflow.spec.model import Stage
from pipeflow.storage.durability import SyncAhead

EventKind = Literal["skipped", "restored", "started", "finished", "failed", "blocked"]


@dataclass(frozen=True)
class StageEvent:
    """Something that happened to one stage during ``repro``."""

    kind: EventKind
    stage: str
    state: StageState | None = None
    detail: str = ""
    result: RunResult | None = None
    error: StageFailed | None = None


EventSink = Callable[[StageEvent], None]


@dataclass
class Outcome:
    """What ``repro`` did to each stage it looked at."""

    ran: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[StageFailed] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    cancelled: bool = False
    """The run was cancelled: stages that finished are kept, the others did not run."""

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled


class Scheduler:
    """Runs the chosen stages of one plan."""

    def __init__(
        self,
        planner: Planner,
        names: list[str],
        *,
        jobs: int = 1,
        keep_going: bool = False,
        force: bool = False,
        on_event: EventSink | None = None,
        sink: LineSink | None = None,
        token: str = "",
        history: History | None = None,
        executor: Executor | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        self.planner = planner
        self.repo = planner.repo
        self.names = names
        self.jobs = max(1, jobs)
        self.keep_going = keep_going
        self.force = force
        self.emit = on_event or (lambda _e: None)
        self.sink = sink
        self.token = token
        self.history = history
        self.cancel = cancel or CancelToken()
        # the caller owns (and closes) the executor it passes; the default one holds nothing
        self.executor: Executor = executor or LocalExecutor(
            self.repo.root, self.repo.logs_dir, sink=sink, token=token, cancel=self.cancel)
        self.states: dict[str, StageState] = {}
        self.outcome = Outcome()
        self._done: dict[str, str] = {}
        self._sync_ahead = SyncAhead()
        self._finished: queue.SimpleQueue[Future[RunResult]] = queue.SimpleQueue()
        """Futures of stages that ended, put there by the worker threads: the main thread
        waits on this queue, never in ``concurrent.futures.wait``, which holds every
        future's lock while it scans them (a Ctrl-C there left locks taken and the
        workers blocked for good as they finished)."""

    def _set_running(self, names: list[str]) -> None:
        self.repo.state.put("running", json.dumps(sorted(names)))

    def run(self) -> Outcome:
        selected = set(self.names)
        waiting = list(self.names)
        running: dict[Future[RunResult], tuple[str, Components]] = {}
        graph = self.planner.graph
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            try:
                while waiting or running:
                    stop = ((bool(self.outcome.failed) and not self.keep_going)
                            or self.cancel.cancelled)
                    for name in list(waiting):
                        if stop or len(running) >= self.jobs:
                            break
                        ups = [u for u in graph.upstream[name] if u in selected]
                        if any(u not in self._done for u in ups):
                            continue
                        waiting.remove(name)
                        bad = [u for u in ups if self._done[u] in ("failed", "blocked")]
                        if bad:
                            self._finish(name, "blocked")
                            self.emit(StageEvent("blocked", name, detail=bad[0]))
                            continue
                        self._start(name, pool, running)
                    if not running:
                        break
                    self._set_running([n for n, _ in running.values()])
                    fut = self._next_finished()
                    name, comps = running.pop(fut)
                    self._complete(name, comps, fut.result())
            except BaseException:
                self.cancel.cancel()  # this run's stage processes, no other run's
                raise
            finally:
                self._set_running([])
        stopped = [n for n, how in self._done.items() if how == "cancelled"]
        self.outcome.not_started = stopped + [n for n in waiting if n not in self._done]
        self.outcome.cancelled = self.cancel.cancelled
        return self.outcome

    def _next_finished(self) -> Future[RunResult]:
        while True:
            try:
                return self._finished.get(timeout=0.5)
            except queue.Empty:
                continue

    def _finish(self, name: str, how: str) -> None:
        self._done[name] = how
        if how == "blocked":
            self.outcome.blocked.append(name)

    def _start(
        self, name: str, pool: ThreadPoolExecutor,
        running: dict[Future[RunResult], tuple[str, Components]],
    ) -> None:
        stage = self.planner.graph.pipeline.stages[name]
        state = self.planner.evaluate(name, self.states, force=self.force)
        if state.up_to_date or state.word is StageWord.FROZEN:
            self.states[name] = state
            self._finish(name, "skipped")
            self.outcome.skipped.append(name)
            self.emit(StageEvent("skipped", name, state))
            return
        entry = self.planner.lock.stages.get(name)
        if state.restorable and entry is not None and (not self.force or stage.frozen):
            try:
                restored = restore_outputs(self.repo, stage, entry)
            # a corrupt object: set aside, so recompute (an output whose folder leads
            # out of the project: preparing the stage to run reports it)
            except (StorageError, UnsafeWriteError) as exc:
                why = Change(ChangeKind.OUTPUT, "",
                             f"cannot restore from the cache ({exc.message})")
                word = StageWord.FROZEN if stage.frozen else StageWord.CHANGED
                state = StageState(name, word, (why,), state.components)
                if stage.frozen:
                    self._finish(name, "skipped")
                    self.outcome.skipped.append(name)
                    self.emit(StageEvent("skipped", name, state))
                    return
            else:
                self.states[name] = StageState(name, StageWord.UP_TO_DATE,
                                               components=state.components)
                self._finish(name, "restored")
                self.outcome.restored.append(name)
                self.emit(StageEvent("restored", name, state, detail=", ".join(restored)))
                return
        assert state.components is not None
        if self._from_run_cache(stage, state):
            return
        try:
            prepare_outputs(self.repo.root, stage)
        except (OSError, UnsafeWriteError) as exc:
            if isinstance(exc, UnsafeWriteError):
                error = StageFailed(name, f"did not run: output {exc.message}")
            else:
                where = exc.filename or "an output"
                error = StageFailed(name, f"cannot clear its output {where} before running: "
                                          f"{exc.strerror or exc}")
            self._finish(name, "failed")
            self.outcome.failed.append(error)
            self.emit(StageEvent("failed", name, state, error=error))
            return
        for out in stage.outs:
            self.repo.hasher.forget(out.path)
        self.emit(StageEvent("started", name, state))
        fut = pool.submit(self.executor.run, stage, state.components)
        running[fut] = (name, state.components)
        fut.add_done_callback(self._finished.put)

    def _from_run_cache(self, stage: Stage, state: StageState) -> bool:
        """Restore the outputs of an earlier run with the same fingerprint, if any."""
        comps = state.components
        if self.history is None or self.force or comps is None:
            return False
        source = self.history.cached_run(stage, comps)
        if source is None:
            return False
        try:
            restore_run_outputs(self.repo, stage, source.outputs)
        except (StorageError, UnsafeWriteError):
            # a corrupt object was set aside (or an output's folder leads out of the
            # project, which preparing the stage reports): run the stage instead
            return False
        self.history.record_restore(stage, comps, source, time.time())
        entry = entry_from_record(comps, source)
        journal.append(self.repo.state, stage.name, entry)
        name = stage.name
        self.states[name] = StageState(name, StageWord.UP_TO_DATE, components=comps)
        self._finish(name, "restored")
        self.outcome.restored.append(name)
        when = (source.body.ended or "")[:19].replace("T", " ")
        detail = f"from the run cache (run {source.id[:12]} of {when})"
        self.emit(StageEvent("restored", name, state, detail=detail))
        return True

    def _complete(self, name: str, comps: Components, result: RunResult) -> None:
        stage = self.planner.graph.pipeline.stages[name]
        if self.cancel.cancelled and not result.ok:
            self._finish(name, "cancelled")  # stopped on purpose: not a failed run
            return
        error: StageFailed | None = None
        if result.error is not None:
            error = StageFailed(name, result.error, log_tail="\n".join(result.tail))
        elif not result.ok:
            what = f"'{result.failed_cmd}' exited with status {result.returncode}"
            if result.returncode < 0:
                what = f"'{result.failed_cmd}' was killed by signal {-result.returncode}"
            error = StageFailed(name, what, log_tail="\n".join(result.tail))
        else:
            try:
                entry = commit_outputs(self.repo, stage, comps)
            except StageFailed as exc:
                error = StageFailed(name, exc.message.split(": ", 1)[-1],
                                    log_tail="\n".join(result.tail))
            except StorageError as exc:  # e.g. a dangling link inside an output folder
                error = StageFailed(name, f"its outputs cannot be stored: {exc.message}",
                                    log_tail="\n".join(result.tail))
            else:
                if self.history is not None:
                    record = self.history.record_run(stage, comps, result, entry)
                    entry = dataclasses.replace(entry, run=record.id)
                journal.append(self.repo.state, name, entry)
                store = self.repo.store
                self._sync_ahead.offer(store.written, store.written_count(), store.bytes_written)
                self.states[name] = StageState(name, StageWord.UP_TO_DATE, components=comps)
                self._finish(name, "ran")
                self.outcome.ran.append(name)
                self.emit(StageEvent("finished", name, result=result))
                return
        if self.history is not None:
            self.history.record_run(stage, comps, result, None, error.message)
        self._finish(name, "failed")
        self.outcome.failed.append(error)
        self.emit(StageEvent("failed", name, result=result, error=error))
