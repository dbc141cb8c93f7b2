"""The environment a reproduction runs in against the one a version was made in.

Before running, the interpreter running pipeflow is compared with what each recorded
run kept (``env_exact``: the interpreter's version and each distribution's): this is
what ``--strict-env`` refuses on. After running, each reproduced run's own record is
compared with the recorded one — the interpreter the stage's command ran, which may be
another (a venv named in ``cmd``).
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

from pipeflow.lineage.reproductions import EnvDifference


def current_python() -> str:
    """This interpreter as records name one: ``cpython-3.11.9``."""
    return f"{sys.implementation.name}-{platform.python_version()}"


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
    except Exception:
        return None


def _same_python(recorded: str, current: str) -> bool:
    """A record that kept ``cpython-3.11`` (minor only) matches any 3.11 patch."""
    return current == recorded or current.startswith(recorded + ".")


def against_current(envs: Iterable[Mapping[str, Any]]) -> list[EnvDifference]:
    """How this interpreter differs from the recorded environments (their union: one
    difference per name), in name order."""
    found: dict[str, EnvDifference] = {}
    installed: dict[str, str | None] = {}  # each stage lists the same distributions
    now = current_python()
    for env in envs:
        python = env.get("python")
        if isinstance(python, str) and python not in ("unknown", "unprobed") and (
                not _same_python(python, now)):
            found.setdefault("python", EnvDifference("python", python, now))
        packages = env.get("packages")
        for name, version in (packages.items() if isinstance(packages, Mapping) else ()):
            if str(name) not in installed:
                installed[str(name)] = _installed(str(name))
            have = installed[str(name)]
            if str(version) != (have or ""):
                found.setdefault(str(name), EnvDifference(str(name), str(version), have))
    return [found[k] for k in sorted(found, key=lambda n: (n != "python", n.lower()))]


def between(recorded: Mapping[str, Any], reproduced: Mapping[str, Any]) -> list[EnvDifference]:
    """How a reproduced run's environment differs from the recorded run's."""
    out: list[EnvDifference] = []
    for key in ("python", "platform"):
        a, b = recorded.get(key), reproduced.get(key)
        if a is not None and a != b and not (
                key == "python" and isinstance(a, str) and isinstance(b, str)
                and _same_python(a, b)):
            out.append(EnvDifference(key, _text(a), _text(b)))
    old, new = recorded.get("packages") or {}, reproduced.get("packages") or {}
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for name in sorted(set(old) | set(new), key=str.lower):
            if old.get(name) != new.get(name):
                out.append(EnvDifference(name, _text(old.get(name)), _text(new.get(name))))
    return out


def _text(value: object) -> str | None:
    return None if value is None else str(value)
