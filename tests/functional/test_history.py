"""Run records and the run cache."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.conftest import Project
from tests.functional.helpers import chain, commit, runs


def _records(p: Project) -> list[dict]:  # type: ignore[type-arg]
    folder = p.root / ".pipeflow/cache/runs"
    out = []
    for path in sorted(folder.glob("*/*.json")):
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == path.stem.split("-")[1]
        out.append(json.loads(data))
    return out


def test_every_run_writes_a_chained_record_named_by_the_lock(project: Project) -> None:
    chain(project)
    project.git("config", "user.email", "auditor@example.com")
    project.git("add", "-A")
    project.git("commit", "-qm", "start")
    assert project.run("repro").code == 0
    records = _records(project)
    assert [r["stage"] for r in records] == ["prepare", "train", "evaluate"]
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[0]["prev"] is None
    first = records[0]
    assert first["kind"] == "run" and first["exit_status"] == 0
    assert first["git"]["commit"] == project.git("rev-parse", "HEAD").strip()
    assert first["user"] == "auditor@example.com"
    assert first["components"]["params"] == {"params.yaml": {"prep.n": 3}}
    assert first["outputs"][0]["path"] == "data/prepared.txt"
    assert first["pipeflow_version"]
    assert records[2]["metrics"] == {"metrics.json": {"k": 1, "lines": 4}}
    lock = project.lock()
    files = sorted((project.root / ".pipeflow/cache/runs").glob("*/*.json"))
    ids = [f.stem.split("-")[1] for f in files]
    assert records[1]["prev"] == ids[0]
    assert lock["stages"]["train"]["run"] == ids[1]


def test_failed_runs_are_recorded_too(project: Project) -> None:
    project.spec({"bad": {"cmd": "exit 4", "outs": ["x"]}})
    assert project.run("repro").code == 1
    (record,) = _records(project)
    assert record["exit_status"] == 4
    assert "outputs" not in record


def test_reverting_params_restores_from_the_run_cache(project: Project) -> None:
    chain(project)
    project.run("repro")
    first_model = project.read("models/model.txt")
    runs(project)
    project.params({"prep": {"n": 3}, "train": {"lr": 0.07, "epochs": 2}, "eval": {"k": 1}})
    project.run("repro")
    assert runs(project) == ["train", "evaluate"]
    assert project.read("models/model.txt") != first_model
    project.params({"prep": {"n": 3}, "train": {"lr": 0.05, "epochs": 2}, "eval": {"k": 1}})
    res = project.run("repro")
    assert res.code == 0, res.text
    assert runs(project) == []  # neither command ran
    assert "from the run cache" in res.out
    assert project.read("models/model.txt") == first_model
    assert project.run("status", "--check").code == 0
    kinds = [r["kind"] for r in _records(project)]
    assert kinds[-2:] == ["restore", "restore"]
    restore = _records(project)[-1]
    assert restore["source_run"]


def test_run_cache_is_skipped_for_uncacheable_stages(project: Project) -> None:
    project.write("in.txt", "a\n")
    project.spec({"s": {"cmd": "echo s >> runs.log && cp in.txt o.txt", "deps": ["in.txt"],
                        "outs": [{"o.txt": {"persist": True}}]}})
    project.run("repro")
    project.write("in.txt", "b\n")
    project.run("repro")
    project.write("in.txt", "a\n")
    project.run("repro")
    assert runs(project) == ["s", "s", "s"]


def _train_versions(p: Project) -> None:
    chain(p)
    p.run("repro")
    commit(p, "v1")
    for lr in (0.07, 0.09):
        p.params({"prep": {"n": 3}, "train": {"lr": lr, "epochs": 2}, "eval": {"k": 1}})
        assert p.run("repro").code == 0
        commit(p, f"lr {lr}")
    runs(p)


def test_versions_lists_each_content_with_params_and_metrics(project: Project) -> None:
    _train_versions(project)
    res = project.run("versions", "models/model.txt")
    assert res.code == 0, res.text
    assert "3 version(s)" in res.out
    assert "params.yaml:train.lr 0.05 -> 0.07" in res.out
    body = json.loads(project.run("versions", "models/model.txt", "--json").out)
    labels = [v["version"] for v in body["versions"]]
    assert labels == ["v1", "v2", "v3"]
    assert [v["current"] for v in body["versions"]] == [False, False, True]
    metrics = json.loads(project.run("versions", "metrics.json", "--json").out)
    assert metrics["versions"][0]["metrics"] == {"metrics.json:k": 1, "metrics.json:lines": 4}
    ranked = json.loads(project.run("versions", "metrics.json", "--json", "--sort",
                                    "metrics.lines").out)
    assert len(ranked["versions"]) == 1  # same metrics bytes every time: one version
    bad = project.run("versions", "metrics.json", "--sort", "metrics.nope")
    assert bad.code == 2 and "no version has a metric 'nope'" in bad.err


def test_checkout_a_version_then_repro_restores_the_lock(project: Project) -> None:
    _train_versions(project)
    res = project.run("checkout", "models/model.txt@v1")
    assert res.code == 0, res.text
    assert project.read("models/model.txt").startswith("lr=0.05")
    st = project.run("status").out
    assert "models/model.txt: v1 checked out, lock has v3" in st
    res = project.run("repro")
    assert res.code == 0
    assert runs(project) == []
    assert "v1 checked out, lock has v3" in res.out
    assert project.read("models/model.txt").startswith("lr=0.09")
    # by hash prefix, and errors list what exists
    oid = json.loads(project.run("versions", "models/model.txt", "--json").out)["versions"][1]
    assert project.run("checkout", f"models/model.txt@{oid['hash'][:6]}").code == 0
    assert project.read("models/model.txt").startswith("lr=0.07")
    bad = project.run("checkout", "models/model.txt@v9")
    assert bad.code == 2
    assert "has no version 'v9'" in bad.err and "v1" in bad.err and "v3" in bad.err
    none = project.run("versions", "nothing/here.txt")
    assert none.code == 2 and "no recorded versions" in none.err


def test_tags_name_versions_and_keep_their_history(project: Project) -> None:
    _train_versions(project)
    assert project.run("tag", "models/model.txt@v2", "production").code == 0
    res = project.run("tag", "models/model.txt@v1", "production")
    assert res.code == 0 and "(was " in res.out
    body = json.loads(project.run("versions", "models/model.txt", "--json").out)
    assert body["versions"][0]["tags"] == ["production"]
    assert project.run("checkout", "models/model.txt@production").code == 0
    assert project.read("models/model.txt").startswith("lr=0.05")
    log = project.read(".pipeflow/tags.jsonl").splitlines()
    assert len(log) == 2
    assert json.loads(log[1])["previous"] == body["versions"][1]["hash"]
    assert project.run("tag", "models/model.txt", "x").code == 2
    assert project.run("tag", "models/model.txt@v1", "v2").code == 2


def test_add_versions_source_data(project: Project) -> None:
    project.write("data/raw.txt", "a\n")
    project.spec({"s": {"cmd": "echo s >> runs.log && cp data/raw.txt o.txt",
                        "deps": ["data/raw.txt"], "outs": ["o.txt"]}})
    res = project.run("add", "data/raw.txt")
    assert res.code == 0, res.text
    assert project.lock()["sources"]["data/raw.txt"]["size"] == 2
    assert "/raw.txt" in project.read("data/.gitignore").splitlines()
    assert project.run("repro").code == 0
    project.write("data/raw.txt", "b\n")
    assert "source data 'data/raw.txt' changed" in project.run("status").err
    res = project.run("repro")
    assert "new version of data/raw.txt recorded" in res.out
    body = json.loads(project.run("versions", "data/raw.txt", "--json").out)
    assert len(body["versions"]) == 2
    (project.root / "data/raw.txt").unlink()
    assert project.run("checkout").code == 0
    assert project.read("data/raw.txt") == "b\n"
    bad = project.run("add", "o.txt")
    assert bad.code == 2 and "is an output of stage 's'" in bad.err


def test_checked_out_source_version_is_restored_not_recorded(project: Project) -> None:
    project.write("data/raw.txt", "a\n")
    project.spec({"s": {"cmd": "echo s >> runs.log && cp data/raw.txt o.txt",
                        "deps": ["data/raw.txt"], "outs": ["o.txt"]}})
    project.run("add", "data/raw.txt")
    project.run("repro")
    commit(project)
    project.write("data/raw.txt", "b\n")
    project.run("repro")  # records v2 of the source
    commit(project)
    runs(project)
    assert project.run("checkout", "data/raw.txt@v1").code == 0
    assert "v1 checked out, lock has v2" in project.run("status").err
    res = project.run("repro")
    assert "restored the locked version of data/raw.txt" in res.out
    assert project.read("data/raw.txt") == "b\n"
    assert runs(project) == []
    body = json.loads(project.run("versions", "data/raw.txt", "--json").out)
    assert len(body["versions"]) == 2


def test_model_versions_carry_their_evaluation_metrics(project: Project) -> None:
    project.write("data.txt", "1\n2\n3\n")
    project.params({"train": {"k": 1}})
    project.spec({
        "train": {"cmd": "echo ${train.k} > model.txt", "deps": ["data.txt"],
                  "params": ["train.k"], "outs": ["model.txt"]},
        "evaluate": {"cmd": """printf '{"accuracy": 0.%s}' "$(cat model.txt)" > scores.json""",
                     "deps": ["model.txt"], "metrics": ["scores.json"]},
    })
    for k in (5, 9, 7):
        project.params({"train": {"k": k}})
        assert project.run("repro").code == 0, project.run("repro").text
        commit(project)
    body = json.loads(project.run("versions", "model.txt", "--json", "--sort",
                                  "metrics.accuracy").out)
    ranked = [v["metrics"]["scores.json:accuracy"] for v in body["versions"]]
    assert ranked == [0.9, 0.7, 0.5]
    assert [v["version"] for v in body["versions"]] == ["v2", "v3", "v1"]


def _fields(value: object, at: str = "") -> set[str]:
    """Every field path of a record (``outputs[].kind``), not below values that hold
    the project's own data (params, metrics, the environment)."""
    if isinstance(value, list):
        return {p for item in value for p in _fields(item, at + "[]")}
    if not isinstance(value, dict) or at.split(".")[-1] in ("params", "metrics", "env",
                                                            "env_exact"):
        return set()
    return {f"{at}.{k}".lstrip(".") for k in value} | {
        p for k, v in value.items() for p in _fields(v, f"{at}.{k}".lstrip("."))}


def test_records_are_written_in_their_format(project: Project) -> None:
    """Every kind of record (add, run, failed run, restore) lists the fields the
    records of format 1 always have (tests/unit/data/records_format1.jsonl)."""
    project.write("data/raw.txt", "hello\n")
    project.write("data/dir/a", "a\n")
    project.write("prep.py", "import json, os\nos.makedirs('out', exist_ok=True)\n"
                  "open('out/x.txt', 'w').write(open('data/raw.txt').read())\n"
                  "json.dump({'acc': 0.5}, open('m.json', 'w'))\n")
    project.spec({"prep": {"cmd": "python prep.py", "deps": ["data/raw.txt"],
                           "outs": ["out"], "metrics": ["m.json"]},
                  "bad": {"cmd": "python -c 'import sys; sys.exit(3)'",
                          "deps": ["data/raw.txt"], "outs": ["never.txt"]}})
    assert project.run("add", "data/raw.txt", "data/dir").code == 0
    assert project.run("repro", "-k").code == 1
    (project.root / "pipeline.lock").unlink()
    assert project.run("repro", "prep").code == 0  # restored from the run cache
    written = _records(project)
    before = Path(__file__).parents[1] / "unit" / "data" / "records_format1.jsonl"
    expected = [json.loads(line) for line in before.read_text().splitlines() if line]
    assert [r["kind"] for r in written] == [r["kind"] for r in expected]
    for new, old in zip(written, expected, strict=True):
        assert _fields(new) == _fields(old), new["kind"]
