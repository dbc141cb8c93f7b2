"""``deterministic: false`` and ``tolerance`` in the spec: loaded, defaulted, refused
with located messages."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeflow.errors import SpecError
from pipeflow.params import clear_cache
from pipeflow.spec.loader import load_pipeline
from pipeflow.spec.model import Stage
from pipeflow.spec.normalize import DEFAULT_TOLERANCE


def _load(root: Path, body: str) -> dict[str, Stage]:
    clear_cache()
    text = "stages:\n  train:\n    cmd: python train.py\n" + textwrap.indent(
        textwrap.dedent(body).lstrip("\n"), "    ")
    (root / "pipeline.yaml").write_text(text)
    return load_pipeline(root).pipeline.stages


@pytest.mark.parametrize(("body", "tolerance"), [
    ("deterministic: false\ntolerance: 1e-6\n", 1e-6),  # YAML 1.1 reads 1e-6 as a string
    ("deterministic: false\ntolerance: 1.0e-3\n", 1e-3),
    ("deterministic: false\ntolerance: 0\n", 0.0),
    ("deterministic: false\ntolerance: 2\n", 2.0),
    ("deterministic: false\n", DEFAULT_TOLERANCE),
])
def test_a_nondeterministic_stage_and_its_tolerance(tmp_path: Path, body: str,
                                                    tolerance: float) -> None:
    stage = _load(tmp_path, body)["train"]
    assert (stage.deterministic, stage.tolerance) == (False, tolerance)
    assert isinstance(stage.tolerance, float)


def test_a_stage_is_deterministic_unless_it_says_otherwise(tmp_path: Path) -> None:
    assert _load(tmp_path, "")["train"].deterministic is True
    assert _load(tmp_path, "deterministic: true\n")["train"].tolerance is None


def test_templates_carry_both_fields(tmp_path: Path) -> None:
    clear_cache()
    (tmp_path / "pipeline.yaml").write_text(textwrap.dedent("""
        stages:
          fit:
            foreach: [a, b]
            do: {cmd: "fit ${item}", deterministic: false, tolerance: 1.0e-4}
          sweep:
            matrix: {lr: [1, 2]}
            do: {cmd: "sweep ${item.lr}", deterministic: false}
        """))
    stages = load_pipeline(tmp_path).pipeline.stages
    assert [(s.deterministic, s.tolerance) for s in stages.values()] == \
        [(False, 1e-4)] * 2 + [(False, DEFAULT_TOLERANCE)] * 2


@pytest.mark.parametrize(("body", "line", "words"), [
    ("tolerance: 1.0e-6\n", 4, "applies only to a stage declared 'deterministic: false'"),
    ("deterministic: true\ntolerance: 0.1\n", 5, "applies only to a stage declared"),
    ("deterministic: false\ntolerance: -1\n", 5, "must be a number >= 0"),
    ("deterministic: false\ntolerance: -1e-6\n", 5, "must be a number >= 0"),
    ("deterministic: false\ntolerance: small\n", 5, "must be a number >= 0"),
    ("deterministic: false\ntolerance: [1]\n", 5, "must be a number >= 0"),
    ("deterministic: false\ntolerance: .inf\n", 5, "finite number >= 0"),
    ("deterministic: false\ntolerance: 1e999\n", 5, "finite number >= 0"),
    ("deterministic: no-way\n", 4, "must be true or false"),
])
def test_bad_values_are_located_spec_errors(tmp_path: Path, body: str, line: int,
                                            words: str) -> None:
    with pytest.raises(SpecError) as caught:
        _load(tmp_path, body)
    err = caught.value
    assert words in str(err) and "stage 'train'" in str(err)
    assert err.location is not None
    assert (err.location.file, err.location.line) == ("pipeline.yaml", line)
