"""Experiment names: valid, unique in a sweep, generated ones never taken."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeflow.errors import UsageError
from pipeflow.experiments.names import (
    ADJECTIVES,
    MAX_LENGTH,
    NOUNS,
    check_name,
    experiment_names,
    generated,
    short,
    taken_names,
)
from pipeflow.experiments.overrides import Combination, Override


def _combo(**values: Any) -> Combination:
    return tuple(Override("params.yaml", k.replace("__", "."), v) for k, v in values.items())


GRID = [_combo(train__C=c, featurize__k=k) for c in (0.1, 1, 1e-5) for k in (5, 10)]


@pytest.mark.parametrize("name", ["lr-high", "C0.1", "a", "1000", "abc_DEF.9", "x" * 60])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(("name", "why"), [
    ("", "empty"), ("x" * 61, "61 characters"), ("-lr", "invalid"), (".hidden", "invalid"),
    ("a b", "invalid"), ("a/b", "invalid"), ("a:b", "invalid"), ("é", "invalid"),
    ("a\n", "invalid"),
])
def test_invalid_names(name: str, why: str) -> None:
    with pytest.raises(UsageError, match=why) as info:
        check_name(name)
    assert "letters, digits" in (info.value.hint or "")


def test_a_given_name_is_kept_even_when_taken_the_caller_decides() -> None:
    assert experiment_names("lr-high", [_combo(train__C=1)], taken={"lr-high"}) == ["lr-high"]
    assert taken_names(["lr-high", "x"], {"lr-high"}) == ["lr-high"]


def test_a_name_without_placeholders_numbers_a_sweep() -> None:
    assert experiment_names("lr", GRID[:3], taken=()) == ["lr-1", "lr-2", "lr-3"]


def test_templates_by_full_key_last_part_and_file() -> None:
    names = experiment_names("C{train.C}-k{k}", GRID, taken=())
    assert names == ["C0.1-k5", "C0.1-k10", "C1-k5", "C1-k10", "C1e-05-k5", "C1e-05-k10"]
    assert experiment_names("{params.yaml:featurize.k}", GRID[:2], ()) == ["5", "10"]


def test_template_values_are_made_safe() -> None:
    combo = _combo(a__s="x y/z", a__l=[1, "b c"], a__b=True, a__n=None)
    assert experiment_names("{s}_{l}_{b}_{n}", [combo], ()) == ["x-y-z_1-b-c_true_null"]


@pytest.mark.parametrize(("template", "message", "hint"), [
    ("C{train.C}", "gives 'C0.1' to experiments 1 and 2", "placeholder for each key"),
    ("{lr}", "{lr} names no key", "{train.C}, {featurize.k}"),
    ("bad name {k}", "invalid experiment name", "letters"),
])
def test_bad_templates(template: str, message: str, hint: str) -> None:
    with pytest.raises(UsageError) as info:
        experiment_names(template, GRID, ())
    assert message in info.value.message
    assert hint in (info.value.hint or "")


def test_an_ambiguous_last_part() -> None:
    combo = (Override("params.yaml", "train.k", 1), Override("params.yaml", "eval.k", 2))
    with pytest.raises(UsageError, match=r"could be train\.k or eval\.k"):
        experiment_names("{k}", [combo], ())


def test_generated_names_are_word_pairs_and_avoid_taken() -> None:
    rng = random.Random(1)
    first = generated(1, (), random.Random(1))[0]
    adjective, noun = first.split("-")
    assert adjective in ADJECTIVES and noun in NOUNS
    assert first not in generated(5, {first}, rng)


def test_generated_names_still_end_when_every_pair_is_taken() -> None:
    every = {f"{a}-{n}" for a in ADJECTIVES for n in NOUNS}
    names = generated(20, every, random.Random(0))
    assert len(set(names)) == 20 and not set(names) & every
    assert all(check_name(n) for n in names)


@settings(max_examples=200)
@given(count=st.integers(1, 300), taken=st.sets(st.sampled_from(
    [f"{a}-{n}" for a in ADJECTIVES[:8] for n in NOUNS[:8]]), max_size=60),
    seed=st.integers(0, 2**16))
def test_generated_names_are_valid_unique_and_free(count: int, taken: set[str],
                                                   seed: int) -> None:
    names = generated(count, taken, random.Random(seed))
    assert len(names) == count == len(set(names))
    assert not set(names) & taken
    assert all(check_name(n) and len(n) <= MAX_LENGTH for n in names)


_VALUES = st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none() | st.text(
    max_size=10) | st.lists(st.integers(-9, 9) | st.text(max_size=3), max_size=3)


@settings(max_examples=300)
@given(st.lists(_VALUES, min_size=1, max_size=6, unique_by=short))
def test_templated_names_are_valid_and_unique(values: list[Any]) -> None:
    combos = [_combo(train__C=v) for v in values]
    names = experiment_names("C{C}", combos, ())
    assert len(set(names)) == len(names)
    assert all(check_name(n) for n in names)
