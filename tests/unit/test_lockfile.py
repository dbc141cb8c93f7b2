"""pipeline.lock: exact text, strict validation, atomic writes, property round trips."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeflow.errors import DiskFull, LockfileError
from pipeflow.lock import lockfile
from pipeflow.lock.lockfile import (
    HEADER,
    FileEntry,
    Lock,
    MetricEntry,
    StageLock,
    dumps,
    loads,
    read,
    stage_from_dict,
    stage_to_dict,
    write,
)

H1 = "0123456789abcdef0123456789abcdef"
H2 = "fedcba9876543210fedcba9876543210"
H3 = "a" * 32
RUN = "b" * 64


def sample_lock() -> Lock:
    train = StageLock(
        cmd=("python train.py",),
        fingerprint=H1,
        deps=(FileEntry("data/features", H2, 2048, isdir=True, nfiles=2),),
        params={"params.yaml": {"train.seed": 7, "train.lr": 0.05}},
        code=(FileEntry("train.py", H3, 120),),
        env={"python": "cpython-3.11", "platform": "linux-x86_64"},
        outs=(FileEntry("models/model.pkl", H2, 999), FileEntry("log.txt", H3, 5, cache=False)),
        metrics=(MetricEntry("metrics.json", H1, 30, values={"acc": 0.93, "loss": 1e-05}),),
        run=RUN,
    )
    prepare = StageLock(cmd=("mkdir -p data", "python prepare.py"), fingerprint=H2)
    return Lock(
        stages={"train": train, "prepare": prepare},
        sources={"data/raw.csv": FileEntry("data/raw.csv", H3, 10)},
    )


EXPECTED = (
    HEADER + "schema: 1\n"
    "stages:\n"
    "  prepare:\n"
    "    cmd:\n"
    '      - "mkdir -p data"\n'
    '      - "python prepare.py"\n'
    "    fingerprint: fedcba9876543210fedcba9876543210\n"
    "  train:\n"
    '    cmd: "python train.py"\n'
    "    fingerprint: 0123456789abcdef0123456789abcdef\n"
    "    deps:\n"
    "      - path: data/features\n"
    "        hash: fedcba9876543210fedcba9876543210\n"
    "        size: 2048\n"
    "        isdir: true\n"
    "        nfiles: 2\n"
    "    params:\n"
    "      params.yaml:\n"
    "        train.lr: 0.05\n"
    "        train.seed: 7\n"
    "    code:\n"
    "      - path: train.py\n"
    "        hash: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
    "        size: 120\n"
    "    env:\n"
    "      platform: linux-x86_64\n"
    "      python: cpython-3.11\n"
    "    outs:\n"
    "      - path: models/model.pkl\n"
    "        hash: fedcba9876543210fedcba9876543210\n"
    "        size: 999\n"
    "      - path: log.txt\n"
    "        hash: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
    "        size: 5\n"
    "        cache: false\n"
    "    metrics:\n"
    "      - path: metrics.json\n"
    "        hash: 0123456789abcdef0123456789abcdef\n"
    "        size: 30\n"
    "        values:\n"
    "          acc: 0.93\n"
    "          loss: 1.0e-05\n"
    f"    run: {RUN}\n"
    "sources:\n"
    "  data/raw.csv:\n"
    "    hash: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
    "    size: 10\n"
)


def test_exact_text_sorted_and_defaults_omitted() -> None:
    assert dumps(sample_lock()) == EXPECTED


def test_text_round_trips() -> None:
    assert loads(EXPECTED) == sample_lock()


def test_empty_lock() -> None:
    assert dumps(Lock()) == HEADER + "schema: 1\nstages: {}\n"
    assert loads(dumps(Lock())) == Lock()
    assert loads("") == Lock()
    assert loads("# only a comment\n") == Lock()


def test_stage_dict_round_trips_through_json() -> None:
    stage = sample_lock().stages["train"]
    row = json.loads(json.dumps(stage_to_dict(stage)))
    assert stage_from_dict(row, "journal row 1") == stage


def test_params_may_hold_dates_and_nested_values() -> None:
    params = {
        "params.yaml": {
            "data.since": datetime.date(2024, 1, 31),
            "run.at": datetime.datetime(2024, 1, 31, 12, 0, tzinfo=datetime.UTC),
            "model": {"layers": [64, 32], "act": "relu", "dropout": None},
        }
    }
    lock = Lock(stages={"t": StageLock(cmd=("x",), fingerprint=H1, params=params)})
    text = dumps(lock)
    assert "        data.since: 2024-01-31\n" in text
    assert "          act: relu\n          dropout: null\n" in text  # nested keys sorted
    assert loads(text) == lock


def test_missing_inputs_may_have_an_empty_hash_but_outputs_may_not() -> None:
    missing = FileEntry("optional.csv", "", 0)
    lock = Lock(
        stages={"t": StageLock(cmd=("x",), fingerprint=H1, deps=(missing,), code=(missing,))}
    )
    assert loads(dumps(lock)) == lock
    bad = Lock(stages={"t": StageLock(cmd=("x",), fingerprint=H1, outs=(missing,))})
    with pytest.raises(LockfileError, match=r"field 'outs\[0\]\.hash': expected 32 lowercase"):
        loads(dumps(bad))


def test_source_key_must_match_entry_path() -> None:
    with pytest.raises(ValueError, match="has path"):
        dumps(Lock(sources={"a": FileEntry("b", H1, 1)}))


def test_a_source_may_be_external_an_output_may_not() -> None:
    lock = Lock(sources={"data": FileEntry("data", H1, 2, True, 1, external=True)})
    text = dumps(lock)
    assert "    external: true\n" in text
    assert loads(text) == lock
    assert "external" not in dumps(Lock(sources={"d": FileEntry("d", H1, 2)}))
    with pytest.raises(LockfileError, match=r"source 'data'.*external.*true or false"):
        loads(text.replace("external: true", "external: 'yes'"))
    out = Lock(stages={"t": StageLock(cmd=("x",), fingerprint=H1,
                                      outs=(FileEntry("m", H1, 1),))})
    with pytest.raises(LockfileError, match="external"):
        loads(dumps(out).replace("    size: 1\n", "    size: 1\n    external: true\n"))


def error_for(text: str, file: str = "pipeline.lock") -> LockfileError:
    with pytest.raises(LockfileError) as info:
        loads(text, file)
    return info.value


def test_yaml_syntax_error_names_file_and_line() -> None:
    err = error_for("schema: 1\nstages:\n  train:\n    cmd: x\n  - y\n")
    assert err.message.startswith("pipeline.lock:5:")
    assert "not valid YAML" in err.message
    assert err.hint is not None
    assert "pipeflow repro" in err.hint
    assert "git checkout pipeline.lock" in err.hint


def test_hint_names_the_file_given() -> None:
    err = error_for("- 1\n", file="sub/pipeline.lock")
    assert err.message == "sub/pipeline.lock: expected a mapping, got a list"
    assert err.hint is not None
    assert "git checkout sub/pipeline.lock" in err.hint


def test_newer_schema_is_a_clear_error() -> None:
    err = error_for("schema: 2\nstages: {}\nsomething_new: 1\n")
    assert "written by a newer pipeflow" in err.message
    assert "schema 2" in err.message
    assert err.hint is not None
    assert "upgrade" in err.hint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stages: {}\n", "pipeline.lock: field 'schema': missing"),
        ("schema: 0\n", "pipeline.lock: field 'schema': expected 1, got 0"),
        ("schema: true\n", "pipeline.lock: field 'schema': expected 1, got True"),
        ("schema: 1\nstage: {}\n", "field 'stage': unknown field (did you mean 'stages'?)"),
        ("schema: 1\nstages: []\n", "field 'stages': expected a mapping, got a list"),
        ("schema: 1\nstages:\n  1: {}\n", "stage names must be non-empty strings, got 1"),
        (
            f"schema: 1\nstages:\n  train:\n    fingerprint: {H1}\n",
            "pipeline.lock: stage 'train': field 'cmd': missing",
        ),
        (
            "schema: 1\nstages:\n  train:\n    cmd: x\n    fingerprint: abc\n",
            "stage 'train': field 'fingerprint': expected 32 lowercase hex digits, got 'abc'",
        ),
        (
            f"schema: 1\nstages:\n  train:\n    cmd: x\n    fingerprint: {H1}\n    dep: []\n",
            "stage 'train': field 'dep': unknown field (did you mean 'deps'?)",
        ),
        (
            f"schema: 1\nstages:\n  t:\n    cmd: [x, 1]\n    fingerprint: {H1}\n",
            "stage 't': field 'cmd': expected a string or a list of strings",
        ),
        (
            f"schema: 1\nstages:\n  t:\n    cmd: x\n    fingerprint: {H1}\n"
            f"    deps:\n      - path: a\n        hash: {H1}\n        size: -1\n",
            "stage 't': field 'deps[0].size': expected a non-negative integer, got -1",
        ),
        (
            f"schema: 1\nstages:\n  t:\n    cmd: x\n    fingerprint: {H1}\n"
            f"    outs:\n      - path: a\n        hash: {H1.upper()}\n        size: 1\n",
            "stage 't': field 'outs[0].hash': expected 32 lowercase hex digits",
        ),
        (
            f"schema: 1\nstages:\n  t:\n    cmd: x\n    fingerprint: {H1}\n"
            f"    outs:\n      - path: a\n        hash: {H1}\n",
            "stage 't': field 'outs[0].size': missing",
        ),
        (
            f"schema: 1\nstages:\n  t:\n    cmd: x\n    fingerprint: {H1}\n"
            f"    code:\n      - path: a\n        hash: {H1}\n        size: 1\n        isdir: 1\n",
            "stage 't': field 'code[0].isdir': expected true or false, got 1",
        ),
        (
            f"schema: 1\nstages:\n  t:\n    cmd: x\n    fingerprint: {H1}\n"
            "    params:\n      params.yaml:\n        when: !!set {a}\n",
            "stage 't': field 'params.params.yaml.when': expected plain data, got a set",
        ),
        (
            f"schema: 1\nstages:\n  t:\n    cmd: x\n    fingerprint: {H1}\n    run: {H1}\n",
            "stage 't': field 'run': expected 64 lowercase hex digits",
        ),
        (
            f"schema: 1\nstages:\n  t:\n    cmd: x\n    fingerprint: {H1}\n"
            f"    metrics:\n      - path: m.json\n        hash: {H1}\n        size: 1\n"
            "        values: [1]\n",
            "stage 't': field 'metrics[0].values': expected a mapping, got a list",
        ),
        (
            f"schema: 1\nsources:\n  raw.csv:\n    path: raw.csv\n    hash: {H1}\n    size: 1\n",
            "pipeline.lock: source 'raw.csv': field 'path': unknown field",
        ),
        (
            f"schema: 1\nstages:\n  t:\n    cmd: x\n    fingerprint: {H1}\n"
            "    env:\n      deep: &a [*a]\n",
            "stages.t.env.deep.0: a value contains itself",
        ),
        ("schema: !!int x\n", "pipeline.lock: not valid YAML"),
        ("schema: 1\nwhen: 2001-02-30\n", "pipeline.lock: not valid YAML"),
    ],
)
def test_shape_errors_name_file_stage_and_field(text: str, expected: str) -> None:
    err = error_for(text)
    assert expected in err.message
    assert err.hint is not None


def test_read_missing_file_is_an_empty_lock(tmp_path: Path) -> None:
    assert read(tmp_path / "pipeline.lock") == Lock()


def test_write_then_read(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.lock"
    write(path, sample_lock())
    assert path.read_text(encoding="utf-8") == EXPECTED
    assert read(path) == sample_lock()
    write(path, Lock())
    assert read(path) == Lock()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline.lock"]


def test_write_respects_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write(tmp_path / "pipeline.lock", Lock())
    finally:
        os.umask(old)
    assert (tmp_path / "pipeline.lock").stat().st_mode & 0o777 == 0o644


def test_write_fsyncs_the_temp_file_before_renaming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync-dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync-file")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write(tmp_path / "pipeline.lock", sample_lock())
    assert events == ["fsync-file", "replace", "fsync-dir"]


def test_failed_write_keeps_the_old_lock_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pipeline.lock"
    write(path, sample_lock())

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(DiskFull, match=r"disk is full: cannot write .*pipeline.lock"):
        write(path, Lock())
    assert path.read_text(encoding="utf-8") == EXPECTED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline.lock"]


def test_write_into_missing_directory_is_a_lockfile_error(tmp_path: Path) -> None:
    with pytest.raises(LockfileError, match="cannot write"):
        write(tmp_path / "nope" / "pipeline.lock", Lock())


def test_unreadable_bytes_are_a_lockfile_error(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.lock"
    path.write_bytes(b"schema: 1\nstages: {\xff}\n")
    with pytest.raises(LockfileError, match="not UTF-8"):
        read(path)


def test_surrogate_paths_survive_a_file_round_trip(tmp_path: Path) -> None:
    name = "data/\udcff.bin"  # a non-UTF-8 file name decoded with surrogateescape
    lock = Lock(stages={"s": StageLock(cmd=("x",), fingerprint=H1, outs=(FileEntry(name, H2, 1),))})
    write(tmp_path / "pipeline.lock", lock)
    assert read(tmp_path / "pipeline.lock") == lock


# --- properties --------------------------------------------------------------

any_text = st.text(st.characters(exclude_categories=()), max_size=20)
names = st.text(st.characters(exclude_categories=()), min_size=1, max_size=20)
hashes = st.text("0123456789abcdef", min_size=32, max_size=32)
# Paths a lock may hold (pipeflow.files.safepath): relative, normal, no control characters,
# outside .git/ and .pipeflow/.
segments = st.text(st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/"),
                   min_size=1, max_size=8).filter(lambda s: s not in (".", "..", ".git",
                                                                       ".pipeflow"))
paths = st.lists(segments, min_size=1, max_size=3).map("/".join)
counts = st.integers(min_value=0, max_value=2**64)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.dates()
)
values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=6,
)
entry_fields: dict[str, Any] = {
    "path": paths,
    "hash": hashes,
    "size": counts,
    "isdir": st.booleans(),
    "nfiles": st.none() | counts,
    "cache": st.booleans(),
}
entries = st.builds(FileEntry, **entry_fields)
input_entries = st.builds(FileEntry, **{**entry_fields, "hash": hashes | st.just("")})
metric_entries = st.builds(
    MetricEntry, **entry_fields, values=st.dictionaries(names, scalars, max_size=3)
)
stages = st.builds(
    StageLock,
    cmd=st.lists(any_text, max_size=3).map(tuple),
    fingerprint=hashes,
    deps=st.lists(input_entries, max_size=3).map(tuple),
    params=st.dictionaries(paths, st.dictionaries(names, values, max_size=3), max_size=2),
    code=st.lists(input_entries, max_size=2).map(tuple),
    env=st.dictionaries(names, values, max_size=3),
    outs=st.lists(entries, max_size=3).map(tuple),
    metrics=st.lists(metric_entries, max_size=2).map(tuple),
    run=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
)
locks = st.builds(
    Lock,
    stages=st.dictionaries(names, stages, max_size=4),
    sources=st.dictionaries(paths, st.tuples(entries, st.booleans()), max_size=3).map(
        lambda d: {k: dataclasses.replace(v, path=k, external=x) for k, (v, x) in d.items()}
    ),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(locks)
def test_any_lock_round_trips(lock: Lock) -> None:
    text = dumps(lock)
    text.encode("utf-8")
    assert loads(text) == lock
    assert dumps(loads(text)) == text


def loads_or_lockfile_error(text: str) -> None:
    try:
        result = loads(text)
    except LockfileError:
        return
    assert isinstance(result, Lock)


@settings(max_examples=300)
@given(st.text())
def test_garbage_text_raises_only_lockfile_error(text: str) -> None:
    loads_or_lockfile_error(text)


yaml_fragments = st.sampled_from(
    [
        "schema: 1\n",
        "stages:\n",
        "  t:\n",
        "    cmd: x\n",
        "    fingerprint: ",
        H1,
        "\n",
        "    deps:\n",
        "      - ",
        "path: a\n",
        "hash: ",
        "size: 3\n",
        "!!int ",
        "!!float ",
        "!!binary ",
        "!!timestamp ",
        "!!set ",
        "!!python/object ",
        "&a ",
        "*a",
        "[",
        "]",
        "{",
        "}",
        ": ",
        "- ",
        "? ",
        "'",
        '"',
        "\\",
        "2001-02-30",
        ".nan",
        "~",
        "<<: ",
        "\t",
        "%YAML 1.1\n",
        "---\n",
        "...\n",
        "\x00",
        "\ud800",
        "\ufeff",
        " ",
        "x",
        "1",
        "-1",
        "yes",
        "null",
    ]
)


@settings(max_examples=500)
@given(st.lists(yaml_fragments, max_size=30).map("".join))
def test_yaml_like_garbage_raises_only_lockfile_error(text: str) -> None:
    loads_or_lockfile_error(text)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(locks, st.data())
def test_corrupted_structures_raise_only_lockfile_error(lock: Lock, data: st.DataObject) -> None:
    doc: Any = lockfile.lock_to_dict(lock)
    # Walk down a random path and replace what is there with random data.
    node = doc
    while True:
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node, key=repr)))
        elif isinstance(node, list) and node:
            key = data.draw(st.integers(0, len(node) - 1))
        else:
            break
        if data.draw(st.booleans()) or not isinstance(node[key], dict | list):
            node[key] = data.draw(values | st.sampled_from(["", -1, [], {}, H1, "x" * 64]))
            break
        node = node[key]
    from pipeflow.files import yamlemit

    loads_or_lockfile_error(HEADER + yamlemit.dump(doc))


# --- paths (issue 11: a crafted lock must not name a place outside the project) -----

_SOURCE = "schema: 1\nsources:\n  {path}: {{hash: " + "a" * 32 + ", size: 1}}\n"
_STAGE = ("schema: 1\nstages:\n  s:\n    cmd: x\n    fingerprint: " + "b" * 32 +
          "\n    {field}:\n    - {{path: {path}, hash: " + "a" * 32 + ", size: 1}}\n")


@pytest.mark.parametrize("path", [
    "../escaped.txt", "/abs/path", ".git/hooks", ".git/hooks/pre-commit", "data/../../x",
    "a/./b", "a//b", "a/", ".pipeflow/config", "sub/.git/config", '"a\\0b"', '"a\\nb"',
])
def test_a_lock_source_with_an_unsafe_path_is_refused_naming_it(path: str) -> None:
    with pytest.raises(LockfileError) as exc:
        loads(_SOURCE.format(path=json.dumps(path) if not path.startswith('"') else path))
    assert "pipeline.lock" in exc.value.message and "sources" in exc.value.message
    assert "nothing was written" in exc.value.message


@pytest.mark.parametrize("field", ["deps", "code", "outs", "metrics"])
@pytest.mark.parametrize("path", ["../x", "/etc/passwd", ".git/hooks/pre-commit"])
def test_a_lock_stage_entry_with_an_unsafe_path_is_refused_naming_it(field: str,
                                                                      path: str) -> None:
    with pytest.raises(LockfileError) as exc:
        loads(_STAGE.format(field=field, path=json.dumps(path)))
    assert f"stage 's': field '{field}[0].path'" in exc.value.message


def test_a_lock_params_file_with_an_unsafe_path_is_refused() -> None:
    text = ("schema: 1\nstages:\n  s:\n    cmd: x\n    fingerprint: " + "b" * 32 +
            "\n    params:\n      ../params.yaml: {lr: 1}\n")
    with pytest.raises(LockfileError, match="params"):
        loads(text)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40))
def test_any_source_path_is_refused_or_safe(path: str) -> None:
    """Whatever string a crafted lock names as a source or an output, the parser
    either refuses it or yields a path pipeflow.files.safepath accepts."""
    from pipeflow.files import safepath

    for text in (_SOURCE.format(path=json.dumps(path)),
                 _STAGE.format(field="outs", path=json.dumps(path))):
        try:
            lock = loads(text)
        except LockfileError:
            continue
        named = [*lock.sources, *(e.path for s in lock.stages.values() for e in s.outs)]
        assert all(safepath.problem(p) is None for p in named), named
