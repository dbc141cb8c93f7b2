"""The stage DAG: edges from the stage that writes a path to the stages that read it.

Building the graph checks what a spec alone cannot: two stages writing one
output (or one inside the other), cycles, and dependencies that nothing produces
and that do not exist. The DAG is a ``networkx.DiGraph`` and its questions (order,
cycles, ancestors, descendants) are networkx's algorithms. networkx is imported only
when needed: the full check runs when the resolved structure is new, and its
topological order is then remembered in the state database, so a run whose
structure is known (every no-op ``status`` and ``repro``) orders its stages from
that memory without importing networkx.
"""

from __future__ import annotations

import bisect
import functools
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeflow.content.hashing import hash_bytes
from pipeflow.errors import SpecError, UsageError
from pipeflow.spec.model import Pipeline

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from pipeflow.keyvalue import KeyValue


@dataclass(frozen=True)
class Graph:
    """Stages, their producer edges and one topological order.

    ``upstream`` and ``downstream`` are plain tuples in that order, so the planner and
    the scheduler walk them without networkx; ``dag`` is the networkx view for the
    graph questions."""

    pipeline: Pipeline
    order: tuple[str, ...]
    upstream: dict[str, tuple[str, ...]]
    downstream: dict[str, tuple[str, ...]]
    producers: dict[str, str]
    """Output path -> name of the stage that writes it."""

    def producer_of(self, path: str) -> str | None:
        """The stage writing ``path`` or a folder containing it."""
        probe = path
        while True:
            if probe in self.producers:
                return self.producers[probe]
            if "/" not in probe:
                return None
            probe = probe.rsplit("/", 1)[0]

    @functools.cached_property
    def dag(self) -> Any:
        """The ``networkx.DiGraph`` of the stages (built, and networkx imported, on
        first use: the no-op paths never ask)."""
        return _digraph(self.order, self.upstream)

    def ancestors(self, names: Iterable[str]) -> set[str]:
        """Every stage upstream of any of ``names``."""
        return self._reach(names, self.upstream, "ancestors")

    def descendants(self, names: Iterable[str]) -> set[str]:
        """Every stage downstream of any of ``names``."""
        return self._reach(names, self.downstream, "descendants")

    def _reach(self, names: Iterable[str], edges: dict[str, tuple[str, ...]],
               question: str) -> set[str]:
        # networkx answers once the DiGraph exists (a new structure built it); for a
        # known structure (``status train``, ``repro train`` with nothing to do) the
        # edge tuples answer, so that a targeted no-op imports networkx no more than
        # an untargeted one
        if "dag" in self.__dict__:
            import networkx as nx

            ask = getattr(nx, question)
            return set().union(*(ask(self.dag, name) for name in names))
        found: set[str] = set()
        todo = [u for name in names for u in edges[name]]
        while todo:
            name = todo.pop()
            if name not in found:
                found.add(name)
                todo.extend(edges[name])
        return found

    def edges(self) -> list[tuple[str, str]]:
        return [(u, d) for d in self.order for u in self.upstream[d]]


def _digraph(names: Iterable[str], upstream: dict[str, Any]) -> Any:
    """A ``networkx.DiGraph`` with an edge from each stage to each stage reading it;
    nodes in the order of ``names``."""
    import networkx as nx

    dag = nx.DiGraph()
    dag.add_nodes_from(names)
    dag.add_edges_from((u, d) for d in dag.nodes for u in upstream[d])
    return dag


def _producers(pipeline: Pipeline) -> dict[str, str]:
    producers: dict[str, str] = {}
    for stage in pipeline.stages.values():
        for out in stage.outs:
            other = producers.get(out.path)
            if other is not None:
                where = "twice in" if other == stage.name else f"by '{other}' and"
                msg = f"output '{out.path}' is written {where} stage '{stage.name}'"
                raise SpecError(msg, stage.location, hint="each path may have one writer")
            producers[out.path] = stage.name
    _check_models(pipeline)
    # Look up each output's parent folders rather than comparing neighbours in
    # sorted order: 'data.csv' and 'data v2' sort between 'data' and 'data/x'.
    for path in sorted(producers):
        folder = path
        while "/" in folder:
            folder = folder.rsplit("/", 1)[0]
            if folder in producers:
                a, b = producers[folder], producers[path]
                msg = f"outputs overlap: '{path}' (stage '{b}') is inside '{folder}' (stage '{a}')"
                loc = pipeline.stages[b].location
                raise SpecError(msg, loc, hint="declare outputs that do not contain each other")
    return producers


def _check_models(pipeline: Pipeline) -> None:
    """A model name names one output: the registry addresses versions by it."""
    seen: dict[str, str] = {}
    for stage in pipeline.stages.values():
        for out in stage.outs:
            if out.model is None:
                continue
            other = seen.setdefault(out.model, out.path)
            if other != out.path:
                msg = f"model '{out.model}' is declared twice: '{other}' and '{out.path}'"
                raise SpecError(msg, stage.location,
                                hint="give each model output a name of its own")


def _edges(pipeline: Pipeline, producers: dict[str, str]) -> dict[str, set[str]]:
    outs_sorted = sorted(producers)
    upstream: dict[str, set[str]] = {name: set() for name in pipeline.stages}
    for stage in pipeline.stages.values():
        for dep in stage.deps:
            found = _find_producers(dep, producers, outs_sorted)
            upstream[stage.name].update(found)
    return upstream


def _find_producers(dep: str, producers: dict[str, str], outs_sorted: list[str]) -> set[str]:
    found: set[str] = set()
    probe = dep
    while True:  # the dep itself or a folder above it is an output
        if probe in producers:
            found.add(producers[probe])
            break
        if "/" not in probe:
            break
        probe = probe.rsplit("/", 1)[0]
    prefix = "" if dep == "." else dep + "/"  # outputs inside a dep folder
    i = bisect.bisect_left(outs_sorted, prefix)
    while i < len(outs_sorted) and outs_sorted[i].startswith(prefix):
        found.add(producers[outs_sorted[i]])
        i += 1
    return found


def _check_self_and_cycles(pipeline: Pipeline, upstream: dict[str, set[str]]) -> list[str]:
    for name, ups in upstream.items():
        if name in ups:
            msg = f"stage '{name}' depends on its own output"
            raise SpecError(msg, pipeline.stages[name].location)
    dag = _digraph(pipeline.stages, upstream)
    order = topological_order(dag)
    if order is None:
        cycle = _a_cycle(dag)
        path = " -> ".join([*cycle, cycle[0]])
        raise SpecError(f"the stages form a cycle: {path}", pipeline.stages[cycle[0]].location,
                        hint="an output of one of them must not be a dependency upstream")
    return order


def topological_order(dag: Any) -> list[str] | None:
    """Every stage after its upstream, ties broken by the order of the DAG's nodes
    (the spec's), so the order is stable; None when the stages form a cycle."""
    import networkx as nx

    index = {name: i for i, name in enumerate(dag.nodes)}
    try:
        return list(nx.lexicographical_topological_sort(dag, key=index.__getitem__))
    except nx.NetworkXUnfeasible:
        return None


def _a_cycle(dag: Any) -> list[str]:
    """One cycle of the DAG, upstream first, starting at its smallest stage name so
    that the message is the same on every run."""
    import networkx as nx

    cycle = [u for u, _d in nx.find_cycle(dag)]
    first = cycle.index(min(cycle))
    return cycle[first:] + cycle[:first]


def source_deps_missing(graph: Graph, name: str, root: Path) -> list[str]:
    """Dependencies of stage ``name`` that no stage produces and that do not exist."""
    outs_sorted = sorted(graph.producers)
    return [
        dep for dep in graph.pipeline.stages[name].deps
        if not _find_producers(dep, graph.producers, outs_sorted)
        and not os.path.exists(root / dep)
    ]


def check_deps_exist(graph: Graph, root: Path, names: Iterable[str]) -> None:
    """Every dependency of the stages ``names`` is produced by a stage or exists."""
    outs_sorted = sorted(graph.producers)
    for name in names:
        stage = graph.pipeline.stages[name]
        for dep in stage.deps:
            if not _find_producers(dep, graph.producers, outs_sorted) and not os.path.exists(
                root / dep
            ):
                msg = f"dependency '{dep}' of stage '{stage.name}' does not exist"
                hint = "create it, fix the path, or declare the stage that writes it"
                raise SpecError(msg, stage.location, hint=hint)


def _structure_digest(pipeline: Pipeline) -> str:
    parts = [[s.name, list(s.deps), [o.path for o in s.outs]] for s in pipeline.stages.values()]
    return hash_bytes(json.dumps(parts, separators=(",", ":")).encode())


def _valid_order(candidate: object, ups: dict[str, set[str]]) -> bool:
    """Whether a remembered order still orders these stages (every upstream first).

    The key already covers the structure; this also rejects an order remembered by
    a pipeflow that derived edges differently, or a damaged state database.
    """
    if not isinstance(candidate, list) or not all(isinstance(n, str) for n in candidate):
        return False
    if sorted(candidate) != sorted(ups):
        return False
    position = {name: i for i, name in enumerate(candidate)}
    return all(position[u] < position[d] for d, found in ups.items() for u in found)


def build_graph(
    pipeline: Pipeline,
    *,
    state: KeyValue | None = None,
) -> Graph:
    """Check the pipeline and order it; uses a remembered order when the structure is known."""
    producers = _producers(pipeline)
    ups = _edges(pipeline, producers)
    key = "topo:" + _structure_digest(pipeline)
    known = state.get(key) if state is not None else None
    order: list[str] | None = None
    if known is not None:
        try:
            candidate = json.loads(known)
        except ValueError:
            candidate = None
        if _valid_order(candidate, ups):
            order = candidate
    if order is None:
        order = _check_self_and_cycles(pipeline, ups)
        if state is not None:
            state.put(key, json.dumps(order))
    position = {name: i for i, name in enumerate(order)}
    upstream = {n: tuple(sorted(ups[n], key=position.__getitem__)) for n in order}
    down: dict[str, list[str]] = {n: [] for n in order}
    for name in order:
        for u in upstream[name]:
            down[u].append(name)
    downstream = {n: tuple(v) for n, v in down.items()}
    return Graph(pipeline, tuple(order), upstream, downstream, producers)


def resolve_targets(graph: Graph, targets: Iterable[str]) -> list[str]:
    """Stage names for targets given as stage names, template groups or output paths."""
    names: list[str] = []
    stages = graph.pipeline.stages
    for target in targets:
        if target in stages:
            names.append(target)
            continue
        group = [n for n in graph.order if n.split("@", 1)[0] == target]
        if group:
            names.extend(group)
            continue
        rel = Path(os.path.normpath(target)).as_posix()
        producer = graph.producer_of(rel)
        if producer is not None:
            names.append(producer)
            continue
        import difflib

        close = difflib.get_close_matches(target, list(stages), n=3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else (
            "`pipeflow dag` lists the stages"
        )
        raise UsageError(f"unknown target '{target}': not a stage or an output", hint=hint)
    return list(dict.fromkeys(names))


def select(
    graph: Graph,
    targets: list[str],
    *,
    single_item: bool = False,
    downstream: bool = False,
) -> list[str]:
    """The stages a command works on, in topological order."""
    if not targets:
        return list(graph.order)
    chosen = set(targets)
    if downstream:
        chosen |= graph.descendants(targets)
    elif not single_item:
        chosen |= graph.ancestors(targets)
    return [n for n in graph.order if n in chosen]

