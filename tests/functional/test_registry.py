"""The model registry in one clone: declared models, promote, rollback, several
aliases at once, notes, the tag group as the same mechanism (issue 14, items 1-3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.functional.helpers_registry import MODEL, PATH, as_json, labels, model_with_versions, ok


@pytest.fixture
def reg(project: Project) -> Project:
    model_with_versions(project)
    return project


def test_models_lists_each_declared_model_with_versions_aliases_and_metrics(reg: Project) -> None:
    v = labels(reg)
    ok(reg, "promote", f"{MODEL}@v1", "production")
    ok(reg, "promote", f"{MODEL}@v2", "staging")
    body = as_json(reg, "models")
    (model,) = body["models"]
    assert (model["model"], model["path"], model["desc"], model["versions"]) == (
        MODEL, PATH, "the classifier", 3)
    assert model["latest"]["hash"] == v["v3"] and model["latest"]["version"] == "v3"
    assert model["aliases"]["production"]["hash"] == v["v1"]
    assert model["aliases"]["staging"]["hash"] == v["v2"]
    # metrics of the evaluation that read each version; params as the run read them
    assert model["aliases"]["production"]["metrics"]["metrics.json:lines"] == 4
    assert model["aliases"]["production"]["params"]["params.yaml"]["train.lr"] == 0.1
    assert model["latest"]["params"]["params.yaml"]["train.lr"] == 0.3
    text = ok(reg, "models")
    assert "clf  models/model.txt  3 version(s)  the classifier" in text
    assert f"production  v1 ({v['v1'][:8]})" in text


def test_several_versions_in_production_at_once_and_each_rolls_back_alone(reg: Project) -> None:
    v = labels(reg)
    ok(reg, "promote", f"{MODEL}@v1", "production-eu")
    ok(reg, "promote", f"{MODEL}@v2", "production-us")
    ok(reg, "promote", f"{MODEL}@v3", "production-eu", "--note", "eu on v3")
    now = {a["alias"]: a["hash"] for a in as_json(reg, "aliases", MODEL)["aliases"]}
    assert now == {"production-eu": v["v3"], "production-us": v["v2"]}
    out = ok(reg, "rollback", "production-eu")
    assert out.startswith("rolled back: production-eu -> clf v1")
    now = {a["alias"]: a["hash"] for a in as_json(reg, "aliases")["aliases"]}
    assert now == {"production-eu": v["v1"], "production-us": v["v2"]}


def test_rollback_is_a_move_of_its_own_and_walks_back_one_move_at_a_time(reg: Project) -> None:
    v = labels(reg)
    for n in (1, 2, 3):
        ok(reg, "promote", f"{MODEL}@v{n}", "production", "--note", f"ship v{n}")
    ok(reg, "rollback", "production", MODEL, "--note", "v3 regressed")
    assert as_json(reg, "aliases")["aliases"][0]["hash"] == v["v2"]
    ok(reg, "rollback", "production")
    assert as_json(reg, "aliases")["aliases"][0]["hash"] == v["v1"]
    res = reg.run("rollback", "production")
    assert res.code == 2
    assert "no earlier target to roll back to" in res.err and "--history" in res.err
    history = as_json(reg, "aliases", "--history")["history"]
    assert [(m["kind"], m["from_label"], m["to_label"]) for m in history] == [
        ("move", None, "v1"), ("move", "v1", "v2"), ("move", "v2", "v3"),
        ("rollback", "v3", "v2"), ("rollback", "v2", "v1")]
    assert history[3]["note"] == "v3 regressed"
    assert all(m["user"] == "alice@example.com" and m["signature"] == "unsigned"
               for m in history)
    text = ok(reg, "aliases", "--history")
    assert "production: v2 -> v1 [rollback]  alice@example.com (unsigned)" in text


def test_tag_and_promote_are_one_mechanism(reg: Project) -> None:
    v = labels(reg)
    ok(reg, "tag", f"{PATH}@v1", "production")  # the older spelling, by path
    ok(reg, "promote", f"{MODEL}@v2", "production")  # by model name, same alias
    (alias,) = as_json(reg, "tag", "list")["aliases"]
    assert (alias["alias"], alias["hash"], alias["rollback_to"]) == ("production", v["v2"], "v1")
    log = as_json(reg, "tag", "log", PATH)["history"]
    assert [m["to"] for m in log] == [v["v1"], v["v2"]]
    tags = [t for ver in as_json(reg, "versions", PATH)["versions"] for t in ver["tags"]]
    assert tags == ["production"]
    out = ok(reg, "tag", "delete", MODEL, "production")
    assert "deleted alias production of clf" in out
    assert as_json(reg, "tag", "list")["aliases"] == []
    assert [m["kind"] for m in as_json(reg, "tag", "log")["history"]][-1] == "delete"
    res = reg.run("rollback", "production")
    assert res.code == 2 and "was deleted" in res.err
    ok(reg, "tag", "set", f"{MODEL}@v3", "production")
    assert as_json(reg, "aliases")["aliases"][0]["hash"] == v["v3"]


def test_checkout_by_model_alias_after_rollback(reg: Project) -> None:
    ok(reg, "promote", f"{MODEL}@v1", "production")
    ok(reg, "promote", f"{MODEL}@v3", "production")
    ok(reg, "rollback", "production")
    ok(reg, "checkout", f"{PATH}@production")
    assert "lr=0.1" in reg.read(PATH)


def test_notes_show_in_models_and_travel_in_the_log(reg: Project) -> None:
    out = ok(reg, "note", f"{MODEL}@v2", "trained on the March export")
    assert out.startswith("noted clf v2")
    ok(reg, "promote", f"{MODEL}@v2", "production")
    (model,) = as_json(reg, "models")["models"]
    (note,) = model["aliases"]["production"]["notes"]
    assert note["text"] == "trained on the March export" and note["user"] == "alice@example.com"
    line = json.loads(reg.read(".pipeflow/tags.jsonl").splitlines()[0])
    assert (line["kind"], line["text"]) == ("note", "trained on the March export")
    assert '"trained on the March export"' in ok(reg, "models")


@pytest.mark.parametrize(("args", "expected"), [
    (("promote", f"{MODEL}@v9", "production"), "has no version 'v9'"),
    (("promote", "clff@v1", "production"), "did you mean 'clf'?"),
    (("promote", f"{MODEL}@v1", "v2"), "invalid alias name 'v2'"),
    (("promote", f"{MODEL}@v1", "prod/eu"), "invalid alias name 'prod/eu'"),
    (("promote", MODEL, "production"), "give the version to promote"),
    (("rollback", "prodution"), "no model has an alias 'prodution'"),
    (("note", f"{MODEL}@v1", "  "), "the note is empty"),
    (("tag", "delete", MODEL, "canary"), "has no alias 'canary'"),
])
def test_bad_input_is_a_clear_usage_error_and_writes_nothing(
        reg: Project, args: tuple[str, ...], expected: str) -> None:
    ok(reg, "promote", f"{MODEL}@v1", "production")
    before = reg.read(".pipeflow/tags.jsonl")
    res = reg.run(*args)
    assert res.code == 2, res.text
    assert expected in res.err and "Traceback" not in res.err
    assert reg.read(".pipeflow/tags.jsonl") == before


def test_an_unknown_version_lists_the_ones_that_exist(reg: Project) -> None:
    res = reg.run("promote", f"{MODEL}@v7", "production")
    assert res.code == 2 and "it has: v1" in res.err and "v3" in res.err


def test_rollback_names_the_model_when_several_have_the_alias(project: Project) -> None:
    import yaml

    model_with_versions(project, (0.1, 0.2))
    spec = yaml.safe_load(project.read("pipeline.yaml"))
    spec["stages"]["prepare"]["outs"] = [{"data/prepared.txt": {"model": "prep"}}]
    project.write("pipeline.yaml", yaml.safe_dump(spec, sort_keys=False))
    ok(project, "promote", f"{MODEL}@v1", "production")
    ok(project, "promote", f"{MODEL}@v2", "production")
    ok(project, "promote", "prep@v1", "production")
    res = project.run("rollback", "production")
    assert res.code == 2 and "exists for several models: clf, prep" in res.err
    assert "rolled back: production -> clf v1" in ok(project, "rollback", "production", MODEL)


def test_gc_keeps_every_version_a_rollback_can_return_to(reg: Project) -> None:
    v = labels(reg)
    ok(reg, "promote", f"{MODEL}@v1", "production")
    ok(reg, "promote", f"{MODEL}@v2", "production")
    out = as_json(reg, "gc", "--workspace", "--keep-days", "0", "--keep-versions", "1",
                  "--grace", "0s")
    assert out is not None
    ok(reg, "rollback", "production")
    ok(reg, "checkout", f"{MODEL}@production")
    assert "lr=0.1" in reg.read(PATH)
    gone = {x["hash"] for x in as_json(reg, "versions", PATH)["versions"] if not x["in_cache"]}
    assert v["v1"] not in gone and v["v2"] not in gone and v["v3"] not in gone


def test_verify_repair_keeps_notes_and_what_the_aliases_name(reg: Project) -> None:
    v = labels(reg)
    ok(reg, "promote", f"{MODEL}@v1", "production")
    ok(reg, "note", f"{MODEL}@v1", "the first one")
    ok(reg, "promote", f"{MODEL}@v2", "production")
    ok(reg, "promote", f"{MODEL}@v3", "staging")
    log = reg.root / ".pipeflow" / "tags.jsonl"
    lines = log.read_text().splitlines()
    first = json.loads(lines[0])
    first["user"] = "someone else"  # edited by hand: its id no longer matches
    log.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    res = reg.run("verify", "--repair")
    assert "does not match its id" in (reg.root / ".pipeflow/state/tags.jsonl.damaged"
                                       ).read_text(), res.text
    again = reg.run("verify")
    assert again.code == 0, again.text
    kept = log.read_text().splitlines()
    assert kept[:3] == lines[1:] and json.loads(kept[3])["kind"] == "repair"
    now = {a["alias"]: a["hash"] for a in as_json(reg, "aliases")["aliases"]}
    assert now == {"production": v["v2"], "staging": v["v3"]}
    notes = {x["version"]: [n["text"] for n in x["notes"]]
             for x in as_json(reg, "versions", PATH)["versions"]}
    assert notes == {"v1": ["the first one"], "v2": [], "v3": []}


def test_a_mistyped_alias_gets_a_did_you_mean_wherever_a_version_is_named(reg: Project) -> None:
    ok(reg, "promote", f"{MODEL}@v2", "production")
    for args in (("checkout", f"{MODEL}@prodution"), ("promote", f"{MODEL}@prodution", "x"),
                 ("lineage", f"{MODEL}@prodution")):
        res = reg.run(*args)
        assert res.code == 2, res.text
        assert "did you mean 'production'?" in res.err and "aliases: production" in res.err


def test_rollback_takes_model_at_alias_and_models_shows_params(reg: Project) -> None:
    ok(reg, "promote", f"{MODEL}@v1", "production")
    ok(reg, "promote", f"{MODEL}@v2", "production")
    assert ok(reg, "rollback", f"{MODEL}@production").startswith(
        "rolled back: production -> clf v1")
    text = ok(reg, "models")
    assert "  production  v1" in text and "params: train.epochs=2, train.lr=0.1" in text
    moved = reg.run("promote", f"{MODEL}@v3", "canary", "--json")
    assert json.loads(moved.out)["signature"] == "unsigned"


def test_an_untrusted_key_never_reads_as_the_name_it_claims(
        reg: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.functional.helpers_registry import user_key

    trusted = user_key(tmp_path / "alice", "alice")
    with (reg.root / ".pipeflow" / "config").open("a") as f:
        f.write(f'keys:\n  trusted:\n    alice: "{trusted}"\n')
    user_key(tmp_path / "mallory", "alice")  # another key, the same name
    monkeypatch.setenv("PIPEFLOW_CONFIG_DIR", str(tmp_path / "mallory"))
    out = ok(reg, "promote", f"{MODEL}@v2", "canary")
    assert "signed with key 'alice', which keys.trusted does not list" in out
    assert "signed by alice" not in out
    assert "by alice (untrusted key)" in ok(reg, "aliases")
    monkeypatch.setenv("PIPEFLOW_CONFIG_DIR", str(tmp_path / "alice"))
    assert "signed by alice" in ok(reg, "promote", f"{MODEL}@v3", "canary")
    assert "by alice (signed)" in ok(reg, "aliases")


def test_turning_protection_on_warns_once_per_alias_and_says_what_settles_it(
        reg: Project) -> None:
    for n in (1, 2, 3, 1, 2):
        ok(reg, "promote", f"{MODEL}@v{n}", "production")
    with (reg.root / ".pipeflow" / "config").open("a") as f:
        f.write('registry:\n  protected: ["production*"]\n')
    res = reg.run("aliases")
    assert res.code == 0, res.text
    assert res.err.count("warning:") == 2, res.err
    assert "5 moves of protected alias 'production' of models/model.txt ignored" in res.err
    assert "a `pipeflow promote` signed by a trusted key settles an alias" in res.err
    res = reg.run("promote", f"{MODEL}@v3", "production")
    assert res.code == 2 and "you have no signing key" in res.err


def test_repair_keeps_the_intact_line_after_a_removed_one(reg: Project) -> None:
    v = labels(reg)
    ok(reg, "promote", f"{MODEL}@v1", "s1")
    ok(reg, "promote", f"{MODEL}@v2", "s2")
    log = reg.root / ".pipeflow" / "tags.jsonl"
    lines = log.read_text().splitlines()
    log.write_text(lines[1] + "\n")  # the first line removed by hand
    res = reg.run("aliases")
    assert "not in the log" in res.err and "s2" not in res.out
    reg.run("verify", "--repair")
    assert reg.run("verify").code == 0, reg.run("verify").text
    assert {a["alias"]: a["hash"] for a in as_json(reg, "aliases")["aliases"]} == {
        "s2": v["v2"]}
    assert log.read_text().splitlines()[0] == lines[1]


def test_promoting_to_the_version_the_alias_names_writes_nothing(reg: Project) -> None:
    ok(reg, "promote", f"{MODEL}@v2", "production")
    before = reg.read(".pipeflow/tags.jsonl")
    out = ok(reg, "promote", f"{MODEL}@v2", "production")
    assert "production already names clf v2" in out and "nothing written" in out
    assert reg.read(".pipeflow/tags.jsonl") == before
    ok(reg, "promote", f"{MODEL}@v2", "production", "--note", "re-checked")
    assert reg.read(".pipeflow/tags.jsonl") != before
