"""One stage body of the spec -> a :class:`Stage`: interpolated, resolved, deduplicated.

Paths are joined to ``wdir`` and made root-relative (:mod:`pipeflow.spec.paths`);
``deps`` and ``code`` lose duplicates (first one kept), ``outs`` too unless the
same path is given twice with different options; metrics follow outs as
``Out(kind="metric")``. A params key without a file reads ``params.yaml`` in the
stage's ``wdir``; every params key is checked against its file here, so that a
typo is a located spec error, not a surprise at run time.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, cast

from pipeflow.content.hashing import check_inside
from pipeflow.errors import Location
from pipeflow.params import (
    PARAMS_SUFFIXES,
    MissingParamError,
    ParamsFileNotFound,
    lookup,
    read_params,
)
from pipeflow.spec.interpolate import interpolate, interpolate_command, interpolate_scalar
from pipeflow.spec.model import Out, OutKind, ParamRef, Stage, StageEnv
from pipeflow.spec.paths import PathError, check_output, resolve
from pipeflow.spec.templates import Instance
from pipeflow.spec.yamlpos import SpecProblem, YamlPath

DEFAULT_PARAMS = "params.yaml"
METRICS_SUFFIXES = (".json", ".yaml", ".yml", ".toml")
DEFAULT_TOLERANCE = 1e-6
"""A ``deterministic: false`` stage's tolerance when it gives none: float noise of a
sum or mean computed in another order, not a changed result."""


def build_stage(
    inst: Instance, *, root: Path, env_defaults: StageEnv, location: Location | None
) -> Stage:
    """The Stage ``inst`` describes; SpecProblem (located by path) when it cannot be."""
    b = _Builder(inst)
    body = inst.body
    wdir = b.wdir(body.get("wdir"))
    code, code_auto = b.code(body.get("code"), wdir)
    deps = b.deps(body.get("deps"), wdir)
    desc = body.get("desc")
    return Stage(
        name=inst.name,
        cmd=b.cmd(body["cmd"]),
        wdir=wdir,
        deps=tuple(deps),
        external=frozenset(p for p, ext in deps.items() if ext),
        params=b.params(body.get("params"), wdir, root),
        outs=b.outs(body.get("outs"), body.get("metrics"), wdir),
        code=code,
        code_auto=code_auto,
        env=env_of(body.get("env"), env_defaults),
        desc=b.text(desc, ("desc",), "'desc'") if isinstance(desc, str) else None,
        meta=body.get("meta"),
        frozen=bool(body.get("frozen", False)),
        always_changed=bool(body.get("always_changed", False)),
        deterministic=body.get("deterministic") is not False,
        tolerance=tolerance_of(body, inst.src, b.owner),
        location=location,
    )


_NO_ENV = StageEnv()


def tolerance_of(body: Mapping[str, Any], src: YamlPath, owner: str) -> float | None:
    """The stage's ``tolerance`` (DEFAULT_TOLERANCE when it is ``deterministic: false``
    and gives none); None for a deterministic stage, which may not give one: a
    tolerance that silently did nothing would let a user believe ``reproduce``
    compares that stage loosely when it compares it byte for byte."""
    raw = body.get("tolerance")
    if body.get("deterministic") is not False:
        if raw is None:
            return None
        raise SpecProblem(
            f"'tolerance' of {owner} applies only to a stage declared 'deterministic: false'",
            (*src, "tolerance"), at_key=True,
            hint="add 'deterministic: false' to the stage (reproduce then compares its "
                 "metrics values within the tolerance, not its bytes), or remove "
                 "'tolerance' (docs/spec.md)")
    if raw is None:
        return DEFAULT_TOLERANCE
    value = float(raw)  # the schema let through a number, or a string like 1e-6
    if not math.isfinite(value) or value < 0:
        raise SpecProblem(f"'tolerance' of {owner} must be a finite number >= 0, got {raw!r}",
                          (*src, "tolerance"), hint="for example 'tolerance: 1.0e-6'")
    return value


def env_of(raw: Mapping[str, Any] | None, defaults: StageEnv = _NO_ENV) -> StageEnv:
    """An ``env:`` mapping over ``defaults``: python replaces, packages and vars add."""
    if not raw:
        return defaults
    python = cast(Literal["minor", "exact"], raw.get("python", defaults.python))
    packages = _dedupe([*defaults.packages, *raw.get("packages", ())])
    names = _dedupe([*defaults.vars, *raw.get("vars", ())])
    return StageEnv(python=python, packages=packages, vars=names)


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


class _Builder:
    """Field-by-field conversion of one body, with errors pointing into the spec."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.owner = f"stage '{inst.name}'"

    def _at(self, path: YamlPath) -> YamlPath:
        return (*self.inst.src, *path)

    def text(self, value: str, path: YamlPath, what: str) -> str:
        return interpolate(value, self.inst.ctx, self._at(path), f"{what} of {self.owner}")

    def scalar(self, value: str, path: YamlPath, what: str) -> str:
        return interpolate_scalar(value, self.inst.ctx, self._at(path), f"{what} of {self.owner}")

    def resolved(
        self, value: str, path: YamlPath, what: str, wdir: str, *, at_key: bool = False
    ) -> str:
        """``value`` interpolated and resolved against ``wdir``."""
        text = self.scalar(value, path, what)
        try:
            return resolve(text, wdir)
        except PathError as exc:
            raise self._path_problem(what, text, str(exc), path, wdir, at_key) from None

    def _path_problem(
        self, what: str, text: str, reason: str, path: YamlPath, wdir: str, at_key: bool
    ) -> SpecProblem:
        if what == "dependency" and (reason == "is absolute" or (
                reason == "is outside the project" and wdir == ".")):
            # a dep outside is read through a link in the project that the spec marks
            # external: the spec names project paths only, the link says where they lead
            name = text.rstrip("/").rsplit("/", 1)[-1] or "data"
            hint = (f"link it into the project and mark the link external: "
                    f"`ln -s {text} {name}`, then `- {name}: {{external: true}}` in deps "
                    "(docs/spec.md)")
        elif reason == "is outside the project":
            if wdir != ".":
                hint = f"paths of this stage are relative to its wdir '{wdir}'"
            else:
                hint = "paths are relative to the project root; keep them inside it"
        elif reason == "is absolute":
            hint = "write it relative to the project root (or to the stage's wdir)"
        else:
            hint = None
        return SpecProblem(
            f"{what} '{text}' of {self.owner} {reason}", self._at(path), hint=hint, at_key=at_key
        )

    def wdir(self, raw: str | None) -> str:
        if raw is None:
            return "."
        return self.resolved(raw, ("wdir",), "wdir", ".")

    def cmd(self, raw: str | list[str]) -> tuple[str, ...]:
        """Each command with its values quoted for ``/bin/sh`` (one word per ``${...}``)."""
        commands = [raw] if isinstance(raw, str) else raw
        paths = [("cmd",)] if isinstance(raw, str) else [("cmd", i) for i in range(len(raw))]
        return tuple(
            interpolate_command(c, self.inst.ctx, self._at(p), f"'cmd' of {self.owner}")
            for c, p in zip(commands, paths, strict=True)
        )

    def path_list(self, raw: list[str] | None, field: str, what: str, wdir: str) -> tuple[str, ...]:
        return _dedupe(self.resolved(p, (field, i), what, wdir) for i, p in enumerate(raw or ()))

    def deps(self, raw: list[Any] | None, wdir: str) -> dict[str, bool]:
        """Dep path -> whether it is ``external`` (first entry of a path wins)."""
        found: dict[str, bool] = {}
        for i, entry in enumerate(raw or ()):
            if isinstance(entry, str):
                path = self.resolved(entry, ("deps", i), "dependency", wdir)
                external = False
            else:
                name, options = next(iter(entry.items()))
                path = self.resolved(name, ("deps", i, name), "dependency", wdir, at_key=True)
                external = bool((options or {}).get("external", False))
            found.setdefault(path, external)
        return found

    def code(self, raw: Any, wdir: str) -> tuple[tuple[str, ...], bool]:
        if isinstance(raw, Mapping):
            paths = _dedupe(
                self.resolved(p, ("code", "paths", i), "code path", wdir)
                for i, p in enumerate(raw.get("paths") or ())
            )
            return paths, bool(raw.get("auto", True))
        return self.path_list(raw, "code", "code path", wdir), True

    def outs(self, outs: list[Any] | None, metrics: list[Any] | None, wdir: str) -> tuple[Out, ...]:
        found: dict[str, tuple[Out, YamlPath]] = {}
        for field, kind, entries in (("outs", "out", outs), ("metrics", "metric", metrics)):
            for i, entry in enumerate(entries or ()):
                out, path = self._out(entry, field, i, cast(OutKind, kind), wdir)
                seen = found.get(out.path)
                if seen is None:
                    found[out.path] = (out, path)
                elif seen[0] != out:
                    raise SpecProblem(
                        f"'{out.path}' is declared twice in {self.owner}, with different "
                        f"options (first in '{seen[1][0]}')",
                        self._at(path),
                        hint="list each output once",
                    )
        return tuple(out for out, _ in found.values())

    def _out(
        self, entry: Any, field: str, i: int, kind: OutKind, wdir: str
    ) -> tuple[Out, YamlPath]:
        what = "metrics file" if kind == "metric" else "output"
        path: YamlPath
        if isinstance(entry, str):
            raw, options, path, at_key = entry, {}, (field, i), False
        else:
            raw, options = next(iter(entry.items()))
            options = options or {}
            path, at_key = (field, i, raw), True
        resolved = self.resolved(raw, path, what, wdir, at_key=at_key)
        try:
            check_output(resolved)
        except PathError as exc:
            raise self._path_problem(what, resolved, str(exc), path, wdir, at_key) from None
        if kind == "metric" and posixpath.splitext(resolved)[1].lower() not in METRICS_SUFFIXES:
            raise SpecProblem(
                f"metrics file '{resolved}' of {self.owner} must be .json, .yaml, .yml or .toml",
                self._at(path),
                hint="list other files under 'outs'",
                at_key=at_key,
            )
        out = Out(
            resolved,
            kind=kind,
            cache=bool(options.get("cache", True)),
            persist=bool(options.get("persist", False)),
            model=self._model_name(options.get("model"), (*path, "model")),
            desc=options["desc"] if isinstance(options.get("desc"), str) else None,
        )
        if out.model is not None and not out.cache:
            raise SpecProblem(f"model '{out.model}' of {self.owner} has 'cache: false': a "
                              "model's versions live in the cache", self._at((*path, "model")),
                              hint="remove 'cache: false' (or the 'model:' declaration)")
        return out, path

    def _model_name(self, value: Any, path: YamlPath) -> str | None:
        from pipeflow.names import name_problem

        if value is None:
            return None
        name = self.scalar(value, path, "model name")
        problem = name_problem(name)
        if problem is not None:
            raise SpecProblem(f"model name {name!r} of {self.owner} {problem}", self._at(path),
                              hint="use letters, digits, '-', '_' or '.', starting with a "
                                   "letter or digit")
        return name

    def params(self, raw: list[Any] | None, wdir: str, root: Path) -> tuple[ParamRef, ...]:
        # file -> (keys with where each was written, or None for the whole file; first site)
        files: dict[str, tuple[dict[str, YamlPath] | None, YamlPath]] = {}
        for i, entry in enumerate(raw or ()):
            if isinstance(entry, str):
                file = resolve(DEFAULT_PARAMS, wdir)
                site: YamlPath = ("params", i)
                keys: list[tuple[str, YamlPath]] = [(self.scalar(entry, site, "params key"), site)]
            else:
                name, listed = next(iter(entry.items()))
                site = ("params", i, name)
                file = self.resolved(name, site, "params file", wdir, at_key=True)
                if posixpath.splitext(file)[1].lower() not in PARAMS_SUFFIXES:
                    raise SpecProblem(
                        f"params file '{file}' of {self.owner} must be .yaml, .yml, .json or .toml",
                        self._at(site),
                        at_key=True,
                    )
                keys = [
                    (self.scalar(k, (*site, j), "params key"), (*site, j))
                    for j, k in enumerate(listed or ())
                ]
            known, first_site = files.get(file, ({}, site))
            if known is None or not keys:
                known = None  # a file listed without keys: all of it
            else:
                known.update((k, s) for k, s in keys if k not in known)
            files[file] = (known, first_site)
        for file, (keys_at, site) in files.items():
            self._check_params(root, file, keys_at, site)
        return tuple(ParamRef(file, tuple(k or ())) for file, (k, _) in files.items())

    def _check_params(
        self, root: Path, file: str, keys: dict[str, YamlPath] | None, site: YamlPath
    ) -> None:
        check_inside(root, file, what=f"params file of {self.owner}",
                     hint="keep params files inside the project")
        try:
            data = read_params(root / file, name=file, root=root)
        except ParamsFileNotFound:
            raise SpecProblem(
                f"params file '{file}' read by {self.owner} does not exist",
                self._at(site),
                hint="create it, or name another file: params: [{other.yaml: [key]}]",
                at_key=len(site) == 3,
            ) from None
        for key, key_site in (keys or {}).items():
            try:
                lookup(data, key)
            except MissingParamError as exc:
                close = exc.suggestions()
                hint = f"did you mean '{close[0]}'?" if close else None
                if hint is None and exc.found:
                    section = lookup(data, exc.found)
                    if isinstance(section, Mapping):
                        hint = f"keys under '{exc.found}': " + ", ".join(map(str, section))
                raise SpecProblem(
                    f"params key '{key}' read by {self.owner} is not in {file}",
                    self._at(key_site),
                    hint=hint,
                ) from None
