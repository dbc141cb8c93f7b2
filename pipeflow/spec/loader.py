"""``pipeline.yaml`` -> :class:`Pipeline`: parse, validate, interpolate, expand, normalize.

The no-op path is what matters for speed: the C YAML loader (which keeps the node
tree, so errors are located without a second parse), and jsonschema only when
the spec's bytes or the schema are new: the caller remembers validated digests
(in the state DB) and answers through ``is_validated``. Everything after the
schema (interpolation, templates, paths, params keys) is checked on every load:
it depends on files other than the spec and costs little.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from pipeflow.content.hashing import check_inside
from pipeflow.errors import Location, SpecError
from pipeflow.files import projectfile, safeload
from pipeflow.params import PARAMS_SUFFIXES, ParamsFileNotFound, deep_merge, read_params
from pipeflow.spec.interpolate import Context
from pipeflow.spec.model import Pipeline, Stage
from pipeflow.spec.normalize import DEFAULT_PARAMS, build_stage, env_of
from pipeflow.spec.paths import PathError, resolve
from pipeflow.spec.templates import expand
from pipeflow.spec.validate import schema_bytes, validate
from pipeflow.spec.yamlpos import Document, SpecProblem, YamlPath, parse

SPEC_NAME = "pipeline.yaml"


@dataclass(frozen=True)
class LoadedSpec:
    """A loaded pipeline, the digest of what was validated, and whether it was just now."""

    pipeline: Pipeline
    digest: str
    validated_now: bool


def spec_digest(raw: bytes) -> str:
    """xxh3-128 hex of the spec's bytes and the schema's: what one validation covers."""
    h = xxhash.xxh3_128()
    h.update(raw)
    h.update(b"\0pipeline.schema.json\0")
    h.update(schema_bytes())
    return h.hexdigest()


def load_pipeline(
    root: Path,
    spec_name: str = SPEC_NAME,
    *,
    is_validated: Callable[[str], bool] | None = None,
) -> LoadedSpec:
    """Load ``root/spec_name`` into a Pipeline; every problem is a located SpecError.

    Schema validation is skipped when ``is_validated(digest)`` is true; the
    caller records ``digest`` as validated when ``validated_now`` is true.
    """
    raw = projectfile.read(root / spec_name, "spec", name=spec_name, inside=root)
    if raw is None:
        raise SpecError(
            f"no {spec_name} in {root}",
            hint="write one (see docs/spec.md), or run 'pipeflow init' for a starter",
        )
    digest = spec_digest(raw)
    text = safeload.decode(raw, spec_name)
    must_validate = is_validated is None or not is_validated(digest)
    doc = parse(text, spec_name, find_duplicate_keys=must_validate)
    if "*" in text:  # aliases: bound their expansion before anything walks the values
        safeload.bound(doc.data, spec_name, "spec")
    validated_now = False
    if must_validate or not isinstance(doc.data, dict):
        validate(doc)
        validated_now = True
    stages = doc.data.get("stages") if isinstance(doc.data, dict) else None
    if isinstance(stages, dict) and len(stages) > safeload.MAX_STAGES:
        raise SpecError(f"{len(stages):,} stages is more than a spec may declare "
                        f"({safeload.MAX_STAGES:,})", Location(spec_name))
    try:
        pipeline = build_pipeline(root, doc)
    except SpecProblem as problem:
        raise doc.error(
            problem.message, problem.path, hint=problem.hint, at_key=problem.at_key
        ) from None
    except RecursionError:
        raise SpecError(
            "the spec or a variable nests too deeply (or refers to itself through an alias)",
            Location(spec_name),
        ) from None
    return LoadedSpec(pipeline, digest, validated_now)


def build_pipeline(root: Path, doc: Document) -> Pipeline:
    """The Pipeline of an already validated document (SpecProblem on a value error)."""
    data: Mapping[str, Any] = doc.data
    ctx = Context(functools.partial(_variables, root, data.get("vars")))
    if "vars" in data:
        ctx.base()  # read the vars files now: a missing one is an error even if unused
    env_defaults = env_of(data.get("env"))
    positions = doc.key_positions(("stages",))
    stages: dict[str, Stage] = {}
    for name, entry in (data.get("stages") or {}).items():
        instances = expand(name, entry, ctx)
        if len(stages) + len(instances) > safeload.MAX_STAGES:
            raise SpecProblem(f"the spec stands for more than {safeload.MAX_STAGES:,} stages "
                              "(templates included)", ("stages", name), at_key=True)
        for inst in instances:
            if inst.name in stages:
                raise SpecProblem(
                    f"stage name '{inst.name}' (made by '{name}') is used twice",
                    ("stages", name),
                    hint="make the foreach keys or values, or the matrix values, distinct",
                    at_key=True,
                )
            location = positions.get(name)
            stages[inst.name] = build_stage(
                inst, root=root, env_defaults=env_defaults, location=location
            )
    params_files = tuple(sorted({ref.file for s in stages.values() for ref in s.params}))
    return Pipeline(stages, spec_file=doc.file, params_files=params_files,
                    vars_files=_vars_files(data.get("vars")))


def _vars_files(raw: Any) -> tuple[str, ...]:
    """The file entries of ``vars`` (already read and checked by the context)."""
    entries = raw if isinstance(raw, list) else [raw] if raw else []
    files = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            try:
                files.append(resolve(str(entry)))
            except PathError:
                continue
    return tuple(files)


def _variables(root: Path, raw: Any) -> dict[str, Any]:
    """What ``${...}`` sees: params.yaml at the root, then each ``vars`` entry (later wins)."""
    merged: dict[str, Any] = {}
    default = root / DEFAULT_PARAMS
    check_inside(root, DEFAULT_PARAMS, what="params file", hint=_INSIDE_HINT)
    if default.is_file():
        merged = deep_merge(merged, read_params(default, name=DEFAULT_PARAMS, root=root))
    if isinstance(raw, list):
        entries: list[tuple[Any, YamlPath]] = [(e, ("vars", i)) for i, e in enumerate(raw)]
    else:
        entries = [(raw, ("vars",))] if raw else []
    for entry, where in entries:
        if isinstance(entry, Mapping):
            merged = deep_merge(merged, entry)
        else:
            merged = deep_merge(merged, _vars_file(root, str(entry), where))
    return merged


_INSIDE_HINT = "keep params and vars files inside the project"


def _vars_file(root: Path, name: str, where: YamlPath) -> Mapping[str, Any]:
    try:
        file = resolve(name)
    except PathError as exc:
        raise SpecProblem(f"vars file '{name}' {exc}", where) from None
    if Path(file).suffix.lower() not in PARAMS_SUFFIXES:
        raise SpecProblem(f"vars file '{file}' must be .yaml, .yml, .json or .toml", where)
    # read whole and interpolated into commands that status prints: never from outside
    check_inside(root, file, what="vars file", hint=_INSIDE_HINT)
    try:
        return read_params(root / file, name=file, root=root)
    except ParamsFileNotFound:
        raise SpecProblem(f"vars file '{file}' does not exist", where) from None
