"""Loading pipeline.yaml into Stage values: normalization, wdir, params, digest, schema."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pipeflow.errors import Location
from pipeflow.params import clear_cache
from pipeflow.spec.loader import LoadedSpec, load_pipeline, spec_digest
from pipeflow.spec.model import Out, ParamRef, Pipeline, Stage, StageEnv
from pipeflow.spec.validate import SCHEMA_PATH, schema_bytes

REPO = Path(__file__).resolve().parents[2]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


def load(root: Path, spec: str, files: dict[str, str] | None = None) -> Pipeline:
    clear_cache()
    write(root, {"pipeline.yaml": spec, **(files or {})})
    return load_pipeline(root).pipeline


def test_minimal_stage(tmp_path: Path) -> None:
    p = load(tmp_path, "stages:\n  hello:\n    cmd: echo hi > out.txt\n    outs: [out.txt]\n")
    assert p.stages == {
        "hello": Stage("hello", ("echo hi > out.txt",), outs=(Out("out.txt"),)),
    }
    assert p.stages["hello"].location == Location("pipeline.yaml", 2, 3)
    assert p.spec_file == "pipeline.yaml"
    assert p.params_files == ()


def test_every_field(tmp_path: Path) -> None:
    spec = """
    env:
      packages: [numpy]
      vars: [OMP_NUM_THREADS]
    stages:
      train:
        desc: Train the model
        cmd:
          - python train.py
          - echo done
        wdir: src/..
        deps: [data/./train.csv, train.py, data/train.csv, data/dir/]
        params:
          - train.lr
          - train
          - conf/extra.json: [a.b]
          - conf/extra.json: [a.b, c]
          - whole.toml:
        outs:
          - models/model.pkl
          - logs/: {cache: false, persist: true, desc: training logs}
        metrics:
          - metrics.json: {cache: false}
        code:
          auto: false
          paths: [lib/*.py, lib/*.py]
        env: {python: exact, packages: [scikit-learn, numpy], vars: [SEED]}
        meta: {owner: ana, tags: [a, b]}
        frozen: true
        always_changed: true
    """
    p = load(
        tmp_path,
        spec,
        {
            "params.yaml": "train: {lr: 0.1}\n",
            "conf/extra.json": '{"a": {"b": 1}, "c": 2}',
            "whole.toml": "x = 1\n",
        },
    )
    assert p.stages["train"] == Stage(
        name="train",
        desc="Train the model",
        cmd=("python train.py", "echo done"),
        wdir=".",
        deps=("data/train.csv", "train.py", "data/dir"),
        params=(
            ParamRef("params.yaml", ("train.lr", "train")),
            ParamRef("conf/extra.json", ("a.b", "c")),
            ParamRef("whole.toml", ()),
        ),
        outs=(
            Out("models/model.pkl"),
            Out("logs", cache=False, persist=True),
            Out("metrics.json", kind="metric", cache=False),
        ),
        code=("lib/*.py",),
        code_auto=False,
        env=StageEnv(
            python="exact", packages=("numpy", "scikit-learn"), vars=("OMP_NUM_THREADS", "SEED")
        ),
        meta={"owner": "ana", "tags": ["a", "b"]},
        frozen=True,
        always_changed=True,
    )
    assert p.params_files == ("conf/extra.json", "params.yaml", "whole.toml")


def test_wdir_applies_to_every_path(tmp_path: Path) -> None:
    spec = """
    stages:
      build:
        cmd: make
        wdir: sub/dir
        deps: [../shared.h, main.c]
        params: [opt.level, {../../root.yaml: [x]}]
        outs: [./bin/app]
        metrics: [../m.json]
        code: [src/*.c]
    """
    p = load(
        tmp_path,
        spec,
        {"sub/dir/params.yaml": "opt: {level: 2}\n", "root.yaml": "x: 1\n"},
    )
    s = p.stages["build"]
    assert s.wdir == "sub/dir"
    assert s.deps == ("sub/shared.h", "sub/dir/main.c")
    assert s.params == (
        ParamRef("sub/dir/params.yaml", ("opt.level",)),
        ParamRef("root.yaml", ("x",)),
    )
    assert s.outs == (Out("sub/dir/bin/app"), Out("sub/m.json", kind="metric"))
    assert s.code == ("sub/dir/src/*.c",)


def test_outs_deduplicated_when_identical(tmp_path: Path) -> None:
    spec = "stages:\n  a:\n    cmd: x\n    outs: [o.txt, ./o.txt, {o.txt: {cache: true}}]\n"
    assert load(tmp_path, spec).stages["a"].outs == (Out("o.txt"),)


def test_code_list_keeps_auto(tmp_path: Path) -> None:
    s = load(tmp_path, "stages:\n  a:\n    cmd: x\n    code: [a.py, b/]\n").stages["a"]
    assert s.code == ("a.py", "b")
    assert s.code_auto is True


def test_stage_order_is_spec_order(tmp_path: Path) -> None:
    spec = "stages:\n" + "".join(f"  s{i}:\n    cmd: echo {i}\n" for i in (3, 1, 2))
    assert list(load(tmp_path, spec).stages) == ["s3", "s1", "s2"]


def test_empty_stages_mapping(tmp_path: Path) -> None:
    assert load(tmp_path, "stages: {}\n").stages == {}


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    spec = """
    stages:
      a: &base
        cmd: echo a
        deps: [x]
      b:
        <<: *base
        cmd: echo b
    """
    p = load(tmp_path, spec, {"x": ""})
    assert p.stages["b"].deps == ("x",)
    assert p.stages["b"].cmd == ("echo b",)


def test_digest_and_validation_skip(tmp_path: Path) -> None:
    write(tmp_path, {"pipeline.yaml": "stages:\n  a:\n    cmd: x\n"})
    first = load_pipeline(tmp_path)
    assert isinstance(first, LoadedSpec)
    assert first.validated_now
    raw = (tmp_path / "pipeline.yaml").read_bytes()
    assert first.digest == spec_digest(raw)
    assert len(first.digest) == 32
    asked: list[str] = []

    def known(digest: str) -> bool:
        asked.append(digest)
        return digest == first.digest

    second = load_pipeline(tmp_path, is_validated=known)
    assert asked == [first.digest]
    assert not second.validated_now
    assert second.pipeline == first.pipeline
    (tmp_path / "pipeline.yaml").write_text("stages:\n  a:\n    cmd: y\n")
    third = load_pipeline(tmp_path, is_validated=known)
    assert third.validated_now and third.digest != first.digest


def test_digest_covers_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    before = spec_digest(b"stages: {}")
    import pipeflow.spec.loader as loader

    monkeypatch.setattr(loader, "schema_bytes", lambda: schema_bytes() + b" ")
    assert spec_digest(b"stages: {}") != before


def test_other_spec_name(tmp_path: Path) -> None:
    write(tmp_path, {"other.yaml": "stages:\n  a:\n    cmd: x\n"})
    loaded = load_pipeline(tmp_path, "other.yaml")
    assert loaded.pipeline.spec_file == "other.yaml"
    assert loaded.pipeline.stages["a"].location == Location("other.yaml", 2, 3)


def test_no_heavy_imports_when_validated(tmp_path: Path) -> None:
    write(tmp_path, {"pipeline.yaml": "stages:\n  a:\n    cmd: x\n"})
    code = f"""
import sys
from pathlib import Path
from pipeflow.spec.loader import load_pipeline
load_pipeline(Path({str(tmp_path)!r}), is_validated=lambda d: True)
heavy = [m for m in ("jsonschema", "networkx", "fsspec", "rich") if m in sys.modules]
assert not heavy, heavy
load_pipeline(Path({str(tmp_path)!r}))
assert "jsonschema" in sys.modules
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_schema_is_valid_2020_12_and_shipped_in_package() -> None:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_bytes())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    packaged = REPO / "pipeflow" / "pipeline.schema.json"
    assert packaged.read_bytes() == (REPO / "pipeline.schema.json").read_bytes()


def test_schema_rejects_what_loader_rejects_and_accepts_templates() -> None:
    import jsonschema

    v = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_bytes()))
    good = {
        "vars": [{"a": 1}, "conf.yaml"],
        "stages": {
            "t": {"foreach": [1, 2], "do": {"cmd": "x ${item}"}},
            "m": {"matrix": {"a": [1], "b": "${bs}"}, "do": {"cmd": ["x", "y"]}},
            "s": {"cmd": "x", "outs": [{"o": None}], "params": [{"f.yaml": None}, "k"]},
        },
    }
    assert list(v.iter_errors(good)) == []
    bad: dict[str, Any]
    for bad in (
        {"stages": {"a@b": {"cmd": "x"}}},
        {"stages": {"a": {"cmd": []}}},
        {"stages": {"a": {"foreach": [], "do": {"cmd": "x"}}}},
        {"stages": {"a": {"cmd": "x", "outs": [{"a": {}, "b": {}}]}}},
        {"stages": {"a": {"cmd": "x", "env": {"vars": ["NOT-A-NAME"]}}}},
        {"stages": {}, "params": ["p.yaml"]},
    ):
        assert list(v.iter_errors(bad)), bad


def test_a_dep_may_be_marked_external(tmp_path: Path) -> None:
    from pipeflow.errors import SpecError

    (tmp_path / "sub").mkdir()
    stage = load(tmp_path, "stages:\n  s:\n    cmd: x\n    wdir: sub\n"
                 "    deps: [a, {raw: {external: true}}, {b: {external: false}}, {c: null}]\n"
                 ).stages["s"]
    assert stage.deps == ("sub/a", "sub/raw", "sub/b", "sub/c")
    assert stage.external == frozenset({"sub/raw"})
    with pytest.raises(SpecError, match="externl"):
        load(tmp_path, "stages:\n  s:\n    cmd: x\n    deps: [{raw: {externl: true}}]\n")
