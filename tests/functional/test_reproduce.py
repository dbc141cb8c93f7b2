"""``pipeflow reproduce PATH@VERSION``: a recorded version rebuilt from its sources in a
scratch worktree at the recorded commit, each stage judged against its recorded run,
the project left as it was (issue 15, items 1, 3 and 6, and its "Bad input")."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import GIT_ENV, Project
from tests.functional.helpers import commit, snapshot

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _untouched(p: Project) -> dict[str, bytes | str]:
    """What of the project a reproduction must not change: every file but the cache,
    state and records (which gain the reproduction's record and objects)."""
    seen = snapshot(p.root)
    return {k: v for k, v in seen.items() if not k.startswith((".pipeflow/", ".git/"))}


def _json(p: Project, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    res = p.run("reproduce", *args, "--json")
    assert res.out, res.text
    return res.code, json.loads(res.out)


def _stage(body: dict, name: str) -> dict:  # type: ignore[type-arg]
    return next(s for s in body["stages"] if s["stage"] == name)


def test_wine_reproduces_bit_identical_at_v1_after_v2_and_v3(project: Project) -> None:
    pytest.importorskip("sklearn")
    shutil.copytree(EXAMPLES / "wine", project.root, dirs_exist_ok=True)
    assert project.run("repro").code == 0
    commit(project, "v1")
    for old, new in (("C: 0.01", "C: 0.1 "), ("C: 0.1 ", "C: 1.0 ")):
        assert old in project.read("params.yaml")
        project.write("params.yaml", project.read("params.yaml").replace(old, new))
        assert project.run("repro").code == 0
        commit(project, "next")
    labels = project.run("versions", "models/model.pkl").out
    assert "v3" in labels, labels
    before = _untouched(project)
    head = project.git("rev-parse", "HEAD")

    res = project.run("reproduce", "wine-classifier@v1")

    assert res.code == 0, res.text
    for stage in ("prepare", "featurize", "train"):
        assert f"{stage}: reproduced (bit-identical)" in res.out
    assert "evaluate" not in res.out  # not in the model's lineage
    assert "models/model.pkl@v1: reproduced (bit-identical)" in res.out
    assert _untouched(project) == before
    assert project.git("rev-parse", "HEAD") == head
    assert project.git("status", "--porcelain") == ""
    assert project.git("worktree", "list").count("\n") == 1
    assert not list((project.root / ".pipeflow/tmp/reproduce").glob("*"))


def _clock(p: Project, *, deterministic: bool = True) -> None:
    """``measure`` writes a metrics file whose ``score`` is stable to 1e-9 but whose
    ``when`` is the time; ``report`` reads it."""
    p.write("data.txt", "1\n2\n3\n")
    p.write("measure.py",
            "import json, time\n"
            "n = sum(int(x) for x in open('data.txt'))\n"
            "noise = (time.time_ns() % 1000) * 1e-12\n"
            "json.dump({'score': 0.9 + noise, 'n': n, 'when': time.time_ns()},\n"
            "          open('scores.json', 'w'))\n")
    stage: dict = {"cmd": "python measure.py", "deps": ["data.txt", "measure.py"],  # type: ignore[type-arg]
                   "metrics": ["scores.json"]}
    if not deterministic:
        stage.update({"deterministic": False, "tolerance": 1e-6})
    p.spec({"measure": stage})


def test_a_stage_that_writes_the_time_differs_with_the_values(project: Project) -> None:
    _clock(project)
    assert project.run("repro").code == 0
    commit(project, "v1")

    code, body = _json(project, "scores.json@v1")

    assert code == 1
    assert body["verdict"] == "differs" and body["ok"] is False
    measure = _stage(body, "measure")
    assert measure["verdict"] == "differs"
    (out,) = measure["outputs"]
    assert out["path"] == "scores.json" and not out["same"]
    keys = {v["key"] for v in out["values"]}
    assert "when" in keys and "n" not in keys
    text = project.run("reproduce", "scores.json@v1")
    assert text.code == 1
    assert "measure: differs" in text.out
    assert "when " in text.out and " -> " in text.out


def test_declared_nondeterministic_stage_is_within_tolerance(project: Project) -> None:
    _clock(project, deterministic=False)
    project.write("measure.py", project.read("measure.py").replace(", 'when': time.time_ns()",
                                                                   ""))
    assert project.run("repro").code == 0
    commit(project, "v1")

    code, body = _json(project, "scores.json@v1")

    assert code == 0, body
    assert _stage(body, "measure")["verdict"] == "within-tolerance"
    assert project.run("reproduce", "scores.json").out.count(
        "reproduced (within tolerance)") >= 1


def _two_versions_of_source(p: Project) -> None:
    """``data.csv`` added (v1, then v2); ``count`` reads it. v1's output is the target."""
    assert p.run("init").code == 0
    p.write("data.csv", "a\nb\n")
    assert p.run("add", "data.csv").code == 0
    p.spec({"count": {"cmd": "wc -l < data.csv > count.txt", "deps": ["data.csv"],
                      "outs": ["count.txt"]}})
    assert p.run("repro").code == 0
    commit(p, "v1")
    p.write("data.csv", "a\nb\nc\n")
    assert p.run("add", "data.csv").code == 0
    assert p.run("repro").code == 0
    commit(p, "v2")


def test_source_collected_locally_comes_from_the_remote_with_pull(
        project: Project, tmp_path: Path) -> None:
    _two_versions_of_source(project)
    assert project.run("remote", "add", "store", str(tmp_path / "remote"), "--default").code == 0
    assert project.run("push").code == 0  # every object in the cache, v1's data too
    old = project.git("show", "HEAD~1:pipeline.lock")
    old = next(line.split(":", 1)[1].strip() for line in old.splitlines()
               if line.strip().startswith("hash:"))
    assert any(old[2:] in p.name for p in (tmp_path / "remote").rglob("*"))
    assert project.run("gc", "--workspace", "--keep-days", "0", "--grace", "0").code == 0
    assert not any(old in str(p) for p in (project.root / ".pipeflow/cache").rglob("*"))

    runs = sorted(p.name for p in (project.root / ".pipeflow").rglob("*.json"))
    code, body = _json(project, "count.txt@v1")
    assert code == 1
    count = _stage(body, "count")
    assert count["verdict"] == "cannot-reproduce"
    assert "data.csv" in count["reason"] and "--pull" in count["reason"]
    # what this clone lacks says nothing of the version: not recorded
    assert body["record"] is None and "not recorded" in body["unrecorded"]
    assert sorted(p.name for p in (project.root / ".pipeflow").rglob("*.json")) == runs

    code, body = _json(project, "count.txt@v1", "--pull")
    assert code == 0, body
    assert _stage(body, "count")["verdict"] == "bit-identical"


def test_a_run_recorded_with_uncommitted_code_cannot_be_reproduced(project: Project) -> None:
    project.write("data.txt", "x\n")
    project.write("make.py", "print('v1')\n")
    project.spec({"make": {"cmd": "python make.py > out.txt", "deps": ["data.txt"],
                           "outs": ["out.txt"]}})
    commit(project, "code")
    project.write("make.py", "print('edited, run, never committed')\n")
    assert project.run("repro").code == 0  # the record names make.py as modified
    project.git("checkout", "--", "make.py")
    commit(project, "v1: the outputs, without the edit that made them")

    res = project.run("reproduce", "out.txt@v1")

    assert res.code == 1, res.text
    assert "make: cannot reproduce" in res.out
    assert "uncommitted changes to make.py" in res.out


def test_code_edited_run_then_committed_with_its_outputs_reproduces(project: Project) -> None:
    project.write("data.txt", "x\n")
    project.write("make.py", "print('v0')\n")
    project.spec({"make": {"cmd": "python make.py > out.txt", "deps": ["data.txt"],
                           "outs": ["out.txt"]}})
    commit(project, "code")
    project.write("make.py", "print('edited, run, then committed with its output')\n")
    assert project.run("repro").code == 0
    commit(project, "v1")

    res = project.run("reproduce", "out.txt@v1")

    assert res.code == 0, res.text
    assert "make: reproduced (bit-identical)" in res.out


def test_unknown_version_lists_the_versions(project: Project) -> None:
    project.write("data.txt", "x\n")
    project.spec({"copy": {"cmd": "cp data.txt out.txt", "deps": ["data.txt"],
                           "outs": ["out.txt"]}})
    assert project.run("repro").code == 0
    commit(project, "v1")

    res = project.run("reproduce", "out.txt@v7")

    assert res.code == 2
    assert "v7" in res.text and "v1" in res.text
    assert "Traceback" not in res.text


def test_source_data_is_not_something_to_reproduce(project: Project) -> None:
    assert project.run("init").code == 0
    project.write("data.csv", "a\n")
    assert project.run("add", "data.csv").code == 0
    commit(project, "v1")

    res = project.run("reproduce", "data.csv@v1")

    assert res.code == 2
    assert "source data" in res.text and "pipeflow add" in res.text


def test_a_scratch_folder_that_cannot_be_made_is_a_clear_error(project: Project) -> None:
    project.write("data.txt", "x\n")
    project.spec({"copy": {"cmd": "cp data.txt out.txt", "deps": ["data.txt"],
                           "outs": ["out.txt"]}})
    assert project.run("repro").code == 0
    commit(project, "v1")
    (project.root / ".pipeflow/tmp").mkdir(exist_ok=True)
    (project.root / ".pipeflow/tmp/reproduce").write_text("in the way\n")

    res = project.run("reproduce", "out.txt@v1")

    assert res.code == 1
    assert "scratch workspace" in res.text and ".pipeflow/tmp/reproduce" in res.text
    assert "Traceback" not in res.text


def test_a_commit_missing_from_the_clone_cannot_be_reproduced(project: Project,
                                                              tmp_path: Path) -> None:
    """A colleague's version: its records fetched through the remote, the commit it was
    made at never pushed. Nothing this clone can do says anything of the version: the
    verdict names the commit and is not recorded."""
    project.write("data.txt", "x\n")
    project.spec({"copy": {"cmd": "cp data.txt out.txt", "deps": ["data.txt"],
                           "outs": ["out.txt"]}})
    commit(project, "base")
    mine = Project(tmp_path / "mine")
    subprocess.run(["git", "clone", "-q", str(project.root), str(mine.root)], check=True)
    project.git("checkout", "-qb", "unpushed")
    commit(project, "a commit never pushed")
    theirs = project.git("rev-parse", "HEAD").strip()
    assert project.run("repro").code == 0
    out_hash = project.lock()["stages"]["copy"]["outs"][0]["hash"]
    store = str(tmp_path / "store")
    assert project.run("remote", "add", "store", store, "--default").code == 0
    assert project.run("push").code == 0
    assert mine.run("remote", "add", "store", store, "--default").code == 0
    assert mine.run("fetch").code == 0

    code, body = _json(mine, f"out.txt@{out_hash[:8]}")

    assert code == 1
    assert _stage(body, "copy")["verdict"] == "cannot-reproduce"
    assert theirs[:12] in _stage(body, "copy")["reason"]
    assert body["record"] is None and "not recorded" in body["unrecorded"]


def _slow_version(p: Project, tmp_path: Path, seconds: int) -> Path:
    """``out.txt@v1`` made by a stage that, once ``slow`` exists (from now on), sleeps
    ``seconds`` after touching ``started``. Returns ``started``."""
    slow, started = tmp_path / "slow", tmp_path / "started"
    p.write("data.txt", "x\n")
    p.spec({"slow": {
        "cmd": f"touch {started}; if [ -e {slow} ]; then sleep {seconds}; fi; "
               "cp data.txt out.txt",
        "deps": ["data.txt"], "outs": ["out.txt"]}})
    assert p.run("repro").code == 0
    commit(p, "v1")
    started.unlink()
    slow.write_text("")
    return started


def _start_reproduce(p: Project, started: Path) -> subprocess.Popen[str]:
    """``pipeflow reproduce out.txt@v1`` in a subprocess, returned once its stage runs."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeflow", "reproduce", "out.txt@v1"],
                            cwd=p.root, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **GIT_ENV})
    deadline = time.monotonic() + 60
    while not started.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the stage never started"
        time.sleep(0.05)
    return proc


def test_ctrl_c_removes_the_workspace_and_touches_nothing(project: Project,
                                                          tmp_path: Path) -> None:
    started = _slow_version(project, tmp_path, 60)
    before = _untouched(project)
    records = sorted(p.name for p in (project.root / ".pipeflow").rglob("*.json"))

    proc = _start_reproduce(project, started)
    scratch = project.root / ".pipeflow/tmp/reproduce"
    assert list(scratch.glob("*"))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    assert "nothing was recorded" in err and "pipeline.lock" not in err
    assert not list(scratch.glob("*"))
    assert project.git("worktree", "list").count("\n") == 1
    assert _untouched(project) == before
    after = sorted(p.name for p in (project.root / ".pipeflow").rglob("*.json"))
    assert after == records  # no reproduction record for an interrupted one


def test_python_api_returns_the_verdicts(project: Project) -> None:
    import pipeflow

    project.write("data.txt", "x\n")
    project.spec({"copy": {"cmd": "cp data.txt out.txt", "deps": ["data.txt"],
                           "outs": ["out.txt"]}})
    assert project.run("repro").code == 0
    commit(project, "v1")

    result = pipeflow.Repo(project.root).reproduce("out.txt", "v1")

    assert isinstance(result, pipeflow.Reproduction)
    assert result.ok and result.verdict is pipeflow.Verdict.IDENTICAL
    assert [(s.stage, s.verdict.value) for s in result.stages] == [("copy", "bit-identical")]
    assert result.version == "v1"


def _fake_distribution(site: Path, version: str) -> None:
    for old in site.glob("fakedist-*.dist-info"):
        shutil.rmtree(old)
    info = site / f"fakedist-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakedist\nVersion: {version}\n")


def test_strict_env_refuses_a_different_environment(project: Project, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    _fake_distribution(site, "1.0")
    monkeypatch.setenv("PYTHONPATH", str(site))
    project.write("data.txt", "x\n")
    project.spec({"copy": {"cmd": "cp data.txt out.txt", "deps": ["data.txt"],
                           "outs": ["out.txt"], "env": {"packages": ["fakedist"]}}})
    assert project.cli("repro").code == 0
    commit(project, "v1")
    _fake_distribution(site, "2.0")
    runs = sorted(p.name for p in (project.root / ".pipeflow").rglob("*.json"))

    res = project.cli("reproduce", "out.txt@v1", "--strict-env")

    assert res.code == 1, res.text
    assert "fakedist 2.0 (recorded 1.0)" in res.err
    assert "pipeflow env export" in res.err
    assert sorted(p.name for p in (project.root / ".pipeflow").rglob("*.json")) == runs

    res = project.cli("reproduce", "out.txt@v1", "--json")

    assert res.code == 0, res.text
    body = json.loads(res.out)
    assert body["env"] == [{"name": "fakedist", "recorded": "1.0", "current": "2.0"}]
    copy = _stage(body, "copy")
    assert copy["verdict"] == "bit-identical"
    assert "fakedist 2.0 (recorded 1.0)" in copy["reason"]


def test_the_everyday_edit_repro_commit_reproduces(project: Project) -> None:
    """A stage added and a command changed in pipeline.yaml, run, then committed with
    their outputs: the commit that holds them is the one checked out."""
    project.write("data.txt", "x\n")
    project.spec({"a": {"cmd": "cp data.txt a.txt", "deps": ["data.txt"], "outs": ["a.txt"]}})
    commit(project, "a")
    project.spec({"a": {"cmd": "(cat data.txt; echo more) > a.txt", "deps": ["data.txt"],
                        "outs": ["a.txt"]},
                  "b": {"cmd": "wc -c < a.txt > b.txt", "deps": ["a.txt"], "outs": ["b.txt"]}})
    assert project.run("repro").code == 0
    commit(project, "v1: a changed, b added")

    res = project.run("reproduce", "b.txt@v1")

    assert res.code == 0, res.text
    assert "a: reproduced (bit-identical)" in res.out
    assert "b: reproduced (bit-identical)" in res.out


def test_a_failed_stage_is_named_and_independent_stages_still_run(
        project: Project, tmp_path: Path) -> None:
    outside = tmp_path / "download.txt"  # what a stage fetched from outside: gone since
    outside.write_text("fetched\n")
    project.write("data.txt", "x\n")
    project.spec({
        "fetch": {"cmd": f"cat {outside} data.txt > f.txt", "deps": ["data.txt"],
                  "outs": ["f.txt"]},
        "steady": {"cmd": "cp data.txt s.txt", "deps": ["data.txt"], "outs": ["s.txt"]},
        "after": {"cmd": "cat f.txt s.txt > all.txt", "deps": ["f.txt", "s.txt"],
                  "outs": ["all.txt"]},
    })
    commit(project, "code")
    assert project.run("repro").code == 0
    commit(project, "v1")
    outside.unlink()

    code, body = _json(project, "all.txt@v1")

    assert code == 1
    verdicts = {s["stage"]: s for s in body["stages"]}
    assert verdicts["fetch"]["verdict"] == "failed"
    assert verdicts["fetch"]["exit_status"] not in (None, 0)
    assert verdicts["steady"]["verdict"] == "bit-identical"  # ran despite the failure
    assert verdicts["after"]["verdict"] == "cannot-reproduce"
    assert verdicts["after"]["blocked_by"] == "fetch"
    assert "upstream stage fetch failed" in verdicts["after"]["reason"]
    assert body["verdict"] == "failed"  # the failure, not what it stopped, heads it


def test_a_stage_reading_a_noisy_stage_is_judged_within_tolerance(project: Project) -> None:
    _clock(project, deterministic=False)
    project.write("measure.py", project.read("measure.py").replace(", 'when': time.time_ns()",
                                                                   ""))
    stages = {"measure": {**yaml.safe_load(project.read("pipeline.yaml"))["stages"]["measure"]},
              "report": {"cmd": "python -c \"import json; d = json.load(open('scores.json')); "
                                "json.dump({'score2': d['score'] * 2}, open('report.json', 'w'))\"",
                         "deps": ["scores.json"], "metrics": ["report.json"]}}
    project.spec(stages)
    assert project.run("repro").code == 0
    commit(project, "v1")

    code, body = _json(project, "report.json@v1")

    assert code == 0, body
    assert _stage(body, "report")["verdict"] in ("within-tolerance", "bit-identical")
    assert _stage(body, "measure")["verdict"] == "within-tolerance"


def test_a_script_the_run_read_but_no_commit_holds_cannot_be_reproduced(
        project: Project) -> None:
    project.write("data.txt", "x\n")
    project.spec({"make": {"cmd": "python make.py > out.txt", "deps": ["data.txt", "make.py"],
                           "outs": ["out.txt"]}})
    commit(project, "spec, without the script")
    project.write("make.py", "print('never committed')\n")
    assert project.run("repro").code == 0
    project.git("add", "pipeline.lock")
    project.git("commit", "-qm", "v1: the lock only")

    res = project.run("reproduce", "out.txt@v1")

    assert res.code == 1, res.text
    assert "make: cannot reproduce" in res.out
    assert "make.py" in res.out
    assert "Traceback" not in res.text


def test_the_project_is_not_locked_while_a_reproduction_runs(project: Project,
                                                             tmp_path: Path) -> None:
    proc = _start_reproduce(project, _slow_version(project, tmp_path, 5))

    mine = project.run("repro", "--force")  # the user's own work goes on meanwhile

    assert mine.code == 0, mine.text
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert "slow: reproduced (bit-identical)" in out


def test_a_frozen_stage_is_restored_and_what_reads_it_is_proven(project: Project) -> None:
    """The "freeze the expensive download" setup: the frozen stage's recorded outputs
    are placed from the cache like source data, never rebuilt (it would fetch other
    bytes today), and the stages reading them are rebuilt and judged."""
    project.write("data.txt", "x\n")
    download = {"cmd": "python -c \"import time; print(time.time_ns())\" > raw.txt",
                "deps": ["data.txt"], "outs": ["raw.txt"]}
    train = {"cmd": "wc -c < raw.txt > model.txt", "deps": ["raw.txt"], "outs": ["model.txt"]}
    project.spec({"download": download, "train": train})
    assert project.run("repro").code == 0
    project.spec({"download": {**download, "frozen": True}, "train": train})
    commit(project, "v1, the download frozen")

    code, body = _json(project, "model.txt@v1")

    assert code == 0, body
    verdicts = {s["stage"]: s["verdict"] for s in body["stages"]}
    assert verdicts == {"download": "frozen", "train": "bit-identical"}
    assert body["verdict"] == "bit-identical"
    text = project.run("reproduce", "model.txt@v1").out
    assert "download: frozen (restored, not rebuilt)" in text


def test_the_runs_own_commit_is_tried_when_the_locks_does_not_hold_its_code(
        project: Project) -> None:
    """Run at a clean commit; the lock committed later together with an edit to a
    module the stage's code imports: that commit does not hold what the run read, the
    run's own commit does."""
    project.write("helper.py", "X = 'a'\n")
    project.write("gen.py", "import helper\nprint(helper.X)\n")
    project.spec({"s": {"cmd": "python gen.py > o.txt", "deps": ["gen.py"],
                        "outs": ["o.txt"]}})
    commit(project, "C0")
    assert project.run("repro").code == 0
    project.write("helper.py", "X = 'b'\n")
    commit(project, "C1: the outputs, and helper.py edited")

    res = project.run("reproduce", "o.txt@v1")

    assert res.code == 0, res.text
    assert "s: reproduced (bit-identical)" in res.out
    assert "does not hold the code its runs read" in res.err


def test_a_version_its_own_frozen_stage_made_is_not_proven(project: Project) -> None:
    project.write("data.txt", "x\n")
    make = {"cmd": "cp data.txt out.txt", "deps": ["data.txt"], "outs": ["out.txt"]}
    project.spec({"make": make})
    assert project.run("repro").code == 0
    project.spec({"make": {**make, "frozen": True}})
    commit(project, "v1, frozen")

    code, body = _json(project, "out.txt@v1")

    assert code == 1
    assert _stage(body, "make")["verdict"] == "frozen"
    assert body["verdict"] == "cannot-reproduce"  # restored is not rebuilt


def test_a_stage_renamed_in_the_locks_commit_is_found_at_the_runs_own(
        project: Project) -> None:
    project.write("data.txt", "x\n")
    project.spec({"make": {"cmd": "cp data.txt out.txt", "deps": ["data.txt"],
                           "outs": ["out.txt"]}})
    commit(project, "C0")
    assert project.run("repro").code == 0
    lock = project.read("pipeline.lock")
    project.spec({"build": {"cmd": "cp data.txt out.txt", "deps": ["data.txt"],
                            "outs": ["out.txt"]}})
    project.write("pipeline.lock", lock)  # the outputs committed with a renamed stage
    commit(project, "C1: outputs, and the stage renamed")

    res = project.run("reproduce", "out.txt@v1")

    assert res.code == 0, res.text
    assert "make: reproduced (bit-identical)" in res.out


def test_a_stage_run_by_the_projects_own_venv_finds_it(project: Project) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip",
                    str(project.root / ".venv")], check=True)
    project.write(".gitignore", ".venv/\n")
    project.write("data.txt", "x\n")
    project.spec({"count": {"cmd": ".venv/bin/python -c \"print(len(open('data.txt').read()))\""
                                   " > n.txt",
                            "deps": ["data.txt"], "outs": ["n.txt"]}})
    commit(project, "code")
    assert project.run("repro").code == 0, project.run("status").text
    commit(project, "v1")

    res = project.run("reproduce", "n.txt@v1")

    assert res.code == 0, res.text
    assert "count: reproduced (bit-identical)" in res.out


def test_declaring_a_stage_noisy_after_its_run_does_not_loosen_its_verdict(
        project: Project) -> None:
    """The run was made at a commit whose spec did not declare ``deterministic: false``;
    the declaration came with the commit that records the version. Judged as the run
    was declared: byte for byte."""
    _clock(project)
    commit(project, "the stage, deterministic")
    assert project.run("repro").code == 0
    spec = yaml.safe_load(project.read("pipeline.yaml"))
    spec["stages"]["measure"].update({"deterministic": False, "tolerance": 1e-6})
    project.write("pipeline.yaml", yaml.safe_dump(spec, sort_keys=False))
    commit(project, "v1, and the stage declared noisy after the fact")

    code, body = _json(project, "scores.json@v1")

    assert code == 1, body
    assert _stage(body, "measure")["verdict"] == "differs"
