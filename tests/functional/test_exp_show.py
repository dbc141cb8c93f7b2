"""``exp show`` and ``exp diff`` on a real project with experiments run by ``exp run``
(and, for value shapes a small pipeline does not make, records appended for real:
``helpers_exp``)."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest

import pipeflow
from tests.conftest import Project
from tests.functional.helpers import chain, commit
from tests.functional.helpers_exp import record_experiment


def flaky_chain(p: Project) -> None:
    """``helpers.chain`` whose train fails when ``train.lr`` is 9, run and committed."""
    chain(p)
    p.write("pipeline.yaml", p.read("pipeline.yaml").replace(
        "echo train >> runs.log &&", "echo train >> runs.log && test ${train.lr} != 9 &&"))
    assert p.run("repro").code == 0
    commit(p)


def experiment(p: Project, name: str, *sets: str, ok: bool = True) -> None:
    args = [a for s in sets for a in ("--set", s)]
    res = p.run("exp", "run", *args, "--name", name)
    assert res.code == (0 if ok else 1), res.text


@pytest.fixture
def lab(project: Project) -> Project:
    """Three experiments run for real: two done, one failed at train."""
    flaky_chain(project)
    experiment(project, "lr-high", "train.lr=0.5", "eval.k=3")  # metrics: lines 4, k 3
    experiment(project, "n-two", "prep.n=2")  # lines 3 (a line fewer), k 1
    experiment(project, "lr-nine", "train.lr=9", ok=False)
    return project


def table(text: str) -> list[list[str]]:
    """The text table's cells (cells hold no double space)."""
    return [[c.strip() for c in line.split("  ") if c.strip()] for line in text.splitlines()]


def shown(p: Project, *args: str) -> dict[str, object]:
    res = p.run("exp", "show", "--json", *args)
    assert res.code == 0, res.text
    body = json.loads(res.out)
    assert isinstance(body, dict)
    return body


def test_show_lists_the_workspace_then_each_experiment_with_what_differs(lab: Project) -> None:
    res = lab.run("exp", "show")
    assert res.code == 0, res.text
    rows = table(res.out)
    assert rows[0] == ["name", "when", "commit", "status", "eval.k", "prep.n", "train.lr",
                       "k", "lines"]
    head = lab.git("rev-parse", "--short=7", "HEAD").strip()
    assert [r[0] for r in rows[1:]] == ["workspace", "lr-high", "n-two", "lr-nine"]
    assert rows[1][1:] == ["-", head, "baseline", "1", "3", "0.05", "1", "4"]
    assert rows[2][2:] == [head, "done", "3", "3", "0.5", "3", "4"]
    assert rows[3][2:] == [head, "done", "1", "2", "0.05", "1", "3"]
    # the value it set, though its failed stage never wrote it into a lock
    assert rows[4][2:7] == [head, "failed (train)", "1", "3", "9"]
    # the time is the record's, shown in local time: only its shape is fixed
    assert len(rows[2][1]) == len("2026-01-02 03:00")


def test_show_json_has_plain_values_and_the_baseline_flag(lab: Project) -> None:
    body = shown(lab)
    assert body["schema"] == 1
    assert [c["name"] for c in body["columns"]] == ["eval.k", "prep.n", "train.lr", "k",
                                                    "lines"]
    base, high, _two, failed = body["rows"]
    assert base["baseline"] and base["name"] == "workspace" and base["status"] is None
    assert base["params"] == {"eval.k": 1, "prep.n": 3, "train.lr": 0.05}
    assert base["metrics"] == {"k": 1, "lines": 4}
    assert base["commit"] == lab.git("rev-parse", "HEAD").strip()
    assert base["created"] is None
    assert not high["baseline"] and high["created"].startswith("20")
    assert (high["status"], high["params"], high["metrics"], high["deltas"]) == (
        "done", {"eval.k": 3, "prep.n": 3, "train.lr": 0.5}, {"k": 3, "lines": 4},
        {"k": 2, "lines": 0})
    assert (failed["status"], failed["failed_stage"], failed["params"]["train.lr"]) == (
        "failed", "train", 9)


def test_show_sorts_both_ways(lab: Project) -> None:
    def order(*args: str) -> list[str]:
        return [r["name"] for r in shown(lab, "--sort", *args)["rows"]]

    assert order("metrics.lines", "--no-failed") == ["workspace", "n-two", "lr-high"]
    assert order("-metrics.lines", "--no-failed") == ["workspace", "lr-high", "n-two"]
    assert order("-metrics.k") == ["workspace", "lr-high", "n-two", "lr-nine"]
    assert order("params.train.lr") == ["workspace", "n-two", "lr-high", "lr-nine"]
    assert order("-params.train.lr") == ["workspace", "lr-nine", "lr-high", "n-two"]
    assert order("-created") == ["workspace", "lr-nine", "n-two", "lr-high"]
    assert order("name") == ["workspace", "lr-high", "lr-nine", "n-two"]
    assert order("-metrics.metrics.json:k")[1] == "lr-high"


def test_experiments_without_the_value_sort_last_both_ways(lab: Project) -> None:
    record_experiment(lab, "no-metrics", failed_stage="evaluate")
    for key in ("metrics.lines", "-metrics.lines"):
        assert [r["name"] for r in shown(lab, "--sort", key)["rows"]][-1] == "no-metrics"


def test_an_unknown_sort_key_says_the_closest_and_exits_2(lab: Project) -> None:
    res = lab.run("exp", "show", "--sort", "-metrics.line")
    assert res.code == 2
    assert "cannot sort by '-metrics.line'" in res.err
    assert "did you mean 'metrics.lines'" in res.err


def test_delta_shows_each_metric_against_the_workspace(lab: Project) -> None:
    rows = table(lab.run("exp", "show", "--delta", "--no-failed").out)
    assert [r[-2:] for r in rows[1:]] == [["1", "4"], ["3 (+2)", "4 (+0)"],
                                          ["1 (+0)", "3 (-1)"]]


def test_all_shows_every_params_key_and_metric(lab: Project) -> None:
    body = shown(lab, "--all")
    assert [c["name"] for c in body["columns"]] == [
        "eval.k", "prep.n", "train.epochs", "train.lr", "k", "lines"]
    assert body["rows"][0]["params"] == {"eval.k": 1, "prep.n": 3, "train.epochs": 2,
                                         "train.lr": 0.05}


def test_no_failed_leaves_them_out(lab: Project) -> None:
    body = shown(lab, "--no-failed")
    assert [r["name"] for r in body["rows"]] == ["workspace", "lr-high", "n-two"]


def test_the_baseline_is_the_params_files_now_and_the_lock_metrics(lab: Project) -> None:
    lab.params({"prep": {"n": 2}, "train": {"lr": 0.5, "epochs": 2}, "eval": {"k": 1}})
    base = shown(lab, "--all")["rows"][0]
    assert base["params"]["prep.n"] == 2  # edited, not yet run: what params diff says now
    assert base["params"]["train.lr"] == 0.5
    assert base["metrics"] == {"k": 1, "lines": 4}  # what the lock holds
    assert shown(lab, "--no-failed")["rows"][2]["deltas"] == {"k": 0, "lines": -1}


def test_other_files_and_shared_metric_keys_are_named_with_their_file(lab: Project) -> None:
    record_experiment(lab, "more", extra_params={"conf/extra.yaml": {"opt.beta": 0.9}},
                      extra_metrics={"eval/scores.json": {"k": 2}})
    body = shown(lab)
    assert [c["name"] for c in body["columns"]] == [
        "eval.k", "prep.n", "train.lr", "conf/extra.yaml:opt.beta", "eval/scores.json:k",
        "metrics.json:k", "lines"]
    assert body["rows"][-1]["params"]["conf/extra.yaml:opt.beta"] == 0.9
    assert shown(lab, "--sort", "-metrics.eval/scores.json:k")["rows"][1]["name"] == "more"
    res = lab.run("exp", "show", "--sort", "metrics.k")
    assert res.code == 2 and "metrics.metrics.json:k" in res.err


def test_csv_is_rfc_4180_with_every_digit(lab: Project) -> None:
    record_experiment(lab, "odd", overrides={"train.lr": 0.123456789},
                      extra_params={"other.yaml": {"note": 'say "hi", then\nleave'}})
    res = lab.run("exp", "show", "--csv", "--delta")
    assert res.code == 0, res.text
    assert res.out.endswith("\r\n") and res.out.splitlines(keepends=True)[0].endswith("\r\n")
    rows = list(csv.DictReader(io.StringIO(res.out, newline="")))
    assert list(rows[0]) == ["name", "created", "commit", "status", "failed_stage", "eval.k",
                             "prep.n", "train.lr", "other.yaml:note", "k", "k delta",
                             "lines", "lines delta"]
    base, high, _two, failed, odd = rows
    assert (base["name"], base["created"], base["status"], base["k delta"]) == (
        "workspace", "", "", "")
    assert base["commit"] == lab.git("rev-parse", "HEAD").strip()
    assert (high["status"], high["train.lr"], high["k"], high["k delta"]) == (
        "done", "0.5", "3", "2")
    assert (failed["status"], failed["failed_stage"]) == ("failed", "train")
    assert odd["train.lr"] == "0.123456789"
    assert odd["other.yaml:note"] == 'say "hi", then\nleave'


def test_markdown_is_a_table_a_ci_can_post(lab: Project) -> None:
    record_experiment(lab, "pipe", extra_params={"other.yaml": {"sep": "a|b"}})
    res = lab.run("exp", "show", "--md", "--delta", "--no-failed")
    assert res.code == 0, res.text
    lines = res.out.splitlines()
    assert lines[0] == ("| name | when | commit | status | eval.k | prep.n | train.lr "
                        "| other.yaml:sep | k | lines |")
    assert lines[1] == "|---|---|---|---|--:|--:|--:|---|--:|--:|"  # numbers to the right
    assert lines[2].startswith("| workspace | - |")
    assert lines[2].endswith("| baseline | 1 | 3 | 0.05 | - | 1 | 4 |")
    assert lines[3].endswith("| done | 3 | 3 | 0.5 | - | 3 (+2) | 4 (+0) |")
    assert lines[-1].endswith("| a\\|b | 1 (+0) | 4 (+0) |")


def test_long_values_are_cut_in_text_only(lab: Project) -> None:
    long = "x" * 60
    record_experiment(lab, "wordy", extra_params={"other.yaml": {"text": long}})
    text = lab.run("exp", "show").out
    assert long not in text and ("x" * 23 + "…") in text
    assert shown(lab)["rows"][-1]["params"]["other.yaml:text"] == long
    assert long in lab.run("exp", "show", "--md").out


def test_one_format_at_a_time(lab: Project) -> None:
    res = lab.run("exp", "show", "--json", "--csv")
    assert res.code == 2 and "choose one output format" in res.err


def test_no_experiments_yet_shows_the_workspace_and_how_to_start(project: Project) -> None:
    chain(project)
    assert project.run("repro").code == 0
    commit(project)
    res = project.run("exp", "show")
    assert res.code == 0, res.text
    rows = table(res.out)
    assert rows[0] == ["name", "when", "commit", "status"]
    assert rows[1][0] == "workspace"
    assert "no experiments yet" in res.out


def test_diff_against_the_workspace_by_default(lab: Project) -> None:
    res = lab.run("exp", "diff", "lr-high")
    assert res.code == 0, res.text
    assert table(res.out) == [["lr-high", "workspace", "delta"],
                              ["params"], ["eval.k", "3", "1", "+2"],
                              ["train.lr", "0.5", "0.05", "+0.45"],
                              ["metrics"], ["k", "3", "1", "+2"]]
    assert "\n  train.lr" in res.out  # keys indented under their section


def test_diff_of_two_experiments_with_all(lab: Project) -> None:
    body = json.loads(lab.run("exp", "diff", "lr-high", "n-two", "--json").out)
    assert (body["a"]["name"], body["b"]["name"]) == ("lr-high", "n-two")
    assert [(e["name"], e["a"], e["b"], e["delta"]) for e in body["entries"]] == [
        ("eval.k", 3, 1, 2), ("prep.n", 3, 2, 1), ("train.lr", 0.5, 0.05, 0.45),
        ("k", 3, 1, 2), ("lines", 4, 3, 1)]
    every = json.loads(lab.run("exp", "diff", "lr-high", "n-two", "--all", "--json").out)
    assert len(every["entries"]) == 6
    rows = table(lab.run("exp", "diff", "lr-high", "n-two", "--all").out)
    assert ["train.epochs", "2", "2", "+0"] in rows


def test_diff_of_a_failed_one_in_markdown(lab: Project) -> None:
    res = lab.run("exp", "diff", "lr-nine", "workspace", "--md")
    assert res.code == 0, res.text
    lines = res.out.splitlines()
    assert lines[0] == "lr-nine failed at stage 'train'"
    assert lines[1] == "|  | key | lr-nine | workspace | delta |"
    assert lines[2] == "|---|---|---|---|---|"
    assert lines[3] == "| param | train.lr | 9 | 0.05 | +8.95 |"


def test_diff_of_equal_ones_says_so(lab: Project) -> None:
    res = lab.run("exp", "diff", "lr-high", "lr-high")
    assert res.code == 0
    assert res.out.strip() == "no params or metrics differ between lr-high and lr-high"


def test_diff_of_an_unknown_name_says_the_closest_and_exits_2(lab: Project) -> None:
    res = lab.run("exp", "diff", "lr-hihg")
    assert res.code == 2
    assert "no experiment 'lr-hihg'" in res.err and "'lr-high'" in res.err
    assert lab.run("exp", "diff", "lr-high", "nope").code == 2


def test_help_has_examples(project: Project) -> None:
    for verb in ("show", "diff"):
        res = project.cli("exp", verb, "--help")
        assert res.code == 0, res.text
        assert "Examples:" in res.out and f"pipeflow exp {verb} " in res.out


def test_the_console_script_prints_the_table(lab: Project) -> None:
    res = lab.cli("exp", "show", "--sort", "-metrics.k")
    assert res.code == 0, res.text
    assert [r[0] for r in table(res.out)[1:]] == ["workspace", "lr-high", "n-two", "lr-nine"]


def test_the_api_returns_rows_and_diffs_as_values(lab: Project) -> None:
    repo = pipeflow.Repo(lab.root)
    rows = repo.experiments(sort="-metrics.k")
    assert [r.name for r in rows] == ["workspace", "lr-high", "n-two", "lr-nine"]
    assert rows[0].baseline and rows[1].metrics == {"k": 3, "lines": 4}
    assert rows[1].params["train.epochs"] == 2  # every column
    assert rows[1].deltas == {"k": 2, "lines": 0}
    assert [r.name for r in repo.experiments(failed=False)] == ["workspace", "lr-high",
                                                                "n-two"]
    found = repo.exp_diff("lr-high")
    assert [(e.column.name, e.delta) for e in found.changed] == [
        ("eval.k", 2), ("train.lr", 0.45), ("k", 2)]
    with pytest.raises(pipeflow.UsageError, match="no experiment"):
        repo.exp_diff("nope")
    with pytest.raises(pipeflow.UsageError, match="cannot sort"):
        repo.experiments(sort="metrics.nope")


def test_a_damaged_experiment_record_is_skipped_with_a_warning(lab: Project) -> None:
    # as a fetch from a remote anyone can write to could bring it
    data = json.dumps({"kind": "experiment", "stage": "", "fingerprint": "", "seq": 1,
                       "chain": "c0ffee00", "prev": None, "format": 1,
                       "experiment": {"id": 5, "name": "bad"}}).encode()
    name = f"00000001-{hashlib.sha256(data).hexdigest()}.json"
    folder = lab.root / ".pipeflow/cache/runs/c0ffee00"
    folder.mkdir()
    (folder / name).write_bytes(data)
    res = lab.run("exp", "show")
    assert res.code == 0, res.text
    assert "warning:" in res.err and name in res.err
    assert [r[0] for r in table(res.out)[1:]] == ["workspace", "lr-high", "n-two", "lr-nine"]
