"""``pipeflow dag``: the stage graph as ascii, mermaid, dot or JSON."""

from __future__ import annotations

import json
from typing import Any

from pipeflow.ops.project import load_project
from pipeflow.project.project import Project

FORMATS = ("ascii", "mermaid", "dot", "json")


def dag(repo: Project, fmt: str = "ascii", targets: list[str] | None = None) -> str:
    """The rendered graph of the whole pipeline (or of ``targets`` and their upstream)."""
    from pipeflow.planning import dagrender
    from pipeflow.planning.graph import resolve_targets, select

    graph = load_project(repo).graph
    names = select(graph, resolve_targets(graph, targets)) if targets else list(graph.order)
    chosen = set(names)
    edges = [(u, d) for u, d in graph.edges() if u in chosen and d in chosen]
    if fmt == "mermaid":
        return dagrender.to_mermaid(names, edges)
    if fmt == "dot":
        return dagrender.to_dot(names, edges)
    if fmt == "json":
        body: dict[str, Any] = dagrender.to_json(names, edges)
        return json.dumps(body, indent=2, ensure_ascii=False)
    return dagrender.to_ascii(names, edges)
