"""The content-addressed object store: ``.pipeflow/cache/objects/``.

An object's name is the xxh3-128 of its bytes; where it lives below the store folder
is :mod:`pipeflow.storage.layout`'s business alone: callers name objects by id. A
directory is stored as its files' objects plus its ``Manifest`` serialized as one more
object, named by the manifest hash (the directory's hash).

Rules that make the store safe to share with a killed process or a concurrent reader:

- every object is written once, under a temporary name then renamed into place, and
  never overwritten; objects are 0444 (:mod:`pipeflow.storage.writer`);
- every byte read back is checked against the object's name (``read_bytes``,
  ``checkout`` hash what they copy, in the same pass); an object that fails is moved to
  ``.pipeflow/cache/corrupt/`` so that ``has`` stops offering it and a later pull or
  rerun can store a good copy;
- durability is not paid per object: ``written()`` lists what this instance wrote, for
  one ``durability.sync_paths`` at the end of the run.

Temporary names left by a killed process are garbage that ``gc`` may delete (they end
in ``.pftmp``, or ``.part`` for downloads in ``cache/tmp/``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from pipeflow.content.hasher import DirScan, Hasher
from pipeflow.content.hashing import HashInfo, hash_bytes
from pipeflow.content.manifest import Manifest
from pipeflow.errors import StorageError
from pipeflow.storage.checkout import Checkout
from pipeflow.storage.copying import READ, hash_fd, view
from pipeflow.storage.layout import local_oids, object_path
from pipeflow.storage.leftovers import TempNames
from pipeflow.storage.links import Linker
from pipeflow.storage.writer import ObjectWriter


class ObjectStore:
    """Content-addressed storage of file bytes and directory manifests, by object id.

    Usable from several threads at once: each thread copies through its own buffer.
    """

    def __init__(self, path: Path, linker: Linker | None = None) -> None:
        """The store rooted at ``path`` (``<root>/.pipeflow/cache/objects``); ``linker``
        decides how workspace files come in (reflink or copy)."""
        self.path = Path(path)
        self._dir = os.path.abspath(self.path)
        temps = TempNames()
        self._writer = ObjectWriter(self._dir, linker if linker is not None else Linker(),
                                    temps)
        self._checkout = Checkout(self, temps)
        self._manifests: dict[str, Manifest] = {}

    # names --------------------------------------------------------------------------

    def path_of(self, oid: str) -> Path:
        """Where object ``oid`` lives (whether or not it exists); StorageError if
        ``oid`` is not an object id."""
        return Path(object_path(self._dir, oid))

    def has(self, oid: str) -> bool:
        """Whether the store holds object ``oid`` (not verified: see ``verify``)."""
        return os.path.exists(object_path(self._dir, oid))

    def iter_oids(self) -> list[str]:
        """The ids of every object the store holds, sorted (not verified)."""
        return local_oids(self._dir)

    def remove(self, oid: str) -> None:
        """Delete object ``oid`` (absent already is fine: another gc may have been first)."""
        self.path_of(oid).unlink(missing_ok=True)

    # adding -------------------------------------------------------------------------

    def add_file(self, src: Path | str, oid: str | None = None, *, move: bool = False) -> str:
        """Store the bytes of ``src`` and return their oid.

        ``oid``, when given, is the already known hash: nothing is done if the object
        exists. A copy is still checked against it in the same pass (StorageError if
        ``src`` changed since it was hashed); a reflink or a move is trusted, since
        reading it back would cost what it saves (checkout verifies anyway).
        ``move=True`` consumes ``src`` (a private file such as a download): it is
        renamed into the store, or deleted if the object exists.
        """
        return self._writer.add_file(os.fspath(src), oid, move=move)

    def add_bytes(self, data: bytes) -> str:
        """Store ``data`` and return its oid."""
        return self._writer.add_bytes(data)

    def add_tree(
        self, root: Path, rel: str, hasher: Hasher, scan: DirScan | None = None
    ) -> HashInfo:
        """Store every file of directory ``root/rel`` (``root`` being ``hasher.root``)
        and its manifest; return the directory's HashInfo (the manifest's oid is its
        hash).

        One pass per file: a file whose hash the hasher already trusts (memo or stat
        cache) is stored under that oid, skipped if present; any other file is copied
        and hashed in the same read, and the manifest is built from those results
        (handed back to ``hasher``, so it is not read again). ``scan`` is a walk of the
        directory the caller already made (``hasher.scan_dir(rel)``).
        """
        if scan is None or scan.rel != rel:
            scan = hasher.scan_dir(rel)
        oid, manifest = self._writer.add_tree(hasher, scan)
        self._manifests[oid] = manifest
        return manifest.info()

    def add_fetched(self, oid: str, fetch: Callable[[Path], bool]) -> bool:
        """Store object ``oid`` from ``fetch(path)``, which writes a new private file at
        ``path`` (in the cache's ``tmp/``) and says whether its bytes are ``oid``'s.
        False, and nothing stored, when they are not."""
        tmp_dir = self.path.parent / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{oid}.{os.getpid()}-{secrets.token_hex(4)}.part"
        try:
            if not fetch(tmp):
                return False
            self.add_file(tmp, oid, move=True)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def written(self) -> list[str]:
        """Objects this instance wrote, for one batched sync at the end of the run."""
        return list(self._writer.written)

    def written_count(self) -> int:
        """How many objects this instance wrote (``len(written())`` without the copy)."""
        return len(self._writer.written)

    @property
    def bytes_written(self) -> int:
        """Bytes copied into the store by this instance (clones and moves not counted)."""
        return self._writer.bytes_written

    # reading ------------------------------------------------------------------------

    def read_bytes(self, oid: str) -> bytes:
        """The bytes of object ``oid``, verified; StorageError if missing or corrupt."""
        try:
            with open(object_path(self._dir, oid), "rb") as f:
                data = f.read()
        except FileNotFoundError as exc:
            raise StorageError(f"object {oid} is missing from the cache") from exc
        got = hash_bytes(data)
        if got != oid:
            raise self.quarantine(oid, got, None)
        return data

    def manifest(self, oid: str) -> Manifest:
        """The directory manifest stored as object ``oid`` (verified, memoized)."""
        found = self._manifests.get(oid)
        if found is None:
            data = self.read_bytes(oid)
            try:
                found = Manifest.from_bytes(data)
            except StorageError as exc:
                # Checked before any checkout writes a byte: a crafted manifest (say a
                # member "../../x" or ".git/hooks/pre-commit") places nothing.
                raise type(exc)(
                    f"folder manifest {oid}: {exc.message.removeprefix('directory manifest: ')};"
                    " nothing was written",
                    hint="the cache or the remote holds a crafted or damaged folder "
                         "manifest: ask who pushed it; `pipeflow repro` recomputes an "
                         "output") from exc
            if found.hash != oid:
                # Bytes are right but not canonical: not written by us.
                raise StorageError(f"object {oid} is not a canonical directory manifest")
            self._manifests[oid] = found
        return found

    def verify(self, oid: str) -> bool:
        """Whether object ``oid`` exists and its bytes match its name. A corrupt object
        is moved to the ``corrupt/`` folder beside the store."""
        try:
            fd = os.open(object_path(self._dir, oid), READ)
        except FileNotFoundError:
            return False
        try:
            got = hash_fd(fd, view())
        finally:
            os.close(fd)
        if got != oid:
            self.quarantine(oid, got, None)
            return False
        return True

    def missing(self, info: HashInfo) -> list[str]:
        """Oids needed to check out ``info`` that the store lacks (for a directory whose
        manifest is missing or corrupt: just the manifest's oid)."""
        if not info.isdir:
            return [] if self.has(info.hash) else [info.hash]
        if not self.has(info.hash):
            return [info.hash]
        try:
            manifest = self.manifest(info.hash)
        except StorageError:
            return [info.hash]
        seen: set[str] = set()
        out = []
        for e in manifest.entries:
            if e.hash not in seen:
                seen.add(e.hash)
                if not self.has(e.hash):
                    out.append(e.hash)
        return out

    def quarantine(self, oid: str, got: str, dest: str | None) -> StorageError:
        """Move object ``oid``, whose bytes hash to ``got``, to the ``corrupt/`` folder
        beside the store; returns the error to raise (``dest``: the checkout it spoiled)."""
        self._writer.forget(oid)
        where = self.path.parent / "corrupt"
        moved = ""
        with contextlib.suppress(OSError):
            where.mkdir(exist_ok=True)
            target = where / f"{oid}.{os.urandom(3).hex()}"
            os.replace(object_path(self._dir, oid), target)
            moved = f"; moved to {target}"
        into = f" while checking out {dest}" if dest else ""
        return StorageError(
            f"object {oid} is corrupt (its bytes hash to {got}){into}{moved}",
            hint="`pipeflow repro` recomputes it and stores a good copy",
        )

    # checkout -----------------------------------------------------------------------

    def checkout(
        self, info: HashInfo, dest: Path, *, linker: Linker, executable: bool = False,
        hasher: Hasher | None = None, root: Path | None = None,
    ) -> None:
        """Make ``dest`` hold ``info`` (a file or a directory), verifying each object as
        it is placed (:mod:`pipeflow.storage.checkout`); a corrupt or missing object
        raises StorageError naming oid and path, and its bytes never reach ``dest``.

        A directory checkout also removes what ``dest`` holds beyond the manifest
        (ignored files included). ``executable`` is the x bit of a single file. With
        ``hasher`` (whose root contains ``dest``), files already holding the right
        bytes are left alone, and the hasher forgets ``dest`` afterwards.

        ``root`` (default: the hasher's) is the project ``dest`` must stay in: a folder
        above ``dest`` that is a symlink leading out of it is refused before anything
        is written or pruned (:mod:`pipeflow.files.workspace_fs`).
        """
        self._checkout.checkout(info, dest, linker=linker, executable=executable,
                                hasher=hasher, root=root)
