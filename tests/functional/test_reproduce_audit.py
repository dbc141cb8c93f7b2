"""The audit trail of reproductions (issue 15, item 5): each reproduction is a record
of its own; ``lineage PATH@VERSION`` shows a version's last one, ``verify
--reproduced`` lists versions by verdict; the records travel with push/fetch."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import yaml

from pipeflow.git.gitinfo import Provenance
from pipeflow.lineage.reproductions import (
    OutputDiff,
    Reproduction,
    StageVerdict,
    Verdict,
    reproductions,
)
from pipeflow.project.project import Project as Proj
from pipeflow.reproduce import audit
from tests.conftest import Project
from tests.functional.helpers import chain, commit

MODEL = "models/model.txt"


def _versions(p: Project) -> dict[str, str]:
    """vN -> hash of MODEL."""
    res = p.run("versions", MODEL, "--json")
    assert res.code == 0, res.text
    return {v["version"]: v["hash"] for v in json.loads(res.out)["versions"]}


def _two_versions(p: Project) -> dict[str, str]:
    chain(p)
    p.write(".gitignore", "runs.log\n")
    commit(p, "the pipeline")  # runs of committed code can be reproduced
    assert p.run("repro").code == 0
    commit(p, "v1")
    p.params({"prep": {"n": 3}, "train": {"lr": 0.5, "epochs": 2}, "eval": {"k": 1}})
    commit(p, "lr 0.5")
    assert p.run("repro").code == 0
    commit(p, "v2")
    return _versions(p)


def _reproduce(p: Project, oid: str, verdict: Verdict, *, user: str = "alice",
               version: str = "v1") -> Reproduction:
    """Write the record a `pipeflow reproduce` would have written."""
    if verdict is Verdict.DIFFERS:
        stages = (StageVerdict("prepare", Verdict.IDENTICAL),
                  StageVerdict("train", Verdict.DIFFERS, outputs=(OutputDiff(
                      MODEL, oid, "f" * 32, 1250, 1250, first_byte=4096),)))
    else:
        stages = (StageVerdict("prepare", verdict), StageVerdict("train", verdict))
    found = Reproduction(MODEL, oid, version, verdict, stages, commit="abc")
    with Proj(p.root) as repo:
        return audit.write(repo, found, Provenance("abc", (), user, "host"), time.time() - 1)


def test_a_reproduction_is_a_record_of_its_own_and_lineage_shows_the_last(
        project: Project) -> None:
    p = project
    labels = _two_versions(p)
    res = p.run("lineage", f"{MODEL}@v1")
    assert res.code == 0, res.text
    assert "reproduc" not in res.out  # a project that never reproduced: no noise

    first = _reproduce(p, labels["v1"], Verdict.DIFFERS, user="bob")
    assert first.record and first.user == "bob" and first.when
    last = _reproduce(p, labels["v1"], Verdict.IDENTICAL)
    with Proj(p.root) as repo:
        assert [r.record for r in reproductions(repo)] == [first.record, last.record]
        record = repo.index.record(last.record)
    assert record.body.kind.value == "reproduction" and record.body.exit_status == 0
    assert record.body.reproduction is not None
    assert record.body.reproduction["verdict"] == "bit-identical"

    res = p.run("lineage", f"{MODEL}@v1")
    assert res.code == 0, res.text
    when = last.when[:16].replace("T", " ")
    assert (f"reproduced (bit-identical) on {when} by alice (unverified) "
            f"(record {last.record[:12]}); 1 earlier") in res.out
    res = p.run("lineage", f"{MODEL}@v2")
    assert "never reproduced" in res.out
    data = json.loads(p.run("lineage", f"{MODEL}@v1", "--json").out)
    assert data["reproduction"]["record"] == last.record
    assert data["reproduction"]["verdict"] == "bit-identical"
    assert data["reproduction"]["earlier"] == 1
    assert json.loads(p.run("lineage", f"{MODEL}@v2", "--json").out)["reproduction"] is None


def test_lineage_says_what_differed(project: Project) -> None:
    p = project
    labels = _two_versions(p)
    _reproduce(p, labels["v2"], Verdict.DIFFERS, version="v2")
    res = p.run("lineage", MODEL)
    assert res.code == 0, res.text
    assert "differs on " in res.out
    assert f"stage train: differs ({MODEL} 1.2 KB -> 1.2 KB, first byte 4096)" in res.out
    assert "stage prepare" not in res.out.split("differs on ")[1]


def test_verify_reproduced_lists_versions_by_their_latest_verdict(project: Project) -> None:
    p = project
    labels = _two_versions(p)
    res = p.run("verify", "--reproduced")
    assert res.code == 0, res.text
    assert "no version has been reproduced yet" in res.out

    _reproduce(p, labels["v1"], Verdict.DIFFERS, user="bob")
    _reproduce(p, labels["v1"], Verdict.IDENTICAL)  # the latest verdict counts
    res = p.run("verify", "--reproduced")
    assert res.code == 0, res.text
    assert "reproduced (bit-identical): 1 version(s)" in res.out
    assert f"{MODEL}  v1 ({labels['v1'][:8]})" in res.out and "alice" in res.out
    assert "2 reproductions" in res.out and "differs" not in res.out

    last = _reproduce(p, labels["v2"], Verdict.DIFFERS, user="carol", version="v2")
    res = p.run("verify", "--reproduced")
    assert res.code == 1, res.text  # a version that does not reproduce fails CI
    assert "1 version(s) not reproduced" in res.err
    groups = res.out.split("differs: 1 version(s)")
    assert len(groups) == 2 and "v1" in groups[0] and "reproduced (bit-identical)" in groups[0]
    assert f"{MODEL}  v2 ({labels['v2'][:8]})" in groups[1] and "carol" in groups[1]
    assert "(current)" in groups[1] and "stage train: differs" in groups[1]
    body = json.loads(p.run("verify", "--reproduced", "--json").out)
    assert body["ok"] is False
    assert [(v["version"], v["verdict"], v["user"]) for v in body["versions"]] == [
        ("v1", "bit-identical", "alice"), ("v2", "differs", "carol")]
    assert body["versions"][1]["record"] == last.record
    assert body["versions"][0]["reproductions"] == 2

    res = p.run("verify")  # the chain checks take reproduction records as they are
    assert res.code == 0, res.text
    assert "everything verified" in res.out


def test_strict_fails_on_a_declared_models_current_version_never_reproduced(
        project: Project) -> None:
    p = project
    chain(p)
    stages = yaml.safe_load(p.read("pipeline.yaml"))["stages"]
    stages["train"]["outs"] = [{MODEL: {"model": "wine"}}]
    p.spec(stages)
    p.write(".gitignore", "runs.log\n")
    assert p.run("repro").code == 0, "repro"
    commit(p, "v1")
    labels = _versions(p)
    res = p.run("verify", "--reproduced")
    assert res.code == 0, res.text
    assert "never reproduced: 1 version(s) of declared models" in res.out
    assert f"{MODEL}  v1 ({labels['v1'][:8]})  model wine  (current)" in res.out
    res = p.run("verify", "--reproduced", "--strict")
    assert res.code == 1 and "1 current model version(s) never reproduced" in res.err
    body = json.loads(p.run("verify", "--reproduced", "--strict", "--json").out)
    assert body["never_reproduced"] == [{"path": MODEL, "hash": labels["v1"], "version": "v1",
                                         "model": "wine", "current": True}]
    _reproduce(p, labels["v1"], Verdict.WITHIN_TOLERANCE)
    res = p.run("verify", "--reproduced", "--strict")
    assert res.code == 0, res.text
    assert "reproduced (within tolerance): 1 version(s)" in res.out
    assert "never reproduced" not in res.out
    assert p.run("verify", "--strict").code == 2  # --strict goes with --reproduced


def test_a_damaged_reproduction_record_is_skipped_with_a_warning(project: Project) -> None:
    p = project
    labels = _two_versions(p)
    good = _reproduce(p, labels["v1"], Verdict.IDENTICAL)
    bad = _reproduce(p, labels["v2"], Verdict.IDENTICAL, version="v2")
    with Proj(p.root) as repo:
        rel = repo.index.run_rel(str(bad.record))
        path = repo.records.runs / str(rel)
    data = path.read_bytes().replace(b"bit-identical", b"bit-idenTical")
    path.chmod(0o644)
    path.write_bytes(data)

    res = p.run("lineage", f"{MODEL}@v2")
    assert res.code == 0, res.text
    assert f"reproduction record {rel}" in res.err and "skipped" in res.err
    assert "never reproduced" in res.out  # its verdict is not believed
    assert "reproduced (bit-identical)" in p.run("lineage", f"{MODEL}@v1").out
    res = p.run("verify", "--reproduced")
    assert res.code == 1, res.text
    assert "1 damaged reproduction record(s)" in res.err
    assert str(good.record)[:12] in res.out and str(bad.record)[:12] not in res.out
    res = p.run("verify")
    assert res.code == 1 and "[rewritten-record]" in res.out and path.name in res.out


def test_a_pushed_reproduction_shows_in_a_fetching_clone(project: Project,
                                                         tmp_path: Path) -> None:
    alice = project
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    labels = _two_versions(alice)
    assert alice.run("remote", "add", "store", str(tmp_path / "store")).code == 0
    commit(alice, "remote")
    alice.git("remote", "add", "origin", str(origin))
    alice.git("push", "-q", "-u", "origin", "main")
    bob = Project(tmp_path / "bob")
    subprocess.run(["git", "clone", "-q", str(origin), str(bob.root)], check=True)
    assert bob.run("fetch").code == 0

    done = _reproduce(alice, labels["v1"], Verdict.IDENTICAL)
    assert alice.run("push").code == 0
    assert "never reproduced" not in bob.run("lineage", f"{MODEL}@v1").out
    res = bob.run("fetch")
    assert res.code == 0, res.text
    res = bob.run("lineage", f"{MODEL}@v1")
    assert res.code == 0, res.text
    when = str(done.when)[:16].replace("T", " ")
    assert f"reproduced (bit-identical) on {when} by alice (unverified) " \
           f"(record {str(done.record)[:12]})" in res.out
    body = json.loads(bob.run("verify", "--reproduced", "--json").out)
    assert [(v["version"], v["record"]) for v in body["versions"]] == [("v1", done.record)]


def test_reproduce_then_lineage_and_verify_show_it(project: Project) -> None:
    p = project
    labels = _two_versions(p)
    res = p.run("reproduce", f"{MODEL}@v1")
    assert res.code == 0, res.text
    with Proj(p.root) as repo:
        (done,) = reproductions(repo)
    assert (done.path, done.hash, done.version) == (MODEL, labels["v1"], "v1")
    assert done.verdict is Verdict.IDENTICAL and done.record and done.user
    res = p.run("lineage", f"{MODEL}@v1")
    assert f"reproduced (bit-identical) on {str(done.when)[:16].replace('T', ' ')} by " \
           f"{done.user} (unverified) (record {done.record[:12]})" in res.out
    assert "never reproduced" in p.run("lineage", MODEL).out  # v2
    res = p.run("verify", "--reproduced")
    assert res.code == 0, res.text
    assert "reproduced (bit-identical): 1 version(s)" in res.out
    assert f"{MODEL}  v1 ({labels['v1'][:8]})" in res.out
    assert p.run("verify").code == 0


def test_other_readers_take_reproduction_records_in_their_stride(project: Project) -> None:
    p = project
    labels = _two_versions(p)
    before = json.loads(p.run("versions", MODEL, "--json").out)["versions"]
    _reproduce(p, labels["v1"], Verdict.FAILED)
    after = json.loads(p.run("versions", MODEL, "--json").out)["versions"]
    assert [(v["version"], v["hash"], v["runs"]) for v in after] == \
        [(v["version"], v["hash"], v["runs"]) for v in before]  # not a run of MODEL
    res = p.run("exp", "show")
    assert res.code == 0 and "no experiments yet" in res.out, res.text
    res = p.run("status")
    assert res.code == 0 and "up to date" in res.out, res.text
    res = p.run("gc", "--all-commits", "--dry")
    assert res.code == 0, res.text
    assert p.run("verify").code == 0
    res = p.run("lineage", MODEL)  # v2: its walk meets no reproduction record
    assert res.code == 0 and "never reproduced" in res.out and "problem" not in res.out


def test_strict_gate_never_passes_on_a_spec_that_does_not_load(project: Project) -> None:
    project.write("data.txt", "x\n")
    project.spec({"s": {"cmd": "cp data.txt o.txt", "deps": ["data.txt"],
                        "outs": [{"o.txt": {"model": "m"}}]}})
    assert project.run("repro").code == 0
    project.write("pipeline.yaml", "stages: [broken\n")

    assert project.run("verify", "--reproduced").code == 0  # nothing reproduced, not strict
    res = project.run("verify", "--reproduced", "--strict")

    assert res.code == 2, res.text
    assert "pipeline.yaml" in res.err
