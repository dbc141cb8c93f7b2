"""Environment folders the user trusted on this machine (``pipeflow trust venv``).

Trusting a folder lets pipeflow start every interpreter under it, and covers what
later pulls put there. So only a folder that is an environment can be trusted: a
virtualenv (it holds ``pyvenv.cfg``) or a conda env (it holds ``conda-meta/``).
Never ``/``, the user's home, the project root or a folder above any of them: there
a script committed tomorrow would run on the next ``status``. The trust is kept in
the machine cache by real path, never in a file of the project (a clone cannot bring
its own), and a recorded folder counts only while it is still such an environment.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from pipeflow.errors import UsageError
from pipeflow.files.machinecache import machine_cache
from pipeflow.files.safepath import within

_PREFIX = "trusted-interpreter-folder:"

WHAT_IS_A_VENV = ("a virtualenv is a folder made by `python3 -m venv FOLDER` (it holds "
                  "pyvenv.cfg); a conda env holds conda-meta/")


def env_kind(folder: str) -> str | None:
    """``virtualenv`` or ``conda env`` when ``folder`` is one, else None."""
    if os.path.isfile(os.path.join(folder, "pyvenv.cfg")):
        return "virtualenv"
    if os.path.isdir(os.path.join(folder, "conda-meta")):
        return "conda env"
    return None


def _too_wide(real: str, root: str | None) -> str | None:
    """Why real path ``real`` may never be trusted (it holds far more than an
    environment), or None."""
    if real == os.sep:
        return "it is /"
    if root is not None and within(root, real):
        return ("it is the project root" if real == root
                else "it is a folder above the project")
    home = os.path.realpath(os.path.expanduser("~"))
    if within(home, real):
        return "it is your home folder" if real == home else "it holds your home folder"
    return None


def why_untrustable(real: str, root: str | None) -> str | None:
    """Why real path ``real`` cannot be trusted for project ``root`` (a real path, or
    None outside a project), or None when it can."""
    if not os.path.isdir(real):
        return "it is not a folder"
    return _too_wide(real, root) or (
        None if env_kind(real) else "it is neither a virtualenv nor a conda env")


def trust_folder(folder: str, root: str | None = None) -> str:
    """Record environment ``folder`` as trusted on this machine; its real path.
    Raises UsageError when it cannot be trusted (see the module docstring) or the
    record cannot be kept."""
    real = os.path.realpath(folder)
    real_root = os.path.realpath(root) if root is not None else None
    why = why_untrustable(real, real_root)
    if why is not None:
        raise UsageError(f"cannot trust '{folder}' ({real}): {why}",
                         hint=f"trust only an environment you made: {WHAT_IS_A_VENV}; "
                              "e.g. `pipeflow trust venv .venv`")
    cache = machine_cache()
    cache.put(_PREFIX + real, json.dumps({"trusted_ns": time.time_ns()}))
    if cache.get(_PREFIX + real) is None:
        raise UsageError(f"cannot trust '{folder}': cannot write the machine cache {cache.path}",
                         hint="set PIPEFLOW_MACHINE_CACHE to a writable file path")
    return real


def untrust_folder(folder: str) -> str:
    """Forget the trust of ``folder`` (by its real path, or as listed when it no
    longer exists); the path forgotten. Raises UsageError when it was not trusted."""
    cache = machine_cache()
    for path in dict.fromkeys((os.path.realpath(folder), os.path.abspath(folder), folder)):
        if cache.delete(_PREFIX + path):
            return path
    raise UsageError(f"'{folder}' is not a trusted folder on this machine",
                     hint="`pipeflow trust list` shows the trusted ones")


@dataclass(frozen=True)
class TrustedFolder:
    """A folder recorded by ``trust_folder``."""

    path: str
    trusted_ns: int
    ignored: str | None
    """Why the record no longer counts (the folder is gone or no environment), or None."""


def trusted_folders() -> list[TrustedFolder]:
    """Every folder trusted on this machine, by path."""
    found = []
    for key, value in machine_cache().with_prefix(_PREFIX):
        path = key[len(_PREFIX):]
        try:
            when = json.loads(value).get("trusted_ns", 0)
        except (ValueError, AttributeError):
            when = 0
        why = why_untrustable(path, None)
        found.append(TrustedFolder(path, when if isinstance(when, int) else 0, why))
    return found


def is_trusted_folder(real: str, root: str | None) -> bool:
    """Whether real path ``real`` is at or below a trusted folder that is still an
    environment and not too wide for project ``root`` (a real path): a record of
    ``/`` or the project root made by an older pipeflow does not count."""
    cache = machine_cache()
    folder = real
    while True:
        if (cache.get(_PREFIX + folder) is not None
                and why_untrustable(folder, root) is None):
            return True
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent
