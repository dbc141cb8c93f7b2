"""``--set`` and ``--sweep``: the combinations an ``exp run`` tries, every mistake a
UsageError naming the text or the sweep entry, before anything runs."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeflow import params
from pipeflow.errors import UsageError
from pipeflow.experiments.overrides import (
    MAX_EXPERIMENTS,
    Override,
    as_table,
    combinations,
    parse_set,
    split_values,
    write_overrides,
)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    params.clear_cache()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "params.yaml").write_text(
        "train:\n  C: 1.0  # regularization\n  kernel: rbf\n  opt: {lr: 0.1}\n"
        "featurize:\n  k: 5\nseed: 0\n")
    (tmp_path / "model.json").write_text('{"depth": 3, "tags": ["a"]}')
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "data.toml").write_text("[split]\nratio = 0.2\n")
    return tmp_path


def _values(combos: list[tuple[Override, ...]]) -> list[dict[str, Any]]:
    return [{f"{o.file}:{o.key}": o.value for o in combo} for combo in combos]


def test_no_set_is_one_empty_combination(root: Path) -> None:
    assert combinations(root, []) == [()]


def test_values_are_yaml_typed(root: Path) -> None:
    [combo] = combinations(root, ["train.C=10", "train.kernel='10'", "seed=true",
                                  "featurize.k=[1, 2]", "model.json:depth=abc",
                                  "conf/data.toml:split.ratio=2024-01-02"])
    got = {f"{o.file}:{o.key}": o.value for o in combo}
    assert got == {"params.yaml:train.C": 10, "params.yaml:train.kernel": "10",
                   "params.yaml:seed": True, "params.yaml:featurize.k": [1, 2],
                   "model.json:depth": "abc",
                   "conf/data.toml:split.ratio": datetime.date(2024, 1, 2)}
    assert type(got["params.yaml:train.C"]) is int
    assert [(o.file, o.key) for o in combo] == sorted((o.file, o.key) for o in combo)


def test_exponent_floats_are_floats_as_in_yaml_12(root: Path) -> None:
    combos = combinations(root, ["train.C=1e-5,-2E+3,'1e-5',1e"])
    assert [c["params.yaml:train.C"] for c in _values(combos)] == [1e-5, -2000.0, "1e-5", "1e"]
    path = root / "sweep.yaml"
    path.write_text("grid: {train.kernel: [1e-3, '1e-3']}\n")
    assert [c["params.yaml:train.kernel"] for c in _values(combinations(root, [], path))] == [
        1e-3, "1e-3"]


def test_several_multi_valued_sets_make_a_grid_in_the_order_given(root: Path) -> None:
    combos = combinations(root, ["train.C=0.1,1,10", "featurize.k=5,10"])
    assert [(c["params.yaml:train.C"], c["params.yaml:featurize.k"]) for c in
            _values(combos)] == [(0.1, 5), (0.1, 10), (1, 5), (1, 10), (10, 5), (10, 10)]


def test_commas_inside_brackets_or_quotes_do_not_split(root: Path) -> None:
    combos = combinations(root, ["train.kernel='a,b',[1, 2],\"c,d\",x y"])
    assert [c["params.yaml:train.kernel"] for c in _values(combos)] == [
        "a,b", [1, 2], "c,d", "x y"]


def test_split_values() -> None:
    assert split_values("1,2,3") == ["1", "2", "3"]
    assert split_values("[1, 2],'a,b'") == ["[1, 2]", "'a,b'"]
    assert split_values("don't,x") == ["don't", "x"]  # a quote inside a word quotes nothing
    assert split_values("") == [""]


@pytest.mark.parametrize(("text", "message", "hint"), [
    ("train.C", "has no '='", "PARAM=VALUE"),
    ("=1", "the key is empty", "PARAM=VALUE"),
    ("train..C=1", "not a dotted key", "section.name"),
    ("train.C=", "a value is empty", "''"),
    ("train.C=1,,2", "a value is empty", "''"),
    ("train.C=[1,", "is not YAML", "quote"),
    ("train.C=#x", "reads as nothing", "quote"),
    ("train.C={a: 1}", "is a mapping", "leaf"),
    ("train.c=1", "no key 'train.c'", "did you mean 'train.C'"),
    ("trian.C=1", "no key 'trian.C'", "did you mean 'train.C'"),
    ("train=1", "'train' is a section", "train.C, train.kernel, train.opt.lr"),
    ("train.opt=1", "'train.opt' is a section", "train.opt.lr"),
    ("other.yaml:a=1", "params file 'other.yaml' does not exist", "model.json, params.yaml"),
    ("notes.txt:a=1", "not a params file", "FILE:PARAM"),
    ("../params.yaml:seed=1", "inside the project", "relative"),
    ("/etc/p.yaml:seed=1", "inside the project", "relative"),
    ("model.json:deep=1", "model.json has no key 'deep'", "did you mean 'depth'"),
])
def test_bad_set_texts(root: Path, text: str, message: str, hint: str) -> None:
    with pytest.raises(UsageError) as info:
        combinations(root, [text])
    assert message in info.value.message
    assert text in info.value.message or "empty" in info.value.message
    assert hint in (info.value.hint or "")


def test_the_same_key_twice_is_an_error(root: Path) -> None:
    with pytest.raises(UsageError, match=re.escape("already set by --set 'train.C=1'")):
        combinations(root, ["train.C=1", "params.yaml:train.C=2"])


def test_a_repeated_combination_is_an_error(root: Path) -> None:
    with pytest.raises(UsageError, match="experiment 2 would repeat experiment 1"):
        combinations(root, ["train.C=1,1"])
    assert len(combinations(root, ["train.C=1,1.0,'1'"])) == 3  # three types, three runs


def test_a_huge_grid_is_refused_before_it_is_built(root: Path) -> None:
    many = ",".join(map(str, range(100)))
    with pytest.raises(UsageError, match=f"100,000,000 experiments.*at most {MAX_EXPERIMENTS:,}"):
        combinations(root, [f"train.C={many}", f"seed={many}", f"featurize.k={many}",
                            f"train.kernel={many}"])


def test_a_value_with_yaml_aliases_is_bounded(root: Path) -> None:
    bomb = "[&a [1,1,1,1,1,1,1,1,1], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a], " \
           "&c [*b,*b,*b,*b,*b,*b,*b,*b,*b], &d [*c,*c,*c,*c,*c,*c,*c,*c,*c], " \
           "&e [*d,*d,*d,*d,*d,*d,*d,*d,*d], &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]]"
    with pytest.raises(UsageError, match="expands to more than"):
        combinations(root, [f"train.C={bomb}"])


def test_a_python_tag_is_not_constructed(root: Path) -> None:
    with pytest.raises(UsageError, match="is not YAML"):
        combinations(root, ["train.C=!!python/object/apply:os.system ['true']"])


# -- sweep files ---------------------------------------------------------------------

def _sweep(root: Path, text: str) -> Path:
    path = root / "sweep.yaml"
    path.write_text(text)
    return path


def test_sweep_list_of_combinations(root: Path) -> None:
    path = _sweep(root, "- {train.C: 0.1, featurize.k: 5}\n- {train.C: '10'}\n"
                        "- {model.json:tags: [x, y]}\n")
    assert _values(combinations(root, [], path)) == [
        {"params.yaml:featurize.k": 5, "params.yaml:train.C": 0.1},
        {"params.yaml:train.C": "10"},
        {"model.json:tags": ["x", "y"]}]


def test_sweep_grid_and_list_times_the_set_grid(root: Path) -> None:
    path = _sweep(root, "grid:\n  train.C: [0.1, 1]\n  train.kernel: linear\n"
                        "list:\n  - {train.C: 100}\n")
    combos = _values(combinations(root, ["seed=1,2"], path))
    assert [(c["params.yaml:train.C"], c.get("params.yaml:train.kernel"),
             c["params.yaml:seed"]) for c in combos] == [
        (0.1, "linear", 1), (0.1, "linear", 2), (1, "linear", 1), (1, "linear", 2),
        (100, None, 1), (100, None, 2)]


@pytest.mark.parametrize(("text", "message"), [
    ("a: [", "sweep.yaml:2: not YAML"),
    ("42", "must hold a list of combinations or a mapping"),
    ("{}", "must hold a list of combinations or a mapping"),
    ("grid: {train.C: [1]}\nlsit: []", "unknown entry 'lsit'"),
    ("grid: [1, 2]", "grid must map keys to lists of values"),
    ("grid: {train.C: []}", "grid: train.C has no values to try"),
    ("grid: {train.c: [1]}", "grid: train.c: params.yaml has no key 'train.c'"),
    ("grid: {1: [1]}", "a key must be text"),
    ("grid: {train.C: [{a: 1}]}", "the value is a mapping"),
    ("- {train.C: 1}\n- 5", "combination 2 must be a mapping"),
    ("- {train.C: 1}\n- {train.C: 1, sede: 2}", "combination 2: sede: params.yaml has no key"),
    ("- {train.C: 1, params.yaml:train.C: 2}", "already set by"),
    ("- {seed: 3}", "seed is also set by --set 'seed=1'"),
    ("grid: {seed: [3]}", "seed is also set by --set 'seed=1'"),
    ("- !!python/object/apply:os.system ['true']", "not YAML"),
    ("- {train.C: 2024-13-45}", "not YAML"),
])
def test_bad_sweep_files(root: Path, text: str, message: str) -> None:
    path = _sweep(root, text)
    with pytest.raises(UsageError) as info:
        combinations(root, ["seed=1"], path)
    assert message in info.value.message
    assert str(path) in info.value.message
    assert info.value.hint


def test_a_missing_or_huge_sweep_file(root: Path) -> None:
    with pytest.raises(UsageError, match=r"sweep file .*nope\.yaml' does not exist"):
        combinations(root, [], root / "nope.yaml")
    path = _sweep(root, "- {seed: 1}\n" + "# padding\n" * 200_000)
    with pytest.raises(UsageError, match="MB is more than a config file may hold"):
        combinations(root, [], path)


def test_a_huge_sweep_grid_is_refused(root: Path) -> None:
    path = _sweep(root, "grid:\n" + "".join(
        f"  {k}: {list(range(20))}\n" for k in ("train.C", "seed", "featurize.k")))
    with pytest.raises(UsageError, match=r"8,000 experiments .*sweep\.yaml"):
        combinations(root, [], path)


def test_a_sweep_grid_times_the_set_grid_is_capped(root: Path) -> None:
    path = _sweep(root, f"grid:\n  train.C: {list(range(100))}\n")
    with pytest.raises(UsageError, match="1,100 experiments"):
        combinations(root, ["seed=" + ",".join(map(str, range(11)))], path)


# -- writing -------------------------------------------------------------------------

def test_write_overrides_keeps_types_in_each_file(root: Path) -> None:
    [combo] = combinations(root, ["train.C='10'", "model.json:depth=4",
                                  "conf/data.toml:split.ratio=0.5"])
    write_overrides(root, as_table(combo))
    params.clear_cache()
    assert params.read_params(root / "params.yaml")["train"]["C"] == "10"
    assert "C: '10'  # regularization" in (root / "params.yaml").read_text()
    assert params.read_params(root / "model.json")["depth"] == 4
    assert params.read_params(root / "conf" / "data.toml")["split"]["ratio"] == 0.5


def test_write_overrides_changes_no_file_when_one_edit_fails(root: Path) -> None:
    before = {p: p.read_text() for p in (root / "params.yaml", root / "model.json")}
    with pytest.raises(UsageError, match=r"model\.json has no key 'gone'"):
        write_overrides(root, {"params.yaml": {"seed": 1}, "model.json": {"gone": 1}})
    assert {p: p.read_text() for p in before} == before


# -- properties ----------------------------------------------------------------------

_PLAIN = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_ ]{0,6}", fullmatch=True).map(str.strip)
_ITEM = (st.integers(-1000, 1000).map(str) | _PLAIN.filter(bool)
         | st.lists(st.integers(0, 9).map(str), max_size=3).map(lambda x: f"[{', '.join(x)}]")
         | st.text(st.characters(blacklist_characters="'\n\r"), max_size=6).map(
             lambda s: f"'{s}'"))


@settings(max_examples=300)
@given(st.lists(_ITEM, min_size=1, max_size=5))
def test_the_splitter_gives_back_each_piece(pieces: list[str]) -> None:
    assert split_values(",".join(pieces)) == pieces


_EXPONENT = re.compile(r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+")
"""Text like ``1e5`` or ``0E0``: a string to PyYAML's dumper (YAML 1.1 floats need a
dot), a float on the command line by design (``overrides.load_yaml``)."""


@settings(max_examples=300)
@given(st.lists(st.integers(-50, 50) | st.booleans()
                | _PLAIN.filter(lambda s: bool(s) and not _EXPONENT.fullmatch(s)),
                min_size=1, max_size=5, unique_by=lambda v: (type(v), v)))
def test_listed_values_read_back_with_their_types(values: list[Any]) -> None:
    text = ",".join(yaml.safe_dump(v, default_flow_style=True).removesuffix("\n...\n")
                    .strip() for v in values)
    _file, _key, got = parse_set(f"train.C={text}")
    assert got == values
    assert [type(v) for v in got] == [type(v) for v in values]
