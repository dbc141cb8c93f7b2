"""``pipeflow env export MODEL_OR_PATH@VERSION``: the Python environment a version
was made in, as a requirements file, a conda environment.yml or JSON.

What a run record keeps of the environment (``pipeflow.code.environment``): the
platform, the interpreter's exact version, and the exact versions of the
distributions the stage's code imports (with their ``Requires-Dist`` closure) and of
those ``env.packages`` declares. Not everything installed: a package reached only
through a subprocess or a plugin entry point is missing unless declared. Every
output says so in its header.

The runs counted are those of the version's lineage (the run that made it and the
runs upstream of it). When they used different versions of a distribution, or of
Python, the export is refused (:class:`EnvironmentConflict`) unless ``first``: then
the run nearest the model (the lineage walk's first) wins.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeflow.errors import CheckFailed
from pipeflow.lineage.model import Lineage
from pipeflow.project.project import Project

FORMATS = ("requirements", "conda", "json")
SCHEMA = 1

KEPT = ("pipeflow records the distributions a stage's code imports (and what they "
        "require) and those env.packages declares, not everything installed")
"""What a run record keeps of the environment, said in every export's header."""


@dataclass(frozen=True)
class Choice:
    """The versions the runs used of one thing (a distribution, or Python)."""

    name: str
    used: Mapping[str, tuple[str, ...]]
    """Version -> the stages whose runs used it, in walk order (nearest the model first)."""

    @property
    def chosen(self) -> str:
        return next(iter(self.used))

    @property
    def conflicting(self) -> bool:
        return len(self.used) > 1

    def describe(self) -> str:
        return f"{self.name}: " + ", ".join(f"{v} ({', '.join(stages)})"
                                            for v, stages in self.used.items())


@dataclass(frozen=True)
class VersionEnvironment:
    """The environment of one version of a path, gathered from its lineage's runs."""

    path: str
    label: str
    hash: str
    model: str | None
    implementation: str | None
    """``cpython``; None when no run recorded a Python."""
    python: Choice | None
    """Exact versions (``3.11.7``) of the interpreters the runs used."""
    packages: tuple[Choice, ...]
    """By name (as the distribution spells it), sorted case-insensitively."""
    stages: tuple[str, ...]
    """The stages whose runs count, nearest the model first."""
    notes: tuple[str, ...] = field(default=())
    """What could not be known (an unprobed interpreter, a package not installed)."""

    @property
    def conflicts(self) -> tuple[Choice, ...]:
        both = ((self.python,) if self.python is not None else ()) + self.packages
        return tuple(c for c in both if c.conflicting)

    def pins(self) -> dict[str, str]:
        """Distribution -> the version taken (the nearest run's on a conflict)."""
        return {c.name: c.chosen for c in self.packages}


class EnvironmentConflict(CheckFailed):
    """The runs of one lineage used different versions of something."""


def gather(lineage: Lineage, path: str, label: str, oid: str,
           model: str | None) -> VersionEnvironment:
    """The environment the runs of ``lineage`` recorded (pure: from the lineage alone)."""
    from pipeflow.code.pydists import normalize

    pythons: dict[str, list[str]] = {}
    impls: list[str] = []
    packages: dict[str, tuple[str, dict[str, list[str]]]] = {}
    notes: list[str] = []
    stages: list[str] = []
    for run in lineage.runs.values():
        if run.kind == "add" or not run.env:
            continue
        stages.append(run.stage)
        impl, _, exact = str(run.env.get("python") or "").partition("-")
        if exact:
            impls.append(impl)
            pythons.setdefault(exact, []).append(run.stage)
        elif run.env.get("python"):
            notes.append(f"stage '{run.stage}': python {run.env['python']} (its interpreter "
                         "was not asked: `pipeflow trust` it)")
        for name, version in (run.env.get("packages") or {}).items():
            if version in (None, "unknown"):
                why = "not installed" if version is None else "version unknown"
                notes.append(f"stage '{run.stage}': {name} {why}, left out")
                continue
            key = normalize(name)
            used = packages.setdefault(key, (name, {}))[1]
            used.setdefault(str(version), []).append(run.stage)
    python = Choice("python", _frozen(pythons)) if pythons else None
    found = sorted((Choice(n, _frozen(u)) for n, u in packages.values()),
                   key=lambda c: c.name.lower())
    return VersionEnvironment(path, label, oid, model, impls[0] if impls else None, python,
                              tuple(found), tuple(dict.fromkeys(stages)),
                              tuple(dict.fromkeys(notes)))


def _frozen(used: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
    return {v: tuple(dict.fromkeys(s)) for v, s in used.items()}


def environment(repo: Project, target: str, *, first: bool = False) -> VersionEnvironment:
    """The environment of ``MODEL_OR_PATH@VERSION`` (without a version: the one
    pipeline.lock names); :class:`EnvironmentConflict` when its runs disagree,
    unless ``first``."""
    from pipeflow.ops.lineage import lineage, start_of
    from pipeflow.registry.models import resolve_target

    aim = resolve_target(repo, target)
    start = start_of(repo, aim.path, aim.version)
    found = lineage(repo, aim.path, aim.version)
    label = start.label or found.root.version or start.hash[:8]
    env = gather(found, aim.path, label, start.hash, aim.model.name if aim.model else None)
    if env.conflicts and not first:
        lines = "; ".join(c.describe() for c in env.conflicts)
        raise EnvironmentConflict(
            f"the runs that made {aim.path} {label} used different versions: {lines}",
            hint="recreate one stage's environment at a time, or pass --first to take the "
                 "versions of the run nearest the model")
    return env


# --- renderings (pure) -------------------------------------------------------------


def _header(env: VersionEnvironment) -> list[str]:
    what = f"{env.model} ({env.path})" if env.model else env.path
    python = f"{env.implementation} {env.python.chosen}" if env.python else "not recorded"
    lines = [f"environment of {what} {env.label} ({env.hash[:8]})",
             f"python: {python}",
             f"stages: {', '.join(env.stages) or 'none'}",
             f"made by `pipeflow env export`; {KEPT}."]
    lines += [f"conflict, took the run nearest the model: {c.describe()}"
              for c in env.conflicts]
    lines += [f"note: {n}" for n in env.notes]
    return lines


def to_requirements(env: VersionEnvironment) -> str:
    """``name==version`` lines under a comment header (``pip install -r``)."""
    lines = [f"# {line}" for line in _header(env)]
    lines += [f"{name}=={version}" for name, version in env.pins().items()]
    return "\n".join(lines) + "\n"


def _conda_name(env: VersionEnvironment) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{env.model or env.path}-{env.label}").strip("-")


def to_conda(env: VersionEnvironment) -> str:
    """A conda ``environment.yml``: ``python=X.Y.Z`` and a pip section with the pins."""
    lines = [f"# {line}" for line in _header(env)]
    lines += [f"name: {json.dumps(_conda_name(env))}", "dependencies:"]
    if env.python is not None:
        lines.append(f"  - python={env.python.chosen}")
    pins = env.pins()
    if pins:
        lines += ["  - pip", "  - pip:"]
        lines += [f"      - {json.dumps(f'{n}=={v}')}" for n, v in pins.items()]
    return "\n".join(lines) + "\n"


def to_json(env: VersionEnvironment) -> dict[str, Any]:
    """The environment as plain data (docs/registry.md, "Exporting")."""
    return {
        "schema": SCHEMA, "path": env.path, "model": env.model, "version": env.label,
        "hash": env.hash, "kept": KEPT,
        "python": None if env.python is None else {
            "implementation": env.implementation, "version": env.python.chosen,
            "used": {v: list(s) for v, s in env.python.used.items()}},
        "packages": env.pins(),
        "used": {c.name: {v: list(s) for v, s in c.used.items()} for c in env.packages},
        "conflicts": [c.name for c in env.conflicts],
        "stages": list(env.stages), "notes": list(env.notes),
    }


def render(env: VersionEnvironment, fmt: str) -> str:
    """``env`` in one of FORMATS, ending with a newline."""
    if fmt == "requirements":
        return to_requirements(env)
    if fmt == "conda":
        return to_conda(env)
    if fmt == "json":
        return json.dumps(to_json(env), indent=2, ensure_ascii=False) + "\n"
    raise ValueError(f"unknown environment format {fmt!r}")
