"""Placing files: reflink probe, link modes, and the Linker's resolution of cache.link."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from pipeflow.errors import ConfigError, StorageError
from pipeflow.state import StateDB
from pipeflow.storage import links
from pipeflow.storage.links import LINK_SETTINGS, Linker, link_file, probe_reflink


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(links.TEMP_SUFFIX)]


def obj(tmp_path: Path, data: bytes = b"payload", mode: int = 0o444) -> Path:
    src = tmp_path / "cache" / "ab" / "cdef"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(data)
    os.chmod(src, mode)
    return src


def on_tmpfs() -> Path | None:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


def test_probe_reflink_answers_and_leaves_nothing(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    assert isinstance(probe_reflink(a, b), bool)
    assert list(a.iterdir()) == [] and list(b.iterdir()) == []


def test_probe_reflink_false_where_unsupported(tmp_path: Path) -> None:
    shm = on_tmpfs()
    if shm is None:
        pytest.skip("no tmpfs to probe")
    assert probe_reflink(shm, shm) is False  # tmpfs has no copy-on-write
    assert probe_reflink(tmp_path / "missing", tmp_path) is False


def test_copy_makes_an_independent_writable_file(tmp_path: Path) -> None:
    src = obj(tmp_path)
    dst = tmp_path / "ws" / "deep" / "out.bin"  # parent folders created
    link_file(src, dst, "copy")
    assert dst.read_bytes() == b"payload"
    assert os.stat(dst).st_ino != os.stat(src).st_ino
    assert os.access(dst, os.W_OK)
    assert not os.stat(dst).st_mode & stat.S_IXUSR
    link_file(src, dst, "copy", executable=True)  # replaces the existing file
    assert os.stat(dst).st_mode & stat.S_IXUSR
    assert leftovers(tmp_path) == []


def test_copy_keeps_the_source_exec_bit_by_default(tmp_path: Path) -> None:
    src = obj(tmp_path, mode=0o555)
    link_file(src, tmp_path / "x", "copy")
    assert os.stat(tmp_path / "x").st_mode & stat.S_IXUSR


def test_hardlink_and_symlink(tmp_path: Path) -> None:
    src = obj(tmp_path)
    link_file(src, tmp_path / "hard", "hardlink")
    assert os.stat(tmp_path / "hard").st_ino == os.stat(src).st_ino
    link_file(src, tmp_path / "soft", "symlink")
    assert os.path.islink(tmp_path / "soft")
    assert os.path.realpath(tmp_path / "soft") == os.path.realpath(src)
    assert (tmp_path / "soft").read_bytes() == b"payload"
    assert leftovers(tmp_path) == []


def test_failed_link_raises_storage_error_and_leaves_no_temp(tmp_path: Path) -> None:
    src = obj(tmp_path)
    dst = tmp_path / "ws" / "x"
    (tmp_path / "ws" / "x").mkdir(parents=True)
    (tmp_path / "ws" / "x" / "inside").write_text("a directory in the way")
    with pytest.raises(StorageError, match="cannot copy"):
        link_file(src, dst, "copy")
    assert leftovers(tmp_path) == []
    with pytest.raises(StorageError):
        link_file(tmp_path / "no-such-object", tmp_path / "y", "hardlink")


def test_reflink_mode_fails_cleanly_where_unsupported(tmp_path: Path) -> None:
    shm = on_tmpfs()
    if shm is None:
        pytest.skip("no tmpfs")
    folder = shm / f"pipeflow-test-{os.getpid()}"
    folder.mkdir()
    try:
        src = obj(folder)
        with pytest.raises(StorageError, match="cannot reflink"):
            link_file(src, folder / "dst", "reflink")
        assert leftovers(folder) == []
        assert not (folder / "dst").exists()
    finally:
        shutil.rmtree(folder)


def test_linker_rejects_unknown_setting() -> None:
    assert "reflink-or-copy" in LINK_SETTINGS
    with pytest.raises(ConfigError, match="unknown link type"):
        Linker(setting="softlink")


def test_linker_probes_once_per_device_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Path, Path]] = []

    def fake_probe(a: Path, b: Path) -> bool:
        calls.append((a, b))
        return False

    monkeypatch.setattr(links, "probe_reflink", fake_probe)
    (tmp_path / "cache").mkdir()
    linker = Linker()
    for target in ("ws", "ws/a", "ws/b/c", "not/yet/there"):
        assert linker.mode_for(tmp_path / "cache", tmp_path / target) == "copy"
    assert len(calls) == 1
    assert linker.store_mode(tmp_path / "ws", tmp_path / "cache") == "copy"
    assert len(calls) == 1


def test_linker_uses_reflink_when_probe_says_yes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(links, "probe_reflink", lambda a, b: True)
    assert Linker().mode_for(tmp_path, tmp_path) == "reflink"
    assert Linker(setting="reflink").mode_for(tmp_path, tmp_path) == "reflink"
    assert Linker().store_mode(tmp_path, tmp_path) == "reflink"
    assert Linker(setting="copy").store_mode(tmp_path, tmp_path) == "copy"


def test_strict_reflink_setting_fails_when_unsupported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(links, "probe_reflink", lambda a, b: False)
    with pytest.raises(StorageError, match="reflink") as err:
        Linker(setting="reflink").mode_for(tmp_path, tmp_path)
    assert err.value.hint and "reflink-or-copy" in err.value.hint


def test_fixed_settings_need_no_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(a: Path, b: Path) -> bool:
        raise AssertionError("probed")

    monkeypatch.setattr(links, "probe_reflink", boom)
    for setting in ("copy", "hardlink", "symlink"):
        assert Linker(setting=setting).mode_for(tmp_path, tmp_path) == setting


def test_linker_link_keeps_exec_bit_and_never_links_executables(tmp_path: Path) -> None:
    src = obj(tmp_path)
    linker = Linker(setting="hardlink")
    linker.link(src, tmp_path / "data", executable=False)
    assert os.stat(tmp_path / "data").st_ino == os.stat(src).st_ino
    linker.link(src, tmp_path / "tool", executable=True)
    assert os.stat(tmp_path / "tool").st_ino != os.stat(src).st_ino
    assert os.stat(tmp_path / "tool").st_mode & stat.S_IXUSR
    assert not os.stat(src).st_mode & stat.S_IXUSR  # the object is untouched
    Linker(setting="copy").link(src, tmp_path / "c", executable=True)
    assert os.stat(tmp_path / "c").st_mode & stat.S_IXUSR


def test_linker_remembers_probe_in_state_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def fake_probe(a: Path, b: Path) -> bool:
        calls.append(a)
        return False

    monkeypatch.setattr(links, "probe_reflink", fake_probe)
    cache, ws = tmp_path / "cache", tmp_path / "ws"
    db = StateDB(tmp_path / "state.db")
    assert Linker(cache, ws, "reflink-or-copy", db).mode_for() == "copy"
    assert Linker(cache, ws, "reflink-or-copy", db).mode_for() == "copy"  # another process
    assert len(calls) == 1
    dev = os.stat(tmp_path).st_dev
    assert db.get(f"link-probe:{dev}:{dev}") == "0"
    db.close()


def test_stale_remembered_reflink_falls_back_to_copy(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    dev = os.stat(tmp_path).st_dev
    db.put(f"link-probe:{dev}:{dev}", "1")  # e.g. a device number reused after a reboot
    src = obj(tmp_path)
    linker = Linker(tmp_path / "cache", tmp_path, "reflink-or-copy", db)
    if probe_reflink(tmp_path, tmp_path):
        pytest.skip("this file system really reflinks")
    assert linker.mode_for() == "reflink"
    linker.link(src, tmp_path / "out", executable=False)
    assert (tmp_path / "out").read_bytes() == b"payload"
    db.close()


def test_mode_for_needs_folders() -> None:
    with pytest.raises(TypeError):  # a caller's bug, not the user's: exit 3
        Linker(setting="reflink-or-copy").mode_for()
