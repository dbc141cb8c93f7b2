"""A remote store: the same layout as the local cache, behind any fsspec URL.

``<url>/objects/ab/cdef...`` (data, xxh3-128), ``<url>/runs/<chain>/<seq>-<sha256>.json``
(run records), ``<url>/runcache/ab/<fingerprint>`` (pointers). What the other side
lacks is found by one listing per prefix (batched, not one request per object);
transfers run in parallel; a download is verified against its hash before it enters
the local cache, and an upload lands under a temporary name first where the file
system allows renames, so no reader ever sees half an object.

Transfers stop early: a Ctrl-C, the first error or a caller's stop event cancels
the queued transfers, and the running ones notice between two chunks, remove their
temporary file and end (:func:`parallel`). Only the backends' I/O errors become
"remote failed"; anything else is a bug and travels up as such.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar

from pipeflow import faults
from pipeflow.content.hashing import hash_file
from pipeflow.credentials import redact, secret_values
from pipeflow.errors import Cancelled, StorageError
from pipeflow.files import atomicfile
from pipeflow.storage.layout import is_object_key, object_key, oid_of

Progress = Callable[[int, int], None]
"""Called with (done, total) as transfers finish."""
R = TypeVar("R")
Job = Callable[[threading.Event], R]
"""A transfer: it receives the stop event and checks it between chunks."""

CHUNK = 1 << 20
"""Bytes copied between two looks at the stop event."""
POLL = 0.1
"""Seconds between two looks at a caller's stop event while transfers run."""

# Exception roots of the storage SDKs behind fsspec backends that are not OSErrors
# (s3fs translates most boto errors to OSError, but not e.g. NoCredentialsError). They
# are looked up among modules already imported, so naming them costs no import.
_SDK_ERRORS = (("botocore.exceptions", "BotoCoreError"), ("aiohttp", "ClientError"),
               ("gcsfs.retry", "HttpError"), ("google.auth.exceptions", "GoogleAuthError"),
               ("azure.core.exceptions", "AzureError"))


_RECORD_NAME = re.compile(r"[0-9a-f]{16}/\d{8}-[0-9a-f]{64}\.json")
_SIG_NAME = re.compile(r"[0-9a-f]{16}/\d{8}-[0-9a-f]{64}\.sig")


@dataclass(frozen=True)
class ListedFile:
    """A file in a remote's listing."""

    modified: float | None
    """When it was last written (POSIX seconds), None if the backend does not say."""
    size: int


@dataclass(frozen=True)
class Survey:
    """What ``gc`` judges on a remote: its objects and the temporary files uploads left."""

    objects: dict[str, ListedFile]
    """Object id -> its listing."""
    temps: dict[str, ListedFile]
    """``kind/rel`` -> its listing, for each upload's temporary file."""


_UPLOAD_KINDS = ("objects", "runs", "runcache", "registry")
"""The remote's folders where an upload can leave a temporary file (``registry``: the
snapshot push publishes)."""


def io_errors() -> tuple[type[BaseException], ...]:
    """What a backend raises when storage fails (as opposed to a bug in the caller)."""
    found: list[type[BaseException]] = [OSError]
    for module, name in _SDK_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def _remote_temp(path: str) -> str:
    """A temporary name beside ``path`` on the remote, as ``atomicfile`` names them
    (hidden, ending ``.tmp``), so listings skip it and gc knows it."""
    folder, _, name = path.rpartition("/")
    return f"{folder}/{atomicfile.temp_filename(name)}"


def _copy(src: BinaryIO, dst: BinaryIO, stop: threading.Event | None) -> None:
    while chunk := src.read(CHUNK):
        if stop is not None and stop.is_set():
            raise Cancelled("transfer stopped")
        dst.write(chunk)
    if stop is not None and stop.is_set():
        raise Cancelled("transfer stopped")


class Remote:
    """One configured remote."""

    def __init__(self, name: str, url: str, options: dict[str, Any] | None = None) -> None:
        self.name = name
        self.url = url
        # an SDK's message may quote an option (adlfs: the connection string)
        self._secrets = secret_values(options or {})
        try:
            import fsspec

            self.fs, self.base = fsspec.core.url_to_fs(url, **(options or {}))
        except (ImportError, ValueError) as exc:
            hint = ("install the file system it needs: `pip install s3fs` (s3://), `gcsfs` "
                    "(gs://) or `adlfs` (az://)")
            said = redact(str(exc), self._secrets)
            raise StorageError(f"remote '{name}' ({redact(url)}): {said}", hint=hint) from exc
        self.base = self.base.rstrip("/")
        protocol = self.fs.protocol
        self.renames = (protocol if isinstance(protocol, str) else protocol[0]) in (
            "file", "local")
        self.errors = io_errors()  # after url_to_fs: the backend's SDK is imported now

    def __repr__(self) -> str:
        return f"Remote({self.name!r}, {redact(self.url)!r})"

    def _fail(self, what: str, exc: BaseException) -> StorageError:
        return StorageError(f"remote '{self.name}' ({redact(self.url)}): cannot {what}: "
                            f"{redact(str(exc), self._secrets)}")

    def path(self, kind: str, rel: str) -> str:
        return f"{self.base}/{kind}/{rel}"

    # listing ----------------------------------------------------------------
    def _walk(self, kind: str, *, detail: bool) -> dict[str, dict[str, Any]]:
        """Every file under ``kind``: relative path -> the backend's info about it
        (empty unless ``detail``)."""
        prefix = f"{self.base}/{kind}"
        try:
            if not self.fs.exists(prefix):
                return {}
            found = self.fs.find(prefix, detail=detail)
        except FileNotFoundError:
            return {}
        except self.errors as exc:
            raise self._fail(f"list {kind}", exc) from exc
        if not detail:
            found = {path: {} for path in found}
        cut = len(prefix.rstrip("/")) + 1
        return {(p[cut:] if p.startswith(prefix) else p.split(f"/{kind}/", 1)[-1]): info
                for p, info in found.items()}

    def _find(self, kind: str) -> list[str]:
        return list(self._walk(kind, detail=False))

    def listing(self, kind: str) -> dict[str, ListedFile]:
        """Every file under ``kind`` (relative path) with its size and the time it was
        last written, as the backend reports them."""
        return {rel: ListedFile(modified(info), int(info.get("size") or 0))
                for rel, info in self._walk(kind, detail=True).items()}

    def remove(self, kind: str, rel: str) -> None:
        """Delete one file (gone already is fine: another gc may have been first)."""
        try:
            self.fs.rm_file(self.path(kind, rel))
        except FileNotFoundError:
            return
        except self.errors as exc:
            raise self._fail(f"delete {kind}/{rel}", exc) from exc

    def objects(self) -> set[str]:
        """Oids the remote holds (one listing)."""
        return {oid_of(rel) for rel in self._find("objects") if is_object_key(rel)}

    def survey(self) -> Survey:
        """The objects, and the temporary files uploads left (one listing per folder)."""
        objects: dict[str, ListedFile] = {}
        temps: dict[str, ListedFile] = {}
        for kind in _UPLOAD_KINDS:
            for rel, listed in self.listing(kind).items():
                if UPLOAD_TEMP.search(rel):
                    temps[f"{kind}/{rel}"] = listed
                elif kind == "objects" and is_object_key(rel):
                    objects[oid_of(rel)] = listed
        return Survey(objects, temps)

    def run_files(self) -> tuple[set[str], set[str]]:
        """The run records (``chain/seq-id.json``) and their signatures
        (``chain/seq-id.sig``) the remote holds, from one listing."""
        # only names a record or signature can have: anything else (no '-', a stray
        # file, a temporary upload) is not fetched, not read, not compared
        found = self._find("runs")
        return ({rel for rel in found if _RECORD_NAME.fullmatch(rel)},
                {rel for rel in found if _SIG_NAME.fullmatch(rel)})

    def pointers(self) -> set[str]:
        """Run-cache pointer paths (``ab/<fingerprint>``) the remote holds."""
        return {rel for rel in self._find("runcache")
                if re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]+", rel)}

    # moving bytes -----------------------------------------------------------
    def upload(self, local: Path, kind: str, rel: str,
               stop: threading.Event | None = None) -> None:
        """Copy ``local`` to ``kind/rel``; where the remote renames, through a temporary
        name that is removed if the copy fails or ``stop`` is set."""
        target = self.path(kind, rel)
        try:
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            if not self.renames:
                # object stores publish an object whole when its upload completes:
                # no temporary name, and one in flight is let finish
                faults.point("remote.upload")
                if stop is not None and stop.is_set():
                    raise Cancelled("transfer stopped")
                self.fs.put_file(os.fspath(local), target)
                return
            tmp = _remote_temp(target)
            try:
                with open(local, "rb") as src, self.fs.open(tmp, "wb") as dst:
                    faults.point("remote.upload")
                    _copy(src, dst, stop)
                self.fs.mv(tmp, target)
            except BaseException:
                self._remove(tmp)
                raise
        except self.errors as exc:
            raise self._fail(f"upload {kind}/{rel}", exc) from exc

    def _remove(self, path: str) -> None:
        # absent already, or the remote is gone: gc removes what is left
        with contextlib.suppress(*self.errors):
            self.fs.rm_file(path)

    def download(self, kind: str, rel: str, local: Path,
                 stop: threading.Event | None = None) -> None:
        """Copy ``kind/rel`` into ``local`` (a temporary name the caller chose and
        removes; it is created here and must not exist)."""
        try:
            with self.fs.open(self.path(kind, rel), "rb") as src, open(local, "xb") as dst:
                faults.point("remote.download")
                _copy(src, dst, stop)
        except self.errors as exc:
            raise self._fail(f"download {kind}/{rel}", exc) from exc

    # objects, by id -------------------------------------------------------
    def has_object(self, oid: str) -> bool:
        """Whether the remote holds object ``oid`` (one question, no listing)."""
        try:
            return bool(self.fs.exists(self.path("objects", object_key(oid))))
        except self.errors as exc:
            raise self._fail("look up objects", exc) from exc

    def upload_object(self, oid: str, local: Path, stop: threading.Event | None = None) -> None:
        """Copy the local file ``local``, object ``oid``'s bytes, to the remote."""
        self.upload(local, "objects", object_key(oid), stop)

    def download_object(self, oid: str, local: Path,
                        stop: threading.Event | None = None) -> bool:
        """Copy object ``oid`` into ``local`` (a new file the caller chose and removes);
        whether its bytes hash to ``oid`` (a file that does not is never to be used)."""
        self.download("objects", object_key(oid), local, stop)
        return hash_file(local) == oid

    def remove_object(self, oid: str) -> None:
        """Delete object ``oid`` (gone already is fine)."""
        self.remove("objects", object_key(oid))

    def check_reachable(self) -> None:
        """Fail early, naming the URL, when the remote cannot be listed or created."""
        try:
            if not self.fs.exists(self.base):
                self.fs.makedirs(self.base, exist_ok=True)
        except self.errors as exc:
            raise self._fail("reach it", exc) from exc


def read_small(remote: Remote, kind: str, rel: str, limit: int) -> bytes | None:
    """The bytes of the small file ``kind/rel`` on ``remote`` (the registry snapshot),
    None when there is none; a StorageError when it is larger than ``limit`` bytes. (A
    function, not a method: few callers read a whole remote file.)"""
    data = read_bounded(remote, kind, rel, limit)
    if data is not None and len(data) > limit:
        raise StorageError(f"remote '{remote.name}' ({redact(remote.url)}): {kind}/{rel} is "
                           f"larger than {limit} bytes: not a file pipeflow wrote")
    return data


def read_bounded(remote: Remote, kind: str, rel: str, limit: int) -> bytes | None:
    """At most ``limit + 1`` bytes of ``kind/rel`` (more than ``limit``: too large, and
    no more was downloaded); None when there is no such file."""
    try:
        with remote.fs.open(remote.path(kind, rel), "rb") as src:
            return bytes(src.read(limit + 1))
    except FileNotFoundError:
        return None
    except remote.errors as exc:
        raise remote._fail(f"read {kind}/{rel}", exc) from exc


UPLOAD_TEMP = re.compile(r"(?:\.tmp-[0-9a-f]{8}|(?:^|/)\.[^/]+\.tmp)$")
"""A name :meth:`Remote.upload` gives a file before renaming it: ``.NAME.PID.HEX.tmp``
(see ``_remote_temp``), or ``NAME.tmp-HEX`` as earlier releases did."""

_TIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified",
              "timeCreated", "created", "creation_time")
"""Where fsspec backends put a file's time (local: mtime; s3: LastModified; azure:
last_modified; gcs: updated; memory: created), most telling first."""


def modified(info: dict[str, Any]) -> float | None:
    """When a listed file was last written (POSIX seconds), or None if unknown."""
    import datetime

    for key in _TIME_KEYS:
        value = info.get(key)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime.datetime):
            when = value
        elif isinstance(value, str):
            try:
                when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
        else:
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)  # backends report UTC
        return when.timestamp()
    return None


def parallel(jobs: Iterable[Job[R]], progress: Progress | None = None, *,
             workers: int = 8, stop: threading.Event | None = None) -> list[R]:
    """Run transfer jobs on worker threads; returns their results, in order.

    The first error, a Ctrl-C (KeyboardInterrupt in this thread) or ``stop`` being set
    (raises :class:`Cancelled`) stops the jobs not yet started and tells the running
    ones to stop; they end within a chunk, and then the error is raised. Results are
    counted by the caller from the returned values, never by the jobs from several
    threads.
    """
    todo = list(jobs)
    if progress:
        progress(0, len(todo))
    if not todo:
        return []
    batch = _Batch(todo)
    try:
        batch.start(min(workers, len(todo)))
        return batch.settle(progress, stop)
    except BaseException:
        batch.halt.set()
        batch.join()  # running jobs remove their temporary files; a 2nd Ctrl-C leaves
        raise


class _Batch(Generic[R]):
    """Jobs shared by a few worker threads, each reporting to one queue.

    The main thread only ever waits on that queue, never on a ``Future``:
    ``concurrent.futures.wait`` holds every future's lock while it scans them, and a
    Ctrl-C landing there leaves some locks taken, so the workers block forever when
    they finish (seen in about one interrupted push in twelve of 3,000 objects).
    """

    def __init__(self, todo: list[Job[R]]) -> None:
        self.todo = todo
        self.halt = threading.Event()
        self.reports: queue.SimpleQueue[tuple[int, R | None, BaseException | None]] = (
            queue.SimpleQueue())
        self.threads: list[threading.Thread] = []
        self._next = 0
        self._lock = threading.Lock()

    def start(self, workers: int) -> None:
        for n in range(workers):
            thread = threading.Thread(target=self._work, name=f"pipeflow-transfer-{n}")
            thread.start()
            # listed once started: a Ctrl-C between the two must not leave a thread
            # that join() cannot wait for ("cannot join thread before it is started")
            self.threads.append(thread)

    def _take(self) -> int | None:
        with self._lock:
            if self.halt.is_set() or self._next >= len(self.todo):
                return None
            self._next += 1
            return self._next - 1

    def _work(self) -> None:
        while (index := self._take()) is not None:
            try:
                result = self.todo[index](self.halt)
            except BaseException as exc:  # handed to the main thread, which raises it
                self.reports.put((index, None, exc))
            else:
                self.reports.put((index, result, None))

    def settle(self, progress: Progress | None, stop: threading.Event | None) -> list[R]:
        """Wait for every job, raising the first error as soon as it is reported."""
        results: list[Any] = [None] * len(self.todo)
        done = 0
        while done < len(self.todo):
            if stop is not None and stop.is_set():
                raise Cancelled("transfers stopped: the run was interrupted")
            try:
                index, result, error = self.reports.get(timeout=POLL)
            except queue.Empty:
                continue
            if error is not None:
                raise error
            results[index] = result
            done += 1
            if progress:
                progress(done, len(self.todo))
        for thread in self.threads:
            thread.join()
        return results

    def join(self) -> None:
        for thread in self.threads:
            thread.join()
