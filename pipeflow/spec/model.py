"""The pipeline as the rest of pipeflow sees it: frozen, fully resolved values.

Every path here is POSIX and relative to the project root (``wdir`` already
applied), so nothing downstream of the spec loader ever joins or normalizes paths
written by a user, and no absolute path can reach a fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pipeflow.errors import Location

OutKind = Literal["out", "metric"]


@dataclass(frozen=True)
class Out:
    """Something a stage writes: a file or a directory."""

    path: str
    kind: OutKind = "out"
    cache: bool = True
    persist: bool = False
    model: str | None = None
    """The model name this output is declared as (``model:``): the registry's unit."""
    desc: str | None = field(default=None, compare=False)
    """Free text for humans (outputs' ``desc:``; the registry shows a model's): never
    part of an output's identity."""


@dataclass(frozen=True)
class ParamRef:
    """Keys a stage reads from one params file.

    ``keys`` are dotted (``train.lr``); a key naming a mapping means the whole
    section. An empty tuple means every top-level key of the file.
    """

    file: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class StageEnv:
    """What of the environment a stage declares it depends on (``env:`` in the spec).

    ``python``: ``minor`` counts the interpreter's major.minor, ``exact`` the patch
    level too. ``packages``: distributions whose versions count beside those
    detected from imports. ``vars``: environment variables whose values count.
    """

    python: Literal["minor", "exact"] = "minor"
    packages: tuple[str, ...] = ()
    vars: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stage:
    """One named step of the pipeline, after templating and interpolation."""

    name: str
    cmd: tuple[str, ...]
    wdir: str = "."
    deps: tuple[str, ...] = ()
    external: frozenset[str] = frozenset()
    """Deps the spec marks ``external: true``: they may resolve outside the project."""
    params: tuple[ParamRef, ...] = ()
    outs: tuple[Out, ...] = ()
    code: tuple[str, ...] = ()
    """Declared code paths or globs (root-relative), hashed beside detected code."""
    code_auto: bool = True
    """Detect code for python commands (``code: {auto: false}`` turns it off)."""
    env: StageEnv = StageEnv()
    desc: str | None = None
    meta: Any = None
    frozen: bool = False
    always_changed: bool = False
    deterministic: bool = True
    """``deterministic: false``: ``reproduce`` compares its outputs by their metrics
    values within ``tolerance``, not byte for byte. Never part of a fingerprint."""
    tolerance: float | None = None
    """The relative tolerance for its metrics values (``deterministic: false``)."""
    location: Location | None = field(default=None, compare=False)

    @property
    def cached_outs(self) -> tuple[Out, ...]:
        return tuple(o for o in self.outs if o.cache)


@dataclass(frozen=True)
class Pipeline:
    """All stages of a project in spec order, with the files they were read from."""

    stages: dict[str, Stage]
    spec_file: str = "pipeline.yaml"
    params_files: tuple[str, ...] = ()
    """Every params file the pipeline reads (for ``params diff`` and watching)."""
    vars_files: tuple[str, ...] = ()
    """The files of the spec's ``vars`` (their values reach ``${...}``), as written."""
