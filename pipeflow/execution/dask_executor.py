"""The Dask engine: each ready stage runs as one task on a Dask distributed cluster.

Only what is Dask's lives here: connect to the scheduler, submit a task's JSON to
``dask_worker.run`` (retried once by Dask if it raises, rerun if its worker dies),
wait, cancel (which also stops a running task's processes), close. Staging inputs,
checking the answer and placing the outputs are every engine's (``dispatch``); the
worker side is ``worker``. See docs/dask.md.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from typing import TYPE_CHECKING, Any

from pipeflow.credentials import redact
from pipeflow.errors import PipeflowError, TaskFailed, UsageError
from pipeflow.execution.dispatch import Dispatcher, shareable_options
from pipeflow.execution.runner import LineSink, RunResult
from pipeflow.execution.task import Answer, Task

if TYPE_CHECKING:
    from collections.abc import Callable

    from pipeflow.execution.executor import ExecutorContext
    from pipeflow.planning.fingerprint import Components
    from pipeflow.project.project import Project
    from pipeflow.spec.model import Stage
    from pipeflow.storage.remote import Remote

__all__ = ["DaskExecutor", "connect", "create", "shareable_options"]

SCHEDULER_VAR = "PIPEFLOW_DASK_SCHEDULER"
CONNECT_TIMEOUT = "10s"


def _needs_distributed() -> UsageError:
    return UsageError("--executor dask needs the 'distributed' package",
                      hint="`pip install distributed` (Dask's scheduler client)")


def setup(open_remote: Callable[[str | None], Remote], remote_name: str | None,
          address: str | None) -> tuple[Remote, str]:
    """The remote and scheduler address ``--executor dask`` would use; UsageError
    (exit 2) when ``distributed``, a remote or an address is missing."""
    if importlib.util.find_spec("distributed") is None:
        raise _needs_distributed()
    try:
        remote = open_remote(remote_name)
    except UsageError as exc:
        raise UsageError(f"--executor dask needs a remote that workers can reach: "
                         f"{exc.message}", hint=exc.hint) from exc
    address = address or os.environ.get(SCHEDULER_VAR) or None
    if not address:
        raise UsageError("--executor dask needs the address of a Dask scheduler",
                         hint=f"pass --scheduler tcp://HOST:PORT or set {SCHEDULER_VAR}")
    return remote, address



def connect(address: str) -> Any:
    """A ``distributed.Client`` for ``address``; UsageError when it cannot be reached."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise _needs_distributed() from exc
    try:
        return Client(address, timeout=CONNECT_TIMEOUT,  # type: ignore[no-untyped-call]
                      set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {redact(address)}: "
                         f"{redact(str(exc))}",
                         hint="start one (`dask scheduler`, then `dask worker ADDRESS` on "
                              "each machine) or pass the right --scheduler") from exc


class DaskExecutor:
    """Runs stages on a Dask cluster, exchanging bytes through ``remote``; thread-safe."""

    def __init__(self, repo: Project, remote: Remote, address: str, *,
                 sink: LineSink | None = None, token: str = "", client: Any = None) -> None:
        """Connects to the scheduler at ``address`` (or uses ``client``)."""
        remote.check_reachable()
        self.client = client if client is not None else connect(address)
        self._own_client = client is None
        self.dispatcher = Dispatcher(repo, remote, sink=sink, token=token)

    def run(self, stage: Stage, comps: Components) -> RunResult:
        """Run ``stage`` on the cluster; its outputs end up in the workspace."""
        return self.dispatcher.run(stage, comps, self._send)

    def task(self, stage: Stage, comps: Components) -> Task:
        """The task ``run`` would submit for ``stage`` (its inputs uploaded)."""
        return self.dispatcher.task(stage, comps)

    def _send(self, task: Task) -> Answer:
        from pipeflow.execution import dask_worker

        key = f"pipeflow-{task.stage}-{uuid.uuid4().hex[:8]}"
        future = self.client.submit(dask_worker.run, task.to_json(), key, key=key,
                                    pure=False, retries=1)
        while not future.done():
            if self.dispatcher.stop.wait(0.2):
                future.cancel()
                dask_worker.stop_event(key, self.client).set()  # a running task stops
                raise TaskFailed("interrupted while it ran on the cluster; nothing of "
                                    "it was committed")
        try:
            answer = str(future.result())
        except Exception as exc:  # whatever the task or Dask raised: the stage fails
            raise TaskFailed(_task_failure(exc)) from exc
        finally:
            future.release()
        return Answer.from_json(answer)

    def cancel(self) -> None:
        """Stop waiting for tasks (the run was cancelled or interrupted): waiting stages
        fail at once and nothing they return is committed."""
        self.dispatcher.cancel()

    def close(self) -> None:
        """Disconnect from the scheduler (if this executor connected)."""
        if self._own_client:
            self._own_client = False
            self.client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _task_failure(exc: BaseException) -> str:
    if type(exc).__name__ == "KilledWorker":
        return ("its worker died (killed, or out of memory) on every attempt; nothing "
                "of it was committed")
    if isinstance(exc, PipeflowError):
        return redact(exc.message)
    return f"the task failed on the cluster: {type(exc).__name__}: {redact(str(exc))}"


def create(context: ExecutorContext) -> DaskExecutor:
    """``--executor dask``: the scheduler from ``options["scheduler"]`` (or
    PIPEFLOW_DASK_SCHEDULER), the remote named on the command line (or the default)."""
    if context.open_remote is None:
        raise TypeError("the dask executor needs ExecutorContext.open_remote")
    remote, address = setup(context.open_remote, context.remote,
                            context.options.get("scheduler"))
    return DaskExecutor(context.repo, remote, address, sink=context.sink, token=context.token)
