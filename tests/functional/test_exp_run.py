"""``pipeflow exp run``: experiments run in scratch workspaces, touch none of the project's
files, are recorded, reuse the cache and the run cache, and fail one at a time
(issue 13, items 1-3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeflow.lineage.experiments import Experiment, experiments
from pipeflow.project.project import Project as Core
from pipeflow.records.records import RecordKind
from tests.conftest import Project
from tests.functional.helpers import chain, commit

WATCHED = ("params.yaml", "pipeline.lock", "pipeline.yaml", "models/model.txt",
           "metrics.json", "data/prepared.txt")


def _log(p: Project) -> Path:
    return p.root.parent / "runs.log"


def _outside(p: Project) -> None:
    """Commands log to a file beside the project: an experiment runs elsewhere."""
    p.write("pipeline.yaml", p.read("pipeline.yaml").replace(">> runs.log",
                                                             f">> {_log(p)}"))


def runs(p: Project) -> list[str]:
    """Stages that ran since the last call, wherever they ran."""
    path = _log(p)
    if not path.exists():
        return []
    names = path.read_text().split()
    path.unlink()
    return names


def _ready(p: Project) -> dict[str, bytes]:
    """The chain pipeline, run and committed; the bytes of the files to watch."""
    chain(p)
    _outside(p)
    assert p.run("repro").code == 0
    commit(p, "v1")
    runs(p)
    return {rel: (p.root / rel).read_bytes() for rel in WATCHED}


def _exps(p: Project) -> list[Experiment]:
    with Core(p.root) as core:
        return experiments(core)


def _untouched(p: Project, before: dict[str, bytes]) -> None:
    assert {rel: (p.root / rel).read_bytes() for rel in WATCHED} == before
    assert p.git("status", "--porcelain") == ""
    assert not any((p.root / ".pipeflow/tmp/exp").glob("*")), "a scratch folder was left"


def test_an_experiment_touches_nothing_and_is_recorded(project: Project) -> None:
    before = _ready(project)
    res = project.run("exp", "run", "--set", "eval.k=5", "--name", "k5")
    assert res.code == 0, res.text
    assert runs(project) == ["evaluate"], "unchanged stages come from the cache, not a rerun"
    _untouched(project, before)
    [exp] = _exps(project)
    assert (exp.name, exp.status.value) == ("k5", "done")
    assert exp.overrides == {"params.yaml": {"eval.k": 5}}
    assert exp.metrics["metrics.json"]["k"] == 5
    assert exp.params["params.yaml"]["train.lr"] == 0.05  # what the stages read, all of it
    assert exp.commit == project.git("rev-parse", "HEAD").strip()
    how = {s.stage: s.how for s in exp.stages}
    assert how == {"prepare": "restored", "train": "restored", "evaluate": "ran"}
    assert project.run("status").code == 0
    assert "up to date" in project.run("status").text.lower()


def test_stage_records_carry_the_experiment(project: Project) -> None:
    _ready(project)
    assert project.run("exp", "run", "--set", "train.lr=0.5", "--name", "hi").code == 0
    with Core(project.root) as core:
        [exp] = experiments(core)
        ran = [core.index.record(s.run) for s in exp.stages if s.how == "ran" and s.run]
    assert sorted(r.stage for r in ran) == ["evaluate", "train"]
    for record in ran:
        assert record.kind is RecordKind.RUN
        assert record.body.experiment == {"id": exp.id, "name": "hi",
                                          "set": {"params.yaml": {"train.lr": 0.5}}}


def test_a_sweep_rerun_is_all_cache_hits(project: Project) -> None:
    before = _ready(project)
    res = project.run("exp", "run", "--set", "train.lr=0.1,0.2", "--set", "eval.k=1,2",
                      "-j", "2", "--json")
    assert res.code == 0, res.text
    body = json.loads(res.out)
    assert len(body["experiments"]) == 4 and body["ok"]
    assert sorted(runs(project)) == ["evaluate"] * 4 + ["train"] * 2
    again = project.run("exp", "run", "--set", "train.lr=0.1,0.2", "--set", "eval.k=1,2",
                        "-j", "2", "--json")
    assert again.code == 0, again.text
    assert runs(project) == [], "every stage of a sweep that ran before is restored"
    assert len(_exps(project)) == 8
    names = [e.name for e in _exps(project)]
    assert len(set(names)) == 8, "generated names are unique"
    _untouched(project, before)


def _flaky(p: Project) -> None:
    p.params({"train": {"lr": 1}})
    p.spec({"train": {
        "cmd": f"echo train >> {_log(p)}; "
               "if [ ${train.lr} = 9 ]; then echo boom-${train.lr}; exit 3; fi; "
               "echo lr=${train.lr} > model.txt",
        "params": ["train.lr"], "outs": ["model.txt"]}})
    assert p.run("repro").code == 0
    commit(p, "v1")
    runs(p)


def test_a_failed_experiment_does_not_stop_the_others(project: Project) -> None:
    _flaky(project)
    res = project.run("exp", "run", "--set", "train.lr=2,9,3", "-j", "2", "--json")
    assert res.code == 1, res.text
    body = json.loads(res.out)
    by_status = {e["status"] for e in body["experiments"]}
    assert by_status == {"done", "failed"}
    [failed] = [e for e in body["experiments"] if e["status"] == "failed"]
    assert failed["failed_stage"] == "train" and "boom-9" in failed["log_tail"]
    assert sorted(runs(project)) == ["train"] * 3
    logs = project.root / ".pipeflow/logs/exp" / failed["name"] / "train.log"
    assert "boom-9" in logs.read_text(), "a failed experiment's logs outlive its scratch"
    assert project.git("status", "--porcelain") == ""


def test_a_taken_name_is_refused_unless_replaced(project: Project) -> None:
    _ready(project)
    assert project.run("exp", "run", "--set", "eval.k=5", "--name", "a").code == 0
    res = project.run("exp", "run", "--set", "eval.k=6", "--name", "a")
    assert res.code == 2 and "'a' is taken" in res.text and "--replace" in res.text
    assert runs(project) == ["evaluate"], "a refused run runs nothing"
    res = project.run("exp", "run", "--set", "eval.k=6", "--name", "a", "--replace")
    assert res.code == 0, res.text
    [exp] = _exps(project)
    assert exp.overrides == {"params.yaml": {"eval.k": 6}}


def test_uncommitted_edits_are_part_of_the_experiment(project: Project) -> None:
    _ready(project)
    spec = project.read("pipeline.yaml").replace("echo evaluate >>",
                                                 "echo evaluate-edited >>")
    project.write("pipeline.yaml", spec)
    edited = {rel: (project.root / rel).read_bytes() for rel in WATCHED}
    assert project.run("exp", "run", "--name", "edited").code == 0
    assert runs(project) == ["evaluate-edited"]
    assert {rel: (project.root / rel).read_bytes() for rel in WATCHED} == edited
    [exp] = _exps(project)
    assert exp.overrides == {} and exp.ok


def test_outside_a_project_exp_run_is_a_usage_error(tmp_path: Path) -> None:
    import os

    from pipeflow.cli.app import run

    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        assert run(["exp", "run", "--set", "a=1"]) == 2
    finally:
        os.chdir(old)


def test_the_python_api_runs_experiments(project: Project) -> None:
    import pipeflow

    before = _ready(project)
    repo = pipeflow.Repo(project.root)
    result = repo.exp_run(set={"eval.k": 7}, name="api")
    assert result.ok and [e.name for e in result.experiments] == ["api"]
    assert result.experiments[0].metrics["metrics.json"]["k"] == 7
    grid = repo.exp_run(grid={"eval.k": [8, 9]}, jobs=2)
    assert sorted(e.metrics["metrics.json"]["k"] for e in grid.experiments) == [8, 9]
    assert sorted(runs(project)) == ["evaluate"] * 3
    _untouched(project, before)


def test_ignored_helpers_a_command_uses_are_there_and_stay_untouched(project: Project) -> None:
    """A project .venv (or any file git ignores and no stage declares) is linked
    into the scratch workspace, as a command expects to find it."""
    project.write(".gitignore", "tools/\n")
    project.write("tools/tool.sh", "echo tool-$1 > out.txt\n")
    project.params({"x": {"y": 1}})
    project.spec({"a": {"cmd": "sh tools/tool.sh ${x.y}", "params": ["x.y"],
                        "outs": ["out.txt"]}})
    assert project.run("repro").code == 0
    commit(project)
    res = project.run("exp", "run", "--set", "x.y=2", "--name", "two")
    assert res.code == 0, res.text
    assert project.read("out.txt") == "tool-1\n"
    assert project.read("tools/tool.sh") == "echo tool-$1 > out.txt\n"
    assert sorted(p.name for p in (project.root / "tools").iterdir()) == ["tool.sh"]
    assert project.git("status", "--porcelain") == ""


def test_a_failed_experiment_keeps_no_metrics_of_the_workspace(project: Project) -> None:
    _ready(project)
    spec = project.read("pipeline.yaml").replace(
        "echo evaluate >>", "test ${eval.k} != 9 && echo evaluate >>")
    project.write("pipeline.yaml", spec)
    assert project.run("repro").code == 0
    commit(project)
    res = project.run("exp", "run", "--set", "eval.k=9", "--name", "nine")
    assert res.code == 1, res.text
    [exp] = _exps(project)
    assert exp.failed_stage == "evaluate"
    assert exp.metrics == {}, "the workspace's metrics are not the experiment's"
    assert exp.params["params.yaml"]["eval.k"] == 9
    assert {s.stage: s.how for s in exp.stages}["evaluate"] == "failed"


def test_stages_left_out_by_targets_lend_the_experiment_nothing(project: Project) -> None:
    """``exp run train`` does not run evaluate: the experiment has no metrics, not the
    workspace's."""
    _ready(project)
    res = project.run("exp", "run", "train", "--set", "train.lr=0.7", "--name", "t")
    assert res.code == 0, res.text
    assert runs(project) == ["train"]
    [exp] = _exps(project)
    assert exp.metrics == {}
    assert {s.stage for s in exp.stages} == {"prepare", "train"}


def test_bad_targets_and_files_are_refused_before_anything_runs(project: Project) -> None:
    before = _ready(project)
    for args in (("nosuch", "--set", "eval.k=2"),
                 ("--set", "pipeline.yaml:stages.train.cmd=true"),
                 ("--set", "metrics.json:k=9")):
        res = project.run("exp", "run", *args)
        assert res.code == 2, (args, res.text)
    assert "not a params file of this pipeline" in res.text
    assert runs(project) == [] and _exps(project) == []
    _untouched(project, before)


def test_a_failed_replacement_keeps_the_experiment_it_was_to_replace(project: Project) -> None:
    _flaky(project)
    assert project.run("exp", "run", "--set", "train.lr=2", "--name", "a").code == 0
    res = project.run("exp", "run", "--set", "train.lr=9", "--name", "a", "--replace")
    assert res.code == 1
    assert "is kept" in res.text
    assert sorted(e.status.value for e in _exps(project)) == ["done", "failed"]


def test_overrides_no_stage_reads_are_named(project: Project) -> None:
    _ready(project)
    project.params({"prep": {"n": 3}, "train": {"lr": 0.05, "epochs": 2}, "eval": {"k": 1},
                    "unused": {"x": 1}})
    commit(project)
    res = project.run("exp", "run", "--set", "unused.x=2", "--name", "u")
    assert res.code == 0, res.text
    assert "changed no stage's inputs" in res.text
    res = project.run("exp", "run", "--set", "eval.k=3", "--name", "k3")
    assert "changed no stage" not in res.text


def _tiny(p: Project, cmd: str, **out: object) -> None:
    p.params({"x": {"y": 1}})
    p.spec({"a": {"cmd": cmd, "params": ["x.y"], "outs": [out or "out.txt"]}})
    assert p.run("repro").code == 0, p.run("status").text
    commit(p)


def test_a_stages_git_sees_the_scratch_not_the_workspace(project: Project) -> None:
    """A script finding its root through git writes into the scratch workspace; git
    lists the project's files there as in the workspace."""
    project.write("notes.txt", "tracked\n")
    _tiny(project, 'git ls-files > "$(git rev-parse --show-toplevel)/out.txt"; '
                   'echo ${x.y} >> out.txt')
    before = project.read("out.txt")
    res = project.run("exp", "run", "--set", "x.y=2", "--name", "g")
    assert res.code == 0, res.text
    assert project.read("out.txt") == before
    assert project.git("status", "--porcelain") == ""
    assert "scratch" not in project.git("worktree", "list"), "the worktree is pruned"


def test_writes_into_ignored_folders_land_in_the_scratch_copy(project: Project) -> None:
    project.write(".gitignore", "state/\n")
    project.write("state/counter", "0\n")
    _tiny(project, "echo run >> state/counter; echo ${x.y} > out.txt")
    counter = project.read("state/counter")
    assert project.run("exp", "run", "--set", "x.y=2", "--name", "s").code == 0
    assert project.read("state/counter") == counter


def test_a_persist_output_starts_as_repro_finds_it(project: Project) -> None:
    _tiny(project, "echo ${x.y} >> log.txt", **{"log.txt": {"persist": True}})
    assert project.run("exp", "run", "--set", "x.y=2", "--name", "p").code == 0
    with Core(project.root) as core:
        [exp] = experiments(core)
        [out] = [o for o in exp.outputs if o.path == "log.txt"]
        assert core.store.path_of(out.hash).read_text() == "1\n2\n"
    assert project.read("log.txt") == "1\n"


def test_an_ignored_folder_holding_an_output_lends_its_other_files(project: Project) -> None:
    project.write(".gitignore", "data/\n")
    project.write("data/manual.txt", "by hand\n")
    project.params({"x": {"y": 1}})
    project.spec({"a": {"cmd": "cat data/manual.txt > data/out.txt; echo ${x.y} >> data/out.txt",
                        "params": ["x.y"], "outs": ["data/out.txt"]}})
    assert project.run("repro").code == 0
    commit(project)
    res = project.run("exp", "run", "--set", "x.y=2", "--name", "m")
    assert res.code == 0, res.text
    assert project.read("data/out.txt") == "by hand\n1\n"


def test_past_the_copy_budget_ignored_files_are_linked_and_named(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeflow.experiments import scratchfill

    monkeypatch.setattr(scratchfill, "COPY_BUDGET", 4)
    project.write(".gitignore", "big/\n")
    project.write("big/blob.bin", "more than four bytes\n")
    _tiny(project, "cat big/blob.bin > out.txt; echo ${x.y} >> out.txt")
    res = project.run("exp", "run", "--set", "x.y=2", "--name", "b")
    assert res.code == 0, res.text
    assert "linked, not copied" in res.text and "big" in res.text


def test_api_values_keep_their_types(project: Project) -> None:
    import pipeflow

    _ready(project)
    repo = pipeflow.Repo(project.root)
    result = repo.exp_run(set={"eval.k": float("inf")}, name="inf")
    assert result.experiments[0].overrides == {"params.yaml": {"eval.k": float("inf")}}
    result = repo.exp_run(set={"eval.k": "1,2"}, name="text")
    assert result.experiments[0].overrides == {"params.yaml": {"eval.k": "1,2"}}
    with pytest.raises(pipeflow.UsageError, match="non-empty list"):
        repo.exp_run(grid={"eval.k": []})


def test_the_users_own_worktrees_are_left_alone(project: Project, tmp_path: Path) -> None:
    """An experiment removes its own worktree entry only: a worktree of the user's
    whose folder is away (an unmounted disk) keeps its entry."""
    _ready(project)
    away = tmp_path / "feature"
    project.git("worktree", "add", "-q", "-b", "feature", str(away))
    away.rename(tmp_path / "feature.away")
    assert project.run("exp", "run", "--set", "eval.k=4", "--name", "w").code == 0
    (tmp_path / "feature.away").rename(away)
    assert "feature" in project.git("worktree", "list")
    assert project.git("-C", str(away), "status", "--porcelain") == ""
    assert ".pipeflow" not in project.git("worktree", "list")


def test_the_workspace_row_has_values_no_stage_declares(project: Project) -> None:
    """A key read only through ``${...}`` shows its value now in the workspace row,
    and a hint the redaction used to mangle reads whole."""
    assert project.run("init").code == 0
    assert "--set PARAM=VALUE` runs one" in project.run("exp", "show").text
    project.params({"x": {"y": 1}, "only": {"cmd": 3}})
    project.spec({"a": {"cmd": "echo ${x.y} ${only.cmd} > out.txt", "params": ["x.y"],
                        "outs": ["out.txt"]}})
    assert project.run("repro").code == 0
    commit(project)
    assert project.run("exp", "run", "--set", "only.cmd=4", "--name", "o").code == 0
    res = project.run("exp", "show", "--json")
    rows = {r["name"]: r for r in json.loads(res.out)["rows"]}
    assert rows["workspace"]["params"]["only.cmd"] == 3
    assert rows["o"]["params"]["only.cmd"] == 4
