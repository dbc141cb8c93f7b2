"""The worker side of a remote task: one stage in a private scratch tree, bytes via
the remote. Generic: any engine hands :func:`run_task` a :class:`Task` (or
:func:`run_json` its JSON, or ``python -m pipeflow.execution.worker`` on stdin) and
carries the :class:`Answer` back.

The worker never reads the project. It builds exactly the task's tree in a fresh
folder under its own temporary directory (each object verified on the way in:
``staging``), runs the stage's commands there as the local runner does, checks the
declared outputs as ``commit`` does (``outputcheck``), hashes them with the same rules
(``Manifest`` for folders), uploads their objects and answers. It writes no run
record and no lock: only the client commits.

Expected failures (a missing or corrupt object, a declared output not written, an
environment that differs from the client's) come back as the answer's ``error``, so
an engine does not retry them; a worker that dies mid-task may be rerun by its
engine elsewhere, in a new scratch folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import sys
import time
from pathlib import Path
from typing import Any

from pipeflow.credentials import redact
from pipeflow.errors import PipeflowError
from pipeflow.execution.cancel import CancelToken
from pipeflow.execution.outputcheck import check_output
from pipeflow.execution.staging import check_rel, make_scratch, materialize
from pipeflow.execution.task import Answer, Task, TaskOutput, plain
from pipeflow.storage.exchange import upload_missing
from pipeflow.storage.remote import Remote

LOG_LIMIT = 1 << 20
"""Bytes of a stage's log sent back to the client (its end)."""


def _outputs(task: Task, work: Path, objs: Path) -> tuple[list[TaskOutput], dict[str, Path]]:
    """The declared outputs, checked and hashed, and the files of their objects."""
    from pipeflow.content.hasher import Hasher
    from pipeflow.content.ignore import IgnoreRules

    hasher = Hasher(work, None, IgnoreRules(patterns=task.ignore))
    found: list[TaskOutput] = []
    sources: dict[str, Path] = {}
    for rel in task.outs:
        path = work / rel
        if check_output(work, rel, hasher) is not None:
            manifest = hasher.manifest(rel)
            for entry in manifest.entries:
                sources.setdefault(entry.hash, path / entry.path)
            mpath = objs / f"manifest-{manifest.hash}"
            mpath.write_bytes(manifest.to_bytes())
            sources[manifest.hash] = mpath
            info = manifest.info()
            found.append(TaskOutput(rel, info.hash, info.size, "dir", info.nfiles))
        else:
            info = hasher.hash_path(rel)
            sources.setdefault(info.hash, path)
            executable = bool(os.stat(path).st_mode & stat.S_IXUSR)
            found.append(TaskOutput(rel, info.hash, info.size, "file", None, executable))
    return found, sources


def worker_env(task: Task, cwd: Path) -> dict[str, Any]:
    """This worker's environment component for the task's stage, asked about exactly
    what the client's component names (its variables, its packages)."""
    from pipeflow.code.environment import EnvironmentProbe

    packages = tuple(task.env.get("packages") or ())
    return EnvironmentProbe().component(task.cmd, python_exact=task.python_exact,
                                        variables=task.env_vars, cwd=cwd, packages=packages)


def _log_text(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - LOG_LIMIT))
            data = fh.read()
    except FileNotFoundError:
        return ""
    return data.decode("utf-8", "replace")


def _run_in(scratch: Path, task: Task, started: float, cancel: CancelToken | None) -> Answer:
    from pipeflow.execution.runner import run_stage
    from pipeflow.spec.model import Stage

    work, objs = scratch / "work", scratch / "objects"
    work.mkdir()
    objs.mkdir()
    remote = Remote(task.remote_name, task.remote_url, dict(task.remote_options))
    materialize(remote, task.inputs, work, objs)
    cwd = work / task.wdir
    cwd.mkdir(parents=True, exist_ok=True)
    for rel in task.outs:
        check_rel(rel)
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
    env = plain(worker_env(task, cwd))
    if env != plain(dict(task.env)):
        # the client names the differences; running would be wasted
        return Answer(started, time.time(), env=env)
    stage = Stage(name=task.stage, cmd=task.cmd, wdir=task.wdir)
    result = run_stage(work, stage, scratch / "logs", None, task.token, cancel)
    outputs: list[TaskOutput] = []
    if result.returncode == 0:
        outputs, sources = _outputs(task, work, objs)
        upload_missing(remote, sources)
    return Answer(result.started, result.ended, result.returncode, result.tail,
                  _log_text(result.log_path), tuple(outputs), env, result.failed_cmd)


def run_task(task: Task, cancel: CancelToken | None = None) -> Answer:
    """Run ``task`` on this machine; see the module docstring. Never raises for an
    expected failure: it comes back as ``error``. ``cancel`` stops the stage's
    processes (SIGTERM) as it does a local run's."""
    started = time.time()
    scratch: Path | None = None
    try:
        scratch = make_scratch(task.client_root)
        return _run_in(scratch, task, started, cancel)
    except (PipeflowError, OSError) as exc:
        message = exc.message if isinstance(exc, PipeflowError) else str(exc)
        return Answer(started, time.time(), error=redact(message))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def run_json(task_json: str) -> str:
    """:func:`run_task` on a task's JSON, answering JSON (what an engine ships)."""
    return run_task(Task.from_json(task_json)).to_json()


def main() -> int:
    """``python -m pipeflow.execution.worker``: one Task JSON on stdin, its Answer JSON
    on stdout; exit status 2 for a task that cannot be read. SIGTERM stops the
    stage's processes, and the answer says how they ended."""
    cancel = CancelToken()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: cancel.cancel())
    try:
        task = Task.from_json(sys.stdin.buffer.read())
    except PipeflowError as exc:
        sys.stderr.write(f"pipeflow worker: {exc}\n")
        return 2
    sys.stdout.write(run_task(task, cancel).to_json() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
