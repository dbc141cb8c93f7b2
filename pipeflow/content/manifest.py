"""Directory manifests: the sorted list of a directory's files, whose hash is the
directory's hash.

One entry per regular file below the directory (POSIX path relative to it, file hash,
size, executable bit), sorted by the UTF-8 bytes of the path. Only files count: empty
subdirectories do not change the hash (as in git). The executable bit is the owner's
(``st_mode & 0o100``), as git records it; the rest of the mode depends on the umask and
is not content. A manifest read from the store or a remote is untrusted: ``from_bytes``
refuses unsafe paths (``UnsafeManifestError``) and impossible trees.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from typing import NamedTuple

from pipeflow.content.hashing import HashInfo, hash_bytes, is_hash
from pipeflow.errors import StorageError
from pipeflow.files import safeload, safepath

MANIFEST_FORMAT = 1


class ManifestEntry(NamedTuple):
    """One file of a directory: path relative to the directory, hash, size, exec bit.

    A named tuple: directories hold tens of thousands of these, built on every commit
    and manifest read."""

    path: str
    hash: str
    size: int
    executable: bool


def path_key(path: str) -> bytes:
    # surrogateescape: a non-UTF-8 file name (Linux allows any bytes) sorts by its bytes.
    return path.encode("utf-8", "surrogateescape")


_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))
# In manifest JSON a path is the first string of an entry: it follows '[' (and maybe
# JSON whitespace). A match anywhere (even where no path is) only means each path is
# checked one by one.
# A ".git" or ".pipeflow" segment anywhere, too, in any case and with trailing dots or
# spaces (pipeflow.files.safepath.is_reserved; hashes are hex: only a path can hold it).
_UNSAFE_SHAPES = re.compile(
    rb'\[[ \t\n\r]*"(?:/|"|\.\.?[/"])|//|/"|/\.\.?[/"]|[/"]\.(?:git|pipeflow)[. ]*[/"]',
    re.IGNORECASE)


@dataclass(frozen=True)
class Manifest:
    """The sorted list of files of a directory; its hash is the directory's hash.

    Canonical bytes (``to_bytes``) are one compact JSON object, ASCII only (other
    characters and undecodable file-name bytes are ``\\u`` escapes), no whitespace::

        {"format":1,"entries":[["a/b.txt","<hash>",12,false],...]}

    each entry being ``[path, hash, size, executable]`` in that order, sorted by the
    UTF-8 bytes of ``path``. ``format`` changes whenever these bytes would.
    """

    entries: tuple[ManifestEntry, ...]
    _bytes: bytes | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        entries = self.entries
        keys = [path_key(e.path) for e in entries]
        if any(a > b for a, b in pairwise(keys)):
            order = sorted(range(len(entries)), key=keys.__getitem__)
            object.__setattr__(self, "entries", tuple(entries[i] for i in order))
        elif not isinstance(entries, tuple):
            object.__setattr__(self, "entries", tuple(entries))

    def to_bytes(self) -> bytes:
        """The canonical serialization (see the class docstring)."""
        if self._bytes is None:
            doc = {
                "format": MANIFEST_FORMAT,
                "entries": [[e.path, e.hash, e.size, e.executable] for e in self.entries],
            }
            object.__setattr__(self, "_bytes", _ENCODER.encode(doc).encode("ascii"))
        assert self._bytes is not None
        return self._bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse canonical bytes; raises StorageError for anything that is not a manifest
        (including unsafe paths such as ``../x``, duplicates, or a file that is also a
        directory)."""
        safeload.check_size(len(data), "directory manifest", "manifest",
                            safeload.plain(StorageError))
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise StorageError(f"not a directory manifest: {exc}") from exc
        except RecursionError:
            raise StorageError("not a directory manifest (it nests too deeply)") from None
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            raise StorageError("not a directory manifest (unknown format)")
        raw = doc.get("entries")
        if not isinstance(raw, list):
            raise StorageError("not a directory manifest (no entries)")
        # One scan of the bytes can vouch for every path at once: with no escape in
        # the text and none of these shapes (a path that is empty, absolute, ends in
        # "/", or has an empty, "." or ".." part), no path is unsafe. Else each is
        # checked.
        # json.loads also reads UTF-16/32 (NUL bytes in ASCII text): those are checked.
        check_paths = (data[:1] != b"{" or not data.isascii() or b"\0" in data
                       or b"\\" in data or _UNSAFE_SHAPES.search(data) is not None)
        entries: list[ManifestEntry] = []
        append = entries.append
        for item in raw:
            # Exact types (JSON gives no subclasses): one cheap test per field, as a
            # folder's manifest may hold tens of thousands of entries.
            if not (type(item) is list and len(item) == 4):
                raise StorageError(f"directory manifest: bad entry {item!r}")
            path, oid, size, executable = item
            if not (type(path) is str and type(oid) is str and is_hash(oid)
                    and type(size) is int and size >= 0 and type(executable) is bool):
                raise StorageError(f"directory manifest: bad entry {item!r}")
            # a long path may break a length limit: the only case the scan cannot see
            if check_paths or len(path) > _SAFE_LEN:
                _check_safe_path(path)
            append(ManifestEntry(path, oid, size, executable))
        manifest = cls(tuple(entries))
        _check_tree_shape(manifest.entries)
        return manifest

    @cached_property
    def hash(self) -> str:
        """The directory's hash: ``hash_bytes(self.to_bytes())``."""
        return hash_bytes(self.to_bytes())

    @property
    def size(self) -> int:
        """Total bytes of the files."""
        return sum(e.size for e in self.entries)

    def info(self) -> HashInfo:
        """The directory's HashInfo."""
        return HashInfo(self.hash, self.size, isdir=True, nfiles=len(self.entries))


class UnsafeManifestError(StorageError):
    """A folder manifest naming a member pipeflow must not place (``../x``,
    ``.git/hooks/x``): exit 2, like an unsafe path in the lock."""

    exit_code = 2


_SAFE_LEN = 255
"""Paths up to this long pass the byte scan alone (no segment can exceed the limit)."""


def _check_safe_path(path: str) -> None:
    # The rule of pipeflow.files.safepath: relative, normal, no control characters, outside
    # .git/ and .pipeflow/, within length limits (a manifest comes from a remote).
    from pipeflow.files import safepath

    why = safepath.problem(path)
    if why is not None:
        raise UnsafeManifestError(f"directory manifest: unsafe path {path[:200]!r} (it {why})")


def _check_tree_shape(entries: tuple[ManifestEntry, ...]) -> None:
    # Folders are numbered by (parent number, name), so a path costs one step per
    # segment: joining every prefix was quadratic in depth (minutes for a crafted
    # manifest of deep, distinct paths).
    folders: dict[tuple[int, str], int] = {}
    files: dict[tuple[int, str], str] = {}
    for e in entries:
        path = e.path
        *parents, name = path.split("/")
        if len(parents) >= safepath.MAX_DEPTH:  # safepath's rule, checked here for free
            raise StorageError(f"directory manifest: {path[:80]!r}... is nested deeper than "
                               f"{safepath.MAX_DEPTH} folders")
        parent = 0
        for part in parents:
            parent = folders.setdefault((parent, part), len(folders) + 1)
        if (parent, name) in files:
            raise StorageError(f"directory manifest: duplicate path {path!r}")
        files[(parent, name)] = path
    clash = [path for key, path in files.items() if key in folders]
    if clash:
        raise StorageError(f"directory manifest: {min(clash)!r} is both a file and a directory")
