"""RunIndex: the questions gc asks of the lineage index (no SQL outside it)."""

from __future__ import annotations

from pathlib import Path

from pipeflow.records.index import RunOutput
from tests.unit.test_lineage_graph import History, h


def test_folder_hashes_and_outputs_since(tmp_path: Path) -> None:
    hist = History(tmp_path)
    first = hist.run("a", {}, {"model": h("m1"), "log": h("l1")}, isdir=("model",))
    second = hist.run("b", {}, {"out": h("o1")})
    hist.run("c", {}, {"x": h("x1")}, exit_status=1)  # a failed run has no outputs
    assert hist.index.folder_hashes() == {h("m1")}
    assert sorted(hist.index.outputs_since(first.body.ended), key=lambda o: o.path) == [
        RunOutput(h("l1"), False, "log", first.id),
        RunOutput(h("m1"), True, "model", first.id),
        RunOutput(h("o1"), False, "out", second.id),
    ]
    assert hist.index.outputs_since(second.body.ended) == [
        RunOutput(h("o1"), False, "out", second.id)]
    assert hist.index.outputs_since("2999-01-01T00:00:00+00:00") == []
