"""Source data against the lock: which stages read a source, and the error repro stops with."""

from __future__ import annotations

from pipeflow.errors import Location, MissingSourceData
from pipeflow.lock.lockfile import FileEntry
from pipeflow.planning.graph import build_graph
from pipeflow.planning.sourcedata import SourceState, blocking, missing_error, reads
from pipeflow.spec.model import Out, Pipeline, Stage

LOCKED = "025f466a" + "0" * 24
OTHER = "1252ac1e" + "0" * 24


def _pipeline() -> Pipeline:
    def stage(name: str, deps: tuple[str, ...], outs: tuple[str, ...]) -> Stage:
        return Stage(name=name, cmd=(f"run {name}",), deps=deps,
                     outs=tuple(Out(p) for p in outs), location=Location("pipeline.yaml", 1))

    return Pipeline({
        "whole": stage("whole", ("data",), ("a.txt",)),
        "one": stage("one", ("data/raw/x.csv",), ("b.txt",)),
        "other": stage("other", ("data/raw-2.csv",), ("c.txt",)),
    })


def _state(path: str, now: str | None, by: str | None = None) -> SourceState:
    return SourceState(path, FileEntry(path, LOCKED, 3), "not-in-cache", now, by,
                       "f" * 64 if by else None)


def test_a_stage_reads_a_source_through_a_folder_either_way() -> None:
    graph = build_graph(_pipeline())
    assert reads(graph, ["whole"], "data/raw")  # a folder dep holding the source
    assert reads(graph, ["one"], "data/raw")  # a file inside a folder source
    assert reads(graph, ["one"], "data/raw/x.csv")
    assert not reads(graph, ["other"], "data/raw")  # a shared prefix is not a folder
    assert not reads(graph, ["one", "other"], "data/raw.csv")
    states = [_state("data/raw", None), _state("data/raw-2.csv", OTHER)]
    assert [s.path for s in blocking(states, graph, ["one"])] == ["data/raw"]


def test_the_error_names_path_hash_and_both_ways_out() -> None:
    err = missing_error([_state("data/raw.csv", OTHER, "alice@example.com")])
    assert isinstance(err, MissingSourceData) and err.exit_code == 1
    assert err.paths == ("data/raw.csv",)
    assert "data/raw.csv: pipeline.lock has 025f466a, recorded by alice@example.com" in str(err)
    assert "other data, 1252ac1e" in str(err)
    assert err.hint is not None
    assert "`pipeflow pull`" in err.hint and "ask alice@example.com to `pipeflow push`" in err.hint
    assert "`pipeflow add data/raw.csv`" in err.hint


def test_an_absent_source_cannot_be_added_and_a_pulled_remote_is_named() -> None:
    err = missing_error([_state("data/raw.csv", None)], pulled_from="origin")
    assert "remote 'origin' lacks it too" in err.message
    assert err.hint is not None
    assert "pipeflow add" not in err.hint and "`git log pipeline.lock`" in err.hint
