"""Hashing of files and directories, manifests, ignore rules and the stat cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeflow.content import hashing
from pipeflow.content.hasher import Hasher
from pipeflow.content.hashing import HASH_NAME, HashInfo, hash_bytes, hash_file
from pipeflow.content.ignore import IgnoreRules
from pipeflow.content.manifest import Manifest, ManifestEntry
from pipeflow.errors import StorageError
from pipeflow.files import safepath
from pipeflow.state import StateDB

H = "0123456789abcdef" * 2


def write(path: Path, data: bytes = b"x", *, executable: bool = False, old: bool = True) -> Path:
    """Write a file; ``old`` backdates its mtime so the stat cache may trust it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, 0o755 if executable else 0o644)
    if old:
        past = time.time_ns() - 60 * 10**9
        os.utime(path, ns=(past, past))
    return path


class CountingHash:
    """Wraps hashing.hash_file to count which files get read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        real = hashing.hash_file

        def counted(path: Path | str, buf: bytearray | None = None) -> str:
            self.calls.append(os.fspath(path))
            return real(path, buf)

        monkeypatch.setattr(hashing, "hash_file", counted)


# hash_file / hash_bytes ------------------------------------------------------------------


def test_hash_file_matches_xxh3_128_of_the_bytes(tmp_path: Path) -> None:
    assert HASH_NAME == "xxh3-128"
    data = os.urandom(3 * hashing.BUF_SIZE + 12345)  # spans several buffer fills
    f = write(tmp_path / "big", data)
    expected = xxhash.xxh3_128_hexdigest(data)
    assert hash_file(f) == expected
    assert hash_file(f, bytearray(4096)) == expected  # a caller's (small) buffer
    assert hash_bytes(data) == expected
    assert len(expected) == 32 and expected == expected.lower()


def test_hash_of_empty_file(tmp_path: Path) -> None:
    assert hash_file(write(tmp_path / "e", b"")) == hash_bytes(b"")


def test_hash_file_missing_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hash_file(tmp_path / "nope")


# Manifest -------------------------------------------------------------------------------


def entry(path: str, h: str = H, size: int = 1, x: bool = False) -> ManifestEntry:
    return ManifestEntry(path, h, size, x)


def test_manifest_sorts_by_utf8_bytes_and_is_canonical() -> None:
    names = ["z", "é", "a/b", "a.txt", "A", "日本"]
    m = Manifest(tuple(entry(n) for n in names))
    assert [e.path for e in m.entries] == sorted(names, key=lambda s: s.encode())
    # "a.txt" < "a/b" because '.' (0x2e) < '/' (0x2f)
    assert [e.path for e in m.entries][:3] == ["A", "a.txt", "a/b"]
    same = Manifest(tuple(entry(n) for n in reversed(names)))
    assert same.to_bytes() == m.to_bytes()
    assert same.hash == m.hash == hash_bytes(m.to_bytes())
    assert m.to_bytes().isascii()
    assert b" " not in m.to_bytes() and b"\n" not in m.to_bytes()


def test_manifest_round_trip() -> None:
    m = Manifest((entry("x/y", size=7, x=True), entry("b"), entry("ünï/cödé")))
    back = Manifest.from_bytes(m.to_bytes())
    assert back == m
    assert back.hash == m.hash
    assert m.info() == HashInfo(m.hash, 9, isdir=True, nfiles=3)


def test_empty_manifest() -> None:
    m = Manifest(())
    assert Manifest.from_bytes(m.to_bytes()) == m
    assert m.info().nfiles == 0 and m.info().size == 0


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"\xff\xfe",
        b"[]",
        b'{"format":2,"entries":[]}',
        b'{"format":1}',
        b'{"format":1,"entries":[["a","nothex",1,false]]}',
        b'{"format":1,"entries":[["a","' + H.encode() + b'",-1,false]]}',
        b'{"format":1,"entries":[["a","' + H.encode() + b'",1,0]]}',
        b'{"format":1,"entries":[["../a","' + H.encode() + b'",1,false]]}',
        b'{"format":1,"entries":[["/etc/a","' + H.encode() + b'",1,false]]}',
        b'{"format":1,"entries":[["a//b","' + H.encode() + b'",1,false]]}',
        b'{"format":1,"entries":[["a/./b","' + H.encode() + b'",1,false]]}',
        b'{"format":1,"entries":[["a","' + H.encode() + b'",1,false],'
        b'["a","' + H.encode() + b'",1,false]]}',
        b'{"format":1,"entries":[["a","' + H.encode() + b'",1,false],'
        b'["a/b","' + H.encode() + b'",1,false]]}',
    ],
)
def test_manifest_from_garbage_raises_storage_error(data: bytes) -> None:
    with pytest.raises(StorageError):
        Manifest.from_bytes(data)


# Hasher: files and directories -----------------------------------------------------------


def test_hash_path_of_a_file(tmp_path: Path) -> None:
    write(tmp_path / "data" / "a.csv", b"1,2,3\n")
    info = Hasher(tmp_path, None).hash_path("data/a.csv")
    assert info == HashInfo(hash_bytes(b"1,2,3\n"), 6)
    assert Hasher(tmp_path, None).hash_path("./data//a.csv") == info


def test_hash_path_missing_raises_file_not_found(tmp_path: Path) -> None:
    write(tmp_path / "a.txt")
    h = Hasher(tmp_path, None)
    with pytest.raises(FileNotFoundError):
        h.hash_path("missing")
    with pytest.raises(FileNotFoundError):
        h.hash_path("a.txt/inside")


def test_directory_hash_is_the_manifest_hash(tmp_path: Path) -> None:
    write(tmp_path / "d" / "b.txt", b"bb")
    write(tmp_path / "d" / "sub" / "deeper" / "c.txt", b"ccc", executable=True)
    write(tmp_path / "d" / "a.txt", b"a")
    h = Hasher(tmp_path, None)
    info = h.hash_path("d")
    m = h.manifest("d")
    assert [(e.path, e.size, e.executable) for e in m.entries] == [
        ("a.txt", 1, False),
        ("b.txt", 2, False),
        ("sub/deeper/c.txt", 3, True),
    ]
    assert m.entries[0].hash == hash_bytes(b"a")
    assert info == HashInfo(m.hash, 6, isdir=True, nfiles=3)


def test_empty_directory_and_empty_subdirectories(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    info = Hasher(tmp_path, None).hash_path("empty")
    assert info == HashInfo(Manifest(()).hash, 0, isdir=True, nfiles=0)
    # empty subdirectories do not count, as in git
    write(tmp_path / "d" / "f", b"1")
    before = Hasher(tmp_path, None).hash_path("d").hash
    (tmp_path / "d" / "nothing" / "here").mkdir(parents=True)
    assert Hasher(tmp_path, None).hash_path("d").hash == before


def test_executable_bit_changes_directory_hash(tmp_path: Path) -> None:
    f = write(tmp_path / "d" / "run.sh", b"#!/bin/sh\n")
    plain = Hasher(tmp_path, None).hash_path("d").hash
    os.chmod(f, 0o744)
    assert Hasher(tmp_path, None).hash_path("d").hash != plain
    os.chmod(f, 0o644)
    assert Hasher(tmp_path, None).hash_path("d").hash == plain
    os.chmod(f, 0o654)  # group x only: the owner's bit is the rule
    assert Hasher(tmp_path, None).hash_path("d").hash == plain


def test_unicode_names(tmp_path: Path) -> None:
    write(tmp_path / "d" / "données" / "日本語.txt", b"x")
    write(tmp_path / "d" / "Straße", b"y")
    m = Hasher(tmp_path, None).manifest("d")
    assert [e.path for e in m.entries] == ["Straße", "données/日本語.txt"]
    assert Manifest.from_bytes(m.to_bytes()) == m


def test_builtin_ignores_in_directories(tmp_path: Path) -> None:
    write(tmp_path / "d" / "keep.py", b"x")
    base = Hasher(tmp_path, None).hash_path("d").hash
    for junk in [
        "__pycache__/keep.cpython-311.pyc",
        "mod.pyc",
        "sub/.DS_Store",
        ".ipynb_checkpoints/n.ipynb",
        ".git/HEAD",
        ".pipeflow/state/state.db",
    ]:
        write(tmp_path / "d" / junk, b"junk")
    h = Hasher(tmp_path, None)
    assert h.hash_path("d").hash == base
    assert [e.path for e in h.manifest("d").entries] == ["keep.py"]


def test_pipeflowignore_patterns(tmp_path: Path) -> None:
    (tmp_path / ".pipeflowignore").write_text("*.log\n!keep.log\n/d/build/\ntmp\n")
    write(tmp_path / "d" / "a.txt")
    write(tmp_path / "d" / "x.log")
    write(tmp_path / "d" / "keep.log")
    write(tmp_path / "d" / "build" / "o.bin")
    write(tmp_path / "d" / "sub" / "build" / "o.bin")  # not anchored at d/: kept
    write(tmp_path / "d" / "sub" / "tmp" / "t")
    h = Hasher(tmp_path, None)
    assert [e.path for e in h.manifest("d").entries] == [
        "a.txt",
        "keep.log",
        "sub/build/o.bin",
    ]
    assert Hasher(tmp_path, None, IgnoreRules()).manifest("d").entries != h.manifest("d").entries


def test_symlinks_are_followed(tmp_path: Path) -> None:
    write(tmp_path / "real" / "f.txt", b"content")
    write(tmp_path / "other.txt", b"other")
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "d" / "linkdir")
    os.symlink("../other.txt", tmp_path / "d" / "link.txt")
    os.symlink(tmp_path / "other.txt", tmp_path / "top-link")
    h = Hasher(tmp_path, None)
    assert h.hash_path("top-link").hash == hash_bytes(b"other")
    m = h.manifest("d")
    assert [(e.path, e.hash) for e in m.entries] == [
        ("link.txt", hash_bytes(b"other")),
        ("linkdir/f.txt", hash_bytes(b"content")),
    ]
    assert h.symlinks_under("d") == ("link.txt", "linkdir")


def test_dangling_symlink_and_loop_are_errors(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path / "nowhere", tmp_path / "d" / "dangling")
    with pytest.raises(StorageError, match="symlink to a missing file"):
        Hasher(tmp_path, None).hash_path("d")
    (tmp_path / "e" / "sub").mkdir(parents=True)
    os.symlink(tmp_path / "e", tmp_path / "e" / "sub" / "up")
    with pytest.raises(StorageError, match="loop"):
        Hasher(tmp_path, None).hash_path("e")


def test_special_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "d" / "pipe")
    with pytest.raises(StorageError, match="pipe"):
        Hasher(tmp_path, None).hash_path("d")
    with pytest.raises(StorageError):
        Hasher(tmp_path, None).hash_path("d/pipe")


# Hasher: memo and stat cache -------------------------------------------------------------


def test_memo_hashes_each_file_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = CountingHash(monkeypatch)
    write(tmp_path / "d" / "a", b"a", old=False)  # racy: only the memo can save a read
    write(tmp_path / "d" / "b", b"b", old=False)
    h = Hasher(tmp_path, None)
    first = h.hash_path("d")
    for _ in range(3):
        assert h.hash_path("d") == first
        assert h.hash_path("d/a").hash == hash_bytes(b"a")
    assert len(count.calls) == 2
    assert h.files_read == 2


def test_forget_drops_path_below_and_above(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "d" / "sub" / "a", b"a")
    write(tmp_path / "d" / "b", b"b")
    h = Hasher(tmp_path, None)
    before = h.hash_path("d")
    write(tmp_path / "d" / "sub" / "a", b"changed")
    assert h.hash_path("d") == before  # memo: trusted until forgotten
    h.forget("d/sub")  # a stage rewrites d/sub: d itself is stale too
    after = h.hash_path("d")
    assert after != before
    assert h.hash_path("d/sub/a").hash == hash_bytes(b"changed")
    write(tmp_path / "d" / "b", b"bb")
    h.forget("d")
    assert h.hash_path("d/b").hash == hash_bytes(b"bb")
    h.forget("")
    assert h.hash_path("d") != after


def test_stat_cache_spares_reads_across_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = CountingHash(monkeypatch)
    write(tmp_path / "d" / "a", b"a")
    write(tmp_path / "d" / "b", b"b")
    write(tmp_path / "f", b"f")
    db = StateDB(tmp_path / ".pipeflow" / "state" / "state.db")
    h = Hasher(tmp_path, db)
    dir_info, file_info = h.hash_path("d"), h.hash_path("f")
    assert len(count.calls) == 3
    h.flush()
    assert set(db.stat_entries()) == {"d/a", "d/b", "f"}
    count.calls.clear()
    h2 = Hasher(tmp_path, db)  # a new process: empty memo
    assert h2.hash_path("d") == dir_info
    assert h2.hash_path("f") == file_info
    assert count.calls == []
    assert h2.files_read == 0
    db.close()


def test_stat_cache_misses_when_the_stat_key_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = CountingHash(monkeypatch)
    f = write(tmp_path / "f", b"one")
    db = StateDB(tmp_path / "state.db")
    h = Hasher(tmp_path, db)
    h.hash_path("f")
    h.flush()
    write(f, b"three")  # new size and mtime
    count.calls.clear()
    assert Hasher(tmp_path, db).hash_path("f").hash == hash_bytes(b"three")
    assert len(count.calls) == 1
    db.close()


def test_racy_entry_is_rehashed_and_catches_same_mtime_rewrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = CountingHash(monkeypatch)
    f = write(tmp_path / "f", b"aaaa", old=False)
    db = StateDB(tmp_path / "state.db")
    h = Hasher(tmp_path, db)
    assert h.hash_path("f").hash == hash_bytes(b"aaaa")
    h.flush()
    # Rewritten in place within the timestamp granularity: same inode, size and mtime.
    st = os.stat(f)
    with open(f, "r+b") as fh:
        fh.write(b"bbbb")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(f).st_ino == st.st_ino
    count.calls.clear()
    h2 = Hasher(tmp_path, db)
    assert h2.hash_path("f").hash == hash_bytes(b"bbbb")
    assert len(count.calls) == 1
    db.close()


def test_restored_mtime_is_caught_by_ctime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An old, trusted entry; the file is rewritten with the same size and its mtime put
    back (as cp -p or tar do): only the ctime tells."""
    f = write(tmp_path / "f", b"1111")
    db = StateDB(tmp_path / "state.db")
    h = Hasher(tmp_path, db)
    h.hash_path("f")
    h.flush()
    st = os.stat(f)
    time.sleep(0.01)  # let the ctime move on coarse clocks
    with open(f, "r+b") as fh:
        fh.write(b"2222")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(f).st_ctime_ns != st.st_ctime_ns
    assert Hasher(tmp_path, db).hash_path("f").hash == hash_bytes(b"2222")
    db.close()


def test_racy_entry_becomes_trusted_once_old_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = CountingHash(monkeypatch)
    write(tmp_path / "f", b"x", old=False)
    db = StateDB(tmp_path / "state.db")
    h = Hasher(tmp_path, db)
    h.hash_path("f")
    h.flush()
    first_recorded = db.stat_entries()["f"].recorded_ns
    h2 = Hasher(tmp_path, db)
    h2.hash_path("f")  # still racy: read again
    assert len(count.calls) == 2
    # Three seconds later the file is re-recorded, and from then on trusted.
    later = time.time_ns() + 3 * 10**9
    monkeypatch.setattr(time, "time_ns", lambda: later)
    h3 = Hasher(tmp_path, db)
    h3.hash_path("f")
    h3.flush()
    assert len(count.calls) == 3
    assert db.stat_entries()["f"].recorded_ns == later > first_recorded
    Hasher(tmp_path, db).hash_path("f")
    assert len(count.calls) == 3
    db.close()


def test_flush_without_state_is_a_no_op(tmp_path: Path) -> None:
    write(tmp_path / "f")
    h = Hasher(tmp_path, None)
    h.hash_path("f")
    h.flush()


# IgnoreRules -----------------------------------------------------------------------------


def test_ignore_rules_builtins() -> None:
    rules = IgnoreRules()
    assert rules.is_ignored("__pycache__", True)
    assert rules.is_ignored("a/__pycache__/m.cpython-311.pyc", False)
    assert rules.is_ignored("a/__pycache__/other", False)
    assert rules.is_ignored("m.pyc", False)
    assert rules.is_ignored("x/.DS_Store", False)
    assert rules.is_ignored(".git", True)
    assert rules.is_ignored(".pipeflow/cache/objects/ab/cd", False)
    assert rules.is_ignored("n/.ipynb_checkpoints", True)
    assert not rules.is_ignored("__pycache__", False)  # a file by that name: dir-only rule
    assert not rules.is_ignored("src/model.py", False)
    assert not rules.is_ignored("data", True)
    assert not rules.has_patterns


def test_ignore_rules_patterns(tmp_path: Path) -> None:
    (tmp_path / ".pipeflowignore").write_text("# comment\n*.tmp\n!keep.tmp\nbuild/\n/root-only\n")
    rules = IgnoreRules.load(tmp_path)
    assert rules.has_patterns
    assert rules.is_ignored("x.tmp", False)
    assert rules.is_ignored("a/b/x.tmp", False)
    assert not rules.is_ignored("keep.tmp", False)
    assert rules.is_ignored("build", True)
    assert not rules.is_ignored("build", False)
    assert rules.is_ignored("a/build/o.bin", False)
    assert rules.is_ignored("root-only", False)
    assert not rules.is_ignored("a/root-only", False)
    assert not IgnoreRules(tmp_path / "elsewhere").has_patterns
    assert IgnoreRules(tmp_path).is_ignored("x.tmp", False)
    extra = IgnoreRules(patterns=["*.bak", "# only a comment"])
    assert extra.is_ignored("a/b.bak", False) and not extra.is_ignored("b.tmp", False)
    assert not IgnoreRules(patterns=["# comment", ""]).has_patterns


def test_pathspec_is_not_imported_without_an_ignore_file(tmp_path: Path) -> None:
    write(tmp_path / "d" / "f")
    code = (
        "import sys; from pathlib import Path; from pipeflow.content.hasher import Hasher;"
        f"Hasher(Path({str(tmp_path)!r}), None).hash_path('d');"
        "print('pathspec' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# Property tests --------------------------------------------------------------------------

_NAME = st.text(alphabet="abcXYZ019_-.éßж日本ü", min_size=1, max_size=6).filter(
    lambda n: n not in (".", "..") and not n.endswith(".pyc")
)
_PATH = st.lists(_NAME, min_size=1, max_size=3).map("/".join)
_FILE = st.tuples(st.binary(max_size=64), st.booleans())


def _tree_ok(files: dict[str, tuple[bytes, bool]]) -> bool:
    dirs = {p.rsplit("/", 1)[0] for p in files if "/" in p}
    for d in list(dirs):
        while "/" in d:
            d = d.rsplit("/", 1)[0]
            dirs.add(d)
    return not (dirs & set(files))


TREES = st.dictionaries(_PATH, _FILE, min_size=1, max_size=12).filter(_tree_ok)


def make_tree(base: Path, files: dict[str, tuple[bytes, bool]], order: list[str]) -> None:
    base.mkdir(parents=True, exist_ok=True)
    for rel in order:
        data, x = files[rel]
        write(base / rel, data, executable=x)


def tree_hash(root: Path, rel: str) -> str:
    return Hasher(root, None, IgnoreRules()).hash_path(rel).hash


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=TREES, data=st.data())
def test_directory_hash_ignores_creation_order_and_location(
    files: dict[str, tuple[bytes, bool]], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(sorted(files)))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tree(root / "one", files, sorted(files))
        make_tree(root / "two" / "nested", files, list(order))
        shutil.copytree(root / "one", root / "copy")
        h1 = tree_hash(root, "one")
        assert tree_hash(root, "two/nested") == h1
        assert tree_hash(root, "copy") == h1
        assert tree_hash(root / "two", "nested") == h1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=TREES, data=st.data())
def test_any_single_change_changes_the_directory_hash(
    files: dict[str, tuple[bytes, bool]], data: st.DataObject
) -> None:
    target = data.draw(st.sampled_from(sorted(files)))
    change = data.draw(st.sampled_from(["bytes", "exec", "name"]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tree(root / "d", files, sorted(files))
        before = tree_hash(root, "d")
        content, x = files[target]
        f = root / "d" / target
        if change == "bytes":
            new = data.draw(st.binary(max_size=64).filter(lambda b: b != content))
            write(f, new, executable=x)
        elif change == "exec":
            write(f, content, executable=not x)
        else:
            f.rename(f.with_name(f.name + "~"))
        assert tree_hash(root, "d") != before


# directory signatures ----------------------------------------------------------------------


def _tree(root: Path) -> None:
    write(root / "d" / "a", b"a")
    write(root / "d" / "sub" / "deep" / "b", b"bb")
    write(root / "d" / "sub" / "c", b"ccc")


def _no_full_load(monkeypatch: pytest.MonkeyPatch, db: StateDB) -> list[int]:
    """Count loads of the whole stat table."""
    loads: list[int] = []
    real = db.stat_entries

    def counted() -> dict[str, object]:
        loads.append(1)
        return real()  # type: ignore[return-value]

    monkeypatch.setattr(db, "stat_entries", counted)
    return loads


def test_unchanged_directory_answers_from_its_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path)
    db = StateDB(tmp_path / "state.db")
    h = Hasher(tmp_path, db)
    info = h.hash_path("d")
    h.flush()
    row = db.dir_signature("d")
    assert row is not None and row.hash == info.hash and row.nfiles == 3
    truth = Hasher(tmp_path, None).manifest("d")
    count = CountingHash(monkeypatch)
    loads = _no_full_load(monkeypatch, db)
    h2 = Hasher(tmp_path, db)
    assert h2.hash_path("d") == info
    assert loads == [] and count.calls == [] and h2.files_read == 0
    # The full manifest is still there when asked for (rebuilt from the stat cache).
    assert h2.manifest("d") == truth
    assert count.calls == []
    db.close()


@pytest.mark.parametrize("change", ["edit", "add", "remove", "exec", "rmdir", "same-stat"])
def test_any_change_in_the_tree_invalidates_the_signature(
    tmp_path: Path, change: str
) -> None:
    _tree(tmp_path)
    write(tmp_path / "d" / "sub" / "deep" / "empty" / "x", b"x")
    db = StateDB(tmp_path / "state.db")
    h = Hasher(tmp_path, db)
    before = h.hash_path("d")
    h.flush()
    deep = tmp_path / "d" / "sub" / "deep"
    if change == "edit":
        write(deep / "b", b"BB")  # same size, mtime backdated as before
    elif change == "add":
        write(deep / "new", b"n")
    elif change == "remove":
        (deep / "b").unlink()
    elif change == "exec":
        os.chmod(deep / "b", 0o755)
    elif change == "rmdir":
        shutil.rmtree(deep / "empty")
    else:
        # Same size, mtime put back: only ctime (and the bytes) differ.
        st = os.stat(deep / "b")
        time.sleep(0.01)
        (deep / "b").write_bytes(b"zz")
        os.utime(deep / "b", ns=(st.st_atime_ns, st.st_mtime_ns))
    truth = Hasher(tmp_path, None).hash_path("d")
    assert truth != before
    assert Hasher(tmp_path, db).hash_path("d") == truth
    db.close()


def test_racy_signature_is_not_trusted_until_old_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "d" / "a", b"a", old=False)
    db = StateDB(tmp_path / "state.db")
    h = Hasher(tmp_path, db)
    info = h.hash_path("d")
    h.flush()
    loads = _no_full_load(monkeypatch, db)
    # Rewritten within the timestamp tick: same inode, size, mtime; a signature recorded
    # this soon after the mtime must not be believed.
    f = tmp_path / "d" / "a"
    st = os.stat(f)
    with open(f, "r+b") as fh:
        fh.write(b"b")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    h2 = Hasher(tmp_path, db)
    assert h2.hash_path("d") != info
    assert h2.hash_path("d") == Hasher(tmp_path, None).hash_path("d")
    assert loads == [1]
    h2.flush()
    # Three seconds later it is recorded again, and from then on trusted.
    later = time.time_ns() + 3 * 10**9
    monkeypatch.setattr(time, "time_ns", lambda: later)
    h3 = Hasher(tmp_path, db)
    h3.hash_path("d")
    h3.flush()
    assert loads == [1, 1]
    assert Hasher(tmp_path, db).hash_path("d") == Hasher(tmp_path, None).hash_path("d")
    assert loads == [1, 1]
    db.close()


def test_trees_with_symlinks_are_never_recorded(tmp_path: Path) -> None:
    write(tmp_path / "target", b"t")
    write(tmp_path / "d" / "a", b"a")
    os.symlink(tmp_path / "target", tmp_path / "d" / "link")
    db = StateDB(tmp_path / "state.db")
    h = Hasher(tmp_path, db)
    h.hash_path("d")
    assert h.symlinks_under("d") == ("link",)
    h.flush()
    assert db.dir_signature("d") is None
    db.close()


def test_symlinks_under_reads_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path)
    count = CountingHash(monkeypatch)
    h = Hasher(tmp_path, None)
    assert h.symlinks_under("d") == ()
    assert count.calls == []
    assert h.manifest("d").info() == h.hash_path("d")


def test_single_files_do_not_load_the_whole_stat_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "f", b"f")
    db = StateDB(tmp_path / "state.db")
    h = Hasher(tmp_path, db)
    info = h.hash_path("f")
    h.flush()
    loads = _no_full_load(monkeypatch, db)
    count = CountingHash(monkeypatch)
    assert Hasher(tmp_path, db).hash_path("f") == info
    assert loads == [] and count.calls == []
    db.close()


@settings(max_examples=1000, deadline=None)
@given(path=st.text(alphabet="ab./\0\x1f", max_size=8)
       | st.lists(st.sampled_from(["a", ".git", ".pipeflow", "..", ".", "", "x" * 256]),
                  min_size=1, max_size=4).map("/".join))
def test_manifest_path_safety_is_exactly_the_safepath_rule(path: str) -> None:
    # A manifest from a remote is hash-consistent, not trusted: a path may never
    # climb out of the folder, be absolute, name the folder itself, or reach into a
    # .git/ or .pipeflow/ below it (pipeflow.files.safepath's rule).
    unsafe = safepath.problem(path) is not None
    doc = f'{{"format":1,"entries":[[{json.dumps(path)},"{H}",1,false]]}}'.encode()
    if unsafe:
        with pytest.raises(StorageError, match="unsafe path"):
            Manifest.from_bytes(doc)
    else:
        assert [e.path for e in Manifest.from_bytes(doc).entries] == [path]


@settings(max_examples=400, deadline=None)
@given(paths=st.lists(st.text(alphabet="ab./ \\\0ég", max_size=6) | st.just("a/.git"),
                      min_size=1, max_size=3,
                      unique=True),
       space=st.sampled_from(["", " ", "\n", "\t "]), ascii_only=st.booleans())
def test_manifest_safety_holds_for_any_json_spelling(
    paths: list[str], space: str, ascii_only: bool
) -> None:
    # The fast check scans the raw bytes; JSON may spell the same document with
    # whitespace or escapes: a bad path must be refused however it is written.
    unsafe = any(safepath.problem(p) is not None for p in paths)
    files = set(paths)
    clash = any("/".join(p.split("/")[:i]) in files
                for p in paths for i in range(1, len(p.split("/"))))
    entries = ",".join(f"[{space}{json.dumps(p, ensure_ascii=ascii_only)},{space}\"{H}\",1,false]"
                       for p in sorted(paths))
    doc = f'{{"format":1,"entries":[{space}{entries}]}}'.encode()
    if unsafe:
        with pytest.raises(StorageError, match="unsafe path"):
            Manifest.from_bytes(doc)
    elif clash:
        with pytest.raises(StorageError, match="both a file and a directory"):
            Manifest.from_bytes(doc)
    else:
        assert sorted(e.path for e in Manifest.from_bytes(doc).entries) == sorted(paths)


@pytest.mark.parametrize("member", [".git/hooks/pre-commit", "sub/.git/config",
                                    ".pipeflow/config", "a/\u0007b", "x" * 256])
def test_manifest_members_inside_git_or_with_controls_are_refused(member: str) -> None:
    doc = json.dumps({"format": 1, "entries": [[member, H, 1, False]]}).encode()
    with pytest.raises(StorageError, match="unsafe path"):
        Manifest.from_bytes(doc)


def test_manifest_in_another_json_encoding_gets_every_path_checked() -> None:
    # json.loads also reads UTF-16/32: the one-scan shortcut is for ASCII text only
    doc = json.dumps({"format": 1, "entries": [["../../etc/evil", H, 1, False]]})
    for codec in ("utf-16-le", "utf-16-be", "utf-16", "utf-32-le"):
        with pytest.raises(StorageError, match="unsafe path"):
            Manifest.from_bytes(doc.encode(codec))


# --- reading outside the project (issue 11, item 3) -----------------------------------


def _outside_project(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "proj"
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "f.txt").write_bytes(b"outside")
    root.mkdir()
    return root, outside


def test_a_path_linked_outside_is_refused_unless_external(tmp_path: Path) -> None:
    from pipeflow.errors import OutsideProjectError

    root, outside = _outside_project(tmp_path)
    (root / "raw").symlink_to(outside)
    hasher = Hasher(root, None, IgnoreRules())
    with pytest.raises(OutsideProjectError, match="leads outside the project") as caught:
        hasher.hash_path("raw")
    assert caught.value.target == str(outside.resolve())
    assert hasher.files_read == 0
    info = hasher.hash_path("raw", external=True)
    assert info.isdir and hasher.files_read == 1
    with pytest.raises(OutsideProjectError):  # memoized, still refused for a non-external ask
        hasher.hash_path("raw")


def test_a_link_inside_a_folder_is_judged_before_it_is_walked(tmp_path: Path) -> None:
    from pipeflow.errors import OutsideProjectError

    root, outside = _outside_project(tmp_path)
    write(root / "raw" / "a.txt")
    (root / "raw" / "more").symlink_to(outside)
    hasher = Hasher(root, None, IgnoreRules())
    with pytest.raises(OutsideProjectError, match="through the link 'raw/more'"):
        hasher.hash_path("raw")
    with pytest.raises(OutsideProjectError):
        hasher.manifest("raw")
    assert hasher.hash_path("raw", external=True).nfiles == 2
    (root / "raw" / "more").unlink()
    write(root / "data" / "b.txt")
    (root / "raw" / "more").symlink_to(root / "data")  # inside: followed, as ever
    hasher.forget("raw")
    assert hasher.hash_path("raw").nfiles == 2


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/null", "/proc/self", "/sys"])
def test_dev_proc_sys_are_never_entered(tmp_path: Path, target: str) -> None:
    from pipeflow.errors import OutsideProjectError

    root = tmp_path / "proj"
    (root / "raw").mkdir(parents=True)
    (root / "raw" / "x").symlink_to(target)
    hasher = Hasher(root, None, IgnoreRules())
    for rel, external in (("raw/x", False), ("raw/x", True), ("raw", True)):
        with pytest.raises(OutsideProjectError, match="device or kernel") as caught:
            hasher.hash_path(rel, external=external)
        assert caught.value.special
