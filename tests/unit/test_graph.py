"""The stage DAG: producers, edges, overlap/cycle checks, targets, selection, cached order."""

from __future__ import annotations

import heapq
import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeflow.errors import Location, SpecError, UsageError
from pipeflow.planning.graph import (
    Graph,
    build_graph,
    check_deps_exist,
    resolve_targets,
    select,
    source_deps_missing,
)
from pipeflow.spec.model import Out, Pipeline, Stage


def stage(
    name: str, deps: tuple[str, ...] = (), outs: tuple[str, ...] = (), line: int = 1
) -> Stage:
    return Stage(
        name=name,
        cmd=(f"run {name}",),
        deps=deps,
        outs=tuple(Out(p) for p in outs),
        location=Location("pipeline.yaml", line, 3),
    )


def pipeline(*stages: Stage) -> Pipeline:
    return Pipeline(stages={s.name: s for s in stages})


def graph(*stages: Stage) -> Graph:
    return build_graph(pipeline(*stages))


# producers and edges --------------------------------------------------------------


def test_producers_map_each_output_to_its_stage() -> None:
    g = graph(stage("a", outs=("x.csv", "models")), stage("b", deps=("x.csv",), outs=("y",)))
    assert g.producers == {"x.csv": "a", "models": "a", "y": "b"}
    assert g.producer_of("x.csv") == "a"
    assert g.producer_of("models/deep/model.pkl") == "a"
    assert g.producer_of("models2") is None
    assert g.producer_of("raw.csv") is None


def test_edge_for_exact_path() -> None:
    g = graph(stage("prep", outs=("data/clean.csv",)), stage("train", deps=("data/clean.csv",)))
    assert g.edges() == [("prep", "train")]
    assert g.upstream == {"prep": (), "train": ("prep",)}
    assert g.downstream == {"prep": ("train",), "train": ()}


def test_edge_for_dep_inside_an_output_folder() -> None:
    g = graph(stage("prep", outs=("data",)), stage("train", deps=("data/sub/clean.csv",)))
    assert g.edges() == [("prep", "train")]


def test_edge_for_output_inside_a_dep_folder() -> None:
    g = graph(
        stage("a", outs=("data/a.csv",)),
        stage("b", outs=("data/sub/b.csv",)),
        stage("other", outs=("data2/c.csv", "data.csv")),
        stage("train", deps=("data",)),
    )
    assert set(g.upstream["train"]) == {"a", "b"}  # not 'other': data2/ and data.csv
    assert g.downstream["other"] == ()


def test_dep_dot_depends_on_every_producer() -> None:
    g = graph(
        stage("a", outs=("x",)),
        stage("b", outs=("deep/y",)),
        stage("report", deps=(".",)),
    )
    assert set(g.upstream["report"]) == {"a", "b"}
    assert g.order[-1] == "report"


def test_dep_prefix_without_slash_is_not_inside() -> None:
    g = graph(stage("a", outs=("data",)), stage("b", deps=("data.csv", "dat")))
    assert g.upstream["b"] == ()


def test_order_is_topological_and_keeps_spec_order_among_independent_stages() -> None:
    g = graph(
        stage("train", deps=("f",), outs=("m",)),
        stage("z_independent"),
        stage("featurize", deps=("d",), outs=("f",)),
        stage("prepare", outs=("d",)),
        stage("evaluate", deps=("m", "f")),
    )
    assert g.order == ("z_independent", "prepare", "featurize", "train", "evaluate")
    assert g.upstream["evaluate"] == ("featurize", "train")  # in topological order


# overlap, self-dependency, cycles ------------------------------------------------


def test_two_stages_writing_one_output() -> None:
    with pytest.raises(SpecError) as err:
        graph(stage("a", outs=("m.pkl",)), stage("b", outs=("m.pkl",), line=7))
    assert "output 'm.pkl' is written by 'a' and stage 'b'" in str(err.value)
    assert err.value.location == Location("pipeline.yaml", 7, 3)


def test_one_stage_writing_one_output_twice() -> None:
    with pytest.raises(SpecError, match="written twice in stage 'a'"):
        graph(stage("a", outs=("m.pkl", "m.pkl")))


def test_output_inside_another_output() -> None:
    with pytest.raises(SpecError) as err:
        graph(stage("a", outs=("data",)), stage("b", outs=("data/x.csv",), line=9))
    assert "'data/x.csv' (stage 'b') is inside 'data' (stage 'a')" in str(err.value)
    assert err.value.location == Location("pipeline.yaml", 9, 3)


@pytest.mark.parametrize("between", ["data.csv", "data v2", "data-old", "data+"])
def test_output_overlap_found_when_another_path_sorts_between(between: str) -> None:
    # 'data' < 'data.csv' < 'data/x' in byte order: the overlap is not adjacent.
    with pytest.raises(SpecError, match=r"'data/deep/x' .* is inside 'data'"):
        graph(
            stage("a", outs=("data",)),
            stage("b", outs=(between,)),
            stage("c", outs=("data/deep/x",)),
        )


def test_sibling_outputs_sharing_a_prefix_do_not_overlap() -> None:
    g = graph(stage("a", outs=("data", "data.csv", "data2/x")), stage("b", outs=("dat/a",)))
    assert len(g.producers) == 4


def test_self_dependency() -> None:
    with pytest.raises(SpecError) as err:
        graph(stage("a", deps=("in",)), stage("loop", deps=("out/part",), outs=("out",), line=4))
    assert "stage 'loop' depends on its own output" in str(err.value)
    assert err.value.location == Location("pipeline.yaml", 4, 3)


def test_cycle_names_its_path() -> None:
    with pytest.raises(SpecError) as err:
        graph(
            stage("start", outs=("s",)),
            stage("a", deps=("s", "c"), outs=("a",), line=5),
            stage("b", deps=("a",), outs=("b",)),
            stage("c", deps=("b",), outs=("c",)),
        )
    text = str(err.value)
    assert "the stages form a cycle: " in text
    path = text.split("cycle: ", 1)[1].split("\n", 1)[0].split(" -> ")
    assert path[0] == path[-1]
    assert sorted(path[:-1]) == ["a", "b", "c"]
    # each step follows an edge: X -> Y means Y reads an output of X
    edges = {("a", "b"), ("b", "c"), ("c", "a")}
    assert all((x, y) in edges for x, y in itertools.pairwise(path))
    assert err.value.hint is not None


def test_check_deps_exist(tmp_path: Path) -> None:
    root = tmp_path
    (root / "raw.csv").write_text("x")
    p = pipeline(stage("a", deps=("raw.csv",), outs=("o",)), stage("b", deps=("o/part",)))
    check_deps_exist(build_graph(p), root, ["a", "b"])
    bad = build_graph(pipeline(stage("a", deps=("raw.csv", "missing.csv"), line=3),
                               stage("b", deps=("gone",))))
    check_deps_exist(bad, root, [])  # only the stages asked about
    with pytest.raises(SpecError, match=r"dependency 'missing\.csv' of stage 'a' does not exist"):
        check_deps_exist(bad, root, ["a"])
    assert source_deps_missing(bad, "a", root) == ["missing.csv"]
    assert source_deps_missing(bad, "b", root) == ["gone"]


# targets and selection ------------------------------------------------------------


@pytest.fixture
def chain() -> Graph:
    return graph(
        stage("prepare", deps=("raw",), outs=("data/clean.csv",)),
        stage("train@a", deps=("data/clean.csv",), outs=("models/a.pkl",)),
        stage("train@b", deps=("data/clean.csv",), outs=("models/b.pkl",)),
        stage("evaluate", deps=("models",), outs=("metrics.json",)),
        stage("lonely", outs=("lonely.txt",)),
    )


def test_resolve_stage_name(chain: Graph) -> None:
    assert resolve_targets(chain, ["evaluate", "prepare"]) == ["evaluate", "prepare"]
    assert resolve_targets(chain, ["train@b"]) == ["train@b"]


def test_resolve_template_group(chain: Graph) -> None:
    assert resolve_targets(chain, ["train"]) == ["train@a", "train@b"]


def test_resolve_output_paths(chain: Graph) -> None:
    assert resolve_targets(chain, ["models/a.pkl"]) == ["train@a"]
    assert resolve_targets(chain, ["./data/clean.csv"]) == ["prepare"]
    assert resolve_targets(chain, ["metrics.json/"]) == ["evaluate"]


def test_resolve_deduplicates_in_given_order(chain: Graph) -> None:
    got = resolve_targets(chain, ["models/b.pkl", "train", "prepare", "data/clean.csv"])
    assert got == ["train@b", "train@a", "prepare"]


def test_resolve_unknown_target_suggests(chain: Graph) -> None:
    with pytest.raises(UsageError) as err:
        resolve_targets(chain, ["evalute"])
    assert "unknown target 'evalute'" in err.value.message
    assert err.value.hint == "did you mean 'evaluate'?"
    with pytest.raises(UsageError) as err:
        resolve_targets(chain, ["zzzzzz"])
    assert err.value.hint == "`pipeflow dag` lists the stages"
    with pytest.raises(UsageError):
        resolve_targets(chain, ["raw"])  # a dependency, but no stage writes it


def test_select_everything_without_targets(chain: Graph) -> None:
    assert select(chain, []) == list(chain.order)


def test_select_target_with_ancestors(chain: Graph) -> None:
    assert select(chain, ["evaluate"]) == ["prepare", "train@a", "train@b", "evaluate"]
    assert select(chain, ["train@b"]) == ["prepare", "train@b"]


def test_select_single_item(chain: Graph) -> None:
    assert select(chain, ["train@a"], single_item=True) == ["train@a"]


def test_select_downstream(chain: Graph) -> None:
    assert select(chain, ["train@a"], downstream=True) == ["train@a", "evaluate"]
    assert select(chain, ["prepare"], downstream=True) == [
        "prepare", "train@a", "train@b", "evaluate"
    ]
    assert select(chain, ["lonely"], downstream=True) == ["lonely"]


def test_ancestors_and_descendants(chain: Graph) -> None:
    assert chain.ancestors(["evaluate"]) == {"prepare", "train@a", "train@b"}
    assert chain.descendants(["prepare"]) == {"train@a", "train@b", "evaluate"}
    assert chain.ancestors(["lonely"]) == set()


def test_the_edge_walk_and_networkx_give_the_same_answers(chain: Graph) -> None:
    import dataclasses

    walked = {(q, n): getattr(chain, q)([n]) for q in ("ancestors", "descendants")
              for n in chain.order}
    built = dataclasses.replace(chain)
    assert built.dag.number_of_nodes() == len(chain.order)  # networkx answers from now
    assert "dag" not in chain.__dict__ or chain is built
    assert {(q, n): getattr(built, q)([n]) for q, n in walked} == walked


# remembered topological order -----------------------------------------------------


class Store:
    """A stand-in for the state database's key/value table."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.puts = 0

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def put(self, key: str, value: str) -> None:
        self.puts += 1
        self.data[key] = value


def _stages() -> tuple[Stage, ...]:
    return (
        stage("c", deps=("b",), outs=("c",)),
        stage("a", outs=("a",)),
        stage("b", deps=("a",), outs=("b",)),
    )


def test_order_is_remembered_and_reused() -> None:
    store = Store()
    first = build_graph(pipeline(*_stages()), state=store)
    assert first.order == ("a", "b", "c")
    assert store.puts == 1
    [(key, value)] = store.data.items()
    assert key.startswith("topo:") and json.loads(value) == ["a", "b", "c"]
    again = build_graph(pipeline(*_stages()), state=store)
    assert again.order == first.order
    assert again.upstream == first.upstream and again.downstream == first.downstream
    assert store.puts == 1  # nothing new to remember


def test_changed_structure_uses_a_new_key() -> None:
    store = Store()
    build_graph(pipeline(*_stages()), state=store)
    changed = (*_stages(), stage("d", deps=("c",)))
    g = build_graph(pipeline(*changed), state=store)
    assert g.order == ("a", "b", "c", "d")
    assert len(store.data) == 2


@pytest.mark.parametrize(
    "stale",
    [
        "not json",
        json.dumps({"a": 1}),
        json.dumps(["a", "b"]),  # a stage missing
        json.dumps(["a", "b", "c", "old"]),  # a stage that no longer exists
        json.dumps(["a", "b", 3]),
        json.dumps(["c", "b", "a"]),  # every stage, but not an order of these edges
        json.dumps(["a", "c", "b"]),
    ],
)
def test_stale_remembered_order_is_ignored(stale: str) -> None:
    store = Store()
    store.get = lambda _key: stale  # type: ignore[method-assign]
    g = build_graph(pipeline(*_stages()), state=store)
    assert g.order == ("a", "b", "c")
    assert [json.loads(v) for v in store.data.values()] == [["a", "b", "c"]]


def test_stale_order_does_not_hide_a_cycle() -> None:
    looped = (stage("a", deps=("b",), outs=("a",)), stage("b", deps=("a",), outs=("b",)))
    store = Store()
    store.get = lambda _key: '["a", "b"]'  # type: ignore[method-assign]
    with pytest.raises(SpecError, match="cycle"):
        build_graph(pipeline(*looped), state=store)


def test_ordering_a_known_structure_never_imports_networkx() -> None:
    """In a fresh interpreter, a remembered structure is ordered without networkx
    (its import alone costs ~0.1 s); a new one is checked and ordered by networkx."""
    store = Store()
    build_graph(pipeline(*_stages()), state=store)
    script = textwrap.dedent(
        """
        import json, sys
        from pipeflow.errors import Location
        from pipeflow.planning.graph import build_graph
        from pipeflow.keyvalue import MemoryStore
        from pipeflow.spec.model import Out, Pipeline, Stage

        store = json.loads(sys.argv[1])
        def stage(name, deps=(), outs=()):
            return Stage(name=name, cmd=(f"run {name}",), deps=tuple(deps),
                         outs=tuple(Out(p) for p in outs),
                         location=Location("pipeline.yaml", 1, 3))
        stages = (stage("c", ["b"], ["c"]), stage("a", [], ["a"]), stage("b", ["a"], ["b"]))
        before = "networkx" in sys.modules
        g = build_graph(Pipeline({s.name: s for s in stages}), state=MemoryStore(store))
        print(json.dumps([before, "networkx" in sys.modules, list(g.order)]))
        """
    )

    def run(data: dict[str, str]) -> list[object]:
        proc = subprocess.run([sys.executable, "-c", script, json.dumps(data)],
                              capture_output=True, text=True, check=True, timeout=60)
        result: list[object] = json.loads(proc.stdout)
        return result

    assert run(store.data) == [False, False, ["a", "b", "c"]]
    assert run({}) == [False, True, ["a", "b", "c"]]  # a new structure: networkx


def spec_order_kahn(names: list[str], upstream: dict[str, set[str]]) -> list[str]:
    """The order pipeflow always gave (pinned by remembered orders in state databases):
    Kahn's algorithm taking the ready stage that comes first in the spec."""
    index = {name: i for i, name in enumerate(names)}
    waiting = {name: len(upstream[name]) for name in names}
    ready = [(index[n], n) for n in names if waiting[n] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for down in names:
            if name in upstream[down]:
                waiting[down] -= 1
                if waiting[down] == 0:
                    heapq.heappush(ready, (index[down], down))
    return order


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 9), edges=st.sets(st.tuples(st.integers(0, 8), st.integers(0, 8)),
                                             max_size=20))
def test_order_is_spec_ordered_kahn_and_a_cycle_follows_edges(
    size: int, edges: set[tuple[int, int]]
) -> None:
    import networkx as nx

    names = [f"s{i}" for i in reversed(range(size))]  # spec order is not name order
    upstream: dict[str, set[str]] = {n: set() for n in names}
    for u, d in edges:
        if u < size and d < size and u != d:
            upstream[f"s{d}"].add(f"s{u}")
    g = nx.DiGraph()
    g.add_nodes_from(names)
    g.add_edges_from((u, d) for d, ups in upstream.items() for u in ups)
    stages = tuple(
        Stage(name=n, cmd=(f"run {n}",), deps=tuple(f"out/{u}" for u in sorted(upstream[n])),
              outs=(Out(f"out/{n}"),), location=Location("pipeline.yaml", 1, 3))
        for n in names)
    if nx.is_directed_acyclic_graph(g):
        order = build_graph(Pipeline({s.name: s for s in stages})).order
        assert list(order) == spec_order_kahn(names, upstream)
        return
    with pytest.raises(SpecError, match="form a cycle") as err:
        build_graph(Pipeline({s.name: s for s in stages}))
    cycle = str(err.value).split("cycle: ")[1].split("\n")[0].split(" -> ")
    assert cycle[0] == cycle[-1] and len(set(cycle[:-1])) == len(cycle) - 1
    assert all(g.has_edge(a, b) for a, b in itertools.pairwise(cycle))
