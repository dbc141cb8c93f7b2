"""foreach / matrix expansion: stage names, ${item} and ${key}, locations."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pipeflow.errors import Location
from pipeflow.params import clear_cache
from pipeflow.spec.loader import load_pipeline
from pipeflow.spec.model import Pipeline


def load(root: Path, spec: str, files: dict[str, str] | None = None) -> Pipeline:
    clear_cache()
    spec = textwrap.dedent(spec).lstrip("\n")
    for name, text in {"pipeline.yaml": spec, **(files or {})}.items():
        (root / name).write_text(text)
    return load_pipeline(root).pipeline


def cmds(p: Pipeline) -> dict[str, str]:
    return {name: s.cmd[0] for name, s in p.stages.items()}


def test_foreach_scalars_named_by_value(tmp_path: Path) -> None:
    spec = """
    stages:
      train:
        foreach: [small, large, 0.5, 3]
        do:
          cmd: train ${item} ${key}
          outs: ['models/${item}.pkl']
    """
    p = load(tmp_path, spec)
    assert cmds(p) == {
        "train@small": "train small 0",
        "train@large": "train large 1",
        "train@0.5": "train 0.5 2",
        "train@3": "train 3 3",
    }
    assert p.stages["train@large"].outs[0].path == "models/large.pkl"
    # every stage of a template points at the template's key
    assert {s.location for s in p.stages.values()} == {Location("pipeline.yaml", 2, 3)}


def test_foreach_falls_back_to_indexes(tmp_path: Path) -> None:
    dicts = "stages:\n  t:\n    foreach: [{m: a}, {m: b}]\n    do: {cmd: 'go ${item.m}'}\n"
    assert cmds(load(tmp_path, dicts)) == {"t@0": "go a", "t@1": "go b"}
    # one value that is no name token (a space) or a repeat: indexes for all
    spaced = "stages:\n  t:\n    foreach: [a, b c]\n    do: {cmd: 'go ${item}'}\n"
    # (a value with a space reaches the command as one shell word: quoted)
    assert cmds(load(tmp_path, spaced)) == {"t@0": "go a", "t@1": "go 'b c'"}
    repeated = "stages:\n  t:\n    foreach: [a, a]\n    do: {cmd: 'go ${item}'}\n"
    assert list(load(tmp_path, repeated).stages) == ["t@0", "t@1"]


def test_foreach_mapping(tmp_path: Path) -> None:
    spec = """
    stages:
      train:
        foreach:
          small: {layers: 2}
          large: {layers: 8}
        do:
          cmd: train --name ${key} --layers ${item.layers}
    """
    assert cmds(load(tmp_path, spec)) == {
        "train@small": "train --name small --layers 2",
        "train@large": "train --name large --layers 8",
    }


def test_foreach_from_variable(tmp_path: Path) -> None:
    spec = "stages:\n  t:\n    foreach: ${models}\n    do: {cmd: 'fit ${item}'}\n"
    p = load(tmp_path, spec, {"params.yaml": "models: [svm, rf]\n"})
    assert cmds(p) == {"t@svm": "fit svm", "t@rf": "fit rf"}


def test_matrix_names_and_items(tmp_path: Path) -> None:
    spec = """
    vars:
      - {lrs: [0.1, 0.01]}
    stages:
      sweep:
        matrix:
          model: [svm, rf]
          lr: ${lrs}
          data: [{f: a.csv}, {f: b.csv}]
        do:
          cmd: fit ${item.model} ${item.lr} ${item.data.f}
    """
    assert cmds(load(tmp_path, spec)) == {
        "sweep@svm-0.1-0": "fit svm 0.1 a.csv",
        "sweep@svm-0.1-1": "fit svm 0.1 b.csv",
        "sweep@svm-0.01-0": "fit svm 0.01 a.csv",
        "sweep@svm-0.01-1": "fit svm 0.01 b.csv",
        "sweep@rf-0.1-0": "fit rf 0.1 a.csv",
        "sweep@rf-0.1-1": "fit rf 0.1 b.csv",
        "sweep@rf-0.01-0": "fit rf 0.01 a.csv",
        "sweep@rf-0.01-1": "fit rf 0.01 b.csv",
    }


def test_templates_and_plain_stages_keep_spec_order(tmp_path: Path) -> None:
    spec = """
    stages:
      prepare: {cmd: p}
      train:
        foreach: [a, b]
        do: {cmd: 't ${item}'}
      report: {cmd: r}
    """
    assert list(load(tmp_path, spec).stages) == ["prepare", "train@a", "train@b", "report"]


def test_booleans_name_like_yaml(tmp_path: Path) -> None:
    spec = "stages:\n  t:\n    foreach: [true, false]\n    do: {cmd: 'go ${item}'}\n"
    assert cmds(load(tmp_path, spec)) == {"t@true": "go true", "t@false": "go false"}


def test_template_variables_do_not_leak(tmp_path: Path) -> None:
    spec = """
    stages:
      t:
        foreach: [a]
        do: {cmd: 'go ${item}'}
      u:
        cmd: echo ${item}
    """
    from pipeflow.errors import SpecError

    try:
        load(tmp_path, spec)
    except SpecError as err:
        assert "undefined variable 'item'" in err.message
        assert err.location == Location("pipeline.yaml", 6, 10)
    else:
        raise AssertionError("${item} outside a template must be undefined")
