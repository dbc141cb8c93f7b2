"""Fuzzing every reader of files from a clone or a remote.

The property: a reader either returns a value or raises a PipeflowError, whatever
the bytes (never a RecursionError, TypeError, UnicodeError, ...). Inputs mix raw
bytes, JSON/YAML of random values, deep nesting, alias bombs, and mutations of a
valid file, so both the parsers and the checks after them are reached.

1,000 examples per reader by default; ``PIPEFLOW_FUZZ_EXAMPLES=100000`` is the long
mode (see docs/testing.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeflow.content.manifest import Manifest
from pipeflow.errors import PipeflowError
from pipeflow.files import safeload
from pipeflow.lineage import tags
from pipeflow.lock import lockfile
from pipeflow.metrics import read_metrics
from pipeflow.params import clear_cache, parse_params
from pipeflow.project import config
from pipeflow.records.records import RecordStore, parse_pointer
from pipeflow.spec.loader import load_pipeline

EXAMPLES = int(os.environ.get("PIPEFLOW_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 1000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                      max_leaves=20)


def _bomb(levels: int) -> str:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _mutate(base: bytes) -> st.SearchStrategy[bytes]:
    """``base`` with a slice replaced by random bytes: near-valid files."""
    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        start = draw(st.integers(0, len(base)))
        end = draw(st.integers(start, min(len(base), start + 16)))
        return base[:start] + draw(st.binary(max_size=16)) + base[end:]
    return mutated()


def hostile(valid: bytes, *shaped: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Raw bytes, JSON and YAML of random values, deep nesting, bombs, mutations of
    ``valid``, and the reader's own shaped inputs."""
    deep = st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n)
    return st.one_of(
        st.binary(max_size=200), deep, _mutate(valid),
        values.map(lambda v: json.dumps(v).encode()),
        values.map(lambda v: yaml.safe_dump(v).encode()),
        st.integers(2, 12).map(lambda n: _bomb(n).encode()),
        *shaped)


def holds(read: Callable[[], object]) -> None:
    with contextlib.suppress(PipeflowError):
        read()


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


# --- pipeline.lock -------------------------------------------------------------

VALID_LOCK = b"""schema: 1
stages:
  train:
    cmd: python train.py
    fingerprint: 025ad6b3d8e31533dce7e9a75c55aa2f
    deps:
      - path: data/raw.txt
        hash: f4d0497cf9394caab34d1a3ab2bece70
        size: 3
    outs:
      - path: models
        hash: 53fa00ea08a5592f8067945b76138bb9
        isdir: true
"""


@FUZZ
@given(data=hostile(VALID_LOCK))
def test_lock(data: bytes, workdir: Path) -> None:
    path = workdir / "pipeline.lock"
    path.write_bytes(data)
    holds(lambda: lockfile.read(path, "pipeline.lock"))


# --- pipeline.yaml and params files --------------------------------------------

VALID_SPEC = b"""vars:
  - n: 3
stages:
  train:
    cmd: python train.py ${n}
    deps: [data/raw.txt]
    params: [train.lr]
    outs: [models]
"""
stage_values = st.fixed_dictionaries({"cmd": scalars, "deps": values, "outs": values})


@FUZZ
@given(data=hostile(VALID_SPEC, st.dictionaries(st.text(max_size=6), stage_values, max_size=3)
                    .map(lambda s: yaml.safe_dump({"stages": s}).encode())))
def test_spec(data: bytes, workdir: Path) -> None:
    (workdir / "pipeline.yaml").write_bytes(data)
    (workdir / "params.yaml").write_bytes(b"train: {lr: 1}\n")
    clear_cache()
    holds(lambda: load_pipeline(workdir))


@FUZZ
@given(data=hostile(b"train:\n  lr: 0.1\n  layers: [1, 2]\n"),
       suffix=st.sampled_from([".yaml", ".json", ".toml"]))
def test_params(data: bytes, suffix: str) -> None:
    holds(lambda: parse_params(data, suffix, f"params{suffix}"))


# --- manifests, records, pointers ----------------------------------------------

VALID_MANIFEST = (b'{"entries":[["a/b.txt","f4d0497cf9394caab34d1a3ab2bece70",3,false]],'
                  b'"format":1}')


@FUZZ
@given(data=hostile(VALID_MANIFEST))
def test_manifest(data: bytes) -> None:
    holds(lambda: Manifest.from_bytes(data))


VALID_RECORD = json.dumps({
    "chain": "c2a82e3a64891442", "seq": 1, "prev": None, "kind": "run", "stage": "train",
    "fingerprint": "025ad6b3d8e31533dce7e9a75c55aa2f", "exit_status": 0,
    "outputs": [{"path": "models", "hash": "53fa00ea08a5592f8067945b76138bb9", "size": 3}],
    "metrics": {"metrics.json": {"acc": 1}}, "git": {"commit": None, "dirty_paths": []},
    "components": {"deps": [{"path": "a", "hash": "b"}], "params": {"p.yaml": {"k": 1}}},
}, sort_keys=True).encode()
record_fields = st.dictionaries(
    st.sampled_from(["outputs", "metrics", "components", "git", "seq", "exit_status",
                     "duration", "kind", "command", "prev"]), values, max_size=3).map(
    lambda over: json.dumps({**json.loads(VALID_RECORD), **over}).encode())


@FUZZ
@given(data=hostile(VALID_RECORD, record_fields))
def test_record(data: bytes, workdir: Path) -> None:
    store = RecordStore(workdir / "cache", workdir / "chain")
    folder = store.runs / "c2a82e3a64891442"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"00000001-{hashlib.sha256(data).hexdigest()}.json"
    path.write_bytes(data)
    try:
        record = store.read_path(path)
    except PipeflowError:
        return
    finally:
        path.unlink()
    # what the index and lineage read must have the types they expect
    for out in record.outputs:
        assert isinstance(out.path, str) and isinstance(out.hash, str)
    assert all(isinstance(v, dict) for v in record.metrics.values())


@FUZZ
@given(data=hostile(b"c2a82e3a64891442/00000001-" + b"a" * 64 + b".json\n"))
def test_pointer(data: bytes) -> None:
    rel = parse_pointer(data)
    assert rel is None or rel.count("/") == 1


@FUZZ
@given(data=hostile(b'{"acc": 0.9, "loss": [1, 2]}'), suffix=st.sampled_from([".json", ".yaml"]))
def test_metrics(data: bytes, suffix: str, workdir: Path) -> None:
    path = workdir / f"metrics{suffix}"
    path.write_bytes(data)
    holds(lambda: read_metrics(path, "train", path.name))


# --- config and tag logs -------------------------------------------------------

@FUZZ
@given(data=hostile(b"cache:\n  dir: cache\n  link: copy\nremote:\n  origin:\n    url: /x\n"))
def test_config(data: bytes, workdir: Path) -> None:
    (workdir / "config").write_bytes(data)
    holds(lambda: config.load_config(workdir / "config", workdir / "config.local",
                                     {"cache": {"dir": "cache", "link": "copy"}}))


VALID_TAG = json.dumps({"path": "models", "name": "prod", "hash": "a" * 32, "user": "u",
                        "when": "t", "prev": None, "chain": "c", "seq": 1, "id": "x"}).encode()


@FUZZ
@given(lines=st.lists(hostile(VALID_TAG), max_size=4))
def test_tag_log(lines: list[bytes]) -> None:
    text = b"\n".join(lines).decode("utf-8", "surrogateescape")
    log = tags.parse_log(text)  # never raises: a damaged line is a problem, not an error
    for move in log.moves:
        assert isinstance(move.path, str) and isinstance(move.hash, str)
        move.path.encode("utf-8")  # printable: no undecodable bytes reach the output


# --- the limits themselves ------------------------------------------------------

@FUZZ
@given(value=values)
def test_bound_accepts_every_small_value(value: Any) -> None:
    safeload.bound(value, "x", "record")
