"""``exp show`` and ``exp diff`` on a real project whose experiment records are real
(appended to the clone's chain and indexed, as ``exp run`` leaves them)."""

from __future__ import annotations

import csv
import io
import json

import pytest

import pipeflow
from tests.conftest import Project
from tests.functional.helpers import chain, commit
from tests.functional.helpers_exp import record_experiment


@pytest.fixture
def lab(project: Project) -> Project:
    """``helpers.chain``, run and committed, with three experiments: two done, one
    failed at train."""
    chain(project)
    assert project.run("repro").code == 0
    commit(project)
    record_experiment(project, "lr-high", overrides={"train.lr": 0.5}, metrics={"lines": 6},
                      ended="2026-01-02T03:00:00.000+00:00")
    record_experiment(project, "lr-low", overrides={"train.lr": 0.01}, metrics={"lines": 3},
                      ended="2026-01-02T04:00:00.000+00:00")
    record_experiment(project, "n-one", overrides={"prep.n": 1}, failed_stage="train",
                      ended="2026-01-02T05:00:00.000+00:00")
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
    assert rows[0] == ["name", "when", "commit", "status", "prep.n", "train.lr", "lines"]
    head = lab.git("rev-parse", "--short=7", "HEAD").strip()
    assert [r[0] for r in rows[1:]] == ["workspace", "lr-high", "lr-low", "n-one"]
    assert rows[1][1:] == ["-", head, "baseline", "3", "0.05", "4"]
    assert rows[2][2:] == [head, "done", "3", "0.5", "6"]
    assert rows[4][2:] == [head, "failed (train)", "1", "0.05", "-"]
    # the time is the record's, shown in local time: only its shape is fixed
    assert len(rows[2][1]) == len("2026-01-02 03:00")


def test_show_json_has_plain_values_and_the_baseline_flag(lab: Project) -> None:
    body = shown(lab)
    assert body["schema"] == 1
    assert [c["name"] for c in body["columns"]] == ["prep.n", "train.lr", "lines"]
    base, high, _low, failed = body["rows"]
    assert base["baseline"] and base["name"] == "workspace" and base["status"] is None
    assert base["params"] == {"prep.n": 3, "train.lr": 0.05}
    assert base["metrics"] == {"lines": 4}
    assert base["commit"] == lab.git("rev-parse", "HEAD").strip()
    assert not high["baseline"]
    assert high["created"] == "2026-01-02T03:00:00.000+00:00"
    assert (high["status"], high["params"]["train.lr"], high["metrics"], high["deltas"]) == (
        "done", 0.5, {"lines": 6}, {"lines": 2})
    assert (failed["status"], failed["failed_stage"], failed["metrics"]) == (
        "failed", "train", {})


def test_show_sorts_both_ways_with_missing_values_last(lab: Project) -> None:
    def order(key: str) -> list[str]:
        return [r["name"] for r in shown(lab, "--sort", key)["rows"]]

    assert order("metrics.lines") == ["workspace", "lr-low", "lr-high", "n-one"]
    assert order("-metrics.lines") == ["workspace", "lr-high", "lr-low", "n-one"]
    assert order("params.train.lr") == ["workspace", "lr-low", "n-one", "lr-high"]
    assert order("-created") == ["workspace", "n-one", "lr-low", "lr-high"]
    assert order("-metrics.metrics.json:lines")[1] == "lr-high"


def test_an_unknown_sort_key_says_the_closest_and_exits_2(lab: Project) -> None:
    res = lab.run("exp", "show", "--sort", "-metrics.line")
    assert res.code == 2
    assert "cannot sort by '-metrics.line'" in res.err
    assert "did you mean 'metrics.lines'" in res.err


def test_delta_shows_each_metric_against_the_workspace(lab: Project) -> None:
    rows = table(lab.run("exp", "show", "--delta").out)
    assert rows[1][-1] == "4"
    assert rows[2][-1] == "6 (+2)"
    assert rows[3][-1] == "3 (-1)"
    assert rows[4][-1] == "-"


def test_all_shows_every_params_key_and_metric(lab: Project) -> None:
    body = shown(lab, "--all")
    assert [c["name"] for c in body["columns"]] == [
        "eval.k", "prep.n", "train.epochs", "train.lr", "k", "lines"]
    assert body["rows"][0]["params"] == {"eval.k": 1, "prep.n": 3, "train.epochs": 2,
                                         "train.lr": 0.05}


def test_no_failed_leaves_them_out(lab: Project) -> None:
    body = shown(lab, "--no-failed")
    assert [r["name"] for r in body["rows"]] == ["workspace", "lr-high", "lr-low"]
    assert [c["name"] for c in body["columns"]] == ["train.lr", "lines"]


def test_the_baseline_is_the_params_files_now_and_the_lock_metrics(lab: Project) -> None:
    lab.params({"prep": {"n": 2}, "train": {"lr": 0.5, "epochs": 2}, "eval": {"k": 1}})
    base = shown(lab, "--all")["rows"][0]
    assert base["params"]["prep.n"] == 2  # edited, not yet run: what params diff says now
    assert base["params"]["train.lr"] == 0.5
    assert base["metrics"] == {"k": 1, "lines": 4}  # what the lock holds
    assert shown(lab)["rows"][1]["deltas"] == {"lines": 2}


def test_other_files_and_shared_metric_keys_are_named_with_their_file(lab: Project) -> None:
    record_experiment(lab, "more", extra_params={"conf/extra.yaml": {"opt.beta": 0.9}},
                      extra_metrics={"eval/scores.json": {"k": 2}})
    body = shown(lab)
    assert [c["name"] for c in body["columns"]] == [
        "prep.n", "train.lr", "conf/extra.yaml:opt.beta", "eval/scores.json:k", "lines"]
    assert body["rows"][-1]["params"]["conf/extra.yaml:opt.beta"] == 0.9
    assert shown(lab, "--sort", "-metrics.eval/scores.json:k")["rows"][1]["name"] == "more"
    res = lab.run("exp", "show", "--sort", "metrics.k")
    assert res.code == 2 and "metrics.metrics.json:k" in res.err


def test_csv_is_rfc_4180_with_every_digit(lab: Project) -> None:
    record_experiment(lab, "odd", overrides={"train.lr": 0.123456789},
                      extra_params={"other.yaml": {"note": 'say "hi", then\nleave'}})
    res = lab.run("exp", "show", "--csv", "--delta")
    assert res.code == 0, res.text
    assert res.out.endswith("\r\n") and "\r\n" in res.out.splitlines(keepends=True)[0]
    rows = list(csv.reader(io.StringIO(res.out, newline="")))
    assert rows[0] == ["name", "created", "commit", "status", "failed_stage", "prep.n",
                       "train.lr", "other.yaml:note", "lines", "lines delta"]
    assert rows[1][:4] == ["workspace", "", lab.git("rev-parse", "HEAD").strip(), ""]
    assert rows[2][3:] == ["done", "", "3", "0.5", "", "6", "2"]
    assert rows[4][3:5] == ["failed", "train"]
    assert rows[5][6:8] == ["0.123456789", 'say "hi", then\nleave']


def test_markdown_is_a_table_a_ci_can_post(lab: Project) -> None:
    record_experiment(lab, "pipe", extra_params={"other.yaml": {"sep": "a|b"}})
    res = lab.run("exp", "show", "--md", "--delta")
    assert res.code == 0, res.text
    lines = res.out.splitlines()
    assert lines[0] == "| name | when | commit | status | prep.n | train.lr | other.yaml:sep " \
                       "| lines |"
    assert lines[1] == "|---|---|---|---|---|---|---|---|"
    assert lines[2].startswith("| workspace | - |") and lines[2].endswith("| 3 | 0.05 | - | 4 |")
    assert lines[3].endswith("| done | 3 | 0.5 | - | 6 (+2) |")
    assert lines[-1].endswith("| a\\|b | 4 (+0) |")


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
                              ["params"], ["train.lr", "0.5", "0.05", "+0.45"],
                              ["metrics"], ["lines", "6", "4", "+2"]]
    assert "\n  train.lr" in res.out  # keys indented under their section


def test_diff_of_two_experiments_with_all(lab: Project) -> None:
    body = json.loads(lab.run("exp", "diff", "lr-high", "lr-low", "--json").out)
    assert (body["a"]["name"], body["b"]["name"]) == ("lr-high", "lr-low")
    assert [(e["name"], e["a"], e["b"], e["delta"]) for e in body["entries"]] == [
        ("train.lr", 0.5, 0.01, 0.49), ("lines", 6, 3, 3)]
    every = json.loads(lab.run("exp", "diff", "lr-high", "lr-low", "--all", "--json").out)
    assert len(every["entries"]) == 6
    rows = table(lab.run("exp", "diff", "lr-high", "lr-low", "--all").out)
    assert ["eval.k", "1", "1", "+0"] in rows


def test_diff_of_a_failed_one_in_markdown(lab: Project) -> None:
    res = lab.run("exp", "diff", "n-one", "workspace", "--md")
    assert res.code == 0, res.text
    lines = res.out.splitlines()
    assert lines[0] == "n-one failed at stage 'train'"
    assert lines[1] == "|  | key | n-one | workspace | delta |"
    assert "| param | prep.n | 1 | 3 | -2 |" in lines
    assert "| metric | lines | - | 4 |  |" in lines


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
    res = lab.cli("exp", "show", "--sort", "-metrics.lines")
    assert res.code == 0, res.text
    assert [r[0] for r in table(res.out)[1:]] == ["workspace", "lr-high", "lr-low", "n-one"]


def test_the_api_returns_rows_and_diffs_as_values(lab: Project) -> None:
    repo = pipeflow.Repo(lab.root)
    rows = repo.experiments(sort="-metrics.lines")
    assert [r.name for r in rows] == ["workspace", "lr-high", "lr-low", "n-one"]
    assert rows[0].baseline and rows[1].metrics["lines"] == 6
    assert rows[1].params["train.epochs"] == 2  # every column
    assert rows[1].deltas == {"lines": 2, "k": 0}
    assert [r.name for r in repo.experiments(failed=False)] == ["workspace", "lr-high",
                                                                "lr-low"]
    found = repo.exp_diff("lr-high")
    assert [(e.column.name, e.delta) for e in found.changed] == [("train.lr", 0.45),
                                                                 ("lines", 2)]
    with pytest.raises(pipeflow.UsageError, match="no experiment"):
        repo.exp_diff("nope")
    with pytest.raises(pipeflow.UsageError, match="cannot sort"):
        repo.experiments(sort="metrics.nope")
