"""Metrics files (JSON or YAML): parsed into flat dotted keys kept in the lock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from pipeflow.errors import Location, StageFailed
from pipeflow.files import safeload


def flatten_scalars(data: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf scalars of nested mappings as ``a.b.c`` keys (lists are indexed ``a.0``)."""
    flat: dict[str, Any] = {}
    if isinstance(data, dict):
        items: list[tuple[str, Any]] = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, list):
        items = [(str(i), v) for i, v in enumerate(data)]
    else:
        if prefix:
            flat[prefix] = data
        return flat
    for key, value in items:
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, (dict, list)):
            flat.update(flatten_scalars(value, name))
        elif value is None or isinstance(value, (str, int, float, bool)):
            flat[name] = value
    return flat


def read_metrics(path: Path, stage: str, rel: str) -> dict[str, Any]:
    """The values of a metrics file written by ``stage``; a stage failure if unreadable."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:  # a folder, or unreadable: the stage did not write a metrics file
        msg = f"cannot read metrics file '{rel}': {exc.strerror or exc}"
        raise StageFailed(stage, msg) from exc
    is_json = path.suffix.lower() == ".json"

    def bad(message: str, _where: Location) -> StageFailed:
        return StageFailed(stage, f"metrics file '{rel}': {message}")

    try:
        data = json.loads(text) if is_json else safeload.load_yaml(text, rel, "metrics", bad)
        safeload.bound(data, rel, "metrics", bad)  # flatten_scalars recurses
    except (ValueError, yaml.YAMLError) as exc:
        msg = f"metrics file '{rel}' is not valid {'JSON' if is_json else 'YAML'}"
        raise StageFailed(stage, f"{msg}: {exc}") from exc
    except RecursionError:
        raise bad("values nest too deeply", Location(rel)) from None
    return dict(sorted(flatten_scalars(data).items()))
