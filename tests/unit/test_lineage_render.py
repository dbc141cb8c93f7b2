"""Lineage renderers: text tree, JSON (against its schema), dot, mermaid, OpenLineage."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipeflow.lineage.graph import Lineage, trace
from pipeflow.lineage.render import FORMATS, render, run_uuid, to_json, to_openlineage
from tests.unit.test_lineage_graph import History, h

SCHEMA = json.loads((Path(__file__).parents[2] / "docs/lineage.schema.json").read_text())


@pytest.fixture
def lineage(tmp_path: Path) -> Lineage:
    hist = History(tmp_path)
    hist.add('data/we"ird <raw>.csv', h("raw"))
    hist.run("prepare", {'data/we"ird <raw>.csv': h("raw")}, {"clean": h("clean")},
             params={"prep.n": 3}, cmd='cut -d "," -f1')
    hist.run("train", {"clean": h("clean"), "notes.txt": h("notes")}, {"model": h("m")},
             params={"lr": 0.1}, code={"train.py": h("code")})
    return trace(hist.index, "model", h("m"))


def test_text_is_a_tree_with_what_each_run_recorded(lineage: Lineage) -> None:
    text = render(lineage, "text")
    lines = text.splitlines()
    assert lines[0].startswith(f"model  v1 ({h('m')[:8]})")
    assert re.match(r"└── train · run [0-9a-f]{12} · 2024-01-01 00:00:03 UTC · 0\.50 s", lines[1])
    for expected in ("command  make train", "params   params.yaml: lr=0.1",
                     f"code     train.py ({h('code')[:8]})",
                     "env      platform=linux-x86_64, python=cpython-3.11.7",
                     "git      c0ffeec0ffee (modified: params.yaml)",
                     "by       ann@example.com (unverified) on box, pipeflow 0.1.0"):
        assert f"    {expected}" in lines
    assert any(line.startswith("    ├── clean  v1") for line in lines)
    assert any(line.startswith("    └── notes.txt") and "UNTRACKED INPUT" in line
               for line in lines)
    assert any("source data, added by ann@example.com" in line for line in lines)
    assert "problem" not in text.lower()


def test_json_validates_against_the_documented_schema(lineage: Lineage) -> None:
    body = json.loads(render(lineage, "json"))
    jsonschema.Draft202012Validator(SCHEMA).validate(body)
    assert body["schema"] == 1 and body["target"] == body["artifacts"][0]["id"]
    ids = {a["id"] for a in body["artifacts"]}
    for run in body["runs"]:
        assert set(run["inputs"]) <= ids
    assert {a["status"] for a in body["artifacts"]} == {"output", "source", "untracked"}
    assert to_json(lineage) == body  # the same data as the API's


def test_dot_declares_every_node_it_links_and_escapes_labels(lineage: Lineage) -> None:
    text = render(lineage, "dot")
    assert text.startswith("digraph lineage {") and text.rstrip().endswith("}")
    declared = set(re.findall(r"^  ([ar]\d+) \[", text, re.M))
    edges = re.findall(r"^  ([ar]\d+) -> ([ar]\d+);", text, re.M)
    assert len(declared) == len(lineage.artifacts) + len(lineage.runs)
    assert edges and all(a in declared and b in declared for a, b in edges)
    assert 'label="data/we\\"ird <raw>.csv' in text


def test_mermaid_is_a_flowchart_with_escaped_labels(lineage: Lineage) -> None:
    text = render(lineage, "mermaid")
    lines = text.splitlines()
    assert lines[0] == "flowchart BT"
    edges = [line for line in lines if "-->" in line]
    assert len(edges) == 6  # model, clean, raw from their producers; 3 inputs into runs
    assert "we#quot;ird #lt;raw#gt;.csv" in text
    for line in lines[1:]:
        if "-->" not in line:
            label = line.split('"', 1)[1].rsplit('"', 1)[0]
            assert '"' not in label


def test_openlineage_events_follow_the_run_event_shape(lineage: Lineage) -> None:
    lines = render(lineage, "openlineage").splitlines()
    events: list[dict[str, Any]] = [json.loads(line) for line in lines]
    assert [e["job"]["name"] for e in events] == ["prepare", "train"]  # oldest first
    for event in events:
        assert event["eventType"] == "COMPLETE"
        assert event["schemaURL"].endswith("OpenLineage.json#/$defs/RunEvent")
        assert event["producer"].startswith("https://")
        assert event["job"]["namespace"] == "pipeflow"
        uuid.UUID(event["run"]["runId"])
        for facet_name, facet in event["run"]["facets"].items():
            assert facet_name.startswith("pipeflow_")
            definition = facet["_schemaURL"].rsplit("#/$defs/", 1)[1]
            jsonschema.validate(facet, {**SCHEMA["$defs"][definition], "$defs": SCHEMA["$defs"]})
        for dataset in event["inputs"] + event["outputs"]:
            assert dataset["namespace"] == "file"
            assert dataset["facets"]["version"]["datasetVersion"]
            assert "_producer" in dataset["facets"]["pipeflow_version"]
    train = events[1]
    assert train["run"]["facets"]["pipeflow_params"]["params"] == {"params.yaml": {"lr": 0.1}}
    assert [d["name"] for d in train["inputs"]] == ["clean", "notes.txt"]
    assert train["outputs"][0]["facets"]["pipeflow_version"]["label"] == "v1"
    record = train["run"]["facets"]["pipeflow_fingerprint"]["record"]
    assert train["run"]["runId"] == run_uuid(record) == to_openlineage(lineage)[1]["run"]["runId"]


def test_every_format_renders(lineage: Lineage) -> None:
    for fmt in FORMATS:
        assert render(lineage, fmt).endswith("\n")
    with pytest.raises(ValueError):
        render(lineage, "svg")


def test_a_run_made_for_an_experiment_shows_what_it_set(lineage: Lineage) -> None:
    from dataclasses import replace

    from pipeflow.lineage.model import ExperimentMark

    mark = ExperimentMark("3f2a9c01d2e4ff", "lr-high",
                          {"params.yaml": {"lr": 10, "epochs": 3}})
    runs = {i: replace(r, experiment=mark) if r.stage == "train" else r
            for i, r in lineage.runs.items()}
    marked = replace(lineage, runs=runs)
    lines = [line.strip() for line in render(marked, "text").splitlines()]
    assert ("exp      lr-high (id 3f2a9c01d2e4); also set, not read by this stage: "
            "epochs=3") in lines
    # the value the run read, on the params line
    assert "params   params.yaml: lr = 0.1 (set for experiment lr-high)" in lines
    assert not any(line.startswith("params   params.yaml: lr=") for line in lines)
    body = json.loads(render(marked, "json"))
    jsonschema.Draft202012Validator(SCHEMA).validate(body)
    assert [r["experiment"] for r in body["runs"] if r["experiment"]] == [
        {"id": "3f2a9c01d2e4ff", "name": "lr-high",
         "set": {"params.yaml": {"lr": 10, "epochs": 3}}}]
    assert "experiment lr-high" in render(marked, "dot")
