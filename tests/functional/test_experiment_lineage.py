"""``lineage`` and ``versions`` show the experiment a run was made for, and what it set."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import Project
from tests.functional.helpers import commit

SCHEMA = json.loads((Path(__file__).parents[2] / "docs/lineage.schema.json").read_text())
OVERRIDES = {"params.yaml": {"train.C": 10}}


def ml_project(p: Project) -> None:
    """prepare -> train (reads train.C and train.lr) -> model.txt, run and committed."""
    p.params({"prep": {"n": 2}, "train": {"C": 1, "lr": 0.1}})
    p.write("data/raw.txt", "a\nb\nc\n")
    p.spec({
        "prepare": {"cmd": "head -n ${prep.n} data/raw.txt > rows.txt",
                    "deps": ["data/raw.txt"], "params": ["prep.n"], "outs": ["rows.txt"]},
        "train": {"cmd": "echo C=${train.C} lr=${train.lr} > model.txt && cat rows.txt "
                         ">> model.txt",
                  "deps": ["rows.txt"], "params": ["train.C", "train.lr"],
                  "outs": ["model.txt"]},
    })
    assert p.run("add", "data/raw.txt").code == 0
    assert p.run("repro").code == 0
    commit(p, "baseline")


@pytest.fixture
def experiment(project: Project) -> str:
    """A project whose experiment lr-high set train.C = 10; its id."""
    ml_project(project)
    res = project.run("exp", "run", "--set", "train.C=10", "--name", "lr-high")
    assert res.code == 0, res.text
    shown = json.loads(project.run("exp", "show", "--json").out)
    (exp_id,) = [row["id"] for row in shown["rows"] if row["name"] == "lr-high"]
    assert isinstance(exp_id, str)
    return exp_id


def experiment_version(p: Project) -> str:
    """The label of the version of model.txt the experiment made (a local one)."""
    data = json.loads(p.run("versions", "model.txt", "--json").out)
    (label,) = [v["version"] for v in data["versions"] if v["experiment"]]
    assert isinstance(label, str)
    return label


def test_lineage_shows_what_the_experiment_set(project: Project, experiment: str) -> None:
    res = project.run("lineage", f"model.txt@{experiment_version(project)}")
    assert res.code == 0, res.text
    lines = [line.strip() for line in res.out.splitlines()]
    train = next(i for i, line in enumerate(lines) if line.startswith("└── train"))
    details = lines[train + 1:train + 6]
    assert f"exp      lr-high (id {experiment})" in details
    assert "params   params.yaml: train.lr=0.1" in details
    assert "params.yaml: train.C = 10 (set for experiment lr-high)" in details
    # the upstream stage did not run for the experiment (restored): no mark there
    assert res.out.count("set for experiment") == 1
    assert res.out.count("exp      ") == 1
    # the workspace's version is the baseline's: no experiment in its lineage
    assert "experiment" not in project.run("lineage", "model.txt").out


def test_after_apply_the_workspace_lineage_is_the_experiments(
        project: Project, experiment: str) -> None:
    assert project.run("exp", "apply", "lr-high").code == 0
    res = project.run("lineage", "model.txt")
    assert res.code == 0, res.text
    assert "params.yaml: train.C = 10 (set for experiment lr-high)" in res.out
    data = json.loads(project.run("versions", "model.txt", "--json").out)
    (current,) = [v for v in data["versions"] if v["current"]]
    assert current["experiment"]["name"] == "lr-high"


def test_lineage_json_has_the_experiment(project: Project, experiment: str) -> None:
    target = f"model.txt@{experiment_version(project)}"
    res = project.run("lineage", target, "--json")
    assert res.code == 0, res.text
    data = json.loads(res.out)
    jsonschema.validate(data, SCHEMA)
    by_stage = {r["stage"]: r for r in data["runs"]}
    assert by_stage["train"]["experiment"] == {
        "id": experiment, "name": "lr-high", "set": {"params.yaml": {"train.C": 10}}}
    assert by_stage["prepare"]["experiment"] is None
    events = project.run("lineage", target, "--format", "openlineage")
    facets = [json.loads(line)["run"]["facets"]["pipeflow_params"]
              for line in events.out.splitlines()]
    assert [f["experiment"]["name"] if f["experiment"] else None for f in facets] == [
        None, "lr-high"]


def test_versions_mark_the_version_an_experiment_made(
        project: Project, experiment: str) -> None:
    res = project.run("versions", "model.txt")
    assert res.code == 0, res.text
    rows = [line for line in res.out.splitlines() if " run " in line]
    assert len(rows) == 2
    assert "exp lr-high" not in rows[0] and "exp lr-high" in rows[1]
    assert "params.yaml:train.C = 10 (set for experiment lr-high)" in res.out
    data = json.loads(project.run("versions", "model.txt", "--json").out)
    assert [v["experiment"] for v in data["versions"]] == [
        None, {"id": experiment, "name": "lr-high", "set": OVERRIDES}]


def test_the_api_values_carry_the_experiment(project: Project, experiment: str) -> None:
    import pipeflow

    repo = pipeflow.Repo(project.root)
    first, second = repo.versions("model.txt")
    assert first.experiment is None
    assert second.experiment == pipeflow.ExperimentMark(experiment, "lr-high", OVERRIDES)
    runs = repo.lineage("model.txt", second.label).runs_by_stage()
    assert runs["train"].experiment is not None
    assert runs["train"].experiment.overrides_key("params.yaml", "train.C")
    assert runs["prepare"].experiment is None


def test_runs_of_repro_show_no_experiment(project: Project) -> None:
    ml_project(project)
    res = project.run("lineage", "model.txt")
    assert "exp " not in res.out and "experiment" not in res.out
    data = json.loads(project.run("versions", "model.txt", "--json").out)
    assert [v["experiment"] for v in data["versions"]] == [None]
