"""repro runs exactly what changed: first run, no-op, params, data, command, early cutoff."""

from __future__ import annotations

import json

import yaml

from tests.conftest import Project
from tests.functional.helpers import chain, runs


def test_first_repro_runs_everything_in_order_and_writes_the_lock(project: Project) -> None:
    chain(project)
    res = project.run("repro")
    assert res.code == 0, res.text
    assert runs(project) == ["prepare", "train", "evaluate"]
    assert project.read("models/model.txt") == "lr=0.05\na\nb\nc\n"
    lock = project.lock()
    assert lock["schema"] == 1
    assert set(lock["stages"]) == {"prepare", "train", "evaluate"}
    train = lock["stages"]["train"]
    assert train["params"] == {"params.yaml": {"train.epochs": 2, "train.lr": 0.05}}
    assert train["outs"][0]["path"] == "models/model.txt"
    oid = train["outs"][0]["hash"]
    assert len(oid) == 32
    assert (project.root / ".pipeflow/cache/objects" / oid[:2] / oid[2:]).is_file()
    assert lock["stages"]["evaluate"]["metrics"][0]["values"] == {"k": 1, "lines": 4}


def test_outputs_are_ignored_by_git_but_the_lock_and_config_are_not(project: Project) -> None:
    chain(project)
    assert project.run("init").code == 0
    assert project.run("repro").code == 0
    project.git("add", "-A")
    staged = project.git("diff", "--cached", "--name-only").split()
    assert "pipeline.lock" in staged
    assert ".pipeflow/config" in staged
    assert "data/raw.txt" in staged
    for path in ("data/prepared.txt", "models/model.txt", "metrics.json"):
        assert path not in staged
    assert not any(s.startswith(".pipeflow/cache") or s.startswith(".pipeflow/state")
                   for s in staged)
    assert "/prepared.txt" in project.read("data/.gitignore").splitlines()


def test_second_repro_runs_nothing(project: Project) -> None:
    chain(project)
    project.run("repro")
    runs(project)
    res = project.run("repro")
    assert res.code == 0
    assert runs(project) == []
    assert "up to date" in res.out


def test_param_edit_reruns_exactly_the_readers(project: Project) -> None:
    chain(project)
    project.run("repro")
    runs(project)
    project.params({"prep": {"n": 3}, "train": {"lr": 0.07, "epochs": 2}, "eval": {"k": 1}})
    st = project.run("status")
    assert st.code == 0
    assert "params.yaml: train.lr 0.05 -> 0.07" in st.out
    states = {s["name"]: s["status"] for s in json.loads(project.run("status", "--json").out)["stages"]}
    assert states == {"prepare": "up-to-date", "train": "changed", "evaluate": "pending"}
    assert project.run("status", "--check").code == 1
    assert project.run("repro").code == 0
    assert runs(project) == ["train", "evaluate"]
    assert project.run("status", "--check").code == 0


def test_editing_an_unread_key_reruns_nothing(project: Project) -> None:
    chain(project)
    project.run("repro")
    runs(project)
    project.params({"prep": {"n": 3}, "train": {"lr": 0.05, "epochs": 2}, "eval": {"k": 1},
                    "unused": {"x": 1}})
    assert project.run("status", "--check").code == 0
    project.run("repro")
    assert runs(project) == []


def test_data_edit_reruns_the_reader_and_status_names_the_file(project: Project) -> None:
    chain(project)
    project.run("repro")
    runs(project)
    project.write("data/raw.txt", "x\ny\nz\n")
    st = project.run("status")
    assert "dependency modified: data/raw.txt" in st.out
    project.run("repro")
    assert runs(project) == ["prepare", "train", "evaluate"]


def test_command_edit_reruns_and_status_shows_the_change(project: Project) -> None:
    chain(project)
    project.run("repro")
    runs(project)
    spec = yaml.safe_load(project.read("pipeline.yaml"))
    spec["stages"]["evaluate"]["cmd"] += " && true"
    project.write("pipeline.yaml", yaml.safe_dump(spec, sort_keys=False))
    st = project.run("status")
    assert "command changed" in st.out
    assert "&& true" in st.out
    project.run("repro")
    assert runs(project) == ["evaluate"]


def test_early_cutoff_when_outputs_are_byte_identical(project: Project) -> None:
    chain(project)
    project.run("repro")
    runs(project)
    # raw.txt has 3 lines: taking 5 produces the same prepared.txt
    project.params({"prep": {"n": 5}, "train": {"lr": 0.05, "epochs": 2}, "eval": {"k": 1}})
    res = project.run("repro")
    assert res.code == 0
    assert runs(project) == ["prepare"]


def test_deleted_output_is_restored_not_rerun(project: Project) -> None:
    chain(project)
    project.run("repro")
    runs(project)
    (project.root / "models/model.txt").unlink()
    st = json.loads(project.run("status", "--json").out)
    states = {s["name"]: s["status"] for s in st["stages"]}
    assert states["train"] == "missing-output"
    assert states["evaluate"] == "up-to-date"
    res = project.run("repro")
    assert res.code == 0, res.text
    assert runs(project) == []
    assert "restored" in res.out
    assert project.read("models/model.txt") == "lr=0.05\na\nb\nc\n"


def test_checkout_restores_deleted_outputs_without_running(project: Project) -> None:
    chain(project)
    project.run("repro")
    runs(project)
    (project.root / "models/model.txt").unlink()
    (project.root / "data/prepared.txt").write_text("tampered\n")
    res = project.run("checkout")
    assert res.code == 0, res.text
    assert runs(project) == []
    assert project.read("models/model.txt") == "lr=0.05\na\nb\nc\n"
    assert project.read("data/prepared.txt") == "a\nb\nc\n"
    assert project.run("status", "--check").code == 0


def test_targets_run_with_stale_upstream_only(project: Project) -> None:
    chain(project)
    project.run("repro")
    runs(project)
    project.write("data/raw.txt", "q\nr\ns\n")
    assert project.run("repro", "train").code == 0
    assert runs(project) == ["prepare", "train"]
    st = {s["name"]: s["status"] for s in json.loads(project.run("status", "--json").out)["stages"]}
    assert st["evaluate"] == "changed"


def test_single_item_downstream_force(project: Project) -> None:
    chain(project)
    project.run("repro")
    runs(project)
    assert project.run("repro", "--force", "--single-item", "train").code == 0
    assert runs(project) == ["train"]
    assert project.run("repro", "--force", "--downstream", "train").code == 0
    assert runs(project) == ["train", "evaluate"]
    assert project.run("repro", "--force").code == 0
    assert runs(project) == ["prepare", "train", "evaluate"]
    res = project.run("repro", "--single-item", "--downstream", "train")
    assert res.code == 2


def test_target_given_as_output_path(project: Project) -> None:
    chain(project)
    project.run("repro")
    runs(project)
    assert project.run("repro", "-f", "-s", "models/model.txt").code == 0
    assert runs(project) == ["train"]


def test_dry_prints_what_would_run_and_runs_nothing(project: Project) -> None:
    chain(project)
    res = project.run("repro", "--dry")
    assert res.code == 0
    assert "never run" in res.out
    assert runs(project) == []
    assert not (project.root / "pipeline.lock").exists()
    project.run("repro")
    runs(project)
    project.params({"prep": {"n": 3}, "train": {"lr": 0.1, "epochs": 2}, "eval": {"k": 1}})
    res = project.run("repro", "--dry")
    assert "train.lr 0.05 -> 0.1" in res.out
    assert "pending" in res.out
    assert not any(line.startswith("prepare") for line in res.out.splitlines())
    assert runs(project) == []
    dry = json.loads(project.run("repro", "--dry", "--json").out)
    assert [s["status"] for s in dry["stages"]] == ["up-to-date", "changed", "pending"]


def test_unknown_target_is_a_usage_error(project: Project) -> None:
    chain(project)
    res = project.run("repro", "trian")
    assert res.code == 2
    assert "unknown target 'trian'" in res.err
    assert "did you mean 'train'" in res.err
