"""Params files: parsing by format, errors with line numbers, dotted keys, select, diff."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pipeflow.errors import PipeflowError, SpecError
from pipeflow.params import (
    ABSENT,
    MissingParamError,
    ParamChange,
    ParamsFileNotFound,
    clear_cache,
    diff,
    flatten,
    lookup,
    read_params,
    select,
)

NESTED = {"train": {"lr": 0.1, "opt": {"name": "adam", "betas": [0.9, 0.99]}}, "seed": 1}


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_cache()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("p.yaml", "train:\n  lr: 0.1\n  layers: [1, 2]\nseed: 1\n"),
        ("p.yml", "train: {lr: 0.1, layers: [1, 2]}\nseed: 1\n"),
        ("p.json", '{"train": {"lr": 0.1, "layers": [1, 2]}, "seed": 1}'),
        ("p.toml", "seed = 1\n[train]\nlr = 0.1\nlayers = [1, 2]\n"),
    ],
)
def test_read_params_formats(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    assert read_params(tmp_path / name) == {"train": {"lr": 0.1, "layers": [1, 2]}, "seed": 1}


def test_empty_yaml_is_empty_mapping(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("# nothing yet\n")
    assert read_params(tmp_path / "p.yaml") == {}


@pytest.mark.parametrize(
    ("name", "text", "line", "column", "words"),
    [
        ("p.yaml", "a: 1\nb: [1, 2\nc: 3\n", 3, 2, "YAML syntax error"),
        ("p.json", '{\n  "a": 1,\n  "b": \n}', 4, 1, "JSON syntax error"),
        ("p.toml", "a = 1\nb = = 2\n", 2, 5, "TOML syntax error"),
    ],
)
def test_parse_errors_have_file_and_line(
    tmp_path: Path, name: str, text: str, line: int, column: int, words: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(SpecError) as info:
        read_params(tmp_path / name, name=name)
    assert info.value.location is not None
    assert info.value.location.file == name
    assert info.value.location.line == line
    assert info.value.location.column == column
    assert words in info.value.message
    assert str(info.value).startswith(f"{name}:{line}:{column}: ")


def test_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text("[1, 2]")
    with pytest.raises(SpecError, match="must hold a mapping"):
        read_params(tmp_path / "p.json")


def test_missing_file_and_bad_suffix(tmp_path: Path) -> None:
    with pytest.raises(ParamsFileNotFound, match=r"'nope\.yaml' does not exist"):
        read_params(tmp_path / "nope.yaml", name="nope.yaml")
    (tmp_path / "p.ini").write_text("a=1")
    with pytest.raises(SpecError, match=r"must be YAML \(.yaml, .yml\), JSON"):
        read_params(tmp_path / "p.ini")


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        read_params(tmp_path / "p.yaml")


def test_cache_hits_until_file_changes(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("a: 1\n")
    first = read_params(p)
    assert read_params(p) is first  # parsed once
    p.write_text("a: 22\n")  # size changes
    assert read_params(p) == {"a": 22}
    st = p.stat()
    p.write_text("a: 33\n")  # same size: the mtime tells
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert read_params(p) == {"a": 33}


def test_lookup() -> None:
    assert lookup(NESTED, "train.lr") == 0.1
    assert lookup(NESTED, "train.opt") == {"name": "adam", "betas": [0.9, 0.99]}
    odd_keys: dict[Any, Any] = {1: {True: "x"}}
    assert lookup(odd_keys, "1.true") == "x"  # YAML keys that are not strings


def test_lookup_missing_is_keyerror_and_pipeflow_error() -> None:
    with pytest.raises(MissingParamError) as info:
        lookup(NESTED, "train.lrr")
    err = info.value
    assert isinstance(err, KeyError)
    assert isinstance(err, PipeflowError)
    assert err.found == "train"
    assert "train.lr" in err.available
    assert err.suggestions()[0] == "train.lr"
    assert str(err) == "no key 'train.lrr' ('train' has no 'lrr')"
    with pytest.raises(MissingParamError):
        lookup(NESTED, "seed.x")  # cannot descend into a scalar
    with pytest.raises(MissingParamError):
        lookup(NESTED, "train.opt.betas.0")  # lists are leaves


def test_flatten_keeps_lists_and_empty_mappings() -> None:
    assert flatten({**NESTED, "empty": {}}) == {
        "train.lr": 0.1,
        "train.opt.name": "adam",
        "train.opt.betas": [0.9, 0.99],
        "seed": 1,
        "empty": {},
    }
    assert flatten({"a": 1}, prefix="p") == {"p.a": 1}


def test_select_expands_sections() -> None:
    assert select(NESTED, ("train.opt", "seed")) == {
        "train.opt.name": "adam",
        "train.opt.betas": [0.9, 0.99],
        "seed": 1,
    }
    assert select(NESTED, ()) == flatten(NESTED)
    assert select(NESTED, ("train.lr",)) == {"train.lr": 0.1}
    with pytest.raises(MissingParamError):
        select(NESTED, ("nope",))


def test_diff() -> None:
    old = {"a": 1, "b": [1, 2], "c": "x", "same": 0.5}
    new = {"a": 2, "b": [1, 2, 3], "d": True, "same": 0.5}
    assert diff(old, new) == [
        ParamChange("a", 1, 2),
        ParamChange("b", [1, 2], [1, 2, 3]),
        ParamChange("c", "x", ABSENT),
        ParamChange("d", ABSENT, True),
    ]
    changes = diff(old, new)
    assert changes[2].removed and not changes[2].added
    assert changes[3].added
    assert diff(old, dict(old)) == []


def test_diff_compares_types() -> None:
    # 1 == 1.0 == True in Python, but a program reading the file sees a difference
    assert [c.key for c in diff({"a": 1, "b": 1}, {"a": 1.0, "b": True})] == ["a", "b"]
    nan = float("nan")
    assert diff({"a": nan}, {"a": nan}) == []
    assert repr(ABSENT) == "ABSENT"
