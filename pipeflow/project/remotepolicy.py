"""What the committed ``.pipeflow/config`` may say about a remote.

The URL and options of a remote go to fsspec, which can do far more than store
objects: a chained URL (``simplecache::...``) with ``cache_storage`` writes every
downloaded file into any folder; ``reference``/``dir``/``memory`` and friends read or
write other file systems; a local path may name another project's cache, which
``push`` would fill with this clone's records and ``gc --remote`` would empty. A
repository's file is data, not an instruction, so the committed config may only name
a plain storage URL of a known protocol, with options that name no local path and no
other file system, and a local path that is no one's pipeflow state. The git-ignored
``config.local`` is the machine's own choice and may say anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeflow.errors import ConfigError, Location

STORAGE_PROTOCOLS = frozenset({
    "file", "local", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "http",
    "https", "ssh", "sftp", "ftp", "smb", "hdfs", "webhdfs", "webdav", "oss", "oci",
    "dbfs"})
"""Protocols of storage services (an allow-list: wrappers such as simplecache,
filecache, blockcache, cached, dir, reference, memory, zip, tar, libarchive, dask,
git or github read or write somewhere else, and new ones appear with every release)."""
LOCAL_PROTOCOLS = frozenset({"file", "local"})
FORBIDDEN_OPTIONS = frozenset({
    "cache_storage", "target_protocol", "target_options", "fo", "remote_protocol",
    "remote_options", "fs", "target", "path", "storage_options", "cache_mapper"})
"""Options (at any depth) that name a local folder or another file system: those of
fsspec's wrapper and reference file systems. Any option named after a protocol (the
options of one link of a chained URL) is refused too."""


def _hint(where: Path) -> str:
    local = where.parent / "config.local"
    return (f"a remote like this is this machine's choice: set it in the git-ignored "
            f"{where.parent.name}/{local.name} (`pipeflow remote add|modify ... --local`) "
            f"and remove it from {where.parent.name}/{where.name}")


def url_problem(url: str, root: Path, cache_dir: Path) -> str | None:
    """Why the committed remote URL ``url`` is refused, or None."""
    from fsspec.core import split_protocol

    if "::" in url:
        return "chains file systems ('::')"
    protocol, path = split_protocol(url)
    protocol = (protocol or "file").lower()
    if protocol not in STORAGE_PROTOCOLS:
        return f"uses protocol '{protocol}', which is not a storage service"
    if protocol in LOCAL_PROTOCOLS:
        return _local_problem(path, root, cache_dir)
    return None


def _local_problem(path: str, root: Path, cache_dir: Path) -> str | None:
    """Why a local-path remote names pipeflow's or git's state (resolved as fsspec
    resolves it: ``~`` expanded, relative to the current folder), or None."""
    if "\0" in path:
        return "holds a NUL character"
    plain = os.path.abspath(os.path.expanduser(path))
    real = os.path.realpath(plain)
    for name in (plain, real):
        # casefolded: on macOS and Windows .GIT is .git
        parts = {p.casefold().rstrip(". ") for p in Path(name).parts}
        if ".git" in parts:
            return f"leads into a .git folder ({real})"
        if ".pipeflow" in parts:
            return f"leads into a .pipeflow folder, pipeflow's own state ({real})"
    own_root = os.path.realpath(root)
    if real == own_root:
        return "is the project folder"
    own_cache = os.path.realpath(cache_dir)
    if real == own_cache or real.startswith(own_cache + os.sep):
        return f"is this project's cache ({own_cache})"
    return None


def options_problem(options: Mapping[str, Any]) -> str | None:
    """The first option (dotted, at any depth) that names a local path or another file
    system, or None."""
    from fsspec.registry import known_implementations, registry

    protocols = set(known_implementations) | set(registry)
    for key, value in options.items():
        name = str(key)
        if name in FORBIDDEN_OPTIONS or name in protocols:
            return name
        if isinstance(value, Mapping):
            inner = options_problem(value)
            if inner is not None:
                return f"{name}.{inner}"
    return None


def check_committed(name: str, settings: Mapping[str, Any], where: Path, root: Path,
                    cache_dir: Path) -> None:
    """Refuse what the committed config ``where`` says about remote ``name`` (its
    ``url`` if present, and its options) when it is not a plain storage location."""
    url = settings.get("url")
    if isinstance(url, str) and url:
        why = url_problem(url, root, cache_dir)
        if why is not None:
            from pipeflow.credentials import redact

            raise ConfigError(f"remote '{name}': url {redact(url)!r} {why}; the committed "
                            "config may only name a plain storage location",
                            Location(str(where)), hint=_hint(where))
    options = {k: v for k, v in settings.items() if k != "url"}
    bad = options_problem(options)
    if bad is not None:
        raise ConfigError(f"remote '{name}': option '{bad}' names a local path or another "
                        "file system; the committed config may not set it",
                        Location(str(where)), hint=_hint(where))
