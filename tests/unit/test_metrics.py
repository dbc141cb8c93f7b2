"""Metrics files: flat dotted keys of their scalar values."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeflow.errors import StageFailed
from pipeflow.metrics import flatten_scalars, read_metrics


def test_flatten_nested_mappings_and_lists() -> None:
    data = {"acc": 0.9, "per_class": {"cat": {"f1": 0.8}, "dog": {"f1": 0.7}},
            "losses": [1.5, {"v": 0.5}], "name": "run", "ok": True, "none": None}
    assert flatten_scalars(data) == {
        "acc": 0.9, "per_class.cat.f1": 0.8, "per_class.dog.f1": 0.7,
        "losses.0": 1.5, "losses.1.v": 0.5, "name": "run", "ok": True, "none": None,
    }


def test_flatten_drops_non_scalars_and_stringifies_keys() -> None:
    import datetime

    data = {"when": datetime.date(2024, 1, 2), 1: {"true": 2}, "empty": {}, "nil": []}
    assert flatten_scalars(data) == {"1.true": 2}


def test_flatten_top_level_scalar_and_list() -> None:
    assert flatten_scalars(0.5) == {}
    assert flatten_scalars([3, 4]) == {"0": 3, "1": 4}
    assert flatten_scalars(7, "x") == {"x": 7}


def test_read_json_and_yaml_sorted(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text('{"b": 1, "a": {"z": 2.5, "y": null}}')
    (tmp_path / "m.yaml").write_text("loss: 0.25\nacc: 0.75\n")
    got = read_metrics(tmp_path / "m.json", "eval", "m.json")
    assert list(got.items()) == [("a.y", None), ("a.z", 2.5), ("b", 1)]
    assert list(read_metrics(tmp_path / "m.yaml", "eval", "m.yaml").items()) == [
        ("acc", 0.75), ("loss", 0.25)
    ]


def test_empty_yaml_metrics(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("")
    assert read_metrics(tmp_path / "m.yaml", "eval", "m.yaml") == {}


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [("m.json", "{acc: 1", "JSON"), ("M.JSON", "{acc", "JSON"), ("m.yaml", "a: [1", "YAML")],
)
def test_unreadable_metrics_fail_the_stage(tmp_path: Path, name: str, text: str,
                                          kind: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(StageFailed) as err:
        read_metrics(tmp_path / name, "evaluate", f"out/{name}")
    assert err.value.stage == "evaluate"
    assert f"stage 'evaluate' failed: metrics file 'out/{name}' is not valid {kind}: " in str(
        err.value
    )


def test_metrics_path_that_is_a_folder_fails_the_stage(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    with pytest.raises(StageFailed, match="cannot read metrics file 'metrics': "):
        read_metrics(tmp_path / "metrics", "evaluate", "metrics")
