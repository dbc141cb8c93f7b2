"""Text renderings of the pipeline DAG: ascii (terminal), Mermaid, Graphviz DOT, JSON.

Pure functions over a plain description of the graph, so that ``pipeflow dag``
needs no networkx to draw: ``nodes`` are stage names in topological order,
``edges`` are (upstream, downstream) pairs, ``labels`` optionally map a stage to
a short word shown beside it (a status such as ``changed``).

The ascii form is a lane graph, like ``git log --graph``: one line per stage,
``*`` marks the stage, ``|`` carries an edge down to a later stage, and a row of
``+-+`` joins or splits lanes. It stays readable for long chains (one column)
and wide fan-outs (one lane per open branch), never repeats a stage, and every
line of it is decided by the input order alone::

    *    prepare
    +-+
    * |  left
    | |
    | *  right
    +-+
    *    join
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["to_ascii", "to_dot", "to_json", "to_mermaid"]

JSON_SCHEMA_VERSION = 1

Edge = tuple[str, str]


def _check(nodes: Sequence[str], edges: Sequence[Edge]) -> tuple[dict[str, int], list[Edge]]:
    """Index the nodes; return the edges deduplicated and in node order.

    Raises ValueError for a duplicate node, an edge naming an unknown node, or
    an edge against the given order (the nodes must be topologically sorted).
    """
    index: dict[str, int] = {}
    for i, name in enumerate(nodes):
        if name in index:
            msg = f"node {name!r} is listed twice"
            raise ValueError(msg)
        index[name] = i
    unique: set[Edge] = set()
    for up, down in edges:
        if up not in index or down not in index:
            msg = f"edge {up!r} -> {down!r} names a node that is not in the node list"
            raise ValueError(msg)
        if index[up] >= index[down]:
            msg = f"edge {up!r} -> {down!r} goes against the node order (not topological)"
            raise ValueError(msg)
        unique.add((up, down))
    return index, sorted(unique, key=lambda e: (index[e[0]], index[e[1]]))


def _text(name: str, labels: Mapping[str, str] | None) -> str:
    label = labels.get(name) if labels else None
    return f"{name} ({label})" if label else name


# --- ascii -------------------------------------------------------------------


def _by_component(
    nodes: Sequence[str], index: dict[str, int], edges: list[Edge]
) -> list[list[str]]:
    """Weakly connected components, each in node order, ordered by first node."""
    parent = {n: n for n in nodes}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for up, down in edges:
        a, b = root(up), root(down)
        if a != b:
            # The earlier node stays the root, so groups come out in node order.
            parent[max(a, b, key=index.__getitem__)] = min(a, b, key=index.__getitem__)
    groups: dict[str, list[str]] = {}
    for n in nodes:
        groups.setdefault(root(n), []).append(n)
    return list(groups.values())


def _lanes_row(lanes: list[str | None]) -> str:
    return " ".join("|" if t is not None else " " for t in lanes)


def _fan_row(lanes: list[str | None], ends: set[int]) -> str:
    """A row joining lane ``min(ends)`` to ``max(ends)``; other open lanes cross it."""
    lo, hi = min(ends), max(ends)
    cells: list[str] = []
    for i, target in enumerate(lanes):
        if i > 0:
            cells.append("-" if lo < i <= hi else " ")
        if i in ends:
            cells.append("+")
        elif target is not None:
            cells.append("|")
        else:
            cells.append("-" if lo < i < hi else " ")
    return "".join(cells)


def _free_lane(lanes: list[str | None]) -> int:
    for i, target in enumerate(lanes):
        if target is None:
            return i
    lanes.append(None)
    return len(lanes) - 1


def _lane_rows(order: list[str], children: dict[str, list[str]]) -> list[tuple[str, str | None]]:
    """Rows of (graph cells, stage name or None) for one component."""
    rows: list[tuple[str, str | None]] = []
    lanes: list[str | None] = []  # the stage each open lane leads to
    for name in order:
        if name in lanes:
            lane = lanes.index(name)
        else:
            lane = _free_lane(lanes)
            # A new root must not sit right under a line drawn in the same
            # column, or it would look connected to it.
            above = rows[-1][0] if rows else ""
            if len(above) > 2 * lane and above[2 * lane] != " ":
                rows.append((_lanes_row(lanes).rstrip(), None))
        lanes[lane] = name
        rows.append((_node_row(lanes, lane), name))
        lanes[lane] = None
        ends: set[int] = set()
        kept = False
        for child in children[name]:
            if child in lanes:
                ends.add(lanes.index(child))
            elif not kept:
                lanes[lane] = child
                kept = True
            else:
                new = _free_lane(lanes)
                lanes[new] = child
                ends.add(new)
        if ends:
            rows.append((_fan_row(lanes, ends | {lane}).rstrip(), None))
        elif kept:
            rows.append((_lanes_row(lanes).rstrip(), None))
        while lanes and lanes[-1] is None:
            lanes.pop()
    return rows


def _node_row(lanes: list[str | None], lane: int) -> str:
    cells = ["*" if i == lane else ("|" if t is not None else " ") for i, t in enumerate(lanes)]
    return " ".join(cells).rstrip()


def to_ascii(
    nodes: Sequence[str], edges: Sequence[Edge], labels: Mapping[str, str] | None = None
) -> str:
    """Draw the DAG as a lane graph for a terminal (one line per stage).

    Disconnected parts of the pipeline are drawn one after another, separated
    by a blank line. Returns "" for an empty pipeline.
    """
    index, ordered = _check(nodes, edges)
    children: dict[str, list[str]] = {n: [] for n in nodes}
    for up, down in ordered:
        children[up].append(down)
    rows: list[tuple[str, str | None]] = []
    for component in _by_component(nodes, index, ordered):
        if rows:
            rows.append(("", None))
        rows.extend(_lane_rows(component, children))
    width = max((len(cells) for cells, _ in rows), default=0)
    lines = [
        f"{cells.ljust(width)}  {_text(name, labels)}" if name is not None else cells
        for cells, name in rows
    ]
    return "".join(line + "\n" for line in lines)


# --- mermaid -----------------------------------------------------------------

# Inside a quoted Mermaid label these would end the string, start an entity,
# be read as HTML or as a markdown string; "#<decimal>;" is Mermaid's escape.
_MERMAID_UNSAFE = re.compile(r'["#&<>`\x00-\x1f\x7f]')


def _mermaid_label(text: str) -> str:
    return _MERMAID_UNSAFE.sub(lambda m: f"#{ord(m.group())};", text)


def _mermaid_ids(nodes: Sequence[str]) -> dict[str, str]:
    # The "s_" prefix keeps ids off Mermaid's keywords ("end") and away from
    # edge syntax that a leading "o" or "x" would trigger.
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for name in nodes:
        base = "s_" + re.sub(r"[^A-Za-z0-9_]", "_", name)
        node_id, n = base, 1
        while node_id in taken:
            n += 1
            node_id = f"{base}_{n}"
        taken.add(node_id)
        ids[name] = node_id
    return ids


def to_mermaid(
    nodes: Sequence[str], edges: Sequence[Edge], labels: Mapping[str, str] | None = None
) -> str:
    """Render the DAG as a Mermaid ``flowchart TD`` (ids sanitized, names quoted)."""
    _, ordered = _check(nodes, edges)
    ids = _mermaid_ids(nodes)
    lines = ["flowchart TD"]
    lines += [f'    {ids[n]}["{_mermaid_label(_text(n, labels))}"]' for n in nodes]
    lines += [f"    {ids[up]} --> {ids[down]}" for up, down in ordered]
    return "\n".join(lines) + "\n"


# --- dot ---------------------------------------------------------------------


def _dot_quote(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def to_dot(
    nodes: Sequence[str], edges: Sequence[Edge], labels: Mapping[str, str] | None = None
) -> str:
    """Render the DAG as Graphviz DOT: ``digraph pipeline { ... }``, names quoted."""
    _, ordered = _check(nodes, edges)
    lines = ["digraph pipeline {", "    node [shape=box];"]
    for name in nodes:
        label = labels.get(name) if labels else None
        if label:
            text = f"{name}\n({label})"
            lines.append(f"    {_dot_quote(name)} [label={_dot_quote(text)}];")
        elif "\\" in name or "\n" in name or "\r" in name:
            # The default label (\N) would show the escaped form; spell it out.
            lines.append(f"    {_dot_quote(name)} [label={_dot_quote(name)}];")
        else:
            lines.append(f"    {_dot_quote(name)};")
    lines += [f"    {_dot_quote(up)} -> {_dot_quote(down)};" for up, down in ordered]
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- json --------------------------------------------------------------------


def to_json(
    nodes: Sequence[str], edges: Sequence[Edge], labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The DAG as JSON-ready data (shape documented in docs/json.md).

    ``{"schema": 1, "nodes": [{"name", "label"?}], "edges": [{"from", "to"}]}``;
    nodes in topological order, edges deduplicated and in node order.
    """
    _, ordered = _check(nodes, edges)
    out_nodes: list[dict[str, str]] = []
    for name in nodes:
        node = {"name": name}
        label = labels.get(name) if labels else None
        if label:
            node["label"] = label
        out_nodes.append(node)
    return {
        "schema": JSON_SCHEMA_VERSION,
        "nodes": out_nodes,
        "edges": [{"from": up, "to": down} for up, down in ordered],
    }
