"""How bytes enter the object store: copied and hashed in one pass, cloned, or moved.

Every object is written once: into a temporary name (hidden, ending ``.pftmp``) then
renamed into place; an existing object is never overwritten; objects are 0444.
Durability is not paid per object: ``written()`` lists what this writer wrote, for one
``durability.sync_paths`` at the end of the run.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import xxhash

from pipeflow.content.hasher import DirScan, Hasher
from pipeflow.content.hashing import hash_bytes, hash_file
from pipeflow.content.manifest import Manifest
from pipeflow.errors import StorageError
from pipeflow.files import diskfull
from pipeflow.storage import links
from pipeflow.storage.copying import (
    CREATE,
    OBJECT_MODE,
    READ,
    check_copy,
    copy_and_hash,
    fill,
    unlink_quietly,
    view,
)
from pipeflow.storage.layout import object_path, shard_of
from pipeflow.storage.leftovers import TempNames
from pipeflow.storage.links import Linker, LinkMode


class ObjectWriter:
    """Writes objects into the store folder ``objects_dir`` (an absolute path)."""

    def __init__(self, objects_dir: str, linker: Linker, temps: TempNames) -> None:
        self._dir = objects_dir
        self._linker = linker
        self._temps = temps
        self.written: list[str] = []
        """Objects this writer wrote, for one batched sync at the end of the run."""
        self.bytes_written = 0
        """Bytes copied into the store (clones and moves not counted)."""
        self._shards: set[str] = set()
        self._new_shards: set[str] = set()
        """Shard folders this writer created: they held nothing of anyone else's."""
        self._stored: set[str] = set()  # oids _add_small wrote
        self._umask_strips: bool | None = None  # does the umask change OBJECT_MODE?
        self._root_made = False
        self._store_modes: dict[str, LinkMode] = {}

    def forget(self, oid: str) -> None:
        """``oid`` was found corrupt and moved aside: never assume it is present."""
        self._stored.discard(oid)

    def _shard(self, oid: str) -> None:
        shard = shard_of(oid)
        if shard not in self._shards:
            folder = f"{self._dir}/{shard}"
            try:
                os.mkdir(folder)
            except FileExistsError:
                self._temps.sweep_once(folder)
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
            else:
                self._new_shards.add(shard)
            self._shards.add(shard)

    def add_file(self, src: str, oid: str | None, *, move: bool) -> str:
        """See :meth:`ObjectStore.add_file`."""
        if oid is not None and os.path.exists(object_path(self._dir, oid)):
            if move:
                os.unlink(src)
            return oid
        try:
            if move:
                return self._add_by_move(src, oid)
            if self.store_mode(src) == "reflink":
                return self._add_by_reflink(src, oid)
            return self._copy_in(src, oid)[0]
        except OSError as exc:
            raise StorageError(f"cannot store {src} in the cache: {exc}") from exc

    def store_mode(self, src: str) -> LinkMode:
        """How files of ``src``'s folder come in: reflink or copy (asked once per folder)."""
        folder = os.path.dirname(src)
        mode = self._store_modes.get(folder)
        if mode is None:
            os.makedirs(self._dir, exist_ok=True)
            mode = self._linker.store_mode(Path(folder or "."), Path(self._dir))
            self._store_modes[folder] = mode
        return mode

    def _add_by_move(self, src: str, oid: str | None) -> str:
        if oid is None:
            oid = hash_file(src)
            if os.path.exists(object_path(self._dir, oid)):
                os.unlink(src)
                return oid
        self._shard(oid)
        dst = object_path(self._dir, oid)
        os.chmod(src, OBJECT_MODE)
        try:
            os.replace(src, dst)
        except OSError:
            # Another file system: copy (checked against oid), then drop the source.
            self._copy_in(src, oid)
            os.unlink(src)
            return oid
        self.written.append(dst)
        return oid

    def _add_by_reflink(self, src: str, oid: str | None) -> str:
        if oid is None:
            oid = hash_file(src)
            if os.path.exists(object_path(self._dir, oid)):
                return oid
        self._shard(oid)
        dst = object_path(self._dir, oid)
        tmp = self._temps.beside(dst)
        known = oid

        def clone(sfd: int, dfd: int) -> None:
            try:
                links.reflink_fd(sfd, dfd)
            except OSError:
                # The probe said yes but this file says no (e.g. inline extents):
                # copy it, and check it against the oid on the way.
                got, _ = copy_and_hash(sfd, dfd, view())
                check_copy(got, known, src, tmp)

        fill(src, tmp, clone)
        self._commit(tmp, dst)
        return oid

    def _copy_in(self, src: str, oid: str | None) -> tuple[str, int]:
        # Unknown oid: the temporary file waits at the store root until the copy has
        # told us which shard it belongs to; same file system, so the rename is atomic.
        tmp = self._temps.beside(object_path(self._dir, oid) if oid else f"{self._dir}/new")
        if oid:
            self._shard(oid)
        elif not self._root_made:
            # Once per writer: makedirs costs three syscalls even when it has nothing to do.
            os.makedirs(self._dir, exist_ok=True)
            self._root_made = True
        got, size = fill(src, tmp, lambda sfd, dfd: copy_and_hash(sfd, dfd, view()))
        if oid is not None:
            check_copy(got, oid, src, tmp)
        else:
            oid = got
            self._shard(oid)
        self._commit(tmp, object_path(self._dir, oid))
        self.bytes_written += size
        return oid, size

    def _add_small(self, src: str, buf: memoryview) -> tuple[str, int]:
        """Store a file shorter than ``buf``: read it whole, hash it, and only then
        write it, straight into its shard (an object already present costs no write)."""
        sfd = os.open(src, READ)
        try:
            n = os.readv(sfd, [buf])
            if n == len(buf):  # grew since it was scanned: take the general path
                return self._copy_in(src, None)
        finally:
            os.close(sfd)
        data = buf[:n]
        oid = xxhash.xxh3_128_hexdigest(data)
        dst = object_path(self._dir, oid)
        # In a shard this writer created, only its own writes can be there (a racing
        # writer of the same bytes is harmless): no probe of the disk needed.
        if oid in self._stored or (shard_of(oid) not in self._new_shards
                                   and os.path.exists(dst)):
            return oid, n
        self._shard(oid)
        tmp = self._temps.beside(dst)
        try:
            dfd = os.open(tmp, CREATE, OBJECT_MODE)
            try:
                while data:
                    data = data[os.write(dfd, data) :]
                if self._umask_strips is None:  # asked once: the umask is the process's
                    self._umask_strips = stat.S_IMODE(os.fstat(dfd).st_mode) != OBJECT_MODE
                if self._umask_strips:
                    os.fchmod(dfd, OBJECT_MODE)  # whatever the umask
            finally:
                os.close(dfd)
        except BaseException:
            unlink_quietly(tmp)
            raise
        # Checked absent above: a concurrent writer of the same bytes only means the
        # rename replaces an identical object.
        os.replace(tmp, dst)
        self.written.append(dst)
        self._stored.add(oid)
        self.bytes_written += n
        return oid, n

    def _commit(self, tmp: str, dst: str) -> None:
        if os.path.exists(dst):
            # Written meanwhile by another process: the existing object wins.
            unlink_quietly(tmp)
            return
        os.replace(tmp, dst)
        self.written.append(dst)

    def add_bytes(self, data: bytes) -> str:
        """See :meth:`ObjectStore.add_bytes`."""
        oid = hash_bytes(data)
        dst = object_path(self._dir, oid)
        if os.path.exists(dst):
            return oid
        self._shard(oid)
        tmp = self._temps.beside(dst)
        try:
            fd = os.open(tmp, CREATE, OBJECT_MODE)
            try:
                data_view = memoryview(data)
                while data_view:
                    data_view = data_view[os.write(fd, data_view) :]
                os.fchmod(fd, OBJECT_MODE)
            finally:
                os.close(fd)
        except BaseException as exc:
            unlink_quietly(tmp)
            if isinstance(exc, OSError):
                diskfull.check(exc, tmp, "write an object to")
                raise StorageError(f"cannot write object {oid}: {exc}") from exc
            raise
        self._commit(tmp, dst)
        return oid

    def add_tree(self, hasher: Hasher, scan: DirScan) -> tuple[str, Manifest]:
        """See :meth:`ObjectStore.add_tree`; returns the manifest and its oid."""
        started = time.time_ns()  # before any read: the stat cache's racy rule
        hashes: list[str] = []
        buf = view()
        small = len(buf)  # a file shorter than the buffer is read in one call
        modes: dict[int, LinkMode] = {}  # how files come in depends on their file system
        for file_rel, _, path, st in scan.files:
            known = hasher.known_hash(file_rel, st)
            if known is not None:
                hashes.append(self.add_file(path, known, move=False))
                continue
            mode = modes.get(st.st_dev)
            if mode is None:
                mode = modes[st.st_dev] = self.store_mode(path)
            try:
                if mode == "reflink":
                    oid = self._add_by_reflink(path, None)
                    size = st.st_size  # a clone is trusted, as in add_file
                elif st.st_size < small:
                    oid, size = self._add_small(path, buf)
                else:
                    oid, size = self._copy_in(path, None)
            except OSError as exc:
                raise StorageError(f"cannot store {path} in the cache: {exc}") from exc
            if size != st.st_size:
                raise StorageError(
                    f"{path} changed while being stored ({st.st_size} bytes, "
                    f"then {size})",
                    hint="do not modify outputs while pipeflow stores them; run again",
                )
            hashes.append(oid)
        manifest = hasher.adopt_hashes(scan, hashes, started)
        return self.add_bytes(manifest.to_bytes()), manifest
