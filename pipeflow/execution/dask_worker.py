"""What runs on a Dask worker: one stage in a private scratch tree, bytes via the remote.

The worker never reads the project. It gets a ``Task`` naming every input by its
object id, builds exactly that tree in a fresh folder under its own temporary
directory (each object verified against its hash on the way in), runs the stage's
commands there as the local runner does, hashes the declared outputs with the same
rules (``Manifest`` for folders), uploads their objects and answers with a plain
dict. It writes no run record and no lock: only the client commits.

Expected failures (a missing or corrupt object, a declared output not written, an
environment that differs from the client's) come back as ``error`` in the answer, so
Dask does not retry them; a worker that dies mid-task makes Dask run it again
elsewhere, in a new scratch folder.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeflow.credentials import redact
from pipeflow.errors import PipeflowError, StorageError
from pipeflow.hashing import hash_file, is_hash
from pipeflow.manifest import Manifest
from pipeflow.storage.remote import Job, Remote, parallel

LOG_LIMIT = 1 << 20
"""Bytes of a stage's log sent back to the client (its end)."""

EXISTS_ONE_BY_ONE = 64
"""Up to this many objects, ask the remote about each; beyond, list it once."""


@dataclass(frozen=True)
class Input:
    """One path of the stage's tree: a file or a folder (``oid`` of its manifest)."""

    path: str
    oid: str
    isdir: bool = False
    executable: bool = False


@dataclass(frozen=True)
class Task:
    """Everything a worker needs to run one stage; no credentials (see docs/dask.md)."""

    stage: str
    cmd: tuple[str, ...]
    wdir: str
    outs: tuple[str, ...]
    inputs: tuple[Input, ...]
    remote_name: str
    remote_url: str
    remote_options: Mapping[str, Any]
    env: Mapping[str, Any]
    """The client's environment component: the worker refuses to run if its own differs."""
    python_exact: bool = False
    env_vars: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    """Lines of the project's ``.pipeflowignore``: outputs hash as they would locally."""
    token: str = ""
    client_root: str = ""


def object_rel(oid: str) -> str:
    """An object's path below ``objects/`` on a remote."""
    return f"{oid[:2]}/{oid[2:]}"


def present(remote: Remote, oids: Iterable[str], stop: threading.Event | None = None) -> set[str]:
    """Which of ``oids`` the remote holds: one question each for a few, one listing
    for many (a listing of a large bucket costs more than a handful of HEADs)."""
    wanted = sorted(set(oids))
    if len(wanted) > EXISTS_ONE_BY_ONE:
        return remote.objects() & set(wanted)

    def ask(oid: str) -> Job[bool]:
        def job(_stop: threading.Event) -> bool:
            try:
                return bool(remote.fs.exists(remote.path("objects", object_rel(oid))))
            except remote.errors as exc:
                raise StorageError(f"remote '{remote.name}' ({redact(remote.url)}): cannot "
                                   f"look up objects: {redact(str(exc))}") from exc
        return job

    answers = parallel([ask(oid) for oid in wanted], stop=stop)
    return {oid for oid, there in zip(wanted, answers, strict=True) if there}


def upload_missing(remote: Remote, sources: Mapping[str, Path],
                   stop: threading.Event | None = None) -> int:
    """Upload the objects (oid -> local file) the remote lacks; returns how many.
    Setting ``stop`` (Ctrl-C on the client) ends it within a chunk: Cancelled."""
    todo = sorted(set(sources) - present(remote, sources, stop))

    def send(oid: str) -> Job[None]:
        return lambda halt: remote.upload(sources[oid], "objects", object_rel(oid), halt)

    parallel([send(oid) for oid in todo], stop=stop)
    return len(todo)


def download_verified(remote: Remote, oids: Iterable[str], folder: Path,
                      accept: Callable[[Path, str], None],
                      stop: threading.Event | None = None) -> None:
    """Download each object into ``folder``, check its bytes against its name, then hand
    the file to ``accept(path, oid)`` (which must move or copy it away); an object
    whose bytes do not match is deleted and reported, never accepted."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = sorted(set(oids))

    def get(oid: str) -> Job[bool]:
        def job(halt: threading.Event) -> bool:
            """True once accepted, False when the bytes do not match ``oid``."""
            tmp = folder / f"{oid}.{os.getpid()}-{os.urandom(4).hex()}.part"
            try:
                remote.download("objects", object_rel(oid), tmp, halt)
                if hash_file(tmp) != oid:
                    return False
                accept(tmp, oid)
                return True
            finally:
                tmp.unlink(missing_ok=True)
        return job

    accepted = parallel([get(oid) for oid in wanted], stop=stop)
    rejected = [oid for oid, ok in zip(wanted, accepted, strict=True) if not ok]
    if rejected:
        listed = ", ".join(o[:12] for o in rejected[:5])
        raise StorageError(f"{len(rejected)} object(s) on remote '{remote.name}' did not match "
                           f"their hash and were rejected: {listed}",
                           hint="push them again from a clone that has good copies")


def _check_rel(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", "..") for p in parts):
        raise StorageError(f"refusing the unsafe path {path!r} in a task")


def _enclosing_project(folder: Path) -> Path | None:
    for parent in (folder, *folder.parents):
        if (parent / ".pipeflow").is_dir() or (parent / "pipeline.yaml").is_file():
            return parent
    return None


def make_scratch(client_root: str = "") -> Path:
    """A fresh folder under this machine's temporary directory, checked to lie outside
    any pipeflow project (the stage must see only the tree it was given)."""
    scratch = Path(tempfile.mkdtemp(prefix="pipeflow-task-")).resolve()
    inside = _enclosing_project(scratch)
    if inside is None and client_root:
        root = Path(client_root)
        inside = root if scratch == root or root in scratch.parents else None
    if inside is not None:
        shutil.rmtree(scratch, ignore_errors=True)
        raise StorageError(f"the worker's temporary folder {scratch} lies inside the project "
                           f"{inside}", hint="set TMPDIR on the worker to a folder outside "
                                             "any project")
    return scratch


def materialize(remote: Remote, inputs: Iterable[Input], work: Path, objs: Path) -> None:
    """Build the tree of ``inputs`` under ``work`` from the remote, every object
    verified; manifests first, since a folder's files are known only from it."""
    inputs = list(inputs)
    for item in inputs:
        _check_rel(item.path)
        if not is_hash(item.oid):
            raise StorageError(f"refusing the object id {item.oid!r} in a task")
    got: dict[str, Path] = {}

    def keep(tmp: Path, oid: str) -> None:
        final = objs / oid
        os.replace(tmp, final)
        got[oid] = final

    download_verified(remote, {i.oid for i in inputs if i.isdir}, objs, keep)
    manifests: dict[str, Manifest] = {}
    for item in inputs:
        if item.isdir:
            manifest = Manifest.from_bytes(got[item.oid].read_bytes())
            if manifest.hash != item.oid:
                raise StorageError(f"object {item.oid} is not a canonical folder manifest")
            manifests[item.oid] = manifest
    places: list[tuple[str, Path, bool]] = []
    for item in inputs:
        if item.isdir:
            (work / item.path).mkdir(parents=True, exist_ok=True)
            places += [(e.hash, work / item.path / e.path, e.executable)
                       for e in manifests[item.oid].entries]
        else:
            places.append((item.oid, work / item.path, item.executable))
    download_verified(remote, {oid for oid, _p, _x in places} - set(got), objs, keep)
    uses: dict[str, int] = {}
    for oid, _p, _x in places:
        uses[oid] = uses.get(oid, 0) + 1
    for oid, dest, executable in places:
        dest.parent.mkdir(parents=True, exist_ok=True)
        uses[oid] -= 1
        if uses[oid] == 0:
            os.replace(got[oid], dest)  # last use: the download itself becomes the file
        else:
            shutil.copyfile(got[oid], dest)
        os.chmod(dest, 0o755 if executable else 0o644)


class _Refused(PipeflowError):
    """The stage ran but its result cannot be taken (reported, not retried)."""


def _outputs(task: Task, work: Path, objs: Path) -> tuple[list[dict[str, Any]],
                                                          dict[str, Path]]:
    from pipeflow.hasher import Hasher
    from pipeflow.ignore import IgnoreRules

    hasher = Hasher(work, None, IgnoreRules(patterns=task.ignore))
    found: list[dict[str, Any]] = []
    sources: dict[str, Path] = {}
    for rel in task.outs:
        path = work / rel
        if not os.path.lexists(path):
            raise _Refused(f"it did not write its declared output '{rel}'")
        if path.is_symlink():
            raise _Refused(f"output '{rel}' is a symlink; write a real file or folder there")
        if path.is_dir():
            manifest = hasher.manifest(rel)
            links = hasher.symlinks_under(rel)
            if links:
                raise _Refused(f"output '{rel}' contains a symlink: {rel}/{links[0]} "
                               "(not supported yet)")
            for entry in manifest.entries:
                sources.setdefault(entry.hash, path / entry.path)
            mpath = objs / f"manifest-{manifest.hash}"
            mpath.write_bytes(manifest.to_bytes())
            sources[manifest.hash] = mpath
            info = manifest.info()
            executable = False
        else:
            info = hasher.hash_path(rel)
            sources.setdefault(info.hash, path)
            executable = bool(os.stat(path).st_mode & stat.S_IXUSR)
        found.append({"path": rel, "hash": info.hash, "size": info.size, "isdir": info.isdir,
                      "nfiles": info.nfiles, "executable": executable})
    return found, sources


def worker_env(task: Task, cwd: Path) -> dict[str, Any]:
    """This worker's environment component for the task's stage, asked about exactly
    what the client's component names (its variables, its packages)."""
    from pipeflow.environment import EnvironmentProbe

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


def run_task(task: Task) -> dict[str, Any]:
    """Run ``task`` on this worker; see the module docstring. Returns
    ``{returncode, tail, log, started, ended, outputs, env, failed_cmd, error}``."""
    from pipeflow.execution.runner import run_stage
    from pipeflow.spec.model import Stage

    answer: dict[str, Any] = {"returncode": 0, "tail": [], "log": "", "started": time.time(),
                              "ended": time.time(), "outputs": [], "env": {},
                              "failed_cmd": None, "error": None}
    scratch: Path | None = None
    try:
        scratch = make_scratch(task.client_root)
        work, objs = scratch / "work", scratch / "objects"
        work.mkdir()
        objs.mkdir()
        remote = Remote(task.remote_name, task.remote_url, dict(task.remote_options))
        materialize(remote, task.inputs, work, objs)
        cwd = work / task.wdir
        cwd.mkdir(parents=True, exist_ok=True)
        for rel in task.outs:
            _check_rel(rel)
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
        answer["env"] = worker_env(task, cwd)
        if answer["env"] != dict(task.env):
            return answer  # the client names the differences; running would be wasted
        stage = Stage(name=task.stage, cmd=task.cmd, wdir=task.wdir)
        result = run_stage(work, stage, scratch / "logs", None, task.token)
        answer.update(returncode=result.returncode, tail=list(result.tail),
                      started=result.started, ended=result.ended,
                      failed_cmd=result.failed_cmd, log=_log_text(result.log_path))
        if result.returncode == 0:
            outputs, sources = _outputs(task, work, objs)
            upload_missing(remote, sources)
            answer["outputs"] = outputs
    except (PipeflowError, OSError) as exc:
        message = exc.message if isinstance(exc, PipeflowError) else str(exc)
        answer["error"] = redact(message)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return answer
