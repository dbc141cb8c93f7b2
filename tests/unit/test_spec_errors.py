"""Every spec error: what it says, and the file, line and column it points at."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeflow.errors import PipeflowError, SpecError
from pipeflow.params import clear_cache
from pipeflow.spec.loader import load_pipeline

PARAMS = "train:\n  lr: 0.1\n  epochs: 3\n"


def fail(
    root: Path, spec: str, files: dict[str, str] | None = None, *, validated: bool = False
) -> SpecError:
    clear_cache()
    spec = textwrap.dedent(spec).lstrip("\n")
    for name, text in {"pipeline.yaml": spec, **(files or {})}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    with pytest.raises(SpecError) as info:
        load_pipeline(root, is_validated=(lambda d: True) if validated else None)
    err = info.value
    assert isinstance(err, PipeflowError) and err.exit_code == 2
    return err


def where(err: SpecError) -> tuple[str, int | None, int | None]:
    assert err.location is not None
    return err.location.file, err.location.line, err.location.column


# (id, spec, (line, column), words in the message, words in the hint or None)
CASES = [
    (
        "yaml-syntax",
        "stages:\n  a:\n    cmd: [echo\n    deps: x\n",
        (4, 9),
        ["YAML syntax error", "flow sequence"],
        "indentation",
    ),
    (
        "yaml-syntax-interpolation-in-flow",
        "stages:\n  a:\n    cmd: x\n    deps: [${d}/a]\n",
        (4, 13),
        ["YAML syntax error"],
        "quote values that use ${...}",
    ),
    ("empty-spec", "# nothing\n", (1, 1), ["pipeline.yaml is empty"], "stages:"),
    (
        "top-level-not-mapping",
        "- a\n- b\n",
        (1, 1),
        ["the top level must be a mapping with a 'stages' key, got a list"],
        None,
    ),
    ("no-stages", "vars: {a: 1}\n", (1, 1), ["pipeline.yaml has no 'stages'"], "stages:"),
    (
        "unknown-top-level",
        "stages: {}\nstagse: {}\n",
        (2, 1),
        ["unknown field 'stagse' at the top level of pipeline.yaml"],
        "did you mean 'stages'?",
    ),
    (
        "unknown-stage-field",
        "stages:\n  train:\n    cmd: x\n    out: [a]\n",
        (4, 5),
        ["unknown field 'out' in stage 'train'"],
        "did you mean 'outs'?",
    ),
    (
        "unknown-field-no-close-match",
        "stages:\n  train:\n    cmd: x\n    zzzzzz: 1\n",
        (4, 5),
        ["unknown field 'zzzzzz' in stage 'train'"],
        "allowed fields: cmd, wdir, deps",
    ),
    (
        "typo-beats-missing-cmd",
        "stages:\n  train:\n    cdm: x\n",
        (3, 5),
        ["unknown field 'cdm' in stage 'train'"],
        "did you mean 'cmd'?",
    ),
    (
        "unknown-output-option",
        "stages:\n  t:\n    cmd: x\n    outs:\n      - m.pkl: {cahce: false}\n",
        (5, 17),
        ["unknown field 'cahce' in the options of output 'm.pkl' of stage 't'"],
        "did you mean 'cache'?",
    ),
    (
        "template-field-outside-do",
        "stages:\n  t:\n    foreach: [a]\n    do: {cmd: x}\n    deps: [a]\n",
        (5, 5),
        ["unknown field 'deps' in stage 't'"],
        "go under 'do'",
    ),
    (
        "wrong-type-deps",
        "stages:\n  train:\n    cmd: x\n    deps: data.csv\n",
        (4, 11),
        ["'deps' of stage 'train' must be a list of paths, got a string"],
        None,
    ),
    (
        "wrong-type-item",
        "stages:\n  train:\n    cmd: x\n    outs: [a, 3]\n",
        (4, 15),
        ["entry 2 of 'outs' of stage 'train' must be a path or a one-key mapping", "a number"],
        None,
    ),
    (
        "wrong-type-bool",
        "stages:\n  train:\n    cmd: x\n    frozen: maybe\n",
        (4, 13),
        ["'frozen' of stage 'train' must be true or false, got a string"],
        None,
    ),
    (
        "wrong-type-cmd-item",
        "stages:\n  train:\n    cmd: [echo a, 7]\n",
        (3, 19),
        ["entry 2 of 'cmd' of stage 'train' must be a command string, got a number"],
        None,
    ),
    (
        "stage-not-mapping",
        "stages:\n  train: python train.py\n",
        (2, 10),
        ["stage 'train' must be a mapping of stage fields", "got a string"],
        None,
    ),
    (
        "empty-cmd",
        "stages:\n  train:\n    cmd: ''\n",
        (3, 10),
        ["'cmd' of stage 'train' must not be empty"],
        None,
    ),
    (
        "missing-cmd",
        "stages:\n  prepare:\n    cmd: x\n  train:\n    deps: [a]\n",
        (4, 3),
        ["stage 'train' has no 'cmd'"],
        "cmd: python train.py",
    ),
    (
        "missing-do",
        "stages:\n  t:\n    foreach: [a, b]\n",
        (2, 3),
        ["stage 't' has 'foreach' but has no 'do'"],
        "under 'do:'",
    ),
    (
        "two-key-output-mapping",
        "stages:\n  t:\n    cmd: x\n    outs:\n      - a: {cache: false}\n        b: {}\n",
        (5, 9),
        ["entry 1 of 'outs' of stage 't' must be a mapping with one key, got 2: 'a', 'b'"],
        "one list entry per path",
    ),
    (
        "enum",
        "stages:\n  t:\n    cmd: x\n    env: {python: exakt}\n",
        (4, 19),
        ["'env.python' of stage 't' must be 'minor' or 'exact', got 'exakt'"],
        "did you mean 'exact'?",
    ),
    (
        "foreach-not-a-reference",
        "stages:\n  t:\n    foreach: models\n    do: {cmd: x}\n",
        (3, 14),
        ["'foreach' of stage 't' must be a non-empty list, a non-empty mapping or a '${...}'"],
        None,
    ),
    (
        "invalid-stage-name",
        "stages:\n  ok:\n    cmd: x\n  bad name:\n    cmd: x\n",
        (4, 3),
        ["invalid stage name 'bad name'"],
        "letters, digits",
    ),
    (
        "at-in-stage-name",
        "stages:\n  train@1:\n    cmd: x\n",
        (2, 3),
        ["invalid stage name 'train@1'"],
        "'@' is reserved",
    ),
    (
        "boolean-stage-name",
        "stages:\n  on:\n    cmd: x\n",
        (2, 3),
        ["stage name true is not a string"],
        "quote it",
    ),
    (
        "invalid-axis-name",
        "stages:\n  t:\n    matrix: {bad-axis: [1]}\n    do: {cmd: x}\n",
        (3, 14),
        ["invalid matrix axis name 'bad-axis' in stage 't'"],
        None,
    ),
    (
        "duplicate-stage",
        "stages:\n  train:\n    cmd: x\n  train:\n    cmd: y\n",
        (4, 3),
        ["duplicate stage name 'train' in 'stages'"],
        "keeps only the last",
    ),
    (
        "duplicate-field",
        "stages:\n  train:\n    cmd: x\n    deps: [a]\n    deps: [b]\n",
        (5, 5),
        ["duplicate key 'deps' in stage 'train'"],
        None,
    ),
    (
        "absolute-output",
        "stages:\n  t:\n    cmd: x\n    outs: [/tmp/model.pkl]\n",
        (4, 12),
        ["output '/tmp/model.pkl' of stage 't' is absolute"],
        "relative to the project root",
    ),
    (
        "output-outside",
        "stages:\n  t:\n    cmd: x\n    outs: [a/../../model.pkl]\n",
        (4, 12),
        ["output 'a/../../model.pkl' of stage 't' is outside the project"],
        "relative to the project root",
    ),
    (
        "output-outside-after-wdir",
        "stages:\n  t:\n    cmd: x\n    wdir: sub\n    outs:\n"
        "      - ../../m.pkl: {cache: false}\n",
        (6, 9),
        ["output '../../m.pkl' of stage 't' is outside the project"],
        "relative to its wdir 'sub'",
    ),
    (
        "output-is-root",
        "stages:\n  t:\n    cmd: x\n    wdir: sub\n    outs: [..]\n",
        (5, 12),
        ["output '.' of stage 't' is the project root"],
        None,
    ),
    (
        "output-in-state-dir",
        "stages:\n  t:\n    cmd: x\n    outs: [.pipeflow/cache/x]\n",
        (4, 12),
        ["output '.pipeflow/cache/x' of stage 't' is inside .pipeflow/"],
        None,
    ),
    (
        "output-in-nested-git",
        "stages:\n  t:\n    cmd: x\n    outs: [sub/.git/hooks/pre-commit]\n",
        (4, 12),
        ["output 'sub/.git/hooks/pre-commit' of stage 't' is inside .git/"],
        None,
    ),
    (
        "output-with-control-character",
        'stages:\n  t:\n    cmd: x\n    outs: ["a\\tb"]\n',
        (4, 12),
        ["contains a NUL or control character"],
        None,
    ),
    (
        "home-dep",
        "stages:\n  t:\n    cmd: x\n    deps: [~/data.csv]\n",
        (4, 12),
        ["dependency '~/data.csv' of stage 't' starts with '~'"],
        None,
    ),
    (
        "dep-outside",
        "stages:\n  t:\n    cmd: x\n    deps: [../data.csv]\n",
        (4, 12),
        ["dependency '../data.csv' of stage 't' is outside the project"],
        None,
    ),
    (
        "wdir-outside",
        "stages:\n  t:\n    cmd: x\n    wdir: ../elsewhere\n",
        (4, 11),
        ["wdir '../elsewhere' of stage 't' is outside the project"],
        None,
    ),
    (
        "wdir-absolute",
        "stages:\n  t:\n    cmd: x\n    wdir: /srv\n",
        (4, 11),
        ["wdir '/srv' of stage 't' is absolute"],
        None,
    ),
    (
        "metrics-suffix",
        "stages:\n  t:\n    cmd: x\n    metrics: [scores.txt]\n",
        (4, 15),
        ["metrics file 'scores.txt' of stage 't' must be .json, .yaml, .yml or .toml"],
        "under 'outs'",
    ),
    (
        "output-twice-different-options",
        "stages:\n  t:\n    cmd: x\n    outs: [m.json]\n    metrics: [m.json]\n",
        (5, 15),
        ["'m.json' is declared twice in stage 't', with different options (first in 'outs')"],
        None,
    ),
    (
        "params-key-missing",
        "stages:\n  t:\n    cmd: x\n    params: [train.epochs, train.lrr]\n",
        (4, 28),
        ["params key 'train.lrr' read by stage 't' is not in params.yaml"],
        "did you mean 'train.lr'?",
    ),
    (
        "params-key-missing-no-close-match",
        "stages:\n  t:\n    cmd: x\n    params: [train.zzzzzzzz]\n",
        (4, 14),
        ["params key 'train.zzzzzzzz' read by stage 't' is not in params.yaml"],
        "keys under 'train': lr, epochs",
    ),
    (
        "params-key-missing-other-file",
        "stages:\n  t:\n    cmd: x\n    params:\n      - other.json: [a, b]\n",
        (5, 25),
        ["params key 'b' read by stage 't' is not in other.json"],
        None,
    ),
    (
        "params-file-missing",
        "stages:\n  t:\n    cmd: x\n    params:\n      - nope.yaml: [a]\n",
        (5, 9),
        ["params file 'nope.yaml' read by stage 't' does not exist"],
        "create it",
    ),
    (
        "default-params-file-missing-in-wdir",
        "stages:\n  t:\n    cmd: x\n    wdir: sub\n    params: [a]\n",
        (5, 14),
        ["params file 'sub/params.yaml' read by stage 't' does not exist"],
        None,
    ),
    (
        "params-file-suffix",
        "stages:\n  t:\n    cmd: x\n    params:\n      - conf.ini: [a]\n",
        (5, 9),
        ["params file 'conf.ini' of stage 't' must be .yaml, .yml, .json or .toml"],
        None,
    ),
    (
        "undefined-variable",
        "stages:\n  t:\n    cmd: python train.py --lr ${train.lrr}\n",
        (3, 10),
        [
            "undefined variable 'train.lrr' in '${train.lrr}' of 'cmd' of stage 't'",
            "known: train.epochs, train.lr",
        ],
        "did you mean 'train.lr'?",
    ),
    (
        "undefined-top-variable",
        "vars:\n  - data_dir: data\nstages:\n  t:\n    cmd: x\n    deps: ['${dat_dir}/a']\n",
        (6, 12),
        [
            "undefined variable 'dat_dir' in '${dat_dir}' of dependency of stage 't'",
            "known: data_dir, train",
        ],
        "did you mean 'data_dir'?",
    ),
    (
        "mapping-into-cmd",
        "stages:\n  t:\n    cmd: echo ${train}\n",
        (3, 10),
        ["'${train}' in 'cmd' of stage 't' is a mapping; only numbers, strings and booleans"],
        "${section.key}",
    ),
    (
        "mapping-as-path",
        "stages:\n  t:\n    cmd: x\n    deps: ['${train}']\n",
        (4, 12),
        ["'${train}' in dependency of stage 't' is a mapping; it must name a single value"],
        None,
    ),
    (
        "unclosed-reference",
        "stages:\n  t:\n    cmd: echo ${train.lr\n",
        (3, 10),
        ["unclosed '${' in 'cmd' of stage 't'"],
        "$${",
    ),
    (
        "invalid-reference",
        "stages:\n  t:\n    cmd: echo ${train lr}\n",
        (3, 10),
        ["invalid reference '${train lr}' in 'cmd' of stage 't'"],
        None,
    ),
    (
        "index-out-of-range",
        "vars:\n  - xs: [1, 2]\nstages:\n  t:\n    cmd: echo ${xs[5]}\n",
        (5, 10),
        ["'${xs[5]}' in 'cmd' of stage 't': 'xs' has 2 items, no index 5"],
        None,
    ),
    (
        "vars-file-missing",
        "vars:\n  - conf.yaml\nstages: {}\n",
        (2, 5),
        ["vars file 'conf.yaml' does not exist"],
        None,
    ),
    (
        "foreach-reference-not-a-list",
        "stages:\n  t:\n    foreach: ${train.lr}\n    do: {cmd: x}\n",
        (3, 14),
        ["'foreach' of stage 't' must be a non-empty list or mapping, got 0.1"],
        None,
    ),
    (
        "undefined-in-template",
        "stages:\n  t:\n    matrix: {a: [1, 2], b: [x]}\n    do:\n      cmd: echo ${item.c}\n",
        (5, 12),
        [
            "undefined variable 'item.c' in '${item.c}' of 'cmd' of stage 't@1-x'",
            "known: item.a, item.b",
        ],
        None,
    ),
    (
        "foreach-key-not-a-name",
        "stages:\n  t:\n    foreach: {'a b': 1}\n    do: {cmd: x}\n",
        (3, 15),
        ["foreach key 'a b' of stage 't' cannot be part of a stage name"],
        None,
    ),
    (
        "duplicate-after-expansion",
        "stages:\n  t:\n    matrix: {a: [x-y, x], b: [z, y-z]}\n    do: {cmd: x}\n",
        (2, 3),
        ["stage name 't@x-y-z' (made by 't') is used twice"],
        "distinct",
    ),
]


@pytest.mark.parametrize(
    ("spec", "position", "words", "hint"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_spec_error(
    tmp_path: Path, spec: str, position: tuple[int, int], words: list[str], hint: str | None
) -> None:
    err = fail(tmp_path, spec, {"params.yaml": PARAMS, "other.json": '{"a": 1}'})
    assert where(err) == ("pipeline.yaml", *position), str(err)
    for w in words:
        assert w in err.message, err.message
    if hint is None:
        return
    assert err.hint is not None and hint in err.hint, err.hint
    assert str(err).startswith(f"pipeline.yaml:{position[0]}:{position[1]}: ")


def test_value_errors_are_found_without_schema_validation(tmp_path: Path) -> None:
    # a validated digest skips jsonschema, never the checks that depend on other files
    err = fail(
        tmp_path,
        "stages:\n  t:\n    cmd: x\n    params: [train.lrr]\n",
        {"params.yaml": PARAMS},
        validated=True,
    )
    assert where(err) == ("pipeline.yaml", 4, 14)
    assert "params key 'train.lrr'" in err.message


def test_params_file_syntax_error_points_into_params_file(tmp_path: Path) -> None:
    err = fail(
        tmp_path, "stages:\n  t:\n    cmd: x\n    params: [a]\n", {"params.yaml": "a: 1\nb: [2\n"}
    )
    assert where(err) == ("params.yaml", 3, 1)
    assert "YAML syntax error" in err.message


def test_toml_params_error(tmp_path: Path) -> None:
    err = fail(
        tmp_path,
        "stages:\n  t:\n    cmd: x\n    params: [{p.toml: [a]}]\n",
        {"p.toml": "a = 1\nb = \n"},
    )
    assert where(err)[:2] == ("p.toml", 2)
    assert "TOML syntax error" in err.message


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"no pipeline\.yaml in") as info:
        load_pipeline(tmp_path)
    assert info.value.hint is not None and "pipeflow init" in info.value.hint


def test_spec_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_bytes(b"stages:\n  a:\n    cmd: \xff\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_pipeline(tmp_path)


def test_impossible_date_is_a_spec_error(tmp_path: Path) -> None:
    err = fail(tmp_path, "stages:\n  t:\n    cmd: x\n    meta: 2024-13-45\n")
    assert "cannot parse YAML" in err.message


def test_python_tags_are_refused(tmp_path: Path) -> None:
    err = fail(tmp_path, "stages:\n  t:\n    cmd: !!python/object/apply:os.system [ls]\n")
    assert where(err)[:2] == ("pipeline.yaml", 3)
