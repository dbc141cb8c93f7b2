"""``exp apply`` and ``exp remove`` on a real git project through the real CLI (issue 13,
items 5 and 6; the "Bad input" lines about apply): apply restores from the run cache,
refuses with nothing changed, is undone when a stage fails; gc keeps experiments'
outputs until they are removed."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

import pipeflow
from pipeflow.files.repolock import RepoLock
from pipeflow.lineage.experiments import Experiment, experiments, find
from pipeflow.project.project import Project as Proj
from pipeflow.records.records import RecordBody, RecordKind
from tests.conftest import Project
from tests.functional.helpers import chain, commit, runs

PARAMS = """\
# the chain's params (comments and layout must survive an apply)
prep:
  n: 3          # lines kept
train:
  lr: 0.05      # learning rate
  epochs: 2
eval: {k: 1}
"""
MODEL = "models/model.txt"


def _exp(p: Project, name: str) -> Experiment:
    with Proj(p.root) as repo:
        return find(repo, name)


def _names(p: Project) -> set[str]:
    with Proj(p.root) as repo:
        return {e.name for e in experiments(repo)}


def _state(p: Project) -> tuple[bytes, bytes, bytes]:
    """The bytes apply must leave alone when it refuses: params, lock, model."""
    return ((p.root / "params.yaml").read_bytes(), (p.root / "pipeline.lock").read_bytes(),
            (p.root / MODEL).read_bytes())


def _clean(p: Project) -> None:
    res = p.run("status", "--json")
    assert res.code == 0, res.text
    assert json.loads(res.out)["up_to_date"] is True, res.out


@pytest.fixture
def base(project: Project) -> Project:
    """The chain run and committed at train.lr 0.05, and experiment ``high`` (0.5)."""
    assert project.run("init").code == 0
    chain(project)
    project.write("params.yaml", PARAMS)
    project.write(".gitignore", "runs.log\n")
    assert project.run("repro").code == 0
    commit(project, "v1")
    res = project.run("exp", "run", "--set", "train.lr=0.5", "--name", "high")
    assert res.code == 0, res.text
    runs(project)
    return project


def _apply(p: Project, *args: str) -> dict[str, Any]:
    res = p.run("exp", "apply", *args, "--json")
    assert res.code == 0, res.text
    body: dict[str, Any] = json.loads(res.out)
    return body


def test_apply_restores_the_experiment_without_running_anything(base: Project) -> None:
    high = _exp(base, "high")
    res = base.run("exp", "apply", "high")
    assert res.code == 0, res.text
    assert "train.lr 0.05 -> 0.5" in res.out
    assert "restored 2 stage(s) from the cache (train, evaluate)" in res.out
    assert runs(base) == []  # nothing trained: the run cache had both stages
    assert base.read(MODEL).startswith("lr=0.5")
    assert base.lock()["stages"]["train"]["params"]["params.yaml"]["train.lr"] == 0.5
    _clean(base)
    again = base.run("repro")
    assert again.code == 0, again.text
    assert runs(base) == []  # the next repro runs nothing
    # the lock and lineage name the experiment's own run of train
    (train,) = [s for s in high.stages if s.stage == "train"]
    assert train.run and base.lock()["stages"]["train"]["run"] == train.run
    lineage = base.run("lineage", MODEL)
    assert lineage.code == 0, lineage.text
    assert f"run {train.run[:12]}" in lineage.out


def test_apply_changes_only_the_set_line_of_the_params_file(base: Project) -> None:
    before = base.read("params.yaml").splitlines(keepends=True)
    _apply(base, "high")
    after = base.read("params.yaml").splitlines(keepends=True)
    assert len(after) == len(before)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == [4]
    assert after[4].startswith("  lr: 0.5") and after[4].endswith("# learning rate\n")


def test_apply_json_lists_params_and_stages(base: Project) -> None:
    body = _apply(base, "high")
    assert body["params"] == [{"file": "params.yaml", "key": "train.lr", "old": 0.05,
                               "new": 0.5}]
    assert body["restored"] == ["train", "evaluate"] and body["ran"] == []
    assert body["up_to_date"] == ["prepare"] and body["lock_changed"] is True


def test_apply_of_an_unknown_experiment_changes_nothing(base: Project) -> None:
    before = _state(base)
    res = base.run("exp", "apply", "hihg")
    assert res.code == 2
    assert "no experiment 'hihg'" in res.err and "did you mean 'high'" in res.err
    assert _state(base) == before


def test_apply_of_a_failed_experiment_names_its_stage(base: Project) -> None:
    res = base.run("exp", "run", "--set", "prep.n=oops", "--name", "broken")
    assert res.code == 1, res.text
    before = _state(base)
    res = base.run("exp", "apply", "broken")
    assert res.code == 2
    assert "experiment 'broken' failed at stage 'prepare'" in res.err
    assert _state(base) == before and runs(base) == []


def test_apply_refuses_over_uncommitted_params_unless_forced(base: Project) -> None:
    base.write("params.yaml", PARAMS.replace("epochs: 2", "epochs: 3"))
    before = _state(base)
    res = base.run("exp", "apply", "high")
    assert res.code == 2
    assert "params.yaml has uncommitted changes" in res.err and "--force" in res.err
    assert _state(base) == before
    base.git("add", "params.yaml")  # staged is still uncommitted
    assert base.run("exp", "apply", "high").code == 2
    assert _state(base) == before
    body = _apply(base, "high", "--force")
    # the experiment ran at epochs 2: apply writes that back too, and restores train
    assert {(c["key"], c["old"], c["new"]) for c in body["params"]} == {
        ("train.epochs", 3, 2), ("train.lr", 0.05, 0.5)}
    assert body["ran"] == [] and body["restored"] == ["train", "evaluate"]
    assert "epochs: 2" in base.read("params.yaml") and base.read(MODEL).startswith("lr=0.5")


def test_apply_outside_git_has_nothing_to_compare(base: Project) -> None:
    shutil.rmtree(base.root / ".git")
    base.write("params.yaml", PARAMS + "# edited\n")
    assert _apply(base, "high")["restored"] == ["train", "evaluate"]


def test_apply_waits_for_or_refuses_the_held_repository_lock(base: Project) -> None:
    before = _state(base)
    with RepoLock(base.root / ".pipeflow" / "lock"):
        res = base.cli("exp", "apply", "high")
    assert res.code == 1  # LockedError, as for every writer (pipeflow.errors)
    assert "the repository is locked" in res.err and "--wait" in res.err
    assert _state(base) == before


def test_apply_lists_a_stage_that_had_to_run(base: Project) -> None:
    spec = base.read("pipeline.yaml").replace("echo evaluate >>", "echo evaluate  >>")
    base.write("pipeline.yaml", spec)  # evaluate's command changed since the experiment
    assert base.run("repro").code == 0
    commit(base, "evaluate changed")
    runs(base)
    res = base.run("exp", "apply", "high")
    assert res.code == 0, res.text
    assert "1 stage(s) had to run" in res.err and "evaluate" in res.err
    assert runs(base) == ["evaluate"]
    _clean(base)


def test_a_failing_stage_undoes_the_apply(base: Project) -> None:
    # evaluate now refuses a model trained at lr 0.5: under apply it must run, and fails
    spec = base.read("pipeline.yaml").replace(
        "echo evaluate >> runs.log && ", "echo evaluate >> runs.log && grep -q lr=0.05 "
        f"{MODEL} && ")
    base.write("pipeline.yaml", spec)
    assert base.run("repro").code == 0
    commit(base, "evaluate checks lr")
    runs(base)
    before = _state(base)
    res = base.run("exp", "apply", "high")
    assert res.code == 1
    assert "stage 'evaluate' failed" in res.err and "was undone" in res.err
    assert res.err.count("stage 'evaluate' failed") == 1, res.err  # said once
    assert runs(base) == ["evaluate"]
    assert _state(base) == before  # params, lock and the model as they were
    _clean(base)


def test_remove_takes_experiments_out_and_refuses_unknown_names_first(base: Project) -> None:
    assert base.run("exp", "run", "--set", "train.lr=0.7", "--name", "other").code == 0
    res = base.run("exp", "remove", "high", "nope")
    assert res.code == 2 and "no experiment 'nope'" in res.err
    assert _names(base) == {"high", "other"}  # nothing removed
    res = base.run("exp", "remove", "high")
    assert res.code == 0, res.text
    assert "Removed experiment 'high'" in res.out
    assert _names(base) == {"other"}
    assert base.run("exp", "apply", "high").code == 2


def test_remove_all_failed_leaves_the_good_ones(base: Project) -> None:
    for name in ("bad1", "bad2"):
        assert base.run("exp", "run", "--set", "prep.n=x", "--name", name).code == 1
    assert (base.root / ".pipeflow/logs/exp/bad1").is_dir()
    res = base.run("exp", "remove", "--all-failed", "--json")
    assert res.code == 0, res.text
    assert sorted(e["name"] for e in json.loads(res.out)["removed"]) == ["bad1", "bad2"]
    assert _names(base) == {"high"}
    assert not (base.root / ".pipeflow/logs/exp/bad1").exists()
    res = base.run("exp", "remove", "--all-failed")
    assert res.code == 0 and "No experiment to remove" in res.out
    assert base.run("exp", "remove").code == 2


def _objects(p: Project) -> set[str]:
    return {f.parent.name + f.name for f in (p.root / ".pipeflow/cache/objects").glob("*/*")}


def test_gc_keeps_live_experiments_outputs_and_collects_removed_ones(base: Project) -> None:
    (model,) = [o.hash for o in _exp(base, "high").outputs if o.path == MODEL]
    assert model in _objects(base)
    res = base.run("gc", "--workspace", "--keep-days", "0", "--grace", "0", "--json")
    assert res.code == 0, res.text
    assert json.loads(res.out)["kept_by"]["experiment"] >= 1
    assert model in _objects(base)  # a month later, exp apply still restores it
    assert base.run("exp", "remove", "high").code == 0
    res = base.run("gc", "--workspace", "--keep-days", "0", "--grace", "0")
    assert res.code == 0, res.text
    assert model not in _objects(base)
    assert base.read(MODEL).startswith("lr=0.05")  # the workspace's model stays


def test_python_api_apply_and_remove(base: Project) -> None:
    repo = pipeflow.Repo(base.root)
    applied = repo.exp_apply("high")
    assert applied.restored == ("train", "evaluate") and applied.ran == ()
    assert [(c.key, c.old, c.new) for c in applied.params] == [("train.lr", 0.05, 0.5)]
    with pytest.raises(pipeflow.UsageError, match="no experiment 'nope'"):
        repo.exp_remove(["nope"])
    removed = repo.exp_remove("high")
    assert [e.name for e in removed.experiments] == ["high"]
    assert _names(base) == set()


def test_apply_of_a_path_outside_the_project_is_refused(base: Project) -> None:
    """A record from another clone could name any file: apply writes only plain
    project paths (pipeflow.files.safepath)."""
    import dataclasses

    from pipeflow.experiments import apply as applymod

    high = _exp(base, "high")
    bad = dataclasses.replace(high, overrides={"../outside.yaml": {"a": 1}})
    (base.root.parent / "outside.yaml").write_text("a: 0\n")
    with (Proj(base.root) as repo,
          pytest.raises(pipeflow.PipeflowError, match="nothing was written")):
        applymod.param_changes(repo, bad)
    assert (base.root.parent / "outside.yaml").read_text() == "a: 0\n"


def test_a_cancelled_apply_is_undone(base: Project) -> None:
    before = _state(base)
    token = pipeflow.CancelToken()
    token.cancel()
    with pytest.raises(pipeflow.PipeflowError, match="was undone"):
        pipeflow.Repo(base.root).exp_apply("high", cancel=token)
    assert _state(base) == before
    _clean(base)


def test_an_interrupted_apply_is_undone(base: Project) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import GIT_ENV

    # evaluate must run under apply, and stalls there until it is stopped
    spec = base.read("pipeline.yaml").replace(
        "echo evaluate >> runs.log && ", "echo evaluate >> runs.log && "
        f"if grep -q lr=0.5 {MODEL}; then touch started.flag; sleep 60; fi && ")
    base.write("pipeline.yaml", spec)
    base.write(".gitignore", "runs.log\nstarted.flag\n")
    assert base.run("repro").code == 0
    commit(base, "evaluate stalls at lr 0.5")
    before = _state(base)
    proc = subprocess.Popen([sys.executable, "-m", "pipeflow", "exp", "apply", "high"],
                            cwd=base.root, env={**os.environ, **GIT_ENV},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (base.root / "started.flag").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    # apply's own words: it was undone, not repro's "the stages that finished are kept"
    assert "`exp apply high` was undone" in err and "nothing changed" in err, err
    assert "kept in pipeline.lock" not in err and "goes on from there" not in err, err
    assert _state(base) == before  # params, lock and model put back
    _clean(base)


def test_apply_writes_every_param_the_experiment_ran_with(base: Project) -> None:
    """A param the experiment did not --set but its stages read (epochs) moved on since:
    apply writes the experiment's value back, so train is restored, not retrained."""
    base.write("params.yaml", PARAMS.replace("epochs: 2", "epochs: 4"))
    assert base.run("repro").code == 0
    commit(base, "epochs 4")
    runs(base)
    res = base.run("exp", "apply", "high")
    assert res.code == 0, res.text
    assert "params.yaml: train.epochs 4 -> 2" in res.out and "train.lr 0.05 -> 0.5" in res.out
    assert "had to run" not in res.err and "changed since" not in res.err
    assert runs(base) == []  # nothing trained
    assert "epochs: 2" in base.read("params.yaml") and "# learning rate" in base.read(
        "params.yaml")
    high = _exp(base, "high")
    (train,) = [s for s in high.stages if s.stage == "train"]
    assert base.lock()["stages"]["train"]["run"] == train.run
    _clean(base)


def test_recorded_values_that_differ_are_written_and_gone_keys_skipped(base: Project) -> None:
    """A value a stage read (not --set) that differs is written; keys and files gone
    since are skipped, not an error."""
    import dataclasses

    from pipeflow.experiments import apply as applymod

    base.write("other.yaml", "a: 1\nb: 2\n")
    base.write("pipeline.yaml", base.read("pipeline.yaml").replace(
        "- eval.k", "- eval.k\n    - other.yaml:\n      - a"))
    assert base.run("repro").code == 0
    commit(base, "other")
    high = _exp(base, "high")
    exp = dataclasses.replace(high, params={**high.params, "other.yaml": {
        "a": 5, "gone": 1}, "missing.yaml": {"x": 1}})
    with Proj(base.root) as repo:
        changes, skipped = applymod.param_changes(repo, exp)
    assert ("other.yaml", "a", 1, 5) in {(c.file, c.key, c.old, c.new) for c in changes}
    assert ("other.yaml", "b") not in {(c.file, c.key) for c in changes}  # not recorded
    assert sorted(skipped) == [("missing.yaml", "x"), ("other.yaml", "gone")]


def test_a_section_a_stage_read_whole_is_written_key_by_key(base: Project) -> None:
    """A stage declaring ``params: [train]`` records the section: apply writes only
    its leaves that differ (a params file's section cannot be written at once)."""
    import dataclasses

    from pipeflow.experiments import apply as applymod

    high = _exp(base, "high")
    exp = dataclasses.replace(high, overrides={}, params={"params.yaml": {
        "train": {"lr": 0.5, "epochs": 2, "gone": 1}, "prep.n": 3}})
    with Proj(base.root) as repo:
        changes, skipped = applymod.param_changes(repo, exp)
    assert [(c.key, c.old, c.new) for c in changes] == [("train.lr", 0.05, 0.5)]
    assert skipped == [("params.yaml", "train.gone")]


def test_a_stage_outside_the_run_cache_says_why_it_ran(base: Project) -> None:
    import yaml

    spec = yaml.safe_load(base.read("pipeline.yaml"))
    spec["stages"]["evaluate"]["always_changed"] = True
    base.write("pipeline.yaml", yaml.safe_dump(spec))
    assert base.run("repro").code == 0
    commit(base, "evaluate always runs")
    res = base.run("exp", "apply", "high")
    assert res.code == 0, res.text
    assert ("'evaluate' ran: its outputs are not kept in the run cache: it is "
            "always_changed, so it runs on apply") in res.err
    assert "changed since" not in res.err and "had to run" not in res.err
    body = _apply(base, "high")
    assert body["not_run_cached"] == [{"stage": "evaluate", "why": "it is always_changed"}]


def test_apply_refuses_uncommitted_changes_to_a_file_it_only_reads(base: Project) -> None:
    """The experiment set nothing in other.yaml, but a stage read a value there that
    differs now: apply would write it, so an uncommitted edit of it is refused."""
    from tests.functional.helpers_exp import record_experiment

    base.write("other.yaml", "a: 1\n")
    base.write("pipeline.yaml", base.read("pipeline.yaml").replace(
        "- eval.k", "- eval.k\n    - other.yaml:\n      - a"))
    assert base.run("repro").code == 0
    commit(base, "other")
    base.write("other.yaml", "a: 2  # mine, not committed\n")
    record_experiment(base, "reads-other", overrides={"train.lr": 0.5},
                      extra_params={"other.yaml": {"a": 5}})
    before = _state(base)
    res = base.run("exp", "apply", "reads-other")
    assert res.code == 2, res.text
    assert "other.yaml has uncommitted changes" in res.err
    assert _state(base) == before and base.read("other.yaml").startswith("a: 2")


def test_apply_says_which_keys_it_read_are_gone(base: Project) -> None:
    from tests.functional.helpers_exp import record_experiment

    record_experiment(base, "old-file", overrides={"train.lr": 0.5},
                      extra_params={"gone.yaml": {"a": 5}})
    res = base.run("exp", "apply", "old-file")
    assert res.code == 0, res.text
    assert "gone.yaml: a not set: the file has no such key now" in res.err
    assert not (base.root / "gone.yaml").exists()
    body = _apply(base, "old-file")
    assert body["skipped_params"] == [{"file": "gone.yaml", "key": "a"}]


def test_apply_writes_no_file_but_the_pipelines_params(base: Project) -> None:
    """A record from another clone may name any file: apply writes only the params
    files the pipeline reads (here it would have rewritten a stage's command)."""
    from tests.functional.helpers_exp import record_experiment

    spec = base.read("pipeline.yaml")
    record_experiment(base, "read", overrides={"train.lr": 0.5},
                      extra_params={"pipeline.yaml": {"stages.train.cmd": "touch PWNED"}})
    res = base.run("exp", "apply", "read")
    assert res.code == 0, res.text  # a file its stages read is skipped, and said
    assert "pipeline.yaml" in res.err
    assert base.read("pipeline.yaml") == spec and not (base.root / "PWNED").exists()
    exp_id = record_experiment(base, "evil")
    with Proj(base.root) as core:  # a crafted record: the override names pipeline.yaml
        [exp] = [e for e in experiments(core) if e.id == exp_id]
        body = Experiment(**{**exp.__dict__, "name": "evil2",
                             "overrides": {"pipeline.yaml": {"stages.train.cmd": "x"}}})
        record = core.records.append(RecordBody(kind=RecordKind.EXPERIMENT, ended=exp.created,
                                                experiment=body.summary()))
        core.index.add(record)
    res = base.run("exp", "apply", "evil2")
    assert res.code == 2 and "not a params file of this pipeline" in res.text
    assert base.read("pipeline.yaml") == spec and not (base.root / "PWNED").exists()
