"""Placing files: reflink probe, link modes, and the Linker's resolution of cache.link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeflow.content.hashing import HashInfo
from pipeflow.errors import ConfigError, StorageError
from pipeflow.state import StateDB
from pipeflow.storage import links
from pipeflow.storage.links import LINK_SETTINGS, Linker, probe_reflink
from pipeflow.storage.store import ObjectStore


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


@pytest.mark.parametrize("setting", ["softlink", "symlink"])
def test_linker_rejects_unknown_setting(setting: str) -> None:
    assert "reflink-or-copy" in LINK_SETTINGS
    with pytest.raises(ConfigError, match="unknown link type"):
        Linker(setting=setting)


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
    for setting in ("copy", "hardlink"):
        assert Linker(setting=setting).mode_for(tmp_path, tmp_path) == setting


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
    store = ObjectStore(tmp_path / "objects", Linker(setting="copy"))
    oid = store.add_file(src)
    store.checkout(HashInfo(oid, 7), tmp_path / "out", linker=linker)
    assert (tmp_path / "out").read_bytes() == b"payload"
    db.close()


def test_mode_for_needs_folders() -> None:
    with pytest.raises(TypeError):  # a caller's bug, not the user's: exit 3
        Linker(setting="reflink-or-copy").mode_for()
