"""A remote store: the same layout as the local cache, behind any fsspec URL.

``<url>/objects/ab/cdef...`` (data, xxh3-128), ``<url>/runs/<chain>/<seq>-<sha256>.json``
(run records), ``<url>/runcache/ab/<fingerprint>`` (pointers). What the other side
lacks is found by one listing per prefix (batched, not one request per object);
transfers run in parallel; a download is verified against its hash before it enters
the local cache, and an upload lands under a temporary name first where the file
system allows renames, so no reader ever sees half an object.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipeflow import faults
from pipeflow.errors import StorageError

Progress = Callable[[int, int], None]
"""Called with (done, total) as transfers finish."""

_CREDENTIALS = re.compile(r"//[^/@]+@")


def redact(url: str) -> str:
    """``s3://key:secret@bucket`` -> ``s3://***@bucket``: never print credentials."""
    return _CREDENTIALS.sub("//***@", url)


class Remote:
    """One configured remote."""

    def __init__(self, name: str, url: str, options: dict[str, Any] | None = None) -> None:
        self.name = name
        self.url = url
        try:
            import fsspec

            self.fs, self.base = fsspec.core.url_to_fs(url, **(options or {}))
        except (ImportError, ValueError) as exc:
            hint = "install the matching extra, e.g. `pip install 'pipeflow[s3]'`"
            raise StorageError(f"remote '{name}' ({redact(url)}): {exc}", hint=hint) from exc
        self.base = self.base.rstrip("/")
        protocol = self.fs.protocol
        self.renames = (protocol if isinstance(protocol, str) else protocol[0]) in (
            "file", "local")

    def __repr__(self) -> str:
        return f"Remote({self.name!r}, {redact(self.url)!r})"

    def _fail(self, what: str, exc: Exception) -> StorageError:
        return StorageError(f"remote '{self.name}' ({redact(self.url)}): cannot {what}: "
                            f"{redact(str(exc))}")

    def path(self, kind: str, rel: str) -> str:
        return f"{self.base}/{kind}/{rel}"

    # listing ----------------------------------------------------------------
    def _find(self, kind: str) -> list[str]:
        prefix = f"{self.base}/{kind}"
        try:
            if not self.fs.exists(prefix):
                return []
            found = self.fs.find(prefix)
        except FileNotFoundError:
            return []
        except Exception as exc:  # fsspec backends raise their own types
            raise self._fail(f"list {kind}", exc) from exc
        cut = len(prefix.rstrip("/")) + 1
        return [p[cut:] if p.startswith(prefix) else p.split(f"/{kind}/", 1)[-1] for p in found]

    def objects(self) -> set[str]:
        """Oids the remote holds."""
        return {rel.replace("/", "") for rel in self._find("objects")
                if re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{30}", rel)}

    def records(self) -> set[str]:
        """Run record paths (``chain/seq-id.json``) the remote holds."""
        return {rel for rel in self._find("runs") if rel.endswith(".json")
                and "/." not in rel}

    def pointers(self) -> set[str]:
        return {rel for rel in self._find("runcache") if "/." not in rel}

    # moving bytes -----------------------------------------------------------
    def upload(self, local: Path, kind: str, rel: str) -> None:
        target = self.path(kind, rel)
        try:
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            if self.renames:
                tmp = f"{target}.tmp-{secrets.token_hex(4)}"
                self.fs.put_file(os.fspath(local), tmp)
                faults.point("remote.upload")  # under its temporary name, not yet renamed
                self.fs.mv(tmp, target)
            else:
                self.fs.put_file(os.fspath(local), target)
        except Exception as exc:
            raise self._fail(f"upload {kind}/{rel}", exc) from exc

    def download(self, kind: str, rel: str, local: Path) -> None:
        try:
            faults.point("remote.download")
            self.fs.get_file(self.path(kind, rel), os.fspath(local))
        except Exception as exc:
            raise self._fail(f"download {kind}/{rel}", exc) from exc

    def check_reachable(self) -> None:
        """Fail early, naming the URL, when the remote cannot be listed or created."""
        try:
            if not self.fs.exists(self.base):
                self.fs.makedirs(self.base, exist_ok=True)
        except Exception as exc:
            raise self._fail("reach it", exc) from exc


def parallel(jobs: Iterable[Callable[[], None]], progress: Progress | None,
             workers: int = 8) -> int:
    """Run transfer jobs on a thread pool; the first error is raised after all settle."""
    todo = list(jobs)
    done = 0
    first: BaseException | None = None
    if progress:
        progress(0, len(todo))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for fut in [pool.submit(job) for job in todo]:
            try:
                fut.result()
            except BaseException as exc:  # collected: report the first after the rest
                first = first or exc
            done += 1
            if progress:
                progress(done, len(todo))
    if first is not None:
        raise first
    return done
