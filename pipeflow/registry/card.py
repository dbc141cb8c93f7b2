"""A model card: one version of a model in Markdown, rendered from values alone
(``pipeflow.registry.export`` gathers them from the run records, the tag log and the
lineage)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DataVersion:
    """A source input of the lineage: data added with ``pipeflow add``, or a file git
    tracked when the run read it."""

    path: str
    hash: str
    label: str | None
    how: str
    """``pipeflow add``, ``git`` or ``untracked``."""


@dataclass(frozen=True)
class StageLine:
    """One run of the lineage in brief: its stage and what it read."""

    stage: str
    run: str
    inputs: tuple[str, ...]
    """``path label`` of each input."""


@dataclass(frozen=True)
class CardFacts:
    """Everything the card says, as plain values."""

    name: str
    path: str
    label: str
    hash: str
    desc: str | None = None
    aliases: tuple[str, ...] = ()
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """params file -> dotted key -> value (absolute, as the run recorded them)."""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    """``file:key`` -> value."""
    data: tuple[DataVersion, ...] = ()
    code: tuple[tuple[str, str], ...] = ()
    """(path, hash) of the code files the lineage's runs hashed."""
    commit: str | None = None
    dirty_paths: tuple[str, ...] = ()
    python: str | None = None
    packages: Mapping[str, str] = field(default_factory=dict)
    environment_note: str = ""
    user: str | None = None
    date: str | None = None
    notes: tuple[str, ...] = ()
    """Notes attached to the version (``pipeflow note``)."""
    lineage: tuple[StageLine, ...] = ()


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _cell(text: str) -> str:
    return _line(text).replace("|", "\\|")


def _line(text: str) -> str:
    """``text`` on one line: a value from a record or the spec cannot start a heading
    or a list item of its own."""
    return " ".join(text.split())


def _table(head: tuple[str, str], rows: list[tuple[str, str]]) -> list[str]:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    lines += [f"| {_cell(a)} | {_cell(b)} |" for a, b in rows]
    return lines


def _section(title: str, body: list[str], empty: str) -> list[str]:
    return ["", f"## {title}", "", *(body or [empty])]


def render(facts: CardFacts) -> str:
    """The card as Markdown, ending with a newline."""
    lines = [f"# {facts.name} {facts.label}", ""]
    if facts.desc:
        lines += [_line(facts.desc), ""]
    lines += [f"- **Model**: {facts.name} (`{facts.path}`)",
              f"- **Version**: {facts.label} (`{facts.hash}`)",
              f"- **Aliases**: {', '.join(facts.aliases) or 'none'}",
              f"- **Author**: {_line(facts.user or 'unknown')}",
              f"- **Date**: {facts.date or 'unknown'}"]
    lines += [f"- **Note**: {_line(n)}" for n in facts.notes]
    several = len(facts.params) > 1  # then a key says which params file holds it
    params = [(f"{f}: {k}" if several else k, _value(v))
              for f, values in facts.params.items() for k, v in values.items()]
    lines += _section("Params", _table(("param", "value"), params) if params else [],
                      "The runs recorded no params.")
    metrics = [(k, _value(v)) for k, v in facts.metrics.items()]
    lines += _section("Metrics", _table(("metric", "value"), metrics) if metrics else [],
                      "No metrics recorded for this version.")
    data = [f"- `{d.path}` {d.label or ''} (`{d.hash}`, {d.how})".replace("  ", " ")
            for d in facts.data]
    lines += _section("Data versions", data, "No source data on the lineage.")
    code = [f"- commit `{facts.commit or 'none (not committed when it ran)'}`"]
    code.append("- tree: modified " + ", ".join(f"`{p}`" for p in facts.dirty_paths)
                if facts.dirty_paths else "- tree: clean")
    code += [f"- `{path}` (`{oid[:8]}`)" for path, oid in facts.code]
    lines += _section("Code", code, "")
    env = [f"- python: {facts.python or 'not recorded'}"]
    env += [f"- {n}=={v}" for n, v in facts.packages.items()]
    if facts.environment_note:
        env += ["", facts.environment_note]
    lines += _section("Environment", env, "")
    brief = [f"- {s.stage} (run {s.run[:12]}) <- {', '.join(s.inputs) or 'nothing'}"
             for s in facts.lineage]
    lines += _section("Lineage", brief, "No runs recorded.")
    return "\n".join(lines) + "\n"
