"""Pure parts of export: name templates, the model card, and gathering a version's
environment from its lineage (conflicts between runs)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeflow.errors import UsageError
from pipeflow.lineage.model import Lineage, LineageArtifact, LineageRun
from pipeflow.registry import card, envexport, nametemplate


def fields(**over: object) -> nametemplate.NameFields:
    base: dict[str, object] = dict(model="wine", version="v3", hash="1a2b3c4d", stem="model",
                                   ext=".pkl", n=3, alias="production", date="2026-12-01",
                                   params={"train.C": 0.5, "train.kind": "svm"})
    base.update(over)
    return nametemplate.NameFields(**base)  # type: ignore[arg-type]


def test_a_template_names_every_field() -> None:
    got = nametemplate.render("{model}-v{n:03d}-{alias}-{hash}-{date}-{stem}"
                              "-C{params.train.C}-{params.train.kind}{ext}", fields())
    assert got == "wine-v003-production-1a2b3c4d-2026-12-01-model-C0.5-svm.pkl"
    assert nametemplate.render(nametemplate.DEFAULT, fields()) == "wine-v3.pkl"


@pytest.mark.parametrize("template, said", [
    ("{colour}", "unknown field '{colour}'"),
    ("{params.train.X}", "no param 'train.X'"),
    ("{model!r}", "is not a field"),
    ("{model[0]}", "is not a field"),
    ("{}", "is not a field"),
    ("{model", "is not a template"),
    ("{n:x>}{model:d}", "cannot format"),
    ("{params.SECTION.KEY}", "no param 'SECTION.KEY'"),
])
def test_a_bad_template_is_a_usage_error_listing_the_fields(template: str, said: str) -> None:
    with pytest.raises(UsageError) as err:
        nametemplate.render(template, fields())
    assert said in err.value.message
    assert "{model}" in str(err.value.hint) and "params.train.C" in str(err.value.hint)


def test_a_missing_value_says_why() -> None:
    with pytest.raises(UsageError, match="never committed"):
        nametemplate.render("{n}", fields(n=None, missing={"n": "v? was never committed"}))


@given(st.text(max_size=12), st.text(max_size=8))
def test_no_value_makes_a_path(value: str, literal: str) -> None:
    try:
        got = nametemplate.render(literal.replace("{", "").replace("}", "") + "{params.a.b}",
                                  fields(params={"a.b": value}))
    except UsageError:
        return
    assert "/" not in got and "\\" not in got and "\0" not in got
    assert got not in ("", ".", "..")


def test_the_card_has_every_section() -> None:
    text = card.render(card.CardFacts(
        name="wine", path="models/model.pkl", label="v2", hash="ab" * 16, desc="A model",
        aliases=("production", "canary"), params={"params.yaml": {"train.C": 2}},
        metrics={"metrics.json:acc": 0.9}, data=(card.DataVersion("data/raw.csv", "cd" * 16,
                                                                   "v1", "pipeflow add"),),
        commit="f" * 40, dirty_paths=("params.yaml",), python="cpython 3.11.7",
        packages={"PyYAML": "6.0.4"}, user="ann@example.com", date="2026-12-01",
        notes=("good one",),
        lineage=(card.StageLine("train", "9" * 64, ("data/raw.csv v1",)),)))
    for line in ("# wine v2", "A model", "- **Aliases**: production, canary",
                 "| train.C | 2 |", "| metrics.json:acc | 0.9 |",
                 f"- `data/raw.csv` v1 (`{'cd' * 16}`, pipeflow add)",
                 f"- commit `{'f' * 40}`", "- tree: modified `params.yaml`",
                 "- python: cpython 3.11.7", "- PyYAML==6.0.4", "- **Note**: good one",
                 "- train (run 999999999999) <- data/raw.csv v1"):
        assert line in text


def _lineage(*envs: tuple[str, dict[str, object]]) -> Lineage:
    runs = {f"r{i}": LineageRun(id=f"r{i}", kind="run", stage=stage, env=env)
            for i, (stage, env) in enumerate(envs)}
    root = LineageArtifact("m@h", "m", "h", 1, False, "output", "v1", "r0")
    return Lineage("m@h", {"m@h": root}, runs)


def test_runs_that_agree_give_one_environment() -> None:
    env = envexport.gather(_lineage(
        ("train", {"python": "cpython-3.11.7", "packages": {"numpy": "2.1.0"}}),
        ("prep", {"python": "cpython-3.11.7", "packages": {"NumPy": "2.1.0", "pyyaml": None}}),
        ("shell", {"platform": "linux-x86_64"})), "m", "v1", "h", None)
    assert env.pins() == {"numpy": "2.1.0"} and not env.conflicts
    assert env.python is not None and env.python.chosen == "3.11.7"
    assert env.stages == ("train", "prep", "shell")
    assert any("pyyaml not installed" in n for n in env.notes)
    assert "numpy==2.1.0" in envexport.to_requirements(env)


def test_runs_that_disagree_are_a_conflict_nearest_run_first() -> None:
    env = envexport.gather(_lineage(
        ("train", {"python": "cpython-3.11.7", "packages": {"numpy": "2.1.0"}}),
        ("prep", {"python": "cpython-3.12.1", "packages": {"numpy": "1.26.4"}})),
        "m", "v1", "h", "wine")
    assert [c.name for c in env.conflicts] == ["python", "numpy"]
    assert env.pins() == {"numpy": "2.1.0"}
    assert env.conflicts[1].describe() == "numpy: 2.1.0 (train), 1.26.4 (prep)"
    assert "# conflict, took the run nearest the model: numpy" in envexport.to_requirements(env)


def test_values_from_records_stay_on_their_line() -> None:
    text = card.render(card.CardFacts(name="m", path="p", label="v1", hash="h",
                                      desc="fine\n# Params", notes=("x\n- **Aliases**: evil",),
                                      params={"f": {"k": "a|b\nc"}}))
    assert "\n# Params" not in text and "\n- **Aliases**: evil" not in text
    assert "| k | a\\|b c |" in text


def test_a_runs_packages_line_names_six_then_counts_the_rest() -> None:
    from pipeflow.lineage.render import packages_text

    found = {f"pkg{i}": f"1.{i}" for i in range(8)} | {"Absent": None}
    assert packages_text(found) == ("Absent (not installed), pkg0 1.0, pkg1 1.1, pkg2 1.2, "
                                    "pkg3 1.3, pkg4 1.4 (+3)")
    assert packages_text({"numpy": "2.1.0"}) == "numpy 2.1.0"
