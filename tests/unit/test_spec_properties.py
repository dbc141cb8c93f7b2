"""Property tests: the loader round-trips valid specs, never crashes, never lets a path out."""

from __future__ import annotations

import contextlib
import posixpath
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeflow.errors import SpecError
from pipeflow.params import clear_cache
from pipeflow.spec.loader import load_pipeline
from pipeflow.spec.model import Out, Stage
from pipeflow.spec.normalize import DEFAULT_TOLERANCE
from pipeflow.spec.paths import PathError, resolve

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}", fullmatch=True)
segments = st.from_regex(r"[a-z0-9_][a-z0-9_.-]{0,5}", fullmatch=True).filter(
    lambda s: s not in (".", "..") and not s.startswith((".pipeflow", ".git"))
)
rel_paths = st.lists(segments, min_size=1, max_size=3).map("/".join)
commands = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x85\u2028\u2029"),
    min_size=1,
    max_size=30,
).filter(lambda s: "${" not in s)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def load_text(root: Path, text: str) -> Any:
    clear_cache()
    (root / "pipeline.yaml").write_text(text, encoding="utf-8")
    return load_pipeline(root).pipeline


@st.composite
def stage_specs(draw: st.DrawFn) -> tuple[dict[str, Any], Stage]:
    """A valid stage body and the Stage it must load as (named later)."""
    body: dict[str, Any] = {}
    cmd = draw(st.one_of(commands, st.lists(commands, min_size=1, max_size=3)))
    body["cmd"] = cmd
    wdir = draw(st.one_of(st.none(), rel_paths))
    if wdir is not None:
        body["wdir"] = wdir

    def full(p: str) -> str:
        return posixpath.join(wdir, p) if wdir else p

    deps = draw(st.lists(rel_paths, max_size=4))
    explicit_empty: bool = draw(st.booleans())  # an empty list loads like no list
    if deps or explicit_empty:
        body["deps"] = deps
    outs = draw(st.lists(rel_paths.map(lambda p: "o/" + p), max_size=3, unique=True))
    flags = draw(
        st.lists(st.tuples(st.booleans(), st.booleans()), min_size=len(outs), max_size=len(outs))
    )
    metrics = draw(st.lists(segments.map(lambda s: f"m/{s}.json"), max_size=2, unique=True))
    out_values: list[Out] = []
    if outs:
        body["outs"] = []
        for path, (cache, persist) in zip(outs, flags, strict=True):
            if cache and not persist and draw(st.booleans()):
                body["outs"].append(path)
            else:
                body["outs"].append({path: {"cache": cache, "persist": persist}})
            out_values.append(Out(full(path), cache=cache, persist=persist))
    if metrics:
        body["metrics"] = metrics
        out_values += [Out(full(m), kind="metric") for m in metrics]
    frozen = draw(st.booleans())
    if frozen:
        body["frozen"] = True
    desc = draw(st.one_of(st.none(), commands))
    if desc is not None:
        body["desc"] = desc
    deterministic = draw(st.sampled_from([None, True, False]))
    tolerance = None
    if deterministic is not None:
        body["deterministic"] = deterministic
    if deterministic is False:
        tolerance = draw(st.one_of(st.none(), st.floats(0, 1e3), st.integers(0, 5)))
        if tolerance is not None:
            body["tolerance"] = tolerance
        tolerance = DEFAULT_TOLERANCE if tolerance is None else float(tolerance)
    expected = Stage(
        name="",
        cmd=(cmd,) if isinstance(cmd, str) else tuple(cmd),
        wdir=wdir or ".",
        deps=tuple(dict.fromkeys(full(d) for d in deps)),
        outs=tuple(out_values),
        desc=desc,
        frozen=frozen,
        deterministic=deterministic is not False,
        tolerance=tolerance,
    )
    return body, expected


@SETTINGS
@given(st.dictionaries(names, stage_specs(), min_size=1, max_size=4))
def test_valid_specs_round_trip(
    workdir: Path, stages: dict[str, tuple[dict[str, Any], Stage]]
) -> None:
    spec = {"stages": {name: body for name, (body, _) in stages.items()}}
    pipeline = load_text(workdir, yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    assert list(pipeline.stages) == list(stages)
    for name, (_, expected) in stages.items():
        got = pipeline.stages[name]
        assert got == Stage(**{**expected.__dict__, "name": name})
        assert got.location is not None and got.location.line is not None


FIELDS = [
    "cmd",
    "deps",
    "outs",
    "metrics",
    "params",
    "wdir",
    "code",
    "env",
    "desc",
    "meta",
    "frozen",
    "always_changed",
    "deterministic",
    "tolerance",
    "foreach",
    "matrix",
    "do",
    "vars",
    "cache",
    "persist",
    "python",
    "packages",
    "auto",
    "paths",
    "${x}",
    "@",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False),
    st.sampled_from(
        [
            "",
            ".",
            "..",
            "/abs",
            "~/h",
            "a/../..",
            "${x}",
            "$${x}",
            "${",
            "a b",
            "x.json",
            "${item}",
            "${item.a}",
            "p.yaml",
            ".git/x",
            "k.yaml",
        ]
    ),
    st.text(max_size=8),
)
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=6), st.integers(0, 3))
garbage = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)
near_valid = st.fixed_dictionaries(
    {
        "stages": st.dictionaries(
            names | keys, st.dictionaries(st.sampled_from(FIELDS), garbage, max_size=5), max_size=3
        )
    },
    optional={"vars": garbage, "env": garbage},
)


@SETTINGS
@given(st.one_of(garbage, near_valid))
def test_garbage_structures_raise_only_spec_errors(workdir: Path, data: Any) -> None:
    (workdir / "params.yaml").write_text("x: 1\nk: {a: [1, 2]}\n")
    (workdir / "k.yaml").write_text("a: 1\n")
    text = yaml.safe_dump(data, allow_unicode=True)
    with contextlib.suppress(SpecError):
        load_text(workdir, text)


@SETTINGS
@given(st.text(max_size=200))
def test_garbage_text_raises_only_spec_errors(workdir: Path, text: str) -> None:
    with contextlib.suppress(SpecError):
        load_text(workdir, text)


dot_paths = st.lists(
    st.sampled_from(["..", ".", "a", "b", "", "c.txt"]), min_size=1, max_size=6
).map("/".join)


@SETTINGS
@given(dot_paths, st.one_of(st.none(), dot_paths))
def test_dotted_paths_stay_inside_or_fail(workdir: Path, path: str, wdir: str | None) -> None:
    body: dict[str, Any] = {"cmd": "x", "deps": [path]}
    if wdir is not None:
        body["wdir"] = wdir
    try:
        pipeline = load_text(workdir, yaml.safe_dump({"stages": {"s": body}}))
    except SpecError as err:
        reasons = ("outside the project", "must not be empty", "is absolute")
        assert any(r in err.message for r in reasons), err.message
        return
    dep = pipeline.stages["s"].deps[0]
    assert not dep.startswith(("/", "../")) and dep != ".."
    assert dep == posixpath.normpath(posixpath.join(wdir or ".", path))
    assert "/./" not in f"/{dep}/" or dep == "."
    assert "//" not in dep


@SETTINGS
@given(dot_paths, st.sampled_from([".", "a", "a/b", "a/b/c"]))
def test_resolve_matches_normpath(path: str, wdir: str) -> None:
    joined = posixpath.normpath(posixpath.join(wdir, path))
    try:
        got = resolve(path, wdir)
    except PathError:
        assert joined == ".." or joined.startswith("../") or path.startswith("/") or not path
        return
    assert got == joined
