"""Setting values in a params file (YAML, JSON, TOML) and keeping the rest of it: comments,
key order, quoting and layout of every line not set."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def set_values(path: Path, values: Mapping[str, Any]) -> None:
    """Set each dotted key of ``values`` in the params file ``path`` (every key exists
    already: :mod:`pipeflow.experiments.overrides` checked them)."""
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    for key, value in values.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
