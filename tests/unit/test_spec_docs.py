"""docs/spec.md stays true: its YAML parses, its full example loads, its names are right."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pipeflow.params import clear_cache
from pipeflow.spec.loader import load_pipeline

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)


@pytest.mark.parametrize("block", BLOCKS)
def test_every_yaml_block_parses(block: str) -> None:
    yaml.safe_load(block)


def test_full_example_loads(tmp_path: Path) -> None:
    clear_cache()
    (tmp_path / "config").mkdir()
    (tmp_path / "pipeline.yaml").write_text(BLOCKS[1])
    (tmp_path / "params.yaml").write_text("prepare: {split: 0.2}\ntrain: {lr: 0.1, epochs: 3}\n")
    (tmp_path / "config" / "paths.yaml").write_text("root: x\n")
    (tmp_path / "config" / "model.toml").write_text("layers = 3\n")
    stages = load_pipeline(tmp_path).pipeline.stages
    assert list(stages) == ["prepare", "train", "evaluate@val", "evaluate@test"]
    assert stages["train"].env.vars == ("OMP_NUM_THREADS",)
    assert stages["evaluate@test"].outs[0].path == "metrics/test.json"


def test_documented_template_names(tmp_path: Path) -> None:
    clear_cache()
    matrix = next(b for b in BLOCKS if "matrix:" in b and "sweep" in b)
    (tmp_path / "pipeline.yaml").write_text(matrix)
    names = list(load_pipeline(tmp_path).pipeline.stages)
    assert names == ["sweep@svm-0.1", "sweep@svm-0.01", "sweep@rf-0.1", "sweep@rf-0.01"]
    for name in names:
        assert f"`{name}`" in DOC.read_text()
