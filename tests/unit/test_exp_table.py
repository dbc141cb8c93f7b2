"""``exp show``/``exp diff`` as values (pipeflow.experiments.table), on experiments built
here."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeflow.errors import UsageError
from pipeflow.experiments.table import (
    ColumnKind,
    build,
    columns,
    delta,
    diff,
    resolve_sort,
    same,
    sort_experiments,
)
from pipeflow.lineage.experiments import Experiment, ExpStatus

BASE_PARAMS = {"params.yaml": {"train.C": 1.0, "train.seed": 7}}
BASE_METRICS = {"scores.json": {"accuracy": 0.91, "loss": 0.3}}


def exp(name: str, *, params: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None, failed: str | None = None,
        created: str = "2026-01-01T00:00:00.000+00:00", files: dict[str, Any] | None = None,
        ) -> Experiment:
    """An experiment of the baseline's params with ``params`` (params.yaml keys) set."""
    return Experiment(
        id=f"id-{name}", name=name, status=ExpStatus.FAILED if failed else ExpStatus.DONE,
        params={"params.yaml": {**BASE_PARAMS["params.yaml"], **(params or {})},
                **(files or {})},
        metrics={} if metrics is None else {"scores.json": metrics},
        failed_stage=failed, created=created, commit="c0ffee" * 6)


BASELINE = Experiment(id="", name="workspace", status=ExpStatus.DONE, params=BASE_PARAMS,
                      metrics=BASE_METRICS, commit="abc1234" * 5)


def names(table: Any) -> list[str]:
    return [r.name for r in table.rows]


# --- columns ---------------------------------------------------------------------------


def test_params_of_params_yaml_go_by_key_others_by_file_and_key() -> None:
    other = exp("a", files={"conf/other.yaml": {"opt.lr": 0.1}})
    cols = columns([BASELINE, other])
    assert [c.name for c in cols if c.kind is ColumnKind.PARAM] == [
        "train.C", "train.seed", "conf/other.yaml:opt.lr"]


def test_a_metric_goes_by_its_key_unless_two_files_have_it() -> None:
    extra = Experiment(id="x", name="x", status=ExpStatus.DONE,
                       metrics={"eval/more.json": {"accuracy": 0.5, "f1": 0.2}})
    cols = [c for c in columns([BASELINE, extra]) if c.kind is ColumnKind.METRIC]
    assert [c.name for c in cols] == ["eval/more.json:accuracy", "f1",
                                      "scores.json:accuracy", "loss"]


def test_only_the_columns_where_an_experiment_differs_unless_every() -> None:
    runs = [exp("a", params={"train.C": 10.0}, metrics={"accuracy": 0.93, "loss": 0.3}),
            exp("b", params={"train.C": 0.1}, metrics={"accuracy": 0.9, "loss": 0.3})]
    table = build(BASELINE, runs)
    assert [c.name for c in table.columns] == ["train.C", "accuracy"]
    assert [c.name for c in build(BASELINE, runs, every=True).columns] == [
        "train.C", "train.seed", "accuracy", "loss"]


def test_a_failed_experiment_without_metrics_makes_no_metric_column_differ() -> None:
    table = build(BASELINE, [exp("a", params={"train.C": 3.0}, failed="train")])
    assert [c.name for c in table.columns] == ["train.C"]
    assert table.rows[1].status == "failed"
    assert table.rows[1].failed_stage == "train"
    assert table.rows[1].metrics == {}


def test_true_is_not_one_and_one_is_one_point_zero() -> None:
    assert not same(True, 1)
    assert same(1, 1.0)
    assert not same("1", 1)
    runs = [exp("a", params={"train.seed": True})]
    assert [c.name for c in build(BASELINE, runs).columns] == ["train.seed"]


def test_the_sort_column_is_shown_even_when_nothing_differs_there() -> None:
    runs = [exp("a", params={"train.C": 2.0}, metrics={"accuracy": 0.91, "loss": 0.3})]
    table = build(BASELINE, runs, sort="-metrics.loss")
    assert [c.name for c in table.columns] == ["train.C", "loss"]


def test_rows_baseline_first_with_values_and_deltas() -> None:
    runs = [exp("a", params={"train.C": 10.0}, metrics={"accuracy": 0.93, "loss": 0.25})]
    base, row = build(BASELINE, runs).rows
    assert base.baseline and base.name == "workspace" and base.status is None
    assert base.params == {"train.C": 1.0}
    assert base.deltas == {}
    assert not row.baseline and row.status == "done" and row.id == "id-a"
    assert row.params == {"train.C": 10.0}
    assert row.metrics == {"accuracy": 0.93, "loss": 0.25}
    assert row.deltas == {"accuracy": 0.02, "loss": -0.05}  # no float noise


def test_no_failed_leaves_the_failed_experiments_out() -> None:
    runs = [exp("a", metrics={"accuracy": 0.5}), exp("b", failed="train")]
    assert names(build(BASELINE, runs, failed=False)) == ["workspace", "a"]
    assert names(build(BASELINE, runs)) == ["workspace", "a", "b"]


# --- deltas ----------------------------------------------------------------------------


def test_delta_of_numbers_only() -> None:
    assert delta(0.93, 0.91) == 0.02
    assert delta(5, 3) == 2 and isinstance(delta(5, 3), int)
    assert delta(True, 1) is None
    assert delta("a", 1) is None
    assert math.isinf(delta(math.inf, 1.0) or 0)


# --- sorting ---------------------------------------------------------------------------


def test_sort_by_a_metric_both_ways_missing_last_baseline_first() -> None:
    runs = [exp("low", metrics={"accuracy": 0.8}), exp("none", failed="train"),
            exp("high", metrics={"accuracy": 0.95}), exp("mid", metrics={"accuracy": 0.9})]
    assert names(build(BASELINE, runs, sort="metrics.accuracy")) == [
        "workspace", "low", "mid", "high", "none"]
    assert names(build(BASELINE, runs, sort="-metrics.accuracy")) == [
        "workspace", "high", "mid", "low", "none"]


def test_sort_by_a_param_created_and_name() -> None:
    runs = [exp("b", params={"train.C": 10.0}, created="2026-01-01T02:00:00.000+00:00"),
            exp("a", params={"train.C": 0.1}, created="2026-01-01T03:00:00.000+00:00"),
            exp("c", params={"train.C": 1.0}, created="")]
    assert names(build(BASELINE, runs, sort="params.train.C"))[1:] == ["a", "c", "b"]
    assert names(build(BASELINE, runs, sort="-created"))[1:] == ["a", "b", "c"]
    assert names(build(BASELINE, runs, sort="created"))[1:] == ["b", "a", "c"]
    assert names(build(BASELINE, runs, sort="name"))[1:] == ["a", "b", "c"]


def test_sort_accepts_the_file_and_key_spelling() -> None:
    cols = columns([BASELINE])
    col, descending = resolve_sort("-metrics.scores.json:accuracy", cols)
    assert not isinstance(col, str) and col.name == "accuracy" and descending
    col, descending = resolve_sort("params.params.yaml:train.C", cols)
    assert not isinstance(col, str) and col.name == "train.C" and not descending


def test_an_unknown_sort_key_is_a_usage_error_with_the_closest_names() -> None:
    with pytest.raises(UsageError, match=r"cannot sort by 'metrics\.acuracy'") as err:
        build(BASELINE, [], sort="metrics.acuracy")
    assert "metrics.accuracy" in (err.value.hint or "")
    with pytest.raises(UsageError) as err:
        build(BASELINE, [], sort="zzz")
    assert "sort by one of: created, name, params.train.C" in (err.value.hint or "")


values = st.one_of(st.none(), st.integers(-5, 5), st.floats(allow_nan=True, width=16),
                   st.text(max_size=2))


@given(st.lists(values, max_size=8), st.booleans())
def test_a_sort_keeps_every_row_puts_missing_last_and_orders_the_rest(
        found: list[Any], descending: bool) -> None:
    runs = [exp(f"e{i}", metrics=None if v is None else {"accuracy": v})
            for i, v in enumerate(found)]
    cols = columns([BASELINE, *runs])
    by = next(c for c in cols if c.name == "accuracy")
    ordered = sort_experiments(runs, by, descending)
    assert sorted(e.name for e in ordered) == sorted(e.name for e in runs)
    got = [by.get(e) if by.has(e) else None for e in ordered]
    gone = [v is None or (isinstance(v, float) and math.isnan(v)) for v in got]
    assert gone == sorted(gone)  # every missing value after every present one
    keys = [(0, float(v)) if isinstance(v, int | float) else (1, v)
            for v, g in zip(got, gone, strict=True) if not g]
    assert keys == sorted(keys, reverse=descending)


# --- two side by side ------------------------------------------------------------------


def test_diff_lists_every_key_of_either_and_what_changed() -> None:
    a = exp("a", params={"train.C": 10.0}, metrics={"accuracy": 0.93, "loss": 0.3})
    b = exp("b", failed="train")
    found = diff(a, b)
    assert [(e.column.name, e.a, e.b) for e in found.changed] == [
        ("train.C", 10.0, 1.0), ("accuracy", 0.93, None), ("loss", 0.3, None)]
    changed = {e.column.name: (e.has_a, e.has_b, e.delta) for e in found.changed}
    assert changed == {"train.C": (True, True, 9.0), "accuracy": (True, False, None),
                       "loss": (True, False, None)}
    assert {e.column.name for e in found.entries} == {"train.C", "train.seed", "accuracy",
                                                      "loss"}
    body = found.to_json()
    assert body["a"]["name"] == "a" and body["b"]["failed_stage"] == "train"
    assert [e["name"] for e in body["entries"]] == ["train.C", "accuracy", "loss"]
    assert len(found.to_json(every=True)["entries"]) == 4


def test_diff_with_the_workspace_says_no_status_for_it() -> None:
    body = diff(exp("a", metrics=dict(BASE_METRICS["scores.json"])), BASELINE).to_json()
    assert body["b"] == {"name": "workspace", "id": None, "status": None,
                         "failed_stage": None, "commit": BASELINE.commit}
    assert body["entries"] == []


def test_a_failed_experiment_shows_the_values_it_set() -> None:
    # its failed stage's params never reached the lock its params come from
    failed = Experiment(id="f", name="f", status=ExpStatus.FAILED, failed_stage="train",
                        overrides={"params.yaml": {"train.C": 100.0}}, params=BASE_PARAMS)
    _base, row = build(BASELINE, [failed]).rows
    assert row.params == {"train.C": 100.0}
    assert diff(failed, BASELINE).changed[0].a == 100.0


@given(st.text(max_size=30))
def test_any_sort_text_names_a_column_or_is_a_usage_error(spec: str) -> None:
    cols = columns([BASELINE])
    try:
        by, _descending = resolve_sort(spec, cols)
    except UsageError as exc:
        assert spec in exc.message
    else:
        assert by in ("created", "name") or by in cols
