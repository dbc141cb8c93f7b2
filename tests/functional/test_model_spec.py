"""Declaring a model in the spec (``outs: - PATH: {model: NAME, desc: ...}``): schema,
names, one name per output, bad input located (issue 14, item 1)."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import Project


def _spec(p: Project, *outs: object, extra: dict[str, object] | None = None) -> None:
    stages: dict[str, object] = {"train": {"cmd": "mkdir -p m && echo x > m/a && echo y > m/b",
                                           "outs": list(outs)}}
    stages.update(extra or {})
    p.write("pipeline.yaml", yaml.safe_dump({"stages": stages}, sort_keys=False))


def test_a_declared_model_is_listed_and_its_desc_kept_out_of_the_lock(project: Project) -> None:
    _spec(project, {"m/a": {"model": "alpha", "desc": "first model"}}, "m/b")
    assert project.run("repro").code == 0
    res = project.run("models", "--json")
    assert res.code == 0, res.text
    import json

    (model,) = json.loads(res.out)["models"]
    assert (model["model"], model["path"], model["desc"], model["stage"]) == (
        "alpha", "m/a", "first model", "train")
    assert "first model" not in project.read("pipeline.lock")
    assert "alpha" not in project.read("pipeline.lock")


@pytest.mark.parametrize(("options", "expected"), [
    ({"model": 3}, "model"),
    ({"model": ""}, "model"),
    ({"model": "has space"}, "model name 'has space' of stage 'train' may hold only"),
    ({"model": "-dash"}, "must start with a letter or digit"),
    ({"model": "x", "cache": False}, "model 'x' of stage 'train' has 'cache: false'"),
])
def test_a_bad_model_declaration_is_a_located_spec_error(
        project: Project, options: dict[str, object], expected: str) -> None:
    _spec(project, {"m/a": options})
    res = project.run("status")
    assert res.code == 2, res.text
    assert "pipeline.yaml:" in res.err and expected in res.err
    assert "Traceback" not in res.err


def test_one_model_name_names_one_output(project: Project) -> None:
    _spec(project, {"m/a": {"model": "twin"}},
          extra={"other": {"cmd": "echo z > o", "outs": [{"o": {"model": "twin"}}]}})
    res = project.run("repro")
    assert res.code == 2, res.text
    assert "model 'twin' is declared twice: 'm/a' and 'o'" in res.err


def test_models_in_a_foreach_take_their_item(project: Project) -> None:
    project.write("pipeline.yaml", yaml.safe_dump({"stages": {"train": {
        "foreach": ["eu", "us"],
        "do": {"cmd": "echo ${item} > ${item}.bin",
               "outs": [{"${item}.bin": {"model": "clf-${item}"}}]}}}}, sort_keys=False))
    assert project.run("repro").code == 0
    res = project.run("models")
    assert res.code == 0, res.text
    assert "clf-eu  eu.bin  1 version(s)" in res.out and "clf-us  us.bin" in res.out


def test_no_models_declared_says_how(project: Project) -> None:
    _spec(project, "m/a")
    res = project.run("models")
    assert res.code == 0 and "no models declared" in res.out and "{model:" in res.out
