"""The audit trail of reproductions (issue 15, item 5): each reproduction is a record
of its own; ``lineage PATH@VERSION`` shows a version's last one, ``verify
--reproduced`` lists versions by verdict; the records travel with push/fetch."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

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
    assert p.run("repro").code == 0
    commit(p, "v1")
    p.params({"prep": {"n": 3}, "train": {"lr": 0.5, "epochs": 2}, "eval": {"k": 1}})
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
    assert (f"reproduced (bit-identical) on {last.when[:16].replace('T', ' ')} by alice "
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
