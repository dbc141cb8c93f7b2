"""The shipped examples run under pipeflow itself, as the README's quick start does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Project

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _copy(project: Project, name: str) -> None:
    shutil.copytree(EXAMPLES / name, project.root, dirs_exist_ok=True)


def test_minimal_example(project: Project) -> None:
    _copy(project, "minimal")
    res = project.run("repro")
    assert res.code == 0, res.text
    assert project.run("status", "--check").code == 0
    text = project.read("params.yaml")
    assert "precision" in text
    before = project.lock()["stages"]
    lines = [
        line.replace("precision: ", "precision: 1") if "precision:" in line else line
        for line in text.splitlines()
    ]
    project.write("params.yaml", "\n".join(lines) + "\n")
    res = project.run("repro", "--json")
    assert res.code == 0, res.text
    import json

    body = json.loads(res.out)
    assert body["ran"] == ["summarize"]
    after = project.lock()["stages"]
    assert after["generate"] == before["generate"]


def test_wine_example(project: Project) -> None:
    pytest.importorskip("sklearn")
    _copy(project, "wine")
    res = project.run("repro")
    assert res.code == 0, res.text
    scores = project.lock()["stages"]["evaluate"]["metrics"][0]["values"]
    assert 0.8 <= scores["accuracy"] <= 1.0
    text = project.read("params.yaml").replace("C: 0.01 ", "C: 0.1  ")
    project.write("params.yaml", text)
    status = project.run("status").out
    assert "params.yaml: train.C 0.01 -> 0.1" in status
    import json

    body = json.loads(project.run("repro", "--json").out)
    assert body["ran"] == ["train", "evaluate"]
    assert body["skipped"] == ["prepare", "featurize"]
    subprocess.run(["git", "add", "-A"], cwd=project.root, check=True)
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=project.root,
                            capture_output=True, text=True, check=True).stdout.split()
    assert "models/model.pkl" not in staged
    assert "pipeline.lock" in staged
