"""The object store: add, read, verify, checkout, corruption, and the batched sync."""

from __future__ import annotations

import os
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeflow.content.hasher import Hasher
from pipeflow.content.hashing import BUF_SIZE, HashInfo, hash_bytes
from pipeflow.content.ignore import IgnoreRules
from pipeflow.content.manifest import Manifest
from pipeflow.errors import StorageError
from pipeflow.storage import checkout, durability, links
from pipeflow.storage.leftovers import TEMP_SUFFIX
from pipeflow.storage.links import Linker
from pipeflow.storage.store import ObjectStore


def write(path: Path, data: bytes = b"x", *, executable: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, 0o755 if executable else 0o644)
    past = time.time_ns() - 60 * 10**9
    os.utime(path, ns=(past, past))
    return path


def temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(TEMP_SUFFIX)]


def corrupt(path: Path) -> None:
    """Flip the first byte of a (read-only) object."""
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    os.chmod(path, 0o444)


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / ".pipeflow" / "cache" / "objects", Linker(setting="copy"))


def files_of(folder: Path) -> dict[str, tuple[bytes, bool]]:
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), bool(p.stat().st_mode & stat.S_IXUSR))
        for p in folder.rglob("*")
        if p.is_file()
    }


# adding and reading ----------------------------------------------------------------------


def test_add_file_shards_makes_read_only_and_reports_written(
    tmp_path: Path, store: ObjectStore
) -> None:
    src = write(tmp_path / "ws" / "model.pkl", b"weights")
    oid = store.add_file(src)
    assert oid == hash_bytes(b"weights")
    path = store.path_of(oid)
    assert path == store.path / oid[:2] / oid[2:]
    assert store.has(oid)
    assert path.read_bytes() == b"weights"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert store.written() == [str(path)]
    assert src.read_bytes() == b"weights"  # the source stays
    assert temps(tmp_path) == []


def test_add_file_never_rewrites_an_existing_object(tmp_path: Path, store: ObjectStore) -> None:
    src = write(tmp_path / "a", b"same")
    oid = store.add_file(src)
    before = os.stat(store.path_of(oid))
    other = ObjectStore(store.path, Linker(setting="copy"))
    assert other.add_file(write(tmp_path / "b", b"same")) == oid
    assert other.add_file(src, oid) == oid
    after = os.stat(store.path_of(oid))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert other.written() == []


def test_add_file_with_a_stale_oid_refuses(tmp_path: Path, store: ObjectStore) -> None:
    src = write(tmp_path / "a", b"first")
    stale = hash_bytes(b"first")
    write(src, b"second")  # changed after it was hashed
    with pytest.raises(StorageError, match="changed while being stored"):
        store.add_file(src, stale)
    assert not store.has(stale)
    assert temps(tmp_path) == []


def test_add_file_move_consumes_the_source(tmp_path: Path, store: ObjectStore) -> None:
    src = write(tmp_path / "download.part", b"blob")
    oid = store.add_file(src, move=True)
    assert not src.exists()
    assert store.path_of(oid).read_bytes() == b"blob"
    assert stat.S_IMODE(store.path_of(oid).stat().st_mode) == 0o444
    again = write(tmp_path / "again.part", b"blob")
    assert store.add_file(again, oid, move=True) == oid
    assert not again.exists()


def test_add_bytes_and_read_bytes(store: ObjectStore) -> None:
    oid = store.add_bytes(b"manifest-ish")
    assert store.read_bytes(oid) == b"manifest-ish"
    assert store.add_bytes(b"manifest-ish") == oid
    assert len(store.written()) == 1
    assert store.verify(oid)


def test_bad_oid_and_missing_object(store: ObjectStore) -> None:
    with pytest.raises(StorageError, match="not an object id"):
        store.path_of("../../etc/passwd")
    with pytest.raises(StorageError):
        store.has("ABCDEF" * 5 + "AB")
    missing = hash_bytes(b"never stored")
    assert not store.has(missing)
    assert not store.verify(missing)
    with pytest.raises(StorageError, match="missing"):
        store.read_bytes(missing)


def test_corrupt_object_is_detected_on_read_and_quarantined(store: ObjectStore) -> None:
    oid = store.add_bytes(b"precious bytes")
    corrupt(store.path_of(oid))
    with pytest.raises(StorageError, match=oid) as err:
        store.read_bytes(oid)
    assert "corrupt" in str(err.value)
    assert not store.has(oid)  # never offered again
    assert list((store.path.parent / "corrupt").iterdir())
    assert store.add_bytes(b"precious bytes") == oid  # a good copy can come back
    assert store.read_bytes(oid) == b"precious bytes"


def test_verify_detects_corruption(store: ObjectStore) -> None:
    oid = store.add_bytes(b"abc")
    assert store.verify(oid)
    corrupt(store.path_of(oid))
    assert not store.verify(oid)
    assert not store.has(oid)


def test_add_tree_stores_files_and_manifest(tmp_path: Path, store: ObjectStore) -> None:
    write(tmp_path / "d" / "a.txt", b"a")
    write(tmp_path / "d" / "sub" / "b.txt", b"b", executable=True)
    write(tmp_path / "d" / "dup.txt", b"a")
    hasher = Hasher(tmp_path, None)
    info = store.add_tree(tmp_path, "d", hasher)
    assert info == hasher.hash_path("d")
    assert info.isdir and info.nfiles == 3 and info.size == 3
    assert store.manifest(info.hash) == hasher.manifest("d")
    assert store.missing(info) == []
    assert len(store.written()) == 3  # two distinct files + the manifest
    assert temps(tmp_path) == []


def test_manifest_object_must_be_canonical(store: ObjectStore) -> None:
    oid = store.add_bytes(b'{"format": 1, "entries": []}')  # valid JSON, not canonical
    with pytest.raises(StorageError, match="canonical"):
        store.manifest(oid)
    with pytest.raises(StorageError):
        store.manifest(store.add_bytes(b"not json"))


def test_missing(tmp_path: Path, store: ObjectStore) -> None:
    write(tmp_path / "d" / "a", b"a")
    write(tmp_path / "d" / "b", b"b")
    info = store.add_tree(tmp_path, "d", Hasher(tmp_path, None))
    assert store.missing(info) == []
    b_oid = hash_bytes(b"b")
    os.unlink(store.path_of(b_oid))
    assert store.missing(info) == [b_oid]
    assert store.missing(HashInfo(b_oid, 1)) == [b_oid]
    assert store.missing(HashInfo(hash_bytes(b"a"), 1)) == []
    fresh = ObjectStore(store.path, Linker(setting="copy"))
    os.unlink(fresh.path_of(info.hash))
    assert fresh.missing(info) == [info.hash]


# checkout --------------------------------------------------------------------------------


def test_checkout_file(tmp_path: Path, store: ObjectStore) -> None:
    oid = store.add_bytes(b"model")
    dest = tmp_path / "ws" / "models" / "model.pkl"
    store.checkout(HashInfo(oid, 5), dest, linker=Linker(setting="copy"))
    assert dest.read_bytes() == b"model"
    assert os.access(dest, os.W_OK)  # a private copy, not the read-only object
    store.checkout(HashInfo(oid, 5), dest, linker=Linker(setting="copy"), executable=True)
    assert dest.stat().st_mode & stat.S_IXUSR
    assert temps(tmp_path) == []


def test_checkout_file_replaces_a_directory_in_the_way(tmp_path: Path, store: ObjectStore) -> None:
    oid = store.add_bytes(b"file now")
    write(tmp_path / "out" / "old" / "x")
    store.checkout(HashInfo(oid, 8), tmp_path / "out", linker=Linker(setting="copy"))
    assert (tmp_path / "out").read_bytes() == b"file now"


def test_checkout_directory_reproduces_tree_and_removes_extras(
    tmp_path: Path, store: ObjectStore
) -> None:
    src = tmp_path / "src"
    write(src / "a.txt", b"a")
    write(src / "bin" / "tool", b"#!/bin/sh\n", executable=True)
    write(src / "deep" / "er" / "c", b"c")
    info = store.add_tree(tmp_path, "src", Hasher(tmp_path, None))
    dest = tmp_path / "dest"
    write(dest / "stale.txt", b"old")
    write(dest / "olddir" / "x", b"old")
    write(dest / "a.txt" / "in-the-way", b"dir where a file goes")
    write(dest / "bin", b"file where a dir goes")
    write(dest / "__pycache__" / "m.pyc", b"junk")
    store.checkout(info, dest, linker=Linker(setting="copy"))
    assert files_of(dest) == files_of(src)
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt", "bin", "deep"]
    assert Hasher(tmp_path, None).hash_path("dest") == info
    assert temps(tmp_path) == []


def test_undecodable_file_names_round_trip(tmp_path: Path, store: ObjectStore) -> None:
    src = tmp_path / "src"
    src.mkdir()
    raw = os.path.join(os.fsencode(src), b"caf\xe9-latin1.txt")
    with open(raw, "wb") as f:
        f.write(b"bytes")
    info = store.add_tree(tmp_path, "src", Hasher(tmp_path, None))
    assert Manifest.from_bytes(store.read_bytes(info.hash)) == store.manifest(info.hash)
    store.checkout(info, tmp_path / "out", linker=Linker(setting="copy"))
    assert os.listdir(os.fsencode(tmp_path / "out")) == [b"caf\xe9-latin1.txt"]
    assert Hasher(tmp_path, None).hash_path("out") == info


def test_checkout_empty_directory(tmp_path: Path, store: ObjectStore) -> None:
    (tmp_path / "empty").mkdir()
    info = store.add_tree(tmp_path, "empty", Hasher(tmp_path, None))
    store.checkout(info, tmp_path / "out", linker=Linker(setting="copy"))
    assert (tmp_path / "out").is_dir() and list((tmp_path / "out").iterdir()) == []


def truncate(path: Path) -> None:
    """Cut the last byte off a (read-only) object."""
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-1])
    os.chmod(path, 0o444)


@pytest.mark.parametrize(("mode", "damage"), [
    ("copy", corrupt), ("reflink-or-copy", corrupt),
    # A link copies no bytes: into a new place it is checked by size, not re-read.
    ("hardlink", truncate),
])
def test_corrupt_object_never_reaches_dest(
    tmp_path: Path, mode: str, damage: Callable[[Path], None]
) -> None:
    store = ObjectStore(tmp_path / "objects", Linker(setting="copy"))
    oid = store.add_bytes(b"good bytes")
    damage(store.path_of(oid))
    dest = tmp_path / "ws" / "f"
    with pytest.raises(StorageError) as err:
        store.checkout(HashInfo(oid, 10), dest, linker=Linker(setting=mode))
    assert oid in str(err.value) and str(dest) in str(err.value)
    assert not os.path.lexists(dest)
    assert temps(tmp_path) == []
    assert not store.has(oid)


@pytest.mark.parametrize("mode", ["hardlink"])
def test_link_checkout_reads_objects_only_when_replacing_a_file(
    tmp_path: Path, mode: str
) -> None:
    # Into a new place a link is checked by the object's size alone (a hard-link
    # checkout costs no reads, whatever the data's size), so a same-size corruption is
    # linked there: `pipeflow verify` is what re-hashes objects. Replacing a file that
    # differs from the lock (a restore) reads the object first and refuses a bad one.
    store = ObjectStore(tmp_path / "objects", Linker(setting="copy"))
    oid = store.add_bytes(b"good bytes")
    corrupt(store.path_of(oid))
    fresh = tmp_path / "ws" / "new"
    store.checkout(HashInfo(oid, 10), fresh, linker=Linker(setting=mode))
    assert fresh.read_bytes() != b"good bytes"
    existing = write(tmp_path / "ws" / "old", b"other")
    with pytest.raises(StorageError, match="corrupt"):
        store.checkout(HashInfo(oid, 10), existing, linker=Linker(setting=mode))
    assert existing.read_bytes() == b"other"
    assert not store.has(oid)  # quarantined: a rerun stores a good copy


def test_corrupt_object_in_a_directory_checkout(tmp_path: Path, store: ObjectStore) -> None:
    write(tmp_path / "d" / "a", b"aaa")
    write(tmp_path / "d" / "b", b"bbb")
    info = store.add_tree(tmp_path, "d", Hasher(tmp_path, None))
    bad = hash_bytes(b"bbb")
    corrupt(store.path_of(bad))
    dest = tmp_path / "out"
    with pytest.raises(StorageError, match=bad) as err:
        store.checkout(info, dest, linker=Linker(setting="copy"))
    assert str(dest / "b") in str(err.value)
    assert not (dest / "b").exists()
    assert temps(tmp_path) == []


def test_missing_object_at_checkout_names_oid_and_path(tmp_path: Path, store: ObjectStore) -> None:
    oid = hash_bytes(b"absent")
    dest = tmp_path / "f"
    with pytest.raises(StorageError, match="missing") as err:
        store.checkout(HashInfo(oid, 6), dest, linker=Linker(setting="copy"))
    assert oid in str(err.value) and str(dest) in str(err.value)
    assert not dest.exists()


def test_hardlink_checkout_shares_read_only_objects(tmp_path: Path, store: ObjectStore) -> None:
    write(tmp_path / "d" / "data.csv", b"1,2")
    write(tmp_path / "d" / "run.sh", b"#!/bin/sh\n", executable=True)
    info = store.add_tree(tmp_path, "d", Hasher(tmp_path, None))
    dest = tmp_path / "out"
    store.checkout(info, dest, linker=Linker(setting="hardlink"))
    data_obj = store.path_of(hash_bytes(b"1,2"))
    assert os.stat(dest / "data.csv").st_ino == os.stat(data_obj).st_ino
    assert stat.S_IMODE(os.stat(dest / "data.csv").st_mode) == 0o444
    # the executable cannot share a 0444 inode: it is a copy with its x bit
    assert (
        os.stat(dest / "run.sh").st_ino != os.stat(store.path_of(hash_bytes(b"#!/bin/sh\n"))).st_ino
    )
    assert os.stat(dest / "run.sh").st_mode & stat.S_IXUSR
    assert Hasher(tmp_path, None).hash_path("out") == info


def test_checkout_with_hasher_leaves_unchanged_files_alone(
    tmp_path: Path, store: ObjectStore
) -> None:
    write(tmp_path / "d" / "same", b"same")
    write(tmp_path / "d" / "changes", b"v2")
    info = store.add_tree(tmp_path, "d", Hasher(tmp_path, None))
    write(tmp_path / "out" / "same", b"same")
    write(tmp_path / "out" / "changes", b"v1")
    inode = os.stat(tmp_path / "out" / "same").st_ino
    hasher = Hasher(tmp_path, None)
    hasher.hash_path("out")
    store.checkout(info, tmp_path / "out", linker=Linker(setting="copy"), hasher=hasher)
    assert os.stat(tmp_path / "out" / "same").st_ino == inode
    assert (tmp_path / "out" / "changes").read_bytes() == b"v2"
    assert hasher.hash_path("out") == info  # the hasher forgot its stale memo


def test_reflink_paths_verify_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the probe says yes, clone failures fall back to copying, still verified."""
    monkeypatch.setattr("pipeflow.storage.links.probe_reflink", lambda a, b: True)

    def no_clone(src_fd: int, dst_fd: int) -> None:
        raise OSError(22, "cannot clone this one")

    monkeypatch.setattr(links, "reflink_fd", no_clone)
    store = ObjectStore(tmp_path / "objects")
    src = write(tmp_path / "f", b"bytes")
    oid = store.add_file(src)
    assert store.read_bytes(oid) == b"bytes"
    dest = tmp_path / "out"
    store.checkout(HashInfo(oid, 5), dest, linker=Linker())
    assert dest.read_bytes() == b"bytes"
    corrupt(store.path_of(oid))
    with pytest.raises(StorageError, match="corrupt"):
        store.checkout(HashInfo(oid, 5), tmp_path / "out2", linker=Linker())
    assert not (tmp_path / "out2").exists()


def test_reflink_clone_is_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A successful clone is checked by hashing the shared source bytes."""
    monkeypatch.setattr("pipeflow.storage.links.probe_reflink", lambda a, b: True)

    def fake_clone(src_fd: int, dst_fd: int) -> None:
        os.write(dst_fd, os.pread(src_fd, 1 << 20, 0))  # what a clone would make visible

    monkeypatch.setattr(links, "reflink_fd", fake_clone)
    store = ObjectStore(tmp_path / "objects")
    oid = store.add_file(write(tmp_path / "f", b"cloned"))
    store.checkout(HashInfo(oid, 6), tmp_path / "out", linker=Linker())
    assert (tmp_path / "out").read_bytes() == b"cloned"
    corrupt(store.path_of(oid))
    with pytest.raises(StorageError, match=oid):
        store.checkout(HashInfo(oid, 6), tmp_path / "out2", linker=Linker())
    assert not (tmp_path / "out2").exists()


# durability ------------------------------------------------------------------------------


def test_sync_paths_with_syncfs_and_fallback(
    tmp_path: Path, store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add_bytes(b"one")
    store.add_bytes(b"two")
    paths = [*store.written(), tmp_path / "gone" / "missing"]
    durability.sync_paths(paths)  # syncfs where available
    durability.sync_paths([])
    monkeypatch.setattr(durability, "_syncfs", lambda: None)
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    durability.sync_paths(paths)
    # two files, and their shard folder(s)
    assert len(synced) == 2 + len({os.path.dirname(p) for p in store.written()})


def test_sync_paths_uses_syncfs_once_per_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def fake_syncfs(fd: int) -> int:
        calls.append(fd)
        return 0

    monkeypatch.setattr(durability, "_syncfs", lambda: fake_syncfs)
    files = [write(tmp_path / f"d{i}" / "f", b"x") for i in range(5)]
    durability.sync_paths(files)
    assert len(calls) == 1
    monkeypatch.setattr(durability, "_syncfs", lambda: lambda fd: -1)
    with pytest.raises(StorageError, match="cannot sync"):
        durability.sync_paths(files)


def test_sync_ahead_runs_in_the_background_once_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    release = threading.Event()
    started: list[str] = []

    def slow_syncfs(fd: int) -> int:
        started.append(threading.current_thread().name)
        release.wait(10)
        return -1  # a failure: left to the final sync, never raised here

    monkeypatch.setattr(durability, "_syncfs", lambda: slow_syncfs)
    files = [str(write(tmp_path / "f", b"x"))]
    ahead = durability.SyncAhead()
    ahead.start(files)
    ahead.start(files)  # still running: not started twice
    deadline = time.monotonic() + 10
    while not started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert started == ["pipeflow-sync-ahead"]
    release.set()
    assert ahead._thread is not None
    ahead._thread.join(10)
    assert not ahead._thread.is_alive()
    ahead.start([])  # nothing written: nothing to do
    assert started == ["pipeflow-sync-ahead"]


def test_sync_ahead_is_offered_only_after_enough_was_written(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[list[str]] = []
    ahead = durability.SyncAhead(min_objects=3, min_bytes=100)
    monkeypatch.setattr(ahead, "start", started.append)
    ahead.offer(lambda: ["a"], objects=1, nbytes=10)  # a small stage: not worth a sync
    ahead.offer(lambda: ["a", "b"], objects=2, nbytes=20)
    assert started == []
    ahead.offer(lambda: ["a", "b", "c"], objects=3, nbytes=30)  # enough objects
    ahead.offer(lambda: ["a", "b", "c", "d"], objects=4, nbytes=40)  # counted anew
    ahead.offer(lambda: ["big"], objects=5, nbytes=500)  # enough bytes
    assert started == [["a", "b", "c"], ["big"]]


# property: add_tree then checkout reproduces the tree ------------------------------------

_NAME = st.text(alphabet="abcXYZ019_-.éßж日本ü", min_size=1, max_size=6).filter(
    lambda n: n not in (".", "..") and not n.endswith(".pyc")
)
_PATH = st.lists(_NAME, min_size=1, max_size=3).map("/".join)


def _tree_ok(files: dict[str, tuple[bytes, bool]]) -> bool:
    dirs: set[str] = set()
    for p in files:
        parts = p.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return not (dirs & set(files))


TREES = st.dictionaries(_PATH, st.tuples(st.binary(max_size=64), st.booleans()), max_size=12)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=TREES.filter(_tree_ok), mode=st.sampled_from(["copy", "hardlink"]))
def test_add_tree_then_checkout_reproduces_the_tree(
    files: dict[str, tuple[bytes, bool]], mode: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "src").mkdir()
        for rel, (data, x) in files.items():
            write(root / "src" / rel, data, executable=x)
        store = ObjectStore(root / ".pipeflow" / "cache" / "objects", Linker(setting="copy"))
        info = store.add_tree(root, "src", Hasher(root, None, IgnoreRules()))
        store.checkout(info, root / "out", linker=Linker(setting=mode))
        again = Hasher(root, None, IgnoreRules())
        assert again.manifest("out") == store.manifest(info.hash)
        assert again.hash_path("out") == info
        assert files_of(root / "out") == files_of(root / "src")
        assert Manifest.from_bytes(store.read_bytes(info.hash)).hash == info.hash


def test_add_tree_reads_each_new_file_once_and_matches_the_manifest(
    tmp_path: Path, store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeflow.content import hashing
    from pipeflow.state import StateDB

    write(tmp_path / "d" / "a.txt", b"a")
    write(tmp_path / "d" / "sub" / "b.txt", b"bb", executable=True)
    write(tmp_path / "d" / "sub" / "deeper" / "c", b"ccc")
    write(tmp_path / "d" / "dup.txt", b"a")
    expected = Hasher(tmp_path, None).manifest("d")
    reads: list[str] = []
    real = hashing.hash_file

    def counted(path: Path | str, buf: bytearray | None = None) -> str:
        reads.append(str(path))
        return real(path, buf)

    monkeypatch.setattr(hashing, "hash_file", counted)
    db = StateDB(tmp_path / "state.db")
    hasher = Hasher(tmp_path, db)
    info = store.add_tree(tmp_path, "d", hasher)
    assert reads == []  # hashed while copied, not before
    assert info == expected.info()
    assert store.manifest(info.hash) == expected
    assert hasher.manifest("d") == expected and hasher.hash_path("d") == info
    assert store.missing(info) == []
    assert all(store.verify(e.hash) for e in expected.entries)
    hasher.flush()
    assert set(db.stat_entries()) == {"d/a.txt", "d/sub/b.txt", "d/sub/deeper/c", "d/dup.txt"}
    # Another process: the stat cache now vouches for every file, so nothing is copied.
    again = ObjectStore(store.path, Linker(setting="copy"))
    copies: list[str] = []

    def no_copy(src: str, oid: str | None) -> tuple[str, int]:
        copies.append(src)
        return "", 0

    monkeypatch.setattr(again._writer, "_copy_in", no_copy)
    assert again.add_tree(tmp_path, "d", Hasher(tmp_path, db)) == info
    assert copies == [] and again.written() == []
    db.close()


@pytest.mark.parametrize("later", [b"longer", b"b" * (2 * BUF_SIZE)],
                         ids=["grows", "grows-past-the-buffer"])
def test_add_tree_refuses_a_file_that_changes_size_while_stored(
    tmp_path: Path, store: ObjectStore, monkeypatch: pytest.MonkeyPatch, later: bytes
) -> None:
    write(tmp_path / "d" / "a", b"a")
    hasher = Hasher(tmp_path, None)
    real_scan = hasher.scan_dir

    def scan_then_grow(rel: str) -> object:
        scan = real_scan(rel)
        (tmp_path / "d" / "a").write_bytes(later)
        return scan

    monkeypatch.setattr(hasher, "scan_dir", scan_then_grow)
    with pytest.raises(StorageError, match="changed while being stored"):
        store.add_tree(tmp_path, "d", hasher)
    assert temps(tmp_path) == []


def test_add_tree_files_around_the_buffer_size(tmp_path: Path, store: ObjectStore) -> None:
    # Files shorter than the copy buffer are read whole then written; longer ones are
    # copied in chunks: both must store the exact bytes under their hash.
    sizes = [0, 1, BUF_SIZE - 1, BUF_SIZE, BUF_SIZE + 1, 3 * BUF_SIZE + 7]
    for size in sizes:
        write(tmp_path / "d" / f"f{size}", bytes(range(256)) * (size // 256) + b"z" * (size % 256))
    write(tmp_path / "d" / "again", b"z")  # same bytes as f1: stored once
    hasher = Hasher(tmp_path, None)
    info = store.add_tree(tmp_path, "d", hasher)
    assert info == Hasher(tmp_path, None).hash_path("d")
    for e in store.manifest(info.hash).entries:
        assert store.path_of(e.hash).read_bytes() == (tmp_path / "d" / e.path).read_bytes()
        assert stat.S_IMODE(store.path_of(e.hash).stat().st_mode) == 0o444
    assert len(store.written()) == len(sizes) + 1  # distinct contents + the manifest
    assert temps(tmp_path) == []


@pytest.mark.parametrize("setting", ["copy", "hardlink"])
@pytest.mark.parametrize("fresh", [True, False])
def test_directory_checkout_into_new_or_existing_folder(
    tmp_path: Path, store: ObjectStore, setting: str, fresh: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write(tmp_path / "d" / "a", b"a")
    write(tmp_path / "d" / "sub" / "deep" / "b", b"bb")
    write(tmp_path / "d" / "x.sh", b"#!", executable=True)
    info = store.add_tree(tmp_path, "d", Hasher(tmp_path, None))
    dest = tmp_path / "out"
    if not fresh:
        write(dest / "a", b"old")
        write(dest / "extra", b"e")
    renames: list[str] = []
    real_replace = os.replace

    def replace(a: str, b: str) -> None:
        renames.append(b)
        real_replace(a, b)

    monkeypatch.setattr(os, "replace", replace)
    store.checkout(info, dest, linker=Linker(setting=setting))
    assert files_of(dest) == files_of(tmp_path / "d")
    assert Hasher(tmp_path, None).hash_path("out") == info
    assert temps(tmp_path) == []
    # Straight to the final names in a new folder; through temporary names otherwise.
    assert (renames == []) == fresh


@pytest.fixture
def link_threads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make a fresh folder of links be filled by four threads whatever its size and
    the machine's cores; the list receives the number of shares of each threaded
    fill."""
    calls: list[int] = []
    real = checkout.in_threads

    def counted(work: Any, shares: list[Any]) -> Any:
        calls.append(len(shares))
        return real(work, shares)

    monkeypatch.setattr(checkout, "_LINKS_PER_THREAD", 1)
    monkeypatch.setattr(checkout.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(checkout, "in_threads", counted)
    return calls


@pytest.mark.parametrize("mode", ["hardlink"])
def test_a_big_fresh_folder_is_linked_by_several_threads(
    tmp_path: Path, store: ObjectStore, mode: str, link_threads: list[int]
) -> None:
    for i in range(40):
        write(tmp_path / "d" / f"sub{i % 3}" / f"f{i:02d}", b"x" * i)
    write(tmp_path / "d" / "run.sh", b"#!/bin/sh\n", executable=True)
    info = store.add_tree(tmp_path, "d", Hasher(tmp_path, None))
    dest = tmp_path / "out"
    store.checkout(info, dest, linker=Linker(setting=mode))
    assert link_threads == [4]
    assert files_of(dest) == files_of(tmp_path / "d")
    for i in range(40):
        placed = dest / f"sub{i % 3}" / f"f{i:02d}"
        obj = store.path_of(hash_bytes(b"x" * i))
        assert (os.path.samefile(placed, obj) if mode == "hardlink"
                else os.readlink(placed) == str(obj))
    assert not os.path.islink(dest / "run.sh") and os.stat(dest / "run.sh").st_nlink == 1
    assert os.stat(dest / "run.sh").st_mode & stat.S_IXUSR
    assert Hasher(tmp_path, None).hash_path("out") == info


def _slow_links(monkeypatch: pytest.MonkeyPatch, first: Callable[[], None] | None = None,
                delay: float = 0.05) -> list[str]:
    """Make every hard link take ``delay`` s (``first()`` runs at the first one, in the
    link thread); the list receives each link's destination."""
    real_link = os.link
    made: list[str] = []

    def link(src: str, dst: str) -> None:
        made.append(dst)
        if len(made) == 1 and first is not None:
            first()
        time.sleep(delay)
        real_link(src, dst)

    monkeypatch.setattr(checkout.os, "link", link)
    return made


def _forty_files(tmp_path: Path, store: ObjectStore) -> HashInfo:
    """A folder ``d`` of 40 files of distinct sizes, stored."""
    for i in range(40):
        write(tmp_path / "d" / f"f{i:02d}", b"y" * i)
    return store.add_tree(tmp_path, "d", Hasher(tmp_path, None))


def _link_threads_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "pipeflow-link" and t.is_alive()]


def test_a_thread_that_cannot_start_leaves_no_half_made_folder(
    tmp_path: Path, store: ObjectStore, link_threads: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    info = _forty_files(tmp_path, store)
    made = _slow_links(monkeypatch, delay=0.3)  # the first thread is still linking
    real_start = threading.Thread.start
    starts: list[str] = []

    def start(self: threading.Thread) -> None:
        starts.append(self.name)
        if len(starts) == 2:
            raise RuntimeError("can't start new thread")
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    dest = tmp_path / "out"
    with pytest.raises(RuntimeError, match="can't start"):
        store.checkout(info, dest, linker=Linker(setting="hardlink"))
    monkeypatch.setattr(threading.Thread, "start", real_start)
    assert link_threads == [4] and starts == ["pipeflow-link"] * 2
    # the started thread was stopped after its link and waited for, then the folder
    # removed: nothing of it is left, and no link is made after
    assert len(made) == 1 and not _link_threads_alive()
    assert not dest.exists()


def test_an_interrupt_stops_and_waits_for_the_link_threads(
    tmp_path: Path, store: ObjectStore, link_threads: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A real SIGINT, sent by the first link (in a link thread): the main thread gets
    # KeyboardInterrupt while the threads are still linking (each link takes 50 ms).
    info = _forty_files(tmp_path, store)
    made = _slow_links(monkeypatch, first=lambda: os.kill(os.getpid(), signal.SIGINT))
    dest = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        store.checkout(info, dest, linker=Linker(setting="hardlink"))
    assert link_threads == [4]
    assert not _link_threads_alive()  # none is left running past the interrupt
    assert 1 <= len(made) < 40 and not dest.exists()


@pytest.mark.parametrize(("setting", "threaded"),
                         [("copy", False), ("hardlink", False), ("hardlink", True)])
def test_fresh_folder_checkout_of_a_corrupt_or_missing_object(
    tmp_path: Path, store: ObjectStore, setting: str, threaded: bool,
    request: pytest.FixtureRequest,
) -> None:
    # Threaded: the truncated object is found by a link thread and placed (read and
    # refused) afterwards; the missing one fails inside a link thread.
    shares = request.getfixturevalue("link_threads") if threaded else []
    for i in range(12):  # several shares when threaded, the bad one among them
        write(tmp_path / "d" / f"f{i:02d}", f"file {i}".encode())
    write(tmp_path / "d" / "a", b"aaa")
    write(tmp_path / "d" / "b", b"bbb")
    info = store.add_tree(tmp_path, "d", Hasher(tmp_path, None))
    # A copy reads every byte; a link into a new place checks the size.
    (corrupt if setting == "copy" else truncate)(store.path_of(hash_bytes(b"bbb")))
    dest = tmp_path / "out"
    with pytest.raises(StorageError, match="corrupt"):
        store.checkout(info, dest, linker=Linker(setting=setting))
    assert not dest.exists()  # nothing was there: nothing half-made stays
    os.unlink(store.path.parent / "corrupt" / os.listdir(store.path.parent / "corrupt")[0])
    # Now missing altogether: the failed open names it; nothing half-made stays.
    dest2 = tmp_path / "out2"
    with pytest.raises(StorageError, match="missing"):
        store.checkout(info, dest2, linker=Linker(setting=setting))
    assert not dest2.exists()
    assert temps(tmp_path) == []
    assert shares == ([4, 4] if threaded else [])


def test_objects_are_read_only_for_all_whatever_the_umask(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a", b"a")
    write(tmp_path / "d" / "b", b"b")
    old = os.umask(0o077)  # would make new files owner-only
    try:
        store = ObjectStore(tmp_path / "objects", Linker(setting="copy"))
        info = store.add_tree(tmp_path, "d", Hasher(tmp_path, None))
    finally:
        os.umask(old)
    for e in store.manifest(info.hash).entries:
        assert stat.S_IMODE(store.path_of(e.hash).stat().st_mode) == 0o444
