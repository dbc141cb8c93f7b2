"""Project config (``.pipeflow/config``, committed) and per-machine overrides
(``.pipeflow/config.local``, git-ignored): YAML mappings merged key by key, read as
a typed :class:`Config` whose field defaults are the only defaults.

Bad values raise :class:`~pipeflow.errors.ConfigError` (exit 2) naming the file that
set them.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeflow.credentials import secret_settings
from pipeflow.errors import ConfigError, Location, PipeflowError
from pipeflow.files import projectfile, safeload
from pipeflow.params import deep_merge
from pipeflow.signing.signatures import TrustedKeys
from pipeflow.storage.links import LINK_SETTINGS

DEFAULT_GRACE = 2 * 3600.0
"""Seconds an unreferenced object or a temporary file is left alone before ``gc`` (or,
for temporary files, the next writer) may delete it: ``gc.grace`` (docs/gc.md)."""
TRUST_KEY = "trust_run_cache"
"""The remote option that opts into that remote's unsigned run cache."""
KNOWN: dict[str, tuple[str, ...]] = {"cache": ("dir", "link"), "core": ("remote",),
                                     "gc": ("grace",), "remote": (), "keys": ("trusted",),
                                     "registry": ("protected", "project")}
"""Sections and their keys; ``remote`` maps remote names to their settings."""
CREDENTIALS_HINT = ("put it in the git-ignored .pipeflow/config.local (`pipeflow remote add|"
                    "modify --local`), or give it through the environment or fsspec's own "
                    "configuration (e.g. AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_CONNECTION_STRING)")


Where = Callable[[tuple[str, ...]], Location]
"""The file that set a key (given as its path of keys): where an error points."""


@dataclass(frozen=True)
class CacheConfig:
    """``cache:``: where the object store is and how outputs reach the workspace."""

    dir: str = "cache"
    """Relative to ``.pipeflow/``; ``~`` and absolute paths only from config.local."""
    link: str = "reflink-or-copy"
    """One of :data:`LINK_SETTINGS`."""


@dataclass(frozen=True)
class CoreConfig:
    """``core:``: project-wide choices."""

    remote: str | None = None
    """The remote push and pull use without ``-r``."""


@dataclass(frozen=True)
class GcConfig:
    """``gc:``: garbage collection."""

    grace: float = DEFAULT_GRACE
    """Seconds an unreferenced object or a temporary file is left alone."""


@dataclass(frozen=True)
class RegistryConfig:
    """``registry:`` and ``keys:``: who may move which alias (docs/registry.md)."""

    protected: tuple[str, ...] = ()
    """Glob patterns (``production*``) of aliases whose moves need a trusted signature."""
    trusted: TrustedKeys = field(default_factory=lambda: TrustedKeys({}))
    """``keys.trusted``: name -> public key."""
    project: str | None = None
    """``registry.project``: this project's id, signed into every alias move, so a
    signed move copied from another project does not count here."""


@dataclass(frozen=True)
class RemoteConfig:
    """``remote.NAME:``: one remote's settings."""

    name: str
    url: str
    options: Mapping[str, Any] = field(default_factory=dict)
    """Every setting but ``url``, as written (fsspec's options and pipeflow's own)."""
    trust_run_cache: bool = False

    @property
    def fs_options(self) -> dict[str, Any]:
        """The options for the file system (pipeflow's own taken out)."""
        return {k: v for k, v in self.options.items() if k != TRUST_KEY}


@dataclass(frozen=True)
class Config:
    """The merged config of a project, validated. ``raw`` is the merged mapping as
    read (never changed), for what takes arbitrary keys."""

    cache: CacheConfig = CacheConfig()
    core: CoreConfig = CoreConfig()
    gc: GcConfig = GcConfig()
    remotes: Mapping[str, RemoteConfig] = field(default_factory=dict)
    registry: RegistryConfig = RegistryConfig()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: Path | Where) -> Config:
        """Validate ``data`` (a config file's mapping, or several merged over
        :data:`DEFAULT_CONFIG`); ``where`` is the file, or says which file set a key.
        Raises ConfigError naming that file and the key."""
        at: Where = where if callable(where) else (lambda _keys: Location(str(where)))
        sections = {name: _section(data, name, at) for name in KNOWN}
        remotes = {str(name): _remote(str(name), settings, at)
                   for name, settings in sections["remote"].items()}
        remote = sections["core"].get("remote")  # not a string: names no remote, as ever
        return cls(cache=_cache(sections["cache"], at),
                   core=CoreConfig(remote if isinstance(remote, str) else None),
                   gc=GcConfig(_grace(sections["gc"], at)), remotes=remotes,
                   registry=_registry(sections["registry"], sections["keys"], at), raw=data)


DEFAULT_CONFIG: dict[str, Any] = {"cache": asdict(CacheConfig())}
"""What no file need say (the other defaults are the fields' own: absent from here)."""


def _section(data: Mapping[str, Any], name: str, at: Where) -> Mapping[str, Any]:
    body = data.get(name)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ConfigError(f"config section '{name}' must be a mapping", at((name,)))
    return body


def _cache(section: Mapping[str, Any], at: Where) -> CacheConfig:
    link = section.get("link", CacheConfig.link)
    if link not in LINK_SETTINGS:
        msg = f"cache.link is {link!r}; choose one of {', '.join(LINK_SETTINGS)}"
        raise ConfigError(msg, at(("cache", "link")))
    folder = section.get("dir", CacheConfig.dir)
    if not isinstance(folder, str) or not folder:
        msg = f"cache.dir must be a folder path (got {folder!r})"
        raise ConfigError(msg, at(("cache", "dir")))
    return CacheConfig(dir=folder, link=link)


def _grace(section: Mapping[str, Any], at: Where) -> float:
    from pipeflow.duration import parse_duration

    if "grace" not in section:
        return DEFAULT_GRACE
    try:
        return parse_duration(str(section["grace"]))
    except ValueError as exc:
        raise ConfigError(f"gc.grace: {exc}", at(("gc", "grace"))) from exc


def _registry(registry: Mapping[str, Any], keys: Mapping[str, Any],
              at: Where) -> RegistryConfig:
    protected = registry.get("protected", [])
    if isinstance(protected, str):
        protected = [protected]
    if not isinstance(protected, list) or not all(isinstance(p, str) and p
                                                  for p in protected):
        raise ConfigError(f"registry.protected must be a list of alias patterns (got "
                          f"{protected!r})", at(("registry", "protected")),
                          hint='e.g. `registry: {protected: ["production*"]}`')
    trusted = keys.get("trusted") or {}
    where = at(("keys", "trusted"))
    if not isinstance(trusted, dict):
        raise ConfigError("keys.trusted must map names to public keys", where,
                          hint="`pipeflow keys trust NAME PUBLIC_KEY` writes an entry")
    project = registry.get("project")
    if project is not None and (not isinstance(project, str)
                                or not re.fullmatch(r"[0-9a-f]{8,64}", project)):
        raise ConfigError(f"registry.project must be a hex id (got {str(project)[:40]!r})",
                          at(("registry", "project")),
                          hint="`pipeflow keys trust` writes one; never copy another "
                               "project's")
    try:
        return RegistryConfig(tuple(protected), TrustedKeys.from_mapping(trusted, "keys.trusted"),
                              project)
    except ConfigError as exc:
        raise ConfigError(exc.message, where, hint=exc.hint) from None


def _remote(name: str, settings: Any, at: Where) -> RemoteConfig:
    if not isinstance(settings, dict):
        raise ConfigError(f"remote '{name}' must be a mapping with a 'url'", at(("remote", name)))
    trust = settings.get(TRUST_KEY, False)
    if not isinstance(trust, bool):
        raise ConfigError(f"remote '{name}': {TRUST_KEY} must be true or false (got "
                        f"{trust!r})", at(("remote", name, TRUST_KEY)),
                        hint=f"`pipeflow remote modify {name} {TRUST_KEY} true`")
    options = {k: v for k, v in settings.items() if k != "url"}
    return RemoteConfig(name, str(settings.get("url", "")), options, trust)


def config_error(message: str, where: Location) -> PipeflowError:
    """The error factory :mod:`pipeflow.files.safeload` and
    :mod:`pipeflow.files.projectfile` take."""
    return ConfigError(message, where)


def _read(path: Path) -> dict[str, Any]:
    # never through a link, nor past its limit
    raw = projectfile.read(path, "config", error=config_error)
    if raw is None:
        return {}
    try:
        data = safeload.load_yaml(raw, str(path), "config", config_error)
        if data is not None:
            safeload.bound(data, str(path), "config", config_error)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = Location(str(path), mark.line + 1, mark.column + 1) if mark else Location(str(path))
        msg = f"config is not valid YAML: {getattr(exc, 'problem', exc)}"
        raise ConfigError(msg, loc) from exc
    except (ValueError, TypeError) as exc:  # a constructor's: "2024-13-45", "!!int x"
        raise ConfigError(f"config is not valid YAML: {exc}", Location(str(path))) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config must be a mapping of sections", Location(str(path)))
    return data


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
            raise ConfigError(f"unknown config section '{section}'", Location(str(path)),
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
                raise ConfigError(f"unknown config key '{section}.{key}'",
                                Location(str(path)), hint=hint)


def _check_remotes(body: dict[str, Any], path: Path, credentials: bool) -> None:
    for name, settings in body.items():
        _remote(str(name), settings, lambda keys: Location(str(path)))
        if credentials and path.name != "config.local":
            secret = secret_settings(settings)
            if secret:
                raise ConfigError(
                    f"remote '{name}': '{secret[0]}' looks like a credential in the committed "
                    "config", Location(str(path)),
                    hint=f"move it to .pipeflow/config.local (`pipeflow remote modify {name} "
                         f"{secret[0]} VALUE --local`) or the environment, then `pipeflow "
                         f"remote modify {name} {secret[0]} --unset`; rotate it if it was "
                         "ever committed: git history keeps it")


def save_config(path: Path, data: dict[str, Any], header: str) -> None:
    """Write a config file atomically (comments other than ``header`` are not kept)."""
    from pipeflow.files import atomicfile
    from pipeflow.files.yamlemit import dump

    atomicfile.write_text(path, header + (dump(data) if data else "{}\n"), durable=True)


def read_config_file(path: Path, *, credentials: bool = True) -> dict[str, Any]:
    """One config file's own contents (no defaults, no merge); ``credentials`` as in
    :func:`check_keys`."""
    data = _read(path)
    check_keys(data, path, credentials=credentials)
    return data


def load(shared: Path, local: Path,
         defaults: Mapping[str, Any] = DEFAULT_CONFIG) -> Config:
    """Defaults, then the committed config, then the local one.

    A bad value raises ConfigError naming the file that set it.
    """
    layers = [(shared, _read(shared)), (local, _read(local))]
    for path, data in layers:
        check_keys(data, path)
    merged: dict[str, Any] = copy.deepcopy(dict(defaults))
    for _path, data in layers:
        merged = deep_merge(merged, data, none_keeps=True)
    config = Config.from_mapping(merged, lambda keys: _setter(layers, keys))
    where = _setter(layers, ("cache", "dir"))
    if where.file != str(local):
        _check_shared_cache_dir(config.cache.dir, shared, where)
    gc = merged.get("gc")
    if isinstance(gc, dict) and "grace" in gc:
        _check_shared_grace(config.gc.grace, str(gc["grace"]),
                            _setter(layers, ("gc", "grace")), layers)
    return config


def load_config(shared: Path, local: Path,
                defaults: Mapping[str, Any] = DEFAULT_CONFIG) -> dict[str, Any]:
    """The merged mapping :func:`load` reads (checked the same way)."""
    return dict(load(shared, local, defaults).raw)


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
        raise ConfigError(
            f"cache.dir {folder!r} {why}: the committed config may only place the cache "
            "inside the project", where,
            hint=f"a cache outside the project is this machine's choice: set it in the "
                 f"git-ignored {shared.parent.name}/config.local (`cache: {{dir: PATH}}`) and "
                 f"remove it from {shared.parent.name}/{shared.name}")


def _check_shared_grace(seconds: float, value: str, where: Location,
                        layers: list[tuple[Path, dict[str, Any]]]) -> None:
    """The grace period protects what a push or a writer is still putting in place: a
    repository may not shorten it for everyone who clones it (config.local may)."""
    shared = layers[0][0]
    if where.file == str(shared) and seconds < DEFAULT_GRACE:
        raise ConfigError(
            f"gc.grace {value!r} is shorter than the default ({DEFAULT_GRACE / 3600:g}h): "
            "the committed config may only lengthen it", where,
            hint=f"a shorter grace period is this machine's choice: set it in the git-ignored "
                 f"{shared.parent.name}/config.local (`gc: {{grace: {value}}}`) or pass "
                 f"`gc --grace`, and remove it from {shared.parent.name}/{shared.name}")
