"""Project config (``.pipeflow/config``, committed) and per-machine overrides
(``.pipeflow/config.local``, git-ignored): YAML mappings merged key by key."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from pipeflow import projectfile, safeload
from pipeflow.credentials import secret_settings
from pipeflow.errors import Location, SpecError
from pipeflow.storage.links import LINK_SETTINGS

KNOWN: dict[str, tuple[str, ...]] = {"cache": ("dir", "link"), "core": ("remote",),
                                     "gc": ("grace",), "remote": ()}
"""Sections and their keys; ``remote`` maps remote names to their settings."""
CREDENTIALS_HINT = ("put it in the git-ignored .pipeflow/config.local (`pipeflow remote add|"
                    "modify --local`), or give it through the environment or fsspec's own "
                    "configuration (e.g. AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_CONNECTION_STRING)")


def _read(path: Path) -> dict[str, Any]:
    raw = projectfile.read(path, "config")  # never through a link, nor past its limit
    if raw is None:
        return {}
    try:
        data = safeload.load_yaml(raw, str(path), "config")
        if data is not None:
            safeload.bound(data, str(path), "config")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = Location(str(path), mark.line + 1, mark.column + 1) if mark else Location(str(path))
        msg = f"config is not valid YAML: {getattr(exc, 'problem', exc)}"
        raise SpecError(msg, loc) from exc
    except (ValueError, TypeError) as exc:  # a constructor's: "2024-13-45", "!!int x"
        raise SpecError(f"config is not valid YAML: {exc}", Location(str(path))) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError("config must be a mapping of sections", Location(str(path)))
    return data


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if value is None:
            continue  # an empty section or key (all commented out) keeps what is below
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _setter(layers: list[tuple[Path, dict[str, Any]]], keys: tuple[str, ...]) -> Location:
    """The file that set ``keys`` last (the local config wins the merge)."""
    for path, data in reversed(layers):
        node: Any = data
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            return Location(str(path))
    return Location(str(layers[0][0]))


def check_keys(data: dict[str, Any], path: Path, *, credentials: bool = True) -> None:
    """Unknown sections and keys are typos until proven otherwise: say so. With
    ``credentials`` False a credential in the committed config is let through (an edit
    reads the file so, and can then remove it; what it writes is checked in full)."""
    import difflib

    for section, body in data.items():
        if section not in KNOWN:
            close = difflib.get_close_matches(str(section), list(KNOWN), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(KNOWN)}"
            raise SpecError(f"unknown config section '{section}'", Location(str(path)),
                            hint=hint)
        if not isinstance(body, dict):
            continue  # reported with its file by the checks after the merge
        if section == "remote":
            _check_remotes(body, path, credentials)
            continue
        for key in body:
            if key not in KNOWN[section]:
                close = difflib.get_close_matches(str(key), KNOWN[section], n=1)
                hint = (f"did you mean '{section}.{close[0]}'?" if close
                        else f"known: {', '.join(KNOWN[section])}")
                raise SpecError(f"unknown config key '{section}.{key}'",
                                Location(str(path)), hint=hint)


def _check_remotes(body: dict[str, Any], path: Path, credentials: bool) -> None:
    for name, settings in body.items():
        if not isinstance(settings, dict):
            raise SpecError(f"remote '{name}' must be a mapping with a 'url'", Location(str(path)))
        trust = settings.get("trust_run_cache", False)
        if not isinstance(trust, bool):
            raise SpecError(f"remote '{name}': trust_run_cache must be true or false (got "
                            f"{trust!r})", Location(str(path)),
                            hint="`pipeflow remote modify NAME trust_run_cache true`")
        if credentials and path.name != "config.local":
            secret = secret_settings(settings)
            if secret:
                raise SpecError(
                    f"remote '{name}': '{secret[0]}' looks like a credential in the committed "
                    "config", Location(str(path)),
                    hint=f"move it to .pipeflow/config.local (`pipeflow remote modify {name} "
                         f"{secret[0]} VALUE --local`) or the environment, then `pipeflow "
                         f"remote modify {name} {secret[0]} --unset`; rotate it if it was "
                         "ever committed: git history keeps it")


def save_config(path: Path, data: dict[str, Any], header: str) -> None:
    """Write a config file atomically (comments other than ``header`` are not kept)."""
    from pipeflow import atomicfile
    from pipeflow.yamlemit import dump

    atomicfile.write_text(path, header + (dump(data) if data else "{}\n"), durable=True)


def read_config_file(path: Path, *, credentials: bool = True) -> dict[str, Any]:
    """One config file's own contents (no defaults, no merge); ``credentials`` as in
    :func:`check_keys`."""
    data = _read(path)
    check_keys(data, path, credentials=credentials)
    return data


def load_config(shared: Path, local: Path, defaults: dict[str, Any]) -> dict[str, Any]:
    """Defaults, then the committed config, then the local one.

    A bad value raises SpecError naming the file that set it.
    """
    layers = [(shared, _read(shared)), (local, _read(local))]
    for path, data in layers:
        check_keys(data, path)
    config = copy.deepcopy(defaults)
    for _path, data in layers:
        config = _merge(config, data)
    cache = config.get("cache")
    if not isinstance(cache, dict):
        raise SpecError("config section 'cache' must be a mapping", _setter(layers, ("cache",)))
    link = cache.get("link")
    if link not in LINK_SETTINGS:
        msg = f"cache.link is {link!r}; choose one of {', '.join(LINK_SETTINGS)}"
        raise SpecError(msg, _setter(layers, ("cache", "link")))
    folder = cache.get("dir")
    if not isinstance(folder, str) or not folder:
        msg = f"cache.dir must be a folder path (got {folder!r})"
        raise SpecError(msg, _setter(layers, ("cache", "dir")))
    where = _setter(layers, ("cache", "dir"))
    if where.file != str(local):
        _check_shared_cache_dir(folder, shared, where)
    _check_grace(config, layers)
    return config


def _cache_dir_problem(folder: str, dot: Path) -> str | None:
    """Why the committed ``cache.dir`` value ``folder`` (relative to ``.pipeflow/``
    at ``dot``) leaves the project, or None."""
    if folder.startswith("~") or os.path.isabs(folder) or "\0" in folder:
        return "is not a path inside the project"
    rel = os.path.normpath(os.path.join(dot.name, folder))
    parts = rel.split(os.sep)
    if rel == "." or parts[0] == "..":
        return "leads out of the project" if parts[0] == ".." else "is the project folder"
    if ".git" in parts:
        return "leads into .git/"
    root = os.path.realpath(dot.parent)
    real = os.path.realpath(os.path.join(dot.parent, rel))
    if real != root and not real.startswith(root + os.sep):
        return f"resolves out of the project through a symlink (to {real})"
    return None


def _check_shared_cache_dir(folder: str, shared: Path, where: Location) -> None:
    """The committed config (or a default) may only place the cache inside the
    project: a clone must not make pull write, or gc delete, in ``~`` or in another
    project's cache. A folder elsewhere is this machine's choice: config.local."""
    why = _cache_dir_problem(folder, shared.parent)
    if why is not None:
        raise SpecError(
            f"cache.dir {folder!r} {why}: the committed config may only place the cache "
            "inside the project", where,
            hint=f"a cache outside the project is this machine's choice: set it in the "
                 f"git-ignored {shared.parent.name}/config.local (`cache: {{dir: PATH}}`) and "
                 f"remove it from {shared.parent.name}/{shared.name}")


def _check_grace(config: dict[str, Any], layers: list[tuple[Path, dict[str, Any]]]) -> None:
    from pipeflow.duration import parse_duration

    section = config.get("gc")
    if section is None:
        return
    if not isinstance(section, dict):
        raise SpecError("config section 'gc' must be a mapping", _setter(layers, ("gc",)))
    if "grace" in section:
        where = _setter(layers, ("gc", "grace"))
        try:
            seconds = parse_duration(str(section["grace"]))
        except ValueError as exc:
            raise SpecError(f"gc.grace: {exc}", where) from exc
        _check_shared_grace(seconds, str(section["grace"]), where, layers)


def _check_shared_grace(seconds: float, value: str, where: Location,
                        layers: list[tuple[Path, dict[str, Any]]]) -> None:
    """The grace period protects what a push or a writer is still putting in place: a
    repository may not shorten it for everyone who clones it (config.local may)."""
    from pipeflow.grace import DEFAULT_GRACE

    shared = layers[0][0]
    if where.file == str(shared) and seconds < DEFAULT_GRACE:
        raise SpecError(
            f"gc.grace {value!r} is shorter than the default ({DEFAULT_GRACE / 3600:g}h): "
            "the committed config may only lengthen it", where,
            hint=f"a shorter grace period is this machine's choice: set it in the git-ignored "
                 f"{shared.parent.name}/config.local (`gc: {{grace: {value}}}`) or pass "
                 f"`gc --grace`, and remove it from {shared.parent.name}/{shared.name}")
