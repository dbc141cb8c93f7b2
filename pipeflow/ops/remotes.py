"""``pipeflow remote add|list|modify|remove``: remotes in the project config.

URLs and shared options go in the committed ``.pipeflow/config``; per-machine
options (``--local``) in the git-ignored ``.pipeflow/config.local``. Credentials
(see :mod:`pipeflow.credentials`) are refused in the committed config, whether set by
``add`` or ``modify``: they come from config.local, the environment or fsspec's own
configuration, never from the repository.

Edits read, change and write a config file under a lock of their own
(``.pipeflow/state/config.lock``), so two at once both land: the repository lock
would make a ``remote add`` fail while a long ``repro`` runs, for nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeflow import faults
from pipeflow.credentials import (
    has_credentials,
    redact,
    secret_settings,
    unescaped_userinfo,
)
from pipeflow.errors import UsageError
from pipeflow.files.repolock import RepoLock
from pipeflow.lineage.trust import TRUST_KEY
from pipeflow.project.config import CREDENTIALS_HINT, check_keys, read_config_file, save_config
from pipeflow.project.project import Project
from pipeflow.project.remotepolicy import check_committed
from pipeflow.storage.remote import Remote

SHARED_HEADER = "# pipeflow project config (committed). Per-machine overrides: config.local.\n"
LOCAL_HEADER = "# pipeflow per-machine config (git-ignored).\n"
EDIT_WAIT = 30.0
"""Seconds an edit waits for another to finish (each holds the lock for milliseconds)."""


@dataclass(frozen=True)
class RemoteInfo:
    name: str
    url: str
    default: bool
    options: dict[str, Any]


def _file(repo: Project, local: bool) -> tuple[Any, str]:
    path = repo.config_files[1 if local else 0]
    return path, LOCAL_HEADER if local else SHARED_HEADER


def _edit(repo: Project, local: bool, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to one config file: read, change and write under the config
    lock (atomic write), so that concurrent edits never lose one another."""
    if not repo.dot.is_dir():
        from pipeflow.ops.init import init

        init(repo.root, starter=False)
    path, header = _file(repo, local)
    # not the repository lock: a `remote add` must not wait for a long `repro`
    with RepoLock(repo.dot / "state" / "config.lock", wait=EDIT_WAIT):
        repo.forget("config")  # what an edit that held the lock wrote
        # A credential someone committed by hand must not block the edit that removes
        # it; what is written is checked in full below.
        data = read_config_file(path, credentials=False)
        faults.point("config.edit")  # between read and write: where edits used to race
        change(data)
        for section in [k for k, v in data.items() if v in ({}, None)]:
            del data[section]
        check_keys(data, path)  # refuse to write what could not be read back
        save_config(path, data, header)
    repo.forget("config")


def list_remotes(repo: Project) -> list[RemoteInfo]:
    config = repo.config
    return [RemoteInfo(name, r.url, name == config.core.remote, dict(r.options))
            for name, r in sorted(config.remotes.items())]


def add_remote(repo: Project, name: str, url: str, *, default: bool = False,
               local: bool = False, force: bool = False) -> None:
    """Add remote ``name`` at ``url``; ``default`` makes it the one push/pull use."""
    if not name or "/" in name or name.startswith("-"):
        raise UsageError(f"invalid remote name {name!r}")
    _check_url(name, url, local)
    _check_setting(repo, name, "url", url, local)

    def change(data: dict[str, Any]) -> None:
        existing = {r.name for r in list_remotes(repo)}  # read under the lock
        if name in existing and not force:
            raise UsageError(f"remote '{name}' exists",
                             hint="use `pipeflow remote modify` or --force")
        data.setdefault("remote", {})[name] = {**(data.get("remote", {}).get(name) or {}),
                                                "url": url}
        if default or not existing:
            data.setdefault("core", {})["remote"] = name

    _edit(repo, local, change)


def modify_remote(repo: Project, name: str, key: str, value: str | None, *,
                  local: bool = False) -> None:
    """Set (or with ``value`` None, unset) option ``key`` of remote ``name``.

    The committed config refuses what :func:`_refuse_secret` refuses (``url``
    included, as in :func:`add_remote`); ``local`` (config.local) takes anything.
    A value the option cannot take is refused before any file is read or written."""
    if value is not None and key == TRUST_KEY and not isinstance(_parse(value), bool):
        raise UsageError(f"remote '{name}': {TRUST_KEY} must be true or false; the value "
                         f"given, {value!r}, is not (nothing was written)",
                         hint=f"`pipeflow remote modify {name} {TRUST_KEY} true`")
    if value is not None and key == "url":
        _check_url(name, value, local)
    elif value is not None and not local:
        _refuse_secret(name, key, value)
    if value is not None:
        _check_setting(repo, name, key, value, local)

    def change(data: dict[str, Any]) -> None:
        if name not in _names(repo):  # read under the lock
            raise UsageError(f"no remote named '{name}'",
                             hint="`pipeflow remote list` shows them")
        settings = data.setdefault("remote", {}).setdefault(name, {})
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = _parse(value)

    _edit(repo, local, change)


def _check_setting(repo: Project, name: str, key: str, value: str, local: bool) -> None:
    """Refuse to write into the committed config what :func:`open_remote` refuses."""
    if not local and key != TRUST_KEY:
        check_committed(name, {key: _parse(value)}, _file(repo, False)[0], repo.root,
                        repo.cache_dir)


def _check_url(name: str, url: str, local: bool) -> None:
    if unescaped_userinfo(url):
        raise UsageError(f"remote '{name}': the URL {redact(url)} holds a user name and a "
                         "password with an unescaped '/' (every URL parser would read a "
                         "wrong host)", hint="percent-encode it: '/' as %2F, '@' as %40")
    if not local:
        _refuse_secret(name, "url", url)


def _refuse_secret(name: str, key: str, value: str) -> None:
    """A credential (by the key's name or in the value: URL userinfo, a signed query,
    a connection string) has no place in the committed config."""
    found = secret_settings({key: _parse(value)})
    if found:
        if key == "url":
            what = f"the URL {redact(value)} contains credentials"
        elif has_credentials(value):
            what = f"the value of '{key}' ({redact(value)}) contains credentials"
        else:
            what = f"'{key}' looks like a credential"
        raise UsageError(f"remote '{name}': {what}; the committed .pipeflow/config is no "
                         "place for it", hint=CREDENTIALS_HINT)


def _parse(value: str) -> Any:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(value)
    except ValueError:
        return value


def _names(repo: Project) -> set[str]:
    """The remotes either config file names (read as an edit reads them)."""
    names: set[str] = set()
    for local in (False, True):
        remotes = read_config_file(_file(repo, local)[0], credentials=False).get("remote")
        names.update(remotes if isinstance(remotes, dict) else ())
    return names


def remove_remote(repo: Project, name: str) -> None:
    if name not in _names(repo):
        raise UsageError(f"no remote named '{name}'", hint="`pipeflow remote list` shows them")
    for local in (False, True):
        def change(data: dict[str, Any]) -> None:
            (data.get("remote") or {}).pop(name, None)
            if (data.get("core") or {}).get("remote") == name:
                data["core"].pop("remote")

        _edit(repo, local, change)


def open_remote(repo: Project, name: str | None = None) -> Remote:
    """The remote ``name`` (default: ``core.remote``, or the only one)."""
    remotes = {r.name: r for r in list_remotes(repo)}
    if not remotes:
        raise UsageError("no remote configured",
                         hint="add one: `pipeflow remote add NAME URL --default`")
    if name is None:
        chosen = [r for r in remotes.values() if r.default] or (
            list(remotes.values()) if len(remotes) == 1 else [])
        if not chosen:
            raise UsageError("several remotes and no default",
                             hint="pass -r NAME or `pipeflow remote add NAME URL --default`")
        info = chosen[0]
    elif name in remotes:
        info = remotes[name]
    else:
        raise UsageError(f"no remote named '{name}'",
                         hint=f"configured: {', '.join(sorted(remotes))}")
    if not info.url:
        raise UsageError(f"remote '{info.name}' has no url")
    _check_committed(repo, info.name)
    # pipeflow's own options are not the file system's
    return Remote(info.name, info.url, repo.config.remotes[info.name].fs_options)


def _check_committed(repo: Project, name: str) -> None:
    """What the committed config says about remote ``name`` and config.local does not
    replace must be a plain storage location (:mod:`pipeflow.project.remotepolicy`)."""
    shared, _ = _file(repo, False)
    local_settings = (read_config_file(_file(repo, True)[0]).get("remote") or {}).get(name)
    settings = dict((read_config_file(shared).get("remote") or {}).get(name) or {})
    for key, value in (local_settings or {}).items():
        if not isinstance(value, dict):  # a mapping is merged key by key, not replaced
            settings.pop(key, None)
    settings.pop(TRUST_KEY, None)
    check_committed(name, settings, shared, repo.root, repo.cache_dir)
