"""Run records naming unsafe paths are bad records: skipped, never used."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeflow.errors import StorageError
from pipeflow.files import safepath
from pipeflow.records.records import RecordStore, canonical, unsafe_path

H = "a" * 32
CHAIN = "0123456789abcdef"


def _planted(store: RecordStore, body: dict[str, Any]) -> Path:
    """A record file as anyone with write access to the remote can make one."""
    data = canonical(body)
    path = store.runs / CHAIN / f"00000001-{hashlib.sha256(data).hexdigest()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _body(**fields: Any) -> dict[str, Any]:
    return {"kind": "run", "stage": "s", "fingerprint": H, "exit_status": 0,
            "chain": CHAIN, "seq": 1, "prev": None, **fields}


@pytest.mark.parametrize("fields", [
    {"outputs": [{"path": "../escaped", "hash": H, "size": 1}]},
    {"outputs": [{"path": "/etc/passwd", "hash": H, "size": 1}]},
    {"outputs": [{"path": ".git/hooks/pre-commit", "hash": H, "size": 1}]},
    {"metrics": {"../m.json": {"acc": 1}}},
    {"components": {"deps": [{"path": "a/../../x", "hash": H, "size": 1}]}},
    {"components": {"code": [{"path": "x\n", "hash": H, "size": 1}]}},
])
def test_a_record_naming_an_unsafe_path_is_a_bad_record(tmp_path: Path,
                                                        fields: dict[str, Any]) -> None:
    store = RecordStore(tmp_path / "cache", tmp_path / "chain")
    path = _planted(store, _body(**fields))
    with pytest.raises(StorageError, match="path"):
        store.read_path(path)
    # the run cache skips it with a warning instead of restoring its outputs
    (store.runcache / H[:2]).mkdir(parents=True)
    (store.runcache / H[:2] / H).write_text(f"{CHAIN}/{path.name}\n")
    assert store.lookup(H) is None
    assert store.skipped and "path" in store.skipped[0]


def test_a_record_with_safe_paths_reads(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "cache", tmp_path / "chain")
    body = _body(outputs=[{"path": "models/m.pkl", "hash": H, "size": 1}],
                 metrics={"metrics.json": {"acc": 1}},
                 components={"deps": [{"path": "data/raw.csv", "hash": H, "size": 1}],
                             "outs": ["models/m.pkl|out"]})
    assert store.read_path(_planted(store, body)).outputs[0].path == "models/m.pkl"


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=30))
def test_any_output_path_is_refused_or_safe(path: str) -> None:
    body = _body(outputs=[{"path": path, "hash": H, "size": 1}])
    assert (unsafe_path(body) is None) == (safepath.problem(path) is None)
