"""The client side of running a stage elsewhere, shared by every remote engine.

For each stage a :class:`Dispatcher` is asked to run, it

1. stores every input the stage needs in the local cache (deps, code, the params
   files it reads, persistent outputs), uploads the objects the remote lacks and
   describes that tree in a :class:`Task`;
2. hands the task to the engine's ``send`` (ship it, wait, return the
   :class:`Answer`: the only part an engine writes);
3. checks the answer: the worker's environment component must equal the client's
   (else the stage fails, naming each difference), the command must have succeeded
   and written every declared output;
4. places the outputs in the workspace (``placing``), so the scheduler commits them
   as it commits a local run (only this process writes records and the lock).

Credentials never travel: storage options whose names look like secrets are not put
in a task (workers use their own: environment, fsspec configuration), and every URL
in a message is redacted. Thread-safe: the scheduler calls :meth:`run` from several
threads at once, so nothing per stage is kept on ``self``.
"""

from __future__ import annotations

import contextlib
import stat
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipeflow.content.hasher import Hasher
from pipeflow.content.hashing import hash_file
from pipeflow.content.ignore import read_patterns
from pipeflow.credentials import redact, without_secrets
from pipeflow.errors import PipeflowError, StorageError
from pipeflow.execution.placing import place_outputs
from pipeflow.execution.runner import LineSink, RunResult, log_name
from pipeflow.execution.task import Answer, Input, Task, plain
from pipeflow.planning.fingerprint import Components, diff_env
from pipeflow.project.project import Project
from pipeflow.spec.model import Stage
from pipeflow.storage.exchange import upload_missing
from pipeflow.storage.remote import Remote

Send = Callable[[Task], Answer]
"""An engine's part: run the task on a worker, block until it ended, return its
answer; raise TaskFailed (a PipeflowError) when it cannot (the stage then fails with
that message)."""


def shareable_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Storage options without anything whose name looks like a credential (at any
    depth: ``client_kwargs`` may hold keys too)."""
    return without_secrets(options)


class Dispatcher:
    """Runs stages through an engine's ``send``, exchanging bytes through ``remote``.

    ``stop`` is set by :meth:`cancel`: transfers end within a chunk, and an engine's
    ``send`` should stop waiting when it sees it."""

    def __init__(self, repo: Project, remote: Remote, *, sink: LineSink | None = None,
                 token: str = "") -> None:
        self.repo, self.remote, self.sink, self.token = repo, remote, sink, token
        self.stop = threading.Event()
        self._ignore = tuple(read_patterns(repo.root))
        self._warm_up()

    def _warm_up(self) -> None:
        # Link probes may consult the state database: do them here, on the main
        # thread, so the stage threads find the answers in memory.
        repo = self.repo
        _ = repo.ignore
        with contextlib.suppress(StorageError, OSError):
            repo.linker.store_mode(repo.root, repo.store.path)
            repo.linker.mode_for(repo.store.path, repo.root)

    def cancel(self) -> None:
        """Stop transfers and waits: running stages fail at once, nothing is committed."""
        self.stop.set()

    def run(self, stage: Stage, comps: Components, send: Send) -> RunResult:
        """Run ``stage`` through ``send``; its outputs end up in the workspace. Never
        raises: an exception here would stop the whole scheduler."""
        log_path = self.repo.logs_dir / log_name(stage.name)
        started = time.time()
        try:
            _write_log(log_path, "")  # as a local run does: this run's log only
            if self.stop.is_set():  # one executor serves one run: nothing after cancel
                return _failed(stage, started, log_path, "not started: the run was cancelled")
            answer = send(self.task(stage, comps))
            return self._finish(stage, comps, answer, log_path)
        except (PipeflowError, OSError) as exc:
            message = exc.message if isinstance(exc, PipeflowError) else str(exc)
            return _failed(stage, started, log_path, redact(message))

    def task(self, stage: Stage, comps: Components) -> Task:
        """Store the stage's inputs, upload what the remote lacks, describe the tree."""
        repo, store = self.repo, self.repo.store
        hasher = Hasher(repo.root, None, repo.ignore)  # one per call: not thread-safe
        inputs: list[Input] = []
        sources: dict[str, Path] = {}
        for rel in input_paths(stage, comps):
            full = repo.root / rel
            if not full.exists():
                continue  # the command will say what it misses, as it would locally
            if full.is_dir():
                # deps were judged by the planner; an external one may lie outside
                scan = hasher.scan_dir(rel, external=rel in stage.external)
                info = store.add_tree(repo.root, rel, hasher, scan)
                sources[info.hash] = store.path_of(info.hash)
                sources.update((e.hash, store.path_of(e.hash))
                               for e in store.manifest(info.hash).entries)
                inputs.append(Input(rel, info.hash, isdir=True))
            else:
                oid = store.add_file(full, hash_file(full))
                sources[oid] = store.path_of(oid)
                inputs.append(Input(rel, oid, executable=bool(full.stat().st_mode
                                                              & stat.S_IXUSR)))
        upload_missing(self.remote, sources, self.stop)
        options = getattr(self.remote.fs, "storage_options", None) or {}
        return Task(
            stage=stage.name, cmd=stage.cmd, wdir=stage.wdir,
            outs=tuple(o.path for o in stage.outs), inputs=tuple(inputs),
            remote_name=self.remote.name, remote_url=self.remote.url,
            remote_options=shareable_options(options), env=dict(comps.env),
            python_exact=stage.env.python == "exact", env_vars=stage.env.vars,
            ignore=self._ignore, token=self.token, client_root=str(repo.root),
        )

    def _finish(self, stage: Stage, comps: Components, answer: Answer,
                log_path: Path) -> RunResult:
        _write_log(log_path, answer.log)
        if self.sink is not None:
            for line in answer.log.splitlines():
                self.sink(stage.name, line)
        started, ended, tail = answer.started, answer.ended, answer.tail
        if answer.error:
            return _failed(stage, started, log_path, answer.error, tail)
        if plain(dict(answer.env)) != plain(dict(comps.env)):
            diffs = [c.message.removeprefix("env: ")
                     for c in diff_env(plain(dict(comps.env)), answer.env)]
            what = "; ".join(diffs) or "its component is not the client's"
            return _failed(stage, started, log_path,
                           f"environment differs on the worker: {what}", tail)
        if self.stop.is_set():  # it ended as the run was cancelled: take nothing
            return _failed(stage, started, log_path, "interrupted while it ran elsewhere; "
                                                     "nothing of it was committed", tail)
        if answer.returncode != 0:
            return RunResult(stage.name, answer.returncode, started, ended, log_path, tail,
                             answer.failed_cmd)
        try:
            place_outputs(self.repo, self.remote, (o.path for o in stage.outs),
                          answer.outputs, self.stop)
        except PipeflowError as exc:
            return _failed(stage, started, log_path, redact(exc.message), tail)
        return RunResult(stage.name, 0, started, ended, log_path, tail)


def _failed(stage: Stage, started: float, log_path: Path, message: str,
            tail: tuple[str, ...] = ()) -> RunResult:
    with contextlib.suppress(OSError):
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(f"pipeflow: {message}\n")
    return RunResult(stage.name, 1, started, time.time(), log_path, tail, error=message)


def _write_log(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if not text or text.endswith("\n") else text + "\n",
                    encoding="utf-8")


def input_paths(stage: Stage, comps: Components) -> list[str]:
    """Root-relative paths the stage's tree is made of: deps, code, params files, and
    persistent outputs (the command continues from their content)."""
    paths = [*stage.deps, *(c.path for c in comps.code if c.hash),
             *(p.file for p in stage.params), *(o.path for o in stage.outs if o.persist)]
    # code may hold pseudo-entries (the module map): they are not files, and are
    # skipped because no such path exists
    safe = [p for p in paths if p and not p.startswith("/") and ".." not in p.split("/")]
    return list(dict.fromkeys(safe))
