"""The local executor: each stage runs as processes on this machine (``--executor local``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeflow.execution.cancel import CancelToken
from pipeflow.execution.runner import LineSink, RunResult, run_stage

if TYPE_CHECKING:
    from types import TracebackType

    from pipeflow.execution.executor import ExecutorContext
    from pipeflow.planning.fingerprint import Components
    from pipeflow.spec.model import Stage


class LocalExecutor:
    """Runs stages with :func:`run_stage` in the project. Thread-safe: it holds no
    per-stage state, and each stage's processes answer to the run's cancel token."""

    def __init__(self, root: Path, log_dir: Path, *, sink: LineSink | None = None,
                 token: str = "", cancel: CancelToken | None = None) -> None:
        self.root = root
        self.log_dir = log_dir
        self.sink = sink
        self.token = token
        # the run's token when given: cancelling the run stops these processes even
        # before ``cancel`` below is called, as it always has
        self._cancel = cancel or CancelToken()

    def run(self, stage: Stage, components: Components) -> RunResult:
        """Run ``stage``'s commands in the project; never raises for a failing command."""
        return run_stage(self.root, stage, self.log_dir, self.sink, self.token, self._cancel)

    def cancel(self) -> None:
        """SIGTERM the stage processes running now; commands not yet started do not start."""
        self._cancel.cancel()

    def close(self) -> None:
        """Nothing to release: every stage process was waited for by ``run``."""

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def create(context: ExecutorContext) -> LocalExecutor:
    """The ``local`` engine; it takes no options (the registry's callers check that)."""
    repo = context.repo
    return LocalExecutor(repo.root, repo.logs_dir, sink=context.sink, token=context.token,
                         cancel=context.cancel)
