"""``versions`` says what made each version: notes, absolute params, and what differs
from the previous version (data, code, environment, params)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Project
from tests.functional.helpers import chain, commit


def _versions(p: Project, target: str = "models/model.txt") -> list[dict[str, Any]]:
    res = p.run("versions", target, "--json")
    assert res.code == 0, res.text
    return list(json.loads(res.out)["versions"])


def _no_difference() -> dict[str, Any]:
    return {"data": [], "code": [], "env": [], "params": {}}


def test_a_version_made_from_new_data_differs_by_data(project: Project) -> None:
    chain(project)
    assert project.run("repro").code == 0
    commit(project)
    project.write("data/raw.txt", "a\nx\nc\n")  # same params, same code: new data only
    assert project.run("repro").code == 0
    commit(project)
    first, second = _versions(project)
    assert first["differs"] is None  # nothing before it
    # the source two stages up, through data/prepared.txt
    assert second["differs"] == {**_no_difference(), "data": ["data/raw.txt"]}
    res = project.run("versions", "models/model.txt")
    assert "differs: data (data/raw.txt)" in res.out, res.out


def test_params_are_absolute_and_a_params_change_is_named(project: Project) -> None:
    chain(project)
    assert project.run("repro").code == 0
    commit(project)
    project.params({"prep": {"n": 3}, "train": {"lr": 0.07, "epochs": 2}, "eval": {"k": 1}})
    assert project.run("repro").code == 0
    commit(project)
    first, second = _versions(project)
    # every key the runs that made it read, the upstream stage's too
    assert first["params"] == {"params.yaml": {"prep.n": 3, "train.lr": 0.05,
                                               "train.epochs": 2}}
    assert second["params"]["params.yaml"]["train.lr"] == 0.07
    assert second["differs"] == {**_no_difference(),
                                 "params": {"params.yaml:train.lr": [0.05, 0.07]}}
    text = project.run("versions", "models/model.txt").out
    assert "differs: params (params.yaml:train.lr 0.05 -> 0.07)" in text
    assert "prep.n=3" not in text  # absolute params only with --params
    shown = project.run("versions", "models/model.txt", "--params").out
    assert "params: params.yaml:prep.n=3, params.yaml:train.epochs=2, " \
           "params.yaml:train.lr=0.07" in shown, shown


def test_a_code_change_is_named(project: Project) -> None:
    project.write("data.txt", "1\n")
    project.write("train.py", "open('model.txt', 'w').write(open('data.txt').read())\n")
    project.spec({"train": {"cmd": "python3 train.py", "deps": ["data.txt"],
                            "outs": ["model.txt"]}})
    assert project.run("repro").code == 0
    commit(project)
    project.write("train.py", "open('model.txt', 'w').write(open('data.txt').read() * 2)\n")
    assert project.run("repro").code == 0
    commit(project)
    _, second = _versions(project, "model.txt")
    assert second["differs"] == {**_no_difference(), "code": ["train.py"]}
    assert "differs: code (train.py)" in project.run("versions", "model.txt").out


def test_a_script_listed_in_deps_is_code_not_data(project: Project) -> None:
    """As the wine example writes it: `deps: [data.txt, train.py]`."""
    project.write("data.txt", "1\n")
    project.write("train.py", "open('model.txt', 'w').write(open('data.txt').read())\n")
    project.spec({"train": {"cmd": "python3 train.py", "deps": ["data.txt", "train.py"],
                            "outs": ["model.txt"]}})
    assert project.run("repro").code == 0
    commit(project)
    project.write("train.py", "open('model.txt', 'w').write(open('data.txt').read() * 2)\n")
    assert project.run("repro").code == 0
    commit(project)
    _, second = _versions(project, "model.txt")
    assert second["differs"] == {**_no_difference(), "code": ["train.py"]}


def _install(site: Path, version: str) -> None:
    """A small distribution (just its metadata) on PYTHONPATH, as test_commands does."""
    for old in site.glob("pfdemo-*.dist-info"):
        shutil.rmtree(old)
    info = site / f"pfdemo-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: pfdemo\nVersion: {version}\n")


def test_a_package_version_change_is_named(project: Project, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    _install(site, "1.0")
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    write = ("import importlib.metadata as m; "
             "open('model.txt', 'w').write(m.version('pfdemo'))")
    project.spec({"train": {"cmd": f'python3 -c "{write}"', "outs": ["model.txt"],
                            "env": {"packages": ["pfdemo"]}}})
    assert project.run("repro").code == 0
    commit(project)
    _install(site, "1.1")
    assert project.run("repro").code == 0
    commit(project)
    assert project.read("model.txt") == "1.1"
    _, second = _versions(project, "model.txt")
    assert second["differs"] == {**_no_difference(), "env": ["packages.pfdemo"]}
    text = project.run("versions", "model.txt").out
    assert "differs: env (packages.pfdemo 1.0 -> 1.1)" in text, text


def test_notes_are_shown_in_text_and_json(project: Project) -> None:
    from pipeflow.lineage import tags
    from pipeflow.project.project import Project as Repo

    chain(project)
    assert project.run("repro").code == 0
    commit(project)
    [only] = _versions(project)
    with Repo.find(project.root) as repo:
        tags.add_note(repo.dot, repo.records.chain, "models/model.txt", only["hash"],
                      "trained on the March export", "ann@example.com")
    [noted] = _versions(project)
    assert [(n["text"], n["user"]) for n in noted["notes"]] == [
        ("trained on the March export", "ann@example.com")]
    assert noted["notes"][0]["when"]
    text = project.run("versions", "models/model.txt").out
    assert "note: trained on the March export (ann@example.com, " in text, text


def test_a_model_name_is_accepted(project: Project) -> None:
    chain(project)
    stages = yaml.safe_load(project.read("pipeline.yaml"))["stages"]
    stages["train"]["outs"] = [{"models/model.txt": {"model": "wine-classifier"}}]
    project.spec(stages)
    assert project.run("repro").code == 0
    commit(project)
    res = project.run("versions", "wine-classifier", "--json")
    assert res.code == 0, res.text
    body = json.loads(res.out)
    assert body["path"] == "models/model.txt" and body["model"] == "wine-classifier"
    assert "models/model.txt (model wine-classifier): 1 version(s)" in project.run(
        "versions", "wine-classifier").out
    bad = project.run("versions", "wine-clasifier")
    assert bad.code == 2 and "did you mean the model 'wine-classifier'" in bad.err, bad.err


def test_the_environment_is_not_a_difference_when_unchanged(project: Project) -> None:
    """Two versions made in one environment: env is empty even though each run
    records its environment (the platform, the exact Python)."""
    project.write("data.txt", "1\n")
    project.spec({"train": {"cmd": "cp data.txt model.txt", "deps": ["data.txt"],
                            "outs": ["model.txt"]}})
    assert project.run("repro").code == 0
    project.write("data.txt", "2\n")
    assert project.run("repro").code == 0
    _, second = _versions(project, "model.txt")
    assert second["differs"] == {**_no_difference(), "data": ["data.txt"]}


def test_data_recorded_with_add_is_named_upstream_and_in_its_own_versions(
        project: Project) -> None:
    project.write("data/raw.txt", "a\n")
    project.spec({"s": {"cmd": "cp data/raw.txt o.txt", "deps": ["data/raw.txt"],
                        "outs": ["o.txt"]}})
    assert project.run("add", "data/raw.txt").code == 0
    assert project.run("repro").code == 0
    commit(project)
    project.write("data/raw.txt", "b\n")
    assert project.run("repro").code == 0  # records v2 of the source, then runs s
    commit(project)
    _, second = _versions(project, "o.txt")
    assert second["differs"] == {**_no_difference(), "data": ["data/raw.txt"]}
    _, source = _versions(project, "data/raw.txt")
    assert source["differs"] == {**_no_difference(), "data": ["data/raw.txt"]}


def test_a_local_version_is_compared_with_the_version_made_just_before_it(
        project: Project) -> None:
    from tests.functional.helpers_registry import PATH, model_with_versions, version

    model_with_versions(project, (0.1,))  # v1
    project.params({"prep": {"n": 3}, "train": {"lr": 0.7, "epochs": 2}, "eval": {"k": 1}})
    assert project.run("repro").code == 0  # never committed: a local version
    version(project, 0.2)  # v2, made after it
    rows = {v["version"].split(":")[0]: v for v in _versions(project, PATH)}
    assert rows["local"]["differs_from"] == "v1"
    assert rows["local"]["differs"]["params"] == {"params.yaml:train.lr": [0.1, 0.7]}
    assert rows["v2"]["differs_from"] == "v1"
    assert "differs from v1: params (params.yaml:train.lr 0.1 -> 0.7)" in project.run(
        "versions", PATH).out
