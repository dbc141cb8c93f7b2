"""The registry snapshot as a reader meets it: whatever a remote holds, a clear error."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeflow.errors import PipeflowError, StorageError, UsageError
from pipeflow.registry.snapshot import FORMAT, KIND, parse

V1, V2 = "a" * 32, "b" * 32


def body(**models: object) -> bytes:
    return json.dumps({"format": FORMAT, "kind": KIND, "body": {"models": models},
                       "sig": None}).encode()


def wine() -> dict[str, object]:
    return {"path": "models/m.pkl", "aliases": {"production": V1, "canary": V2},
            "versions": [{"label": "v1", "hash": V1, "available": True},
                         {"label": "v2", "hash": V2, "available": True}]}


def test_versions_resolve_by_label_prefix_and_alias() -> None:
    model = parse(body(wine=wine()), "snap").model("wine")
    assert model.resolve("production")[0].label == "v1"
    assert model.resolve("production")[1] == "production"
    assert model.resolve("v2")[0].hash == V2
    assert model.resolve("bbbb")[0].label == "v2"
    assert parse(body(wine=wine()), "snap").model("models/m.pkl").name == "wine"
    with pytest.raises(UsageError, match="did you mean 'canary'"):
        model.resolve("canar")
    with pytest.raises(UsageError, match="models there: wine"):
        parse(body(wine=wine()), "snap").model("beer")


def test_format_1_is_still_read_and_a_newer_format_says_so() -> None:
    old = json.dumps({"format": 1, "kind": KIND, "models": {"wine": wine()}}).encode()
    assert parse(old, "snap").model("wine").resolve("v2")[0].hash == V2
    with pytest.raises(StorageError, match="format 3 not supported \\(a newer pipeflow"):
        parse(json.dumps({"format": 3, "kind": KIND}).encode(), "snap")


@pytest.mark.parametrize("data", [b"", b"[]", b"{", json.dumps({"kind": KIND}).encode(),
                                  body(wine={"path": 3}),
                                  body(wine={**wine(), "path": "../../etc/passwd"}),
                                  body(wine={**wine(), "aliases": {"p": "../../etc"}}),
                                  json.dumps({"format": FORMAT, "kind": KIND,
                                              "body": []}).encode(),
                                  json.dumps({"format": FORMAT, "kind": KIND, "sig": "x",
                                              "body": {"models": {}}}).encode(),
                                  json.dumps({"format": True, "kind": KIND}).encode(),
                                  body(wine={**wine(), "moves": {"production": 3}})])
def test_what_is_not_a_snapshot_is_a_storage_error(data: bytes) -> None:
    with pytest.raises(StorageError, match="snap: "):
        parse(data, "snap")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4), max_leaves=20)


@given(st.dictionaries(st.text(max_size=12), json_values, max_size=3))
def test_any_models_mapping_parses_or_fails_clearly(models: dict[str, object]) -> None:
    try:
        snapshot = parse(body(**models), "snap")
    except StorageError:
        return
    for model in snapshot.models.values():
        for version in model.versions:
            assert len(version.hash) == 32
        try:
            model.resolve("production")
        except PipeflowError as exc:  # a usage error, never anything else
            assert exc.message
