"""Project config (``.pipeflow/config``, committed) and per-machine overrides
(``.pipeflow/config.local``, git-ignored): YAML mappings merged key by key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from pipeflow.errors import Location, SpecError

LINK_MODES = ("reflink-or-copy", "reflink", "copy", "hardlink")


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = Location(str(path), mark.line + 1, mark.column + 1) if mark else Location(str(path))
        msg = f"config is not valid YAML: {getattr(exc, 'problem', exc)}"
        raise SpecError(msg, loc) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError("config must be a mapping of sections", Location(str(path)))
    return data


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def load_config(shared: Path, local: Path, defaults: dict[str, Any]) -> dict[str, Any]:
    """Defaults, then the committed config, then the local one."""
    config = _merge(copy.deepcopy(defaults), _read(shared))
    config = _merge(config, _read(local))
    link = config.get("cache", {}).get("link")
    if link not in LINK_MODES:
        msg = f"cache.link is {link!r}; choose one of {', '.join(LINK_MODES)}"
        raise SpecError(msg, Location(str(shared)))
    return config
