"""DAG renderers: exact text for small graphs, escaping, JSON shape, and a
property test that reads every edge back out of the ascii drawing."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeflow.planning.dagrender import to_ascii, to_dot, to_json, to_mermaid

CHAIN = (["prepare", "featurize", "train"], [("prepare", "featurize"), ("featurize", "train")])
DIAMOND = (
    ["prepare", "left", "right", "join"],
    [("prepare", "left"), ("prepare", "right"), ("left", "join"), ("right", "join")],
)


def lines(*rows: str) -> str:
    return "".join(row + "\n" for row in rows)


# --- ascii -------------------------------------------------------------------


def test_ascii_chain() -> None:
    assert to_ascii(*CHAIN) == lines(
        "*  prepare",
        "|",
        "*  featurize",
        "|",
        "*  train",
    )


def test_ascii_diamond() -> None:
    assert to_ascii(*DIAMOND) == lines(
        "*    prepare",
        "+-+",
        "* |  left",
        "| |",
        "| *  right",
        "+-+",
        "*    join",
    )


def test_ascii_fan_out_of_five() -> None:
    nodes = ["prepare", "a", "b", "c", "d", "e"]
    assert to_ascii(nodes, [("prepare", n) for n in nodes[1:]]) == lines(
        "*          prepare",
        "+-+-+-+-+",
        "* | | | |  a",
        "  * | | |  b",
        "    * | |  c",
        "      * |  d",
        "        *  e",
    )


def test_ascii_fan_in_keeps_new_roots_apart_from_lines_above() -> None:
    assert to_ascii(["a", "b", "c", "d"], [("a", "d"), ("b", "d"), ("c", "d")]) == lines(
        "*    a",
        "|",
        "| *  b",
        "+-+",
        "|",  # without this row, c would sit under the "+" that b's edge turned at
        "| *  c",
        "+-+",
        "*    d",
    )


def test_ascii_crossing_lanes_and_labels() -> None:
    nodes = ["prepare", "featurize", "train", "evaluate", "report"]
    edges = [
        ("prepare", "featurize"),
        ("featurize", "train"),
        ("train", "evaluate"),
        ("prepare", "evaluate"),
        ("featurize", "report"),
        ("evaluate", "report"),
    ]
    labels = {"train": "changed", "evaluate": "pending"}
    assert to_ascii(nodes, edges, labels) == lines(
        "*      prepare",
        "+-+",
        "* |    featurize",
        "+-|-+",
        "* | |  train (changed)",
        "+-+ |",
        "  * |  evaluate (pending)",
        "  +-+",
        "    *  report",
    )


def test_ascii_disconnected_components_are_drawn_apart_in_order() -> None:
    nodes = ["a1", "b1", "a2", "lonely", "b2"]
    assert to_ascii(nodes, [("a1", "a2"), ("b1", "b2")]) == lines(
        "*  a1",
        "|",
        "*  a2",
        "",
        "*  b1",
        "|",
        "*  b2",
        "",
        "*  lonely",
    )


def test_ascii_empty_and_single() -> None:
    assert to_ascii([], []) == ""
    assert to_ascii(["only"], [], {"only": "up-to-date"}) == "*  only (up-to-date)\n"


def test_ascii_is_deterministic_and_ignores_edge_order_and_duplicates() -> None:
    nodes, edges = DIAMOND
    assert to_ascii(nodes, list(reversed(edges)) + edges) == to_ascii(nodes, edges)


@pytest.mark.parametrize("render", [to_ascii, to_mermaid, to_dot, to_json])
def test_bad_input_is_a_value_error(render: object) -> None:
    assert callable(render)
    with pytest.raises(ValueError, match="listed twice"):
        render(["a", "a"], [])
    with pytest.raises(ValueError, match="not in the node list"):
        render(["a"], [("a", "b")])
    with pytest.raises(ValueError, match="not topological"):
        render(["a", "b"], [("b", "a")])
    with pytest.raises(ValueError, match="not topological"):
        render(["a"], [("a", "a")])


def edges_drawn(text: str) -> tuple[list[str], set[tuple[str, str]]]:
    """Read a lane drawing back: the stages in drawing order and the edges it shows.

    Follows the picture only: a "*" takes what flows down its column; a fan row
    after a stage carries that stage into every other "+"; a blank cell ends a
    lane. A root drawn under a line would therefore read as connected to it.
    """
    order: list[str] = []
    edges: set[tuple[str, str]] = set()
    flows: dict[int, set[str]] = {}
    last_star = -1
    for line in text.splitlines():
        match = re.match(r"[ *|+-]*", line)
        assert match is not None
        cells, name = line[: match.end()].rstrip(), line[match.end() :]
        width = max([len(cells), *[c + 1 for c in flows]])
        padded = cells.ljust(width)
        if name:
            star = padded.index("*")
            order.append(name)
            edges |= {(up, name) for up in flows.get(star, set())}
            flows = {c: flows.get(c, set()) for c, ch in enumerate(padded) if ch == "|"}
            flows[star] = {name}
            last_star = star
        elif "+" in padded:
            source = flows[last_star]
            flows = {
                c: (flows.get(c, set()) | source if ch == "+" else flows.get(c, set()))
                for c, ch in enumerate(padded)
                if ch in "+|"
            }
        else:
            flows = {c: flows.get(c, set()) for c, ch in enumerate(padded) if ch == "|"}
    return order, edges


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, str]]]:
    n = draw(st.integers(0, 12))
    nodes = [f"s{i}" for i in range(n)]
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), max_size=3 * n)) if pairs else []
    return nodes, [(nodes[i], nodes[j]) for i, j in chosen]


@settings(max_examples=500)
@given(dags())
def test_ascii_drawing_shows_exactly_the_edges(
    dag: tuple[list[str], list[tuple[str, str]]],
) -> None:
    nodes, edges = dag
    order, drawn = edges_drawn(to_ascii(nodes, edges))
    assert sorted(order) == sorted(nodes)
    assert drawn == set(edges)


# --- mermaid -----------------------------------------------------------------


def test_mermaid_diamond() -> None:
    assert to_mermaid(*DIAMOND, labels={"left": "changed"}) == lines(
        "flowchart TD",
        '    s_prepare["prepare"]',
        '    s_left["left (changed)"]',
        '    s_right["right"]',
        '    s_join["join"]',
        "    s_prepare --> s_left",
        "    s_prepare --> s_right",
        "    s_left --> s_join",
        "    s_right --> s_join",
    )


def test_mermaid_escapes_odd_names_and_keeps_ids_unique() -> None:
    nodes = ["train@small", "train_small", 'say "hi" <b>#1', "end", "a b"]
    edges = [("train@small", "train_small"), ("train_small", 'say "hi" <b>#1')]
    assert to_mermaid(nodes, edges) == lines(
        "flowchart TD",
        '    s_train_small["train@small"]',
        '    s_train_small_2["train_small"]',
        '    s_say__hi___b__1["say #34;hi#34; #60;b#62;#35;1"]',
        '    s_end["end"]',
        '    s_a_b["a b"]',
        "    s_train_small --> s_train_small_2",
        "    s_train_small_2 --> s_say__hi___b__1",
    )


# --- dot ---------------------------------------------------------------------


def test_dot_chain_with_label() -> None:
    assert to_dot(*CHAIN, labels={"train": "changed"}) == lines(
        "digraph pipeline {",
        "    node [shape=box];",
        '    "prepare";',
        '    "featurize";',
        '    "train" [label="train\\n(changed)"];',
        '    "prepare" -> "featurize";',
        '    "featurize" -> "train";',
        "}",
    )


def test_dot_quotes_and_escapes_odd_names() -> None:
    nodes = ['say "hi"', "train@small", "back\\slash", "a b"]
    edges = [('say "hi"', "train@small"), ("train@small", "back\\slash")]
    assert to_dot(nodes, edges) == lines(
        "digraph pipeline {",
        "    node [shape=box];",
        '    "say \\"hi\\"";',
        '    "train@small";',
        '    "back\\\\slash" [label="back\\\\slash"];',
        '    "a b";',
        '    "say \\"hi\\"" -> "train@small";',
        '    "train@small" -> "back\\\\slash";',
        "}",
    )


def test_empty_graph_renderings() -> None:
    assert to_mermaid([], []) == "flowchart TD\n"
    assert to_dot([], []) == "digraph pipeline {\n    node [shape=box];\n}\n"
    assert to_json([], []) == {"schema": 1, "nodes": [], "edges": []}


# --- json --------------------------------------------------------------------


def test_json_shape() -> None:
    doc = to_json(*DIAMOND, labels={"right": "changed", "join": ""})
    assert doc == {
        "schema": 1,
        "nodes": [
            {"name": "prepare"},
            {"name": "left"},
            {"name": "right", "label": "changed"},
            {"name": "join"},
        ],
        "edges": [
            {"from": "prepare", "to": "left"},
            {"from": "prepare", "to": "right"},
            {"from": "left", "to": "join"},
            {"from": "right", "to": "join"},
        ],
    }
    assert json.loads(json.dumps(doc)) == doc


def test_json_keeps_odd_names_verbatim() -> None:
    doc = to_json(['a "b"', "c@d"], [('a "b"', "c@d"), ('a "b"', "c@d")])
    assert doc["nodes"] == [{"name": 'a "b"'}, {"name": "c@d"}]
    assert doc["edges"] == [{"from": 'a "b"', "to": "c@d"}]
