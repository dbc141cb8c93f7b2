"""The scrypt digest of a secret env var is computed once per machine (issue 11 review:
three secret vars made every no-op `status` 0.26 s slower), and what the machine
keeps to find it again lets no one test a guess of the value."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeflow import credentials
from pipeflow.files import digestcache
from pipeflow.files.machinecache import machine_cache_path

VALUE = "hunter2-S3CR3T"


def _counting_scrypt(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real: Callable[..., bytes] = hashlib.scrypt

    def scrypt(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", scrypt)
    return calls


def _new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a new command starts with: no in-process memo."""
    monkeypatch.setattr(credentials, "_MEMO", {})


def test_a_digest_is_computed_once_per_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPEFLOW_FINGERPRINT_KEY", raising=False)
    calls = _counting_scrypt(monkeypatch)
    first = credentials.env_value("AWS_SECRET_ACCESS_KEY", VALUE)
    _new_process(monkeypatch)
    assert credentials.env_value("AWS_SECRET_ACCESS_KEY", VALUE) == first
    assert len(calls) == 1
    # a changed value, another name or the team key is another digest, computed
    for name, value, team in (("AWS_SECRET_ACCESS_KEY", VALUE + "x", ""),
                              ("OTHER_TOKEN", VALUE, ""), ("AWS_SECRET_ACCESS_KEY", VALUE, "t")):
        _new_process(monkeypatch)
        monkeypatch.setenv("PIPEFLOW_FINGERPRINT_KEY", team)
        got = credentials.env_value(name, value)
        salt = credentials._DOMAIN + name.encode() + b"\x00" + team.encode()
        raw = hashlib.scrypt(value.encode(), salt=salt, n=2**14, r=8, p=1, dklen=16)
        assert got is not None and got.endswith(raw.hex()) and got != first


def test_the_machine_keeps_no_value_and_no_unkeyed_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPEFLOW_FINGERPRINT_KEY", raising=False)
    credentials.env_value("HF_TOKEN", VALUE)
    folder = machine_cache_path().parent
    stored = b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())
    data = VALUE.encode()
    for needle in (data, hashlib.sha256(data).hexdigest().encode(),
                   hashlib.blake2b(data).hexdigest().encode(),
                   hashlib.md5(data).hexdigest().encode()):
        assert needle not in stored
    assert b"env-digest:" in stored  # it is cached, under a keyed hash
    key = folder / digestcache.KEY_FILE
    assert os.stat(key).st_mode & 0o777 == 0o600


def test_a_key_file_others_can_read_is_not_used(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("PIPEFLOW_MACHINE_CACHE", str(tmp_path / "machine.db"))
    key = tmp_path / digestcache.KEY_FILE
    key.write_text("ab" * 32 + "\n")
    key.chmod(0o644)
    calls = _counting_scrypt(monkeypatch)
    for _ in range(2):
        _new_process(monkeypatch)
        credentials.env_value("DB_PASSWORD", VALUE)
    assert len(calls) == 2  # recomputed each time, as before: correct, only slower


def test_a_tampered_cache_entry_is_recomputed(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeflow.files.machinecache import machine_cache

    monkeypatch.delenv("PIPEFLOW_FINGERPRINT_KEY", raising=False)
    right = credentials.env_value("DB_PASSWORD", VALUE)
    entry = digestcache._entry("DB_PASSWORD", VALUE, "")
    assert entry is not None
    machine_cache().put(entry, "not a digest")
    _new_process(monkeypatch)
    assert credentials.env_value("DB_PASSWORD", VALUE) == right
