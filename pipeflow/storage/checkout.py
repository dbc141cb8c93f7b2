"""The checkout engine: placing a store's objects into the workspace by link mode.

Every object is verified as it is placed: a copy hashes what it copies, a clone hashes
the extents it shares, a link into a new place checks the object's size (a link
replacing a file reads the object first); a corrupt or missing object raises
StorageError naming oid and path, and its bytes never stay at the destination.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pipeflow import faults
from pipeflow.content.hasher import Hasher
from pipeflow.content.hashing import HashInfo
from pipeflow.content.manifest import Manifest, ManifestEntry
from pipeflow.errors import StorageError
from pipeflow.files import workspace_fs
from pipeflow.storage import links
from pipeflow.storage.copying import CREATE, READ, copy_and_hash, hash_fd, unlink_quietly, view
from pipeflow.storage.layout import object_path
from pipeflow.storage.leftovers import TempNames
from pipeflow.storage.links import Linker, LinkMode
from pipeflow.storage.threads import in_threads

if TYPE_CHECKING:
    from pipeflow.storage.store import ObjectStore

_LINK_THREADS = 4
_LINKS_PER_THREAD = 500
"""Below this many links per thread, one thread fills the folder."""


class Checkout:
    """Places the objects of ``store`` into the workspace."""

    def __init__(self, store: ObjectStore, temps: TempNames) -> None:
        self._store = store
        # Absolute: objects are opened and linked by this path, whatever the current
        # directory later.
        self._dir = os.path.abspath(store.path)
        self._temps = temps

    def checkout(
        self, info: HashInfo, dest: Path, *, linker: Linker, executable: bool = False,
        hasher: Hasher | None = None, root: Path | None = None,
    ) -> None:
        """See :meth:`ObjectStore.checkout`."""
        if root is None and hasher is not None:
            root = hasher.root
        if root is not None:
            workspace_fs.check_place(root, dest)
        dest_s = os.path.abspath(dest)
        parent = os.path.dirname(dest_s)
        mode = linker.mode_for(self._store.path, Path(parent))
        try:
            if info.isdir:
                self._checkout_dir(info.hash, dest_s, mode, hasher)
            else:
                os.makedirs(parent, exist_ok=True)
                fresh = not os.path.lexists(dest_s)
                if os.path.isdir(dest_s) and not os.path.islink(dest_s):
                    shutil.rmtree(dest_s)
                self._place(info.hash, dest_s, executable, mode,
                            size=info.size if fresh else None)
        except OSError as exc:
            raise StorageError(f"cannot check out {dest_s}: {exc}") from exc
        finally:
            if hasher is not None:
                hasher.forget(os.path.relpath(dest_s, os.path.abspath(hasher.root)))

    def _checkout_dir(self, oid: str, dest: str, mode: LinkMode, hasher: Hasher | None) -> None:
        manifest = self._store.manifest(oid)
        fresh = not os.path.lexists(dest)
        if not fresh and not (os.path.isdir(dest) and not os.path.islink(dest)):
            os.unlink(dest)
        keep = _unchanged(manifest, dest, hasher) if hasher is not None and not fresh else {}
        os.makedirs(dest, exist_ok=True)
        if not fresh:
            files = {e.path for e in manifest.entries}
            dirs = {p.rsplit("/", 1)[0] for p in files if "/" in p}
            for d in list(dirs):
                while "/" in d:
                    d = d.rsplit("/", 1)[0]
                    dirs.add(d)
            _prune(dest, "", files, dirs)
        made = {""}
        try:
            if fresh and mode == "hardlink":
                self._link_new_dir(manifest, dest)
                return
            for e in manifest.entries:
                if keep.get(e.path) == (e.hash, e.executable):
                    continue
                folder, _, _ = e.path.rpartition("/")
                if folder not in made:
                    os.makedirs(f"{dest}/{folder}", exist_ok=True)
                    made.add(folder)
                faults.point("checkout.file")
                # A folder we just made holds nothing to replace: each file goes straight
                # to its final name (one directory operation instead of create + rename).
                self._place(e.hash, f"{dest}/{e.path}", e.executable, mode, direct=fresh)
        except BaseException:
            if fresh:  # nothing was there before: leave nothing half made
                shutil.rmtree(dest, ignore_errors=True)
            raise

    def _link_new_dir(self, manifest: Manifest, dest: str) -> None:
        """Fill the new folder ``dest`` with hard links: per file a ``stat`` (the size
        check of ``_place``) and a link straight to its final name, nothing else.

        A big folder is filled by a few threads at once (both calls release the GIL):
        see ``benchmarks/RESULTS.md``. Files that need more (an executable is copied, a
        wrong size is read and verified) are placed afterwards, one by one."""
        made = {""}
        jobs: list[tuple[str, str, ManifestEntry]] = []
        slow: list[ManifestEntry] = []
        for entry in manifest.entries:
            path, oid, _, executable = entry
            if "/" in path:
                folder = path.rpartition("/")[0]
                if folder not in made:
                    os.makedirs(f"{dest}/{folder}", exist_ok=True)
                    made.add(folder)
            if executable:
                slow.append(entry)
            else:
                # the manifest's oids were checked when it was read
                jobs.append((object_path(self._dir, oid), f"{dest}/{path}", entry))

        threads = min(_LINK_THREADS, (os.cpu_count() or 1), len(jobs) // _LINKS_PER_THREAD)
        if threads > 1:
            odd = in_threads(_link_share, [jobs[k::threads] for k in range(threads)])
        else:
            odd = _link_share(jobs, threading.Event())
        # an executable is copied; a wrong size is read, and refused if corrupt
        for e in slow + odd:
            self._place(e.hash, f"{dest}/{e.path}", e.executable, "hardlink", direct=True)

    def _place(
        self, oid: str, dst: str, executable: bool, mode: LinkMode, *, direct: bool = False,
        size: int | None = None,
    ) -> None:
        """Put object ``oid`` at ``dst``; ``direct``: ``dst`` does not exist and is
        written in place (created exclusively, removed again if anything fails, so a
        corrupt object's bytes still never stay there), else through a temporary name.

        Copies are always verified. A link copies no bytes: given ``size`` (the caller
        passes it when ``dst`` is a new place) the object is checked by its size only,
        so a hard-link checkout costs a stat and a link per file whatever the data's
        size; a link replacing something (a restore of a file found different) reads and
        verifies the object first. ``pipeflow verify`` re-hashes every object."""
        src = object_path(self._dir, oid)
        if mode == "hardlink" and executable:
            mode = "copy"  # a shared read-only inode cannot carry this path's x bit
        if not direct:
            self._temps.sweep_once(os.path.dirname(dst))
        tmp = dst if direct else self._temps.beside(dst)
        try:
            if mode in ("copy", "reflink"):
                self._place_bytes(oid, src, tmp, dst, executable, mode)
            else:
                self._place_link(oid, src, tmp, dst, size)
            if not direct:
                os.replace(tmp, dst)
        except FileExistsError:
            if not direct:  # direct: someone else's file, not ours to remove
                unlink_quietly(tmp)
            raise
        except BaseException:
            unlink_quietly(tmp)
            raise

    def _place_bytes(
        self, oid: str, src: str, tmp: str, dst: str, executable: bool, mode: LinkMode
    ) -> None:
        sfd = _open_object(oid, src, dst)
        try:
            # Created with the final permissions: the umask applies, no chmod needed.
            dfd = os.open(tmp, CREATE, 0o777 if executable else 0o666)
            try:
                cloned = False
                if mode == "reflink":
                    try:
                        links.reflink_fd(sfd, dfd)
                        cloned = True
                    except OSError:
                        pass  # this file would not clone: copy it instead
                # A clone shares these very extents, so hashing the source checks it.
                got = hash_fd(sfd, view()) if cloned else copy_and_hash(sfd, dfd, view())[0]
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)
        if got != oid:
            raise self._store.quarantine(oid, got, dst)

    def _place_link(self, oid: str, src: str, tmp: str, dst: str, size: int | None) -> None:
        checked = False
        if size is not None:
            try:
                checked = os.stat(src).st_size == size
            except FileNotFoundError as exc:
                raise _missing(oid, dst) from exc
        if not checked:  # no size to trust, or the wrong one: read it to find out
            fd = _open_object(oid, src, dst)
            try:
                got = hash_fd(fd, view())
            finally:
                os.close(fd)
            if got != oid:
                raise self._store.quarantine(oid, got, dst)
        os.link(src, tmp)


def _link_share(share: list[tuple[str, str, ManifestEntry]],
                stop: threading.Event) -> list[ManifestEntry]:
    """Hard-link each file whose object has the right size; the others are returned."""
    stat_of = os.stat
    link = os.link
    odd = []
    for src, dst, entry in share:
        if stop.is_set():
            break
        try:
            right_size = stat_of(src).st_size == entry.size
        except FileNotFoundError as exc:
            raise _missing(entry.hash, dst) from exc
        if right_size:
            faults.point("checkout.link")
            link(src, dst)
        else:
            odd.append(entry)
    return odd


def _unchanged(manifest: Manifest, dest: str, hasher: Hasher) -> dict[str, tuple[str, bool]]:
    """The files under ``dest`` that already hold their manifest entry's bytes."""
    rel = os.path.relpath(dest, os.path.abspath(hasher.root))
    if rel.startswith("..") or not os.path.isdir(dest):
        return {}
    try:
        current = hasher.manifest(rel)
        symlinks = set(hasher.symlinks_under(rel))
    except (OSError, StorageError):
        return {}  # unreadable as it is: rewrite everything
    return {e.path: (e.hash, e.executable) for e in current.entries if e.path not in symlinks}


def _prune(folder: str, prefix: str, files: set[str], dirs: set[str]) -> None:
    """Remove what ``folder`` holds beyond ``files`` and ``dirs`` (paths relative to the
    checkout root, ``prefix`` being ``folder``'s)."""
    with os.scandir(folder) as it:
        items = list(it)
    for item in items:
        rel = prefix + item.name
        if item.is_dir(follow_symlinks=False):
            if rel in dirs:
                _prune(item.path, rel + "/", files, dirs)
            else:
                shutil.rmtree(item.path)
        elif rel not in files:
            os.unlink(item.path)


def _open_object(oid: str, src: str, dst: str) -> int:
    try:
        return os.open(src, READ)
    except FileNotFoundError as exc:
        raise _missing(oid, dst) from exc


def _missing(oid: str, dest: str) -> StorageError:
    return StorageError(f"object {oid} for {dest} is missing from the cache",
                        hint="`pipeflow repro` recomputes it")
