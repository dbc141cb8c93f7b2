"""Hashing workspace paths: the directory walk, the per-process memo and the stat cache.

Ignored paths (see ``pipeflow.content.ignore``) are skipped. Symlinks are followed, both the
path asked for and links found inside a directory; ``Hasher.symlinks_under`` lists the
latter so that callers can refuse them in outputs. A path (or a link met while walking
a directory) whose real path leaves the project raises ``OutsideProjectError`` unless
the caller says the path is ``external`` (a dependency the spec marks
``external: true``); one leading into ``/dev``, ``/proc`` or ``/sys`` raises it always,
before anything there is opened or walked.

``Hasher`` trusts, in this order: its per-process memo (one hash per file per process
however many stages read it, until ``forget``), then the cross-process stat cache in the
state database, then the bytes. A stat cache entry is used only when inode, size,
mtime_ns and ctime_ns all match and it is not "racy": recorded less than ``RACY_NS``
after the file's mtime, when a rewrite within the same timestamp tick could still go
unseen. A racy file is re-read and re-recorded, so it becomes trusted once old enough.

A directory has a signature too: xxh3-128 over the stat key (path, device, inode, size,
mtime_ns, ctime_ns, mode) of every entry the walk sees, recorded in the state database
with the directory's HashInfo. When a later walk computes the same signature and the
recording is not racy (taken at least ``RACY_NS`` after the newest file mtime in the
tree), ``hash_path`` answers from that one row: no per-file lookups, no manifest rebuild, no
load of the whole stat cache. Any added, removed or rewritten file at any depth, or a
mode change, changes the signature; a tree holding symlinks is never recorded.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeflow.content import hashing
from pipeflow.content.hashing import HashInfo, hash_bytes
from pipeflow.content.ignore import IGNORABLE_NAMES, IGNORABLE_SUFFIXES, IgnoreRules
from pipeflow.content.manifest import Manifest, ManifestEntry, path_key
from pipeflow.errors import OutsideProjectError, StorageError
from pipeflow.files import safepath
from pipeflow.files.safepath import is_special

if TYPE_CHECKING:
    from pipeflow.state import DirSignature, StateDB, StatEntry

_SIGNATURE_FORMAT = b"dirsig-1\n"

# A stat cache entry is trusted only when it was recorded at least this long after the
# file's mtime: a file rewritten within the timestamp granularity (or by a writer whose
# clock is slightly off) keeps its mtime, so an entry recorded too soon could hide it.
RACY_NS = 2_000_000_000


def normalize_rel(rel: str) -> str:
    """A root-relative POSIX path in canonical form ("" for the root itself)."""
    rel = posixpath.normpath(rel) if rel else "."
    return "" if rel == "." else rel


@dataclass(frozen=True)
class DirScan:
    """What a stat-only walk of a directory saw (no file was read).

    ``files`` holds ``(root-relative path, path within the directory, absolute path,
    stat)`` of every regular file, in walk order; ``links`` the symlinks found inside;
    ``signature`` the directory's stat signature; ``newest_ns`` the newest mtime of any
    file; ``started_ns`` the clock just before the walk began.
    """

    rel: str
    files: list[tuple[str, str, str, os.stat_result]]
    links: tuple[str, ...]
    signature: str
    newest_ns: int
    started_ns: int


class Hasher:
    """Hashes workspace paths with a per-process memo and the cross-process stat cache.

    Meant for one thread at a time (the main thread); ``hash_file`` itself is safe
    anywhere.
    """

    def __init__(
        self, root: Path, state: StateDB | None, ignore: IgnoreRules | None = None
    ) -> None:
        """Hash paths below ``root``; ``state`` holds the stat cache (None: no cache);
        ``ignore`` defaults to the project's rules (``IgnoreRules.load(root)``)."""
        self.root = Path(root)
        self._root_str = os.fspath(self.root)
        self._real_root = os.path.realpath(self._root_str)
        # path -> (link, target) of the first link leading outside found under it, for
        # paths hashed as external: a later non-external ask must still be refused
        self._escapes: dict[str, tuple[str, str]] = {}
        self._state = state
        self._ignore = ignore if ignore is not None else IgnoreRules.load(self.root)
        self._stat_cache: dict[str, StatEntry] | None = None
        # Single rows looked up before (or instead of) loading the whole stat cache.
        self._stat_rows: dict[str, StatEntry | None] = {}
        self._dirty: dict[str, StatEntry] = {}
        self._dirty_dirs: dict[str, DirSignature] = {}
        self._memo: dict[str, HashInfo] = {}
        self._manifests: dict[str, Manifest] = {}
        self._symlinks: dict[str, tuple[str, ...]] = {}
        self.files_read = 0  # how many files were actually read (for tests and benchmarks)

    def _abs(self, rel: str) -> str:
        return os.path.join(self._root_str, rel) if rel else self._root_str

    def hash_path(self, rel: str, *, external: bool = False) -> HashInfo:
        """The hash of a file or directory (relative to the root; symlinks followed).

        Raises FileNotFoundError if it does not exist, StorageError if it is neither a
        regular file nor a directory (or a directory holds such a thing),
        OutsideProjectError if it or a link inside it leads outside the project (unless
        ``external``) or into /dev, /proc or /sys.
        """
        rel = normalize_rel(rel)
        info = self._memo.get(rel)
        if info is not None:
            escape = self._escapes.get(rel)
            if escape is not None and not external:
                raise OutsideProjectError(rel, *escape, special=False)
            return info
        full = self._abs(rel)
        self._check_target(rel, rel, full, external)
        try:
            st = os.stat(full)
        except NotADirectoryError as exc:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), full) from exc
        if stat.S_ISDIR(st.st_mode):
            info = self._dir_info(rel, external)
        elif stat.S_ISREG(st.st_mode):
            info = HashInfo(self._file_hash(rel, full, st, bulk=False), st.st_size)
        else:
            raise StorageError(f"{rel}: not a regular file or directory")
        self._memo[rel] = info
        return info

    def _check_target(self, rel: str, link: str, full: str, external: bool) -> None:
        """Refuse ``full`` (path ``rel``, reached through ``link``) when its real path
        leaves the project and it is not ``external``, or lies in /dev, /proc, /sys."""
        real = os.path.realpath(full)
        if safepath.within(real, self._real_root):
            return
        if is_special(real):
            raise OutsideProjectError(rel, link, real, special=True)
        if not external:
            raise OutsideProjectError(rel, link, real, special=False)
        self._escapes.setdefault(rel, (link, real))

    def _dir_info(self, rel: str, external: bool = False) -> HashInfo:
        found = self._manifests.get(rel)
        if found is not None:
            return found.info()
        scan = self.scan_dir(rel, external=external)
        if self._state is not None and not scan.links:
            row = self._state.dir_signature(rel)
            if (
                row is not None
                and row.signature == scan.signature
                and row.recorded_ns - row.newest_ns >= RACY_NS
            ):
                return HashInfo(row.hash, row.size, isdir=True, nfiles=row.nfiles)
        hashes = [self._file_hash(r, full, st, bulk=True) for r, _, full, st in scan.files]
        return self._adopt(scan, hashes).info()

    def manifest(self, rel: str, *, external: bool = False) -> Manifest:
        """The manifest of the directory ``rel`` (memoized until ``forget``); refuses
        links leading outside as ``hash_path`` does."""
        rel = normalize_rel(rel)
        found = self._manifests.get(rel)
        escape = self._escapes.get(rel)
        if escape is not None and not external:
            raise OutsideProjectError(rel, *escape, special=False)
        if found is not None:
            return found
        self._check_target(rel, rel, self._abs(rel), external)
        scan = self.scan_dir(rel, external=external)
        hashes = [self._file_hash(r, full, st, bulk=True) for r, _, full, st in scan.files]
        return self._adopt(scan, hashes)

    def scan_dir(self, rel: str, *, external: bool = False) -> DirScan:
        """Walk directory ``rel`` with stat only (no file is read): its files, symlinks
        and stat signature. Raises as ``manifest`` does for what a tree may not hold;
        a link leading outside the project (unless ``external``) or into /dev, /proc or
        /sys is refused before it is entered."""
        rel = normalize_rel(rel)
        full = self._abs(rel)
        self._check_target(rel, rel, full, external)
        started = time.time_ns()
        st = os.stat(full)
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), full)
        prefix = f"{rel}/" if rel else ""
        files: list[tuple[str, str, str, os.stat_result]] = []
        links: list[str] = []
        keys: list[tuple[str, int, int, int, int, int, int]] = []
        newest = self._walk(full, prefix, "", files, links, keys, {(st.st_dev, st.st_ino)},
                            (rel, external))
        # repr of str/int tuples is unambiguous, and one C-level call for the lot.
        data = _SIGNATURE_FORMAT + repr(keys).encode("utf-8", "surrogateescape")
        sorted_links = tuple(sorted(links, key=path_key))
        self._symlinks[rel] = sorted_links
        return DirScan(rel, files, sorted_links, hash_bytes(data), newest, started)

    def adopt_hashes(self, scan: DirScan, hashes: list[str], recorded_ns: int) -> Manifest:
        """Build the manifest of ``scan`` from file ``hashes`` (one per ``scan.files``,
        in order) computed elsewhere, e.g. while copying the files into the store
        starting at ``recorded_ns``; they join the memo and the stat cache as if read
        here."""
        from pipeflow.state import StatEntry

        for (rel, _, _, st), h in zip(scan.files, hashes, strict=True):
            entry = StatEntry(st.st_ino, st.st_size, st.st_mtime_ns, h, recorded_ns,
                              st.st_ctime_ns)
            self._remember_stat(rel, entry)
            self._memo[rel] = HashInfo(h, st.st_size)
        return self._adopt(scan, hashes)

    def known_hash(self, rel: str, st: os.stat_result) -> str | None:
        """The hash of file ``rel`` with stat ``st`` if the memo or a trusted stat cache
        entry knows it, without reading the file; None otherwise."""
        info = self._memo.get(rel)
        if info is not None and not info.isdir:
            return info.hash
        entry = self._lookup_stat(rel, bulk=True)
        return entry.hash if entry is not None and _trusted(entry, st) else None

    def _adopt(self, scan: DirScan, hashes: list[str]) -> Manifest:
        entries = [
            ManifestEntry(in_dir, h, st.st_size, bool(st.st_mode & stat.S_IXUSR))
            for (_, in_dir, _, st), h in zip(scan.files, hashes, strict=True)
        ]
        manifest = Manifest(tuple(entries))
        rel = scan.rel
        self._manifests[rel] = manifest
        self._symlinks[rel] = scan.links
        info = manifest.info()
        self._memo[rel] = info
        if self._state is not None and not scan.links:
            from pipeflow.state import DirSignature

            self._dirty_dirs[rel] = DirSignature(
                scan.signature, info.hash, info.size, len(entries), scan.started_ns,
                scan.newest_ns,
            )
        return manifest

    def symlinks_under(self, rel: str) -> tuple[str, ...]:
        """Symlinks found inside directory ``rel`` (paths relative to it), followed when
        hashing; outputs should not contain any."""
        rel = normalize_rel(rel)
        found = self._symlinks.get(rel)
        if found is None:
            found = self.scan_dir(rel).links  # stat only: no file needs reading
        return found

    def _walk(
        self,
        dir_path: str,
        root_prefix: str,
        dir_prefix: str,
        files: list[tuple[str, str, str, os.stat_result]],
        links: list[str],
        keys: list[tuple[str, int, int, int, int, int, int]],
        ancestors: set[tuple[int, int]],
        top: tuple[str, bool] = ("", False),
    ) -> int:
        ignore = self._ignore
        # Without a .pipeflowignore only a few names can be ignored: test those alone.
        check_all = ignore.has_patterns
        newest = 0
        with os.scandir(dir_path) as it:
            items = list(it)
        for item in items:
            name = item.name
            in_dir = dir_prefix + name
            rel = root_prefix + in_dir
            is_link = item.is_symlink()
            try:
                # d_type answers without a syscall, so ignored entries cost no stat.
                if ((check_all or name in IGNORABLE_NAMES or name.endswith(IGNORABLE_SUFFIXES))
                        and ignore.is_ignored_entry(name, rel, item.is_dir())):
                    continue
                if is_link:  # judged before anything behind it is stat'ed or walked
                    self._check_target(top[0], rel, item.path, top[1])
                st = item.stat()  # follows symlinks
            except FileNotFoundError as exc:
                if is_link:
                    raise StorageError(f"{rel}: symlink to a missing file") from exc
                continue  # deleted while walking: it is not part of the directory
            if is_link:
                links.append(in_dir)
            mode = st.st_mode
            mtime = st.st_mtime_ns
            keys.append(
                (in_dir, st.st_dev, st.st_ino, st.st_size, mtime, st.st_ctime_ns, mode)
            )
            if stat.S_ISREG(mode):
                # Only file bytes can change unseen within a tick: a directory's content
                # is its names, which the signature holds.
                if mtime > newest:
                    newest = mtime
                files.append((rel, in_dir, item.path, st))
            elif stat.S_ISDIR(mode):
                key = (st.st_dev, st.st_ino)
                if key in ancestors:
                    raise StorageError(f"{rel}: symlink loop (points to a directory above it)")
                ancestors.add(key)
                sub = self._walk(item.path, root_prefix, in_dir + "/", files, links, keys,
                                 ancestors, top)
                newest = max(newest, sub)
                ancestors.discard(key)
            else:
                raise StorageError(f"{rel}: not a regular file or directory")
        return newest

    def _lookup_stat(self, rel: str, *, bulk: bool) -> StatEntry | None:
        cache = self._stat_cache
        if cache is not None:
            return cache.get(rel)
        if self._state is None:
            self._stat_cache = dict(self._dirty)
            return self._stat_cache.get(rel)
        if bulk:
            # A directory walk: one query for the whole table beats one per file.
            cache = self._state.stat_entries()
            cache.update(self._dirty)
            self._stat_cache = cache
            return cache.get(rel)
        rows = self._stat_rows
        if rel not in rows:
            rows[rel] = self._state.stat_entry(rel)
        return rows[rel]

    def _remember_stat(self, rel: str, entry: StatEntry) -> None:
        if self._stat_cache is not None:
            self._stat_cache[rel] = entry
        else:
            self._stat_rows[rel] = entry
        self._dirty[rel] = entry

    def _file_hash(self, rel: str, full: str, st: os.stat_result, *, bulk: bool) -> str:
        info = self._memo.get(rel)
        if info is not None and not info.isdir:
            return info.hash
        entry = self._lookup_stat(rel, bulk=bulk)
        if entry is not None and _trusted(entry, st):
            h = entry.hash
        else:
            from pipeflow.state import StatEntry

            # Taken before reading: any later rewrite happens after this instant, so an
            # mtime older than it by RACY_NS proves the bytes we read are still there.
            now = time.time_ns()
            # through the module: the one place tests count file reads
            h = hashing.hash_file(full)
            self.files_read += 1
            self._remember_stat(
                rel, StatEntry(st.st_ino, st.st_size, st.st_mtime_ns, h, now, st.st_ctime_ns)
            )
        self._memo[rel] = HashInfo(h, st.st_size)
        return h

    def forget(self, rel: str) -> None:
        """Drop what this process remembers of ``rel``, everything under it and the
        directories above it (a stage is about to rewrite it)."""
        rel = normalize_rel(rel)
        if not rel:
            self._memo.clear()
            self._manifests.clear()
            self._symlinks.clear()
            self._escapes.clear()
            return
        prefix = rel + "/"
        parents = set()
        parts = rel.split("/")
        parents.add("")
        for i in range(1, len(parts)):
            parents.add("/".join(parts[:i]))
        tables: tuple[dict[str, object], ...] = (
            self._memo,  # type: ignore[assignment]
            self._manifests,
            self._symlinks,
            self._escapes,
        )
        for table in tables:
            doomed = [k for k in table if k == rel or k.startswith(prefix) or k in parents]
            for k in doomed:
                del table[k]

    def flush(self) -> None:
        """Write new or changed stat cache entries and directory signatures to the state
        database."""
        if self._state is not None:
            if self._dirty:
                self._state.put_stat_entries(self._dirty.items())
            if self._dirty_dirs:
                self._state.put_dir_signatures(self._dirty_dirs.items())
        self._dirty.clear()
        self._dirty_dirs.clear()


def _trusted(entry: StatEntry, st: os.stat_result) -> bool:
    """Whether a stat cache entry matches ``st`` and is old enough to be believed."""
    return (
        entry.mtime_ns == st.st_mtime_ns
        and entry.size == st.st_size
        and entry.inode == st.st_ino
        and entry.ctime_ns in (st.st_ctime_ns, 0)
        and entry.recorded_ns - entry.mtime_ns >= RACY_NS
    )
