"""The Dask executor: each ready stage runs as one task on a Dask distributed cluster.

Called by the scheduler on one of its threads (up to ``--jobs`` at once), for each
stage it:

1. stores every input the stage needs in the local cache (deps, code, the params
   files it reads, persistent outputs) and uploads the objects the remote lacks;
2. submits ``dask_worker.run_task`` with a manifest of that tree (path -> object id),
   retried once by Dask if it raises, and rerun by Dask if its worker dies;
3. checks the answer: the worker's environment component must equal the client's
   (else the stage fails, naming each difference), the command must have succeeded
   and written every declared output;
4. downloads the output objects into the local cache, each verified against its
   hash, and checks them out into the workspace, so the scheduler commits them as it
   commits a local run (only this process writes records and the lock).

Credentials never travel: storage options whose names look like secrets are not
sent to workers, which use their own (environment, fsspec configuration), and every
URL in a message is redacted.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeflow import workspace_fs
from pipeflow.credentials import redact, without_secrets
from pipeflow.errors import PipeflowError, StorageError, UsageError
from pipeflow.execution.dask_worker import (
    Input,
    Task,
    download_verified,
    run_task,
    upload_missing,
)
from pipeflow.execution.runner import LineSink, RunResult, log_name
from pipeflow.fingerprint import Components, diff_env
from pipeflow.hasher import Hasher
from pipeflow.hashing import HashInfo, hash_file
from pipeflow.ignore import read_patterns
from pipeflow.repo import Repo
from pipeflow.spec.model import Stage
from pipeflow.storage.remote import Remote

SCHEDULER_VAR = "PIPEFLOW_DASK_SCHEDULER"
CONNECT_TIMEOUT = "10s"


def shareable_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Storage options without anything whose name looks like a credential (at any
    depth: ``client_kwargs`` may hold keys too)."""
    return without_secrets(options)


def check_setup(repo: Repo, remote_name: str | None, address: str | None) -> tuple[Remote, str]:
    """The remote and scheduler address ``--executor dask`` would use; UsageError
    (exit 2) when ``distributed``, a remote or an address is missing."""
    if importlib.util.find_spec("distributed") is None:
        raise UsageError("--executor dask needs the 'distributed' package",
                         hint="`pip install distributed` (Dask's scheduler client)")
    from pipeflow.ops.remotes import open_remote

    try:
        remote = open_remote(repo, remote_name)
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
        raise UsageError("--executor dask needs the 'distributed' package",
                         hint="`pip install distributed` (Dask's scheduler client)") from exc
    try:
        return Client(address, timeout=CONNECT_TIMEOUT,  # type: ignore[no-untyped-call]
                      set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {redact(address)}: "
                         f"{redact(str(exc))}",
                         hint="start one (`dask scheduler`, then `dask worker ADDRESS` on "
                              "each machine) or pass the right --scheduler") from exc


class DaskExecutor:
    """Runs stages on a Dask cluster, exchanging bytes through ``remote``.

    Thread-safe: the scheduler calls it from several threads at once.
    """

    def __init__(self, repo: Repo, remote: Remote, address: str, *,
                 sink: LineSink | None = None, token: str = "", client: Any = None) -> None:
        """Connects to the scheduler at ``address`` (or uses ``client``)."""
        self.repo = repo
        self.remote = remote
        self.address = address
        self.sink = sink
        self.token = token
        self._stop = threading.Event()
        remote.check_reachable()
        self.client = client if client is not None else connect(address)
        self._own_client = client is None
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
        """Stop waiting for tasks (the run was cancelled or interrupted): waiting stages
        fail at once and nothing they return is committed."""
        self._stop.set()

    def close(self) -> None:
        """Disconnect from the scheduler (if this executor connected)."""
        if self._own_client:
            self.client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # the executor -----------------------------------------------------------
    def __call__(self, stage: Stage, comps: Components) -> RunResult:
        """Run ``stage`` on the cluster; its outputs end up in the workspace."""
        log_path = self.repo.logs_dir / log_name(stage.name)
        started = time.time()
        try:
            self._write_log(log_path, "")  # as a local run does: this run's log only
            task = self.task(stage, comps)
            answer = self._wait(stage, task)
            return self._finish(stage, comps, answer, log_path)
        except (PipeflowError, OSError) as exc:
            # never raise: an exception here would stop the whole scheduler
            message = exc.message if isinstance(exc, PipeflowError) else str(exc)
            return self._failed(stage, started, log_path, redact(message))

    def task(self, stage: Stage, comps: Components) -> Task:
        """Store the stage's inputs, upload what the remote lacks, describe the tree."""
        repo, store = self.repo, self.repo.store
        hasher = Hasher(repo.root, None, repo.ignore)  # one per call: not thread-safe
        inputs: list[Input] = []
        sources: dict[str, Path] = {}
        for rel in _input_paths(stage, comps):
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
        upload_missing(self.remote, sources, self._stop)
        options = getattr(self.remote.fs, "storage_options", None) or {}
        return Task(
            stage=stage.name, cmd=stage.cmd, wdir=stage.wdir,
            outs=tuple(o.path for o in stage.outs), inputs=tuple(inputs),
            remote_name=self.remote.name, remote_url=self.remote.url,
            remote_options=shareable_options(options), env=dict(comps.env),
            python_exact=stage.env.python == "exact", env_vars=stage.env.vars,
            ignore=self._ignore, token=self.token, client_root=str(repo.root),
        )

    def _wait(self, stage: Stage, task: Task) -> dict[str, Any]:
        key = f"pipeflow-{stage.name}-{uuid.uuid4().hex[:8]}"
        future = self.client.submit(run_task, task, key=key, pure=False, retries=1)
        while not future.done():
            if self._stop.wait(0.2):
                future.cancel()
                raise PipeflowError("interrupted while it ran on the cluster; nothing of "
                                    "it was committed")
        try:
            answer: dict[str, Any] = future.result()
        except Exception as exc:  # whatever the task or Dask raised: the stage fails
            raise PipeflowError(_task_failure(exc)) from exc
        finally:
            future.release()
        return answer

    def _finish(self, stage: Stage, comps: Components, answer: dict[str, Any],
                log_path: Path) -> RunResult:
        log = str(answer.get("log") or "")
        self._write_log(log_path, log)
        if self.sink is not None:
            for line in log.splitlines():
                self.sink(stage.name, line)
        started, ended = float(answer["started"]), float(answer["ended"])
        tail = tuple(str(t) for t in answer.get("tail") or ())
        if answer.get("error"):
            return self._failed(stage, started, log_path, str(answer["error"]), tail)
        env = answer.get("env") or {}
        if env != dict(comps.env):
            diffs = [c.message.removeprefix("env: ") for c in diff_env(comps.env, env)]
            what = "; ".join(diffs) or "its component is not the client's"
            return self._failed(stage, started, log_path,
                                f"environment differs on the worker: {what}", tail)
        code = int(answer["returncode"])
        if code != 0:
            return RunResult(stage.name, code, started, ended, log_path, tail,
                             answer.get("failed_cmd"))
        try:
            self._place_outputs(stage, answer.get("outputs") or [])
        except PipeflowError as exc:
            return self._failed(stage, started, log_path, redact(exc.message), tail)
        return RunResult(stage.name, 0, started, ended, log_path, tail)

    def _place_outputs(self, stage: Stage, outputs: list[dict[str, Any]]) -> None:
        """Download (verified) and check out what the worker made; on any failure
        nothing of it stays in the workspace."""
        store = self.repo.store
        declared = sorted(o.path for o in stage.outs)
        if sorted(str(o["path"]) for o in outputs) != declared:
            raise PipeflowError(f"the worker returned outputs "
                                f"{sorted(str(o['path']) for o in outputs)}, not {declared}")
        infos = [(str(o["path"]), HashInfo(str(o["hash"]), int(o["size"]), bool(o["isdir"]),
                                            o.get("nfiles")), bool(o.get("executable")))
                 for o in outputs]
        self._fetch({info.hash for _p, info, _x in infos if info.isdir})
        files: set[str] = set()
        for _path, info, _x in infos:
            if info.isdir:
                files.update(e.hash for e in store.manifest(info.hash).entries)
            else:
                files.add(info.hash)
        self._fetch(files)
        for path, _info, _x in infos:  # all checked first: the cleanup below deletes
            workspace_fs.check_parents(self.repo.root, path)
        placed: list[Path] = []
        try:
            for path, info, executable in infos:
                dest = self.repo.root / path
                placed.append(dest)
                store.checkout(info, dest, linker=self.repo.linker, executable=executable,
                               root=self.repo.root)
        except BaseException:
            for dest in placed:
                if dest.is_dir() and not dest.is_symlink():
                    shutil.rmtree(dest, ignore_errors=True)
                else:
                    dest.unlink(missing_ok=True)
            raise

    def _fetch(self, oids: set[str]) -> None:
        store = self.repo.store
        todo = {oid for oid in oids if not store.has(oid)}

        def accept(tmp: Path, oid: str) -> None:
            store.add_file(tmp, oid, move=True)

        if todo:
            download_verified(self.remote, todo, self.repo.cache_dir / "tmp", accept,
                              self._stop)

    def _failed(self, stage: Stage, started: float, log_path: Path, message: str,
                tail: tuple[str, ...] = ()) -> RunResult:
        with contextlib.suppress(OSError):
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a", encoding="utf-8") as fh:
                fh.write(f"pipeflow: {message}\n")
        return RunResult(stage.name, 1, started, time.time(), log_path, tail, error=message)

    @staticmethod
    def _write_log(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if not text or text.endswith("\n") else text + "\n",
                        encoding="utf-8")


def _input_paths(stage: Stage, comps: Components) -> list[str]:
    """Root-relative paths the stage's tree is made of: deps, code, params files, and
    persistent outputs (the command continues from their content)."""
    paths = [*stage.deps, *(c.path for c in comps.code if c.hash),
             *(p.file for p in stage.params), *(o.path for o in stage.outs if o.persist)]
    # code may hold pseudo-entries (the module map): they are not files, and are
    # skipped below because no such path exists
    safe = [p for p in paths if p and not p.startswith("/") and ".." not in p.split("/")]
    return list(dict.fromkeys(safe))


def _task_failure(exc: BaseException) -> str:
    if type(exc).__name__ == "KilledWorker":
        return ("its worker died (killed, or out of memory) on every attempt; nothing "
                "of it was committed")
    if isinstance(exc, PipeflowError):
        return redact(exc.message)
    return f"the task failed on the cluster: {type(exc).__name__}: {redact(str(exc))}"
