"""Running one stage's command: the only place pipeflow starts stage processes.

Each command runs under ``/bin/sh -c`` in the stage's ``wdir``; a list runs in
order and stops at the first failure. Output goes to ``.pipeflow/logs/<stage>.log``
and, line by line, to an optional callback (the CLI shows it live).
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pipeflow.execution.cancel import CancelToken
from pipeflow.files import workspace_fs
from pipeflow.spec.model import Stage

LineSink = Callable[[str, str], None]
"""Called with (stage name, one line of its output without the newline)."""

TAIL_LINES = 20


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    # the command's own process group: its children go too, and no other run's
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)


@dataclass(frozen=True)
class RunResult:
    """How a stage's command ended."""

    stage: str
    returncode: int
    started: float
    ended: float
    log_path: Path
    tail: tuple[str, ...]
    failed_cmd: str | None = None
    error: str | None = None
    """Why the stage failed other than by its exit status (e.g. an executor's check)."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.error is None

    @property
    def duration(self) -> float:
        return self.ended - self.started


RUN_VAR = "PIPEFLOW_RUN"
"""Set in every stage process to its run's token, so a later command can find
processes a killed ``repro`` left behind (they would otherwise go on writing
outputs under the next run)."""


def kill_leftovers(token: str) -> int:
    """SIGKILL every process carrying ``PIPEFLOW_RUN=token``; returns how many (Linux)."""
    marker = f"{RUN_VAR}={token}".encode()
    return _kill_where(lambda pid, env: marker in env)


def kill_below(folder: Path) -> int:
    """SIGKILL every process working below ``folder``: its current folder (removed or
    not) or the ``PWD`` it was started with lies there; returns how many (Linux). For
    the stage processes of a killed run whose token went with the folder it ran in."""
    prefix = f"{folder}{os.sep}"

    def below(pid: int, env: list[bytes]) -> bool:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/cwd").startswith(prefix):
                return True
        return any(v.startswith(b"PWD=") and os.fsdecode(v[4:] + b"/").startswith(prefix)
                   for v in env)

    return _kill_where(below)


def _kill_where(chosen: Callable[[int, list[bytes]], bool]) -> int:
    killed = 0
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return 0
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        if chosen(pid, env):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


def log_name(stage: str) -> str:
    """A file name for a stage's log (template names contain ``@`` and may contain ``/``)."""
    return stage.replace("/", "_") + ".log"


def prepare_outputs(root: Path, stage: Stage) -> None:
    """Remove declared outputs (a persistent one becomes a private copy) and make parents.

    No command ever writes into a cached object: a hardlinked or read-only file
    left in place could be modified through its link. A dead writer's temporary files
    beside the outputs go too (one listing per folder the stage writes into). Raises
    OutsideProjectError, before removing anything, when an output's folder is a
    symlink leading out of the project.
    """
    from pipeflow.storage.leftovers import in_project, sweep

    parents = {p.parent for p in in_project(root, [out.path for out in stage.outs])}
    for out in stage.outs:
        workspace_fs.check_parents(root, out.path, made_by_stage=True)
    for out in stage.outs:
        path = root / out.path
        if out.persist:
            _make_private(path)
        elif path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
    sweep(parents)


def _make_private(path: Path) -> None:
    # is_file() follows a symlink: the private copy then replaces the link itself, so
    # the command cannot write through it into whatever it points to.
    if path.is_file():
        _private_copy(path)
    elif path.is_dir():
        for folder, _dirs, files in os.walk(path):
            for name in files:
                _private_copy(Path(folder) / name)


def _private_copy(path: Path) -> None:
    tmp = path.with_name(f".{path.name}.pipeflow-private")
    shutil.copyfile(path, tmp)
    shutil.copymode(path, tmp)
    os.chmod(tmp, os.stat(tmp).st_mode | 0o200)
    os.replace(tmp, path)


def run_stage(
    root: Path, stage: Stage, log_dir: Path, sink: LineSink | None = None, token: str = "",
    cancel: CancelToken | None = None,
) -> RunResult:
    """Run every command of ``stage``; never raises for a failing command. ``cancel``
    stops this stage's processes (SIGTERM) and the commands not yet started."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / log_name(stage.name)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    cwd = root / stage.wdir
    env = dict(os.environ, PIPEFLOW_STAGE=stage.name)
    if token:
        env[RUN_VAR] = token
    started = time.time()
    code = 0
    failed: str | None = None
    cancel = cancel or CancelToken()
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        for cmd in stage.cmd:
            code = -signal.SIGTERM if cancel.cancelled else _run_one(
                cmd, cwd, env, log, tail, stage.name, sink, cancel)
            if code != 0:
                failed = cmd
                break
    return RunResult(stage.name, code, started, time.time(), log_path, tuple(tail), failed)


def _run_one(
    cmd: str,
    cwd: Path,
    env: dict[str, str],
    log: TextIO,
    tail: collections.deque[str],
    name: str,
    sink: LineSink | None,
    cancel: CancelToken,
) -> int:
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", cmd], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, process_group=0,
        )
    except OSError as exc:
        line = f"cannot start /bin/sh in {cwd}: {exc}"
        tail.append(line)
        log.write(line + "\n")
        return 127
    assert proc.stdout is not None
    forget = cancel.on_cancel(lambda: _terminate(proc))
    try:
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            log.write(line + "\n")
            tail.append(line)
            if sink is not None:
                sink(name, line)
    finally:
        proc.stdout.close()
        code = proc.wait()
        forget()
    return code

