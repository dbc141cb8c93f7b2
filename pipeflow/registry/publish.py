"""Putting a few staged files (or folders) into a destination: a local folder or any
fsspec URL, never over an existing entry unless forced, never half-written.

Everything is staged first in a local folder (for a local destination, a hidden
temporary folder inside it, so that publishing is a rename). A local destination gets
each entry by ``os.replace``; a remote one by ``put`` of each file, then a size check
(object stores publish an object whole when its upload completes); a failed check
removes what was put.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeflow.credentials import redact
from pipeflow.errors import StorageError, UsageError
from pipeflow.files.atomicfile import temp_filename


def _is_url(dest: str) -> bool:
    return "://" in dest


class Destination:
    """Where an export goes: ``str(self)`` names it as the user wrote it."""

    def __init__(self, dest: str, cwd: Path) -> None:
        self.text = dest
        self.fs: Any = None
        self.local: Path | None = None
        self.base = ""
        if not _is_url(dest):
            self.local = (cwd / dest).resolve()
            return
        try:
            import fsspec

            self.fs, base = fsspec.core.url_to_fs(dest)
        except (ImportError, ValueError) as exc:
            raise UsageError(f"cannot open {redact(dest)}: {exc}",
                             hint="install the file system it needs: `pip install s3fs` "
                                  "(s3://), `gcsfs` (gs://) or `adlfs` (az://)") from exc
        protocol = self.fs.protocol
        if (protocol if isinstance(protocol, str) else protocol[0]) in ("file", "local"):
            self.local, self.fs = Path(base).resolve(), None
        else:
            self.base = base.rstrip("/")

    def __str__(self) -> str:
        return redact(self.text)

    def where(self, name: str) -> str:
        """Where entry ``name`` lands, for the user."""
        if self.local is not None:
            return str(self.local / name)
        return f"{str(self).rstrip('/')}/{name}"

    def _errors(self) -> tuple[type[BaseException], ...]:
        from pipeflow.storage.remote import io_errors

        return io_errors()

    def taken(self, names: list[str]) -> list[str]:
        """Those of ``names`` the destination already holds."""
        if self.local is not None:
            if self.local.exists() and not self.local.is_dir():
                raise UsageError(f"{self.local} is a file, not a folder",
                                 hint="give a folder (it is created if missing) or a URL")
            return [n for n in names if os.path.lexists(self.local / n)]
        try:
            return [n for n in names if self.fs.exists(f"{self.base}/{n}")]
        except self._errors() as exc:
            raise StorageError(f"cannot read {self}: {exc}") from exc

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A local folder to stage entries in; removed afterwards, whatever happens."""
        created = False
        if self.local is not None:
            created = not self.local.exists()
            try:
                self.local.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create {self.local}: {exc.strerror}") from exc
            folder = self.local / temp_filename("export")
            folder.mkdir()
        else:
            folder = Path(tempfile.mkdtemp(prefix="pipeflow-export-"))
        try:
            yield folder
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            if created and self.local is not None:
                with contextlib.suppress(OSError):  # only if still empty
                    self.local.rmdir()
            raise
        shutil.rmtree(folder, ignore_errors=True)

    def publish(self, staged: Path, names: list[str]) -> None:
        """Move each of ``names`` from ``staged`` into the destination (replacing what
        is there: the caller checked ``taken`` and ``--force``)."""
        for name in names:
            if self.local is not None:
                self._replace(staged, name)
            else:
                self._put(staged / name, f"{self.base}/{name}")

    def _replace(self, staged: Path, name: str) -> None:
        assert self.local is not None
        target = self.local / name
        try:
            if target.is_dir() and not target.is_symlink():
                # a folder cannot be renamed over: the old one goes into the staging
                # folder (removed with it) first
                os.replace(target, staged / temp_filename(name))
            os.replace(staged / name, target)
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc.strerror}") from exc

    def _put(self, local: Path, remote: str) -> None:
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        if local.is_dir():
            with self._failing(remote):
                if self.fs.exists(remote):
                    self.fs.rm(remote, recursive=True)
        for path in files:
            where = remote if path == local else f"{remote}/{path.relative_to(local).as_posix()}"
            with self._failing(where):
                self.fs.makedirs(where.rsplit("/", 1)[0], exist_ok=True)
                self.fs.put_file(os.fspath(path), where)
                got = self.fs.size(where)
            if got != path.stat().st_size:
                with self._failing(where):
                    self.fs.rm_file(where)
                raise StorageError(f"{self.where(where[len(self.base) + 1:])}: wrote "
                                   f"{got} bytes of {path.stat().st_size}; removed it",
                                   hint="run the export again")

    @contextmanager
    def _failing(self, where: str) -> Iterator[None]:
        try:
            yield
        except self._errors() as exc:
            raise StorageError(f"cannot write {redact(where)} to {self}: {exc}") from exc
