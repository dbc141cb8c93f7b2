"""${...} interpolation: sources, precedence, lookups, escapes, scalars in list positions."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from pipeflow.params import clear_cache
from pipeflow.spec.interpolate import Context, interpolate, interpolate_value, render
from pipeflow.spec.loader import load_pipeline
from pipeflow.spec.model import Out, ParamRef, Stage
from pipeflow.spec.yamlpos import SpecProblem


def stage(root: Path, spec: str, files: dict[str, str] | None = None, name: str = "t") -> Stage:
    clear_cache()
    spec = textwrap.dedent(spec).lstrip("\n")
    for fname, text in {"pipeline.yaml": spec, **(files or {})}.items():
        (root / fname).parent.mkdir(parents=True, exist_ok=True)
        (root / fname).write_text(text)
    return load_pipeline(root).pipeline.stages[name]


def ctx(values: dict[str, Any]) -> Context:
    return Context(lambda: values)


def test_lookups() -> None:
    c = ctx({"a": {"b": [10, {"c": "deep"}]}, "n": 3, "dash-key": "d", "1": "one"})
    assert interpolate("${a.b[0]}", c, (), "x") == "10"
    assert interpolate("${a.b[1].c}", c, (), "x") == "deep"
    assert interpolate("${a.b.1.c}", c, (), "x") == "deep"  # dotted index works too
    assert interpolate("${ n }-${dash-key}-${1}", c, (), "x") == "3-d-one"
    assert interpolate_value("${a.b}", c, (), "x") == [10, {"c": "deep"}]
    assert interpolate_value("${n}", c, (), "x") == 3
    assert interpolate_value("n=${n}", c, (), "x") == "n=3"


def test_escape() -> None:
    c = ctx({"x": 1})
    assert interpolate("echo $${HOME} ${x} $HOME $$", c, (), "x") == "echo ${HOME} 1 $HOME $$"
    assert interpolate_value("$${x}", c, (), "x") == "${x}"


def test_render_scalars() -> None:
    assert [render(v) for v in (True, False, None, 0.1, 1e-5, 7, "s")] == [
        "true",
        "false",
        "null",
        "0.1",
        "1e-05",
        "7",
        "s",
    ]
    assert render([1]) is None and render({"a": 1}) is None


def test_base_is_lazy_and_computed_once() -> None:
    calls: list[int] = []

    def base() -> dict[str, Any]:
        calls.append(1)
        return {"x": 1}

    c = Context(base)
    child = c.child({"item": 2})
    assert interpolate("no refs", child, (), "x") == "no refs"
    assert calls == []
    assert interpolate("${x}${item}", child, (), "x") == "12"
    assert interpolate("${x}", c, (), "x") == "1"
    assert calls == [1]


def test_local_names_shadow_base() -> None:
    c = ctx({"item": "base", "k": 1}).child({"item": "local"})
    assert interpolate("${item} ${k}", c, (), "x") == "local 1"


def test_undefined_lists_known_names() -> None:
    with pytest.raises(SpecProblem) as info:
        interpolate("${nope}", ctx({"b": 1, "a": 2}), ("stages", "t", "cmd"), "'cmd'")
    assert info.value.path == ("stages", "t", "cmd")
    assert "undefined variable 'nope'" in info.value.message
    assert "(known: a, b)" in info.value.message
    with pytest.raises(SpecProblem) as info:
        interpolate("${nope}", ctx({}), (), "'cmd'")
    assert "no variables are defined" in info.value.message
    assert info.value.hint is not None and "vars:" in info.value.hint


def test_descending_into_scalar_is_an_error() -> None:
    with pytest.raises(SpecProblem, match=r"'n' is the scalar '3', it has no '\.x'"):
        interpolate("${n.x}", ctx({"n": 3}), (), "'cmd'")


def test_sources_and_precedence(tmp_path: Path) -> None:
    spec = """
    vars:
      - conf.json
      - {lr: 0.5, model: {name: inline}}
    stages:
      t:
        cmd: train --lr ${lr} --model ${model.name} --depth ${model.depth} --seed ${seed}
    """
    files = {
        "params.yaml": "lr: 0.1\nseed: 7\nmodel: {name: p, depth: 3}\n",
        "conf.json": '{"lr": 0.2, "model": {"name": "json"}}',
    }
    # later sources win, mappings merge key by key: params.yaml < conf.json < inline
    assert stage(tmp_path, spec, files).cmd == ("train --lr 0.5 --model inline --depth 3 --seed 7",)


def test_vars_as_single_mapping(tmp_path: Path) -> None:
    spec = "vars: {d: data}\nstages:\n  t:\n    cmd: ls ${d}\n"
    assert stage(tmp_path, spec).cmd == ("ls data",)


def test_every_interpolated_field(tmp_path: Path) -> None:
    spec = """
    vars:
      - {d: data, w: sub, f: conf.yaml, k: opt, n: 5, flag: true}
    stages:
      t:
        desc: uses ${d}
        cmd: ['echo ${n}', 'run --flag=${flag}']
        wdir: ${w}
        deps: ['${d}/in', '${n}']
        params: ['${k}.lr', {'${f}': ['${k}']}]
        outs: ['${d}/out', {'${d}/o2': {cache: false}}]
        metrics: ['${d}.json']
        code: ['${d}/*.py']
    """
    files = {"sub/params.yaml": "opt: {lr: 1}\n", "sub/conf.yaml": "opt: 2\n"}
    s = stage(tmp_path, spec, files)
    assert s.desc == "uses data"
    assert s.cmd == ("echo 5", "run --flag=true")
    assert s.wdir == "sub"
    assert s.deps == ("sub/data/in", "sub/5")  # a whole ${n} in a list: the number as text
    assert s.params == (
        ParamRef("sub/params.yaml", ("opt.lr",)),
        ParamRef("sub/conf.yaml", ("opt",)),
    )
    assert s.outs == (
        Out("sub/data/out"),
        Out("sub/data/o2", cache=False),
        Out("sub/data.json", kind="metric"),
    )
    assert s.code == ("sub/data/*.py",)


def test_meta_is_not_interpolated(tmp_path: Path) -> None:
    spec = "stages:\n  t:\n    cmd: x\n    meta: {note: '${undefined}'}\n"
    assert stage(tmp_path, spec).meta == {"note": "${undefined}"}


def test_params_yaml_not_read_without_references(tmp_path: Path) -> None:
    # a broken params.yaml that nothing reads is not the spec's problem
    assert stage(tmp_path, "stages:\n  t:\n    cmd: x\n", {"params.yaml": "a: [\n"}).cmd == ("x",)
