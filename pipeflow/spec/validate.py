"""Checking a parsed spec against ``pipeline.schema.json``, with messages people read.

The schema is the one source of the spec's shape; this module only turns the
first of jsonschema's errors into a located sentence ("unknown field 'cmdd' in
stage 'train'", "'deps' of stage 'train' must be a list of paths, got a
string"). The words for what was expected come from the schema's ``x-expected``
annotations. jsonschema is imported only here and only when a spec's bytes are new
(the loader skips validation for digests already validated).
"""

from __future__ import annotations

import difflib
import functools
from collections import defaultdict
from pathlib import Path
from typing import Any

from pipeflow.errors import SpecError
from pipeflow.params import key_text
from pipeflow.spec.yamlpos import Document, YamlPath

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "pipeline.schema.json"

_PRIORITY = {"additionalProperties": 0, "propertyNames": 0, "type": 1, "anyOf": 1, "required": 2}
_NOUNS = {"outs": "output", "metrics": "metrics file", "params": "params file"}


@functools.cache
def schema_bytes() -> bytes:
    """The schema file's bytes (part of every spec digest)."""
    return SCHEMA_PATH.read_bytes()


@functools.cache
def _validator() -> Any:
    import json

    import jsonschema

    schema = json.loads(schema_bytes())
    return jsonschema.Draft202012Validator(schema)


def validate(doc: Document) -> None:
    """Raise a located SpecError for the first problem of ``doc``'s shape, if any."""
    if doc.data is None:
        raise SpecError(
            f"{doc.file} is empty",
            doc.location(()),
            hint="it needs a 'stages:' mapping of stage names to stages",
        )
    for path, key, where in doc.duplicates:
        what = "stage name" if path == ("stages",) else "key"
        raise SpecError(
            f"duplicate {what} '{key}' in {describe(path)}",
            where,
            hint="YAML keeps only the last one: rename or remove one of them",
        )
    errors = list(_validator().iter_errors(doc.data))
    if not errors:
        return
    errors.sort(key=lambda e: _rank(e, doc))
    raise _to_spec_error(_leaf(errors[0]), doc)


def _rank(err: Any, doc: Document) -> tuple[int, int, int]:
    where = doc.location(tuple(err.absolute_path))
    return (where.line or 0, where.column or 0, _PRIORITY.get(err.validator, 3))


def _leaf(err: Any) -> Any:
    """Inside anyOf, the error of the one branch the value's type fits, if only one does."""
    while err.validator in ("anyOf", "oneOf") and err.context:
        branches: dict[Any, list[Any]] = defaultdict(list)
        for sub in err.context:
            branches[sub.relative_schema_path[0]].append(sub)
        fitting = [
            subs
            for subs in branches.values()
            if not any(s.validator == "type" and not s.relative_path for s in subs)
        ]
        if len(fitting) != 1:
            break
        best = min(fitting[0], key=lambda s: (len(s.relative_path), _PRIORITY.get(s.validator, 3)))
        if best.validator == "pattern" and not best.relative_path:
            break  # a string of the wrong form: say what the whole field expects
        err = best
    return err


def describe(path: YamlPath) -> str:
    """What the value at ``path`` is, in words: "'deps' of stage 'train'"."""
    if not path:
        return "the top level"
    if path[0] != "stages" or len(path) == 1:
        return _field(list(path))
    owner = f"stage '{path[1]}'"
    rest = list(path[2:])
    if rest[:1] == ["do"]:
        rest = rest[1:]
    return f"{_field(rest)} of {owner}" if rest else owner


def _field(rest: list[str | int]) -> str:
    head = rest[0]
    if head in _NOUNS and len(rest) >= 3 and isinstance(rest[1], int):
        noun, name = _NOUNS[str(head)], rest[2]
        if len(rest) == 3:
            return f"the {'keys' if head == 'params' else 'options'} of {noun} '{name}'"
        last = rest[3]
        if isinstance(last, int):
            return f"key {last + 1} of {noun} '{name}'"
        return f"'{last}' of {noun} '{name}'"
    if isinstance(rest[-1], int) and len(rest) > 1:
        return f"entry {rest[-1] + 1} of '{_dotted(rest[:-1])}'"
    return f"'{_dotted(rest)}'"


def _dotted(parts: list[str | int]) -> str:
    text = str(parts[0])
    for p in parts[1:]:
        text += f"[{p}]" if isinstance(p, int) else f".{p}"
    return text


def _got(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _expected(err: Any) -> str:
    schema = err.schema if isinstance(err.schema, dict) else {}
    if "x-expected" in schema:
        return str(schema["x-expected"])
    kinds = err.validator_value if err.validator == "type" else schema.get("type", "valid")
    names = {
        "array": "a list",
        "object": "a mapping",
        "string": "a string",
        "boolean": "true or false",
        "null": "nothing",
        "number": "a number",
    }
    if isinstance(kinds, list):
        return " or ".join(names.get(str(k), str(k)) for k in kinds)
    return names.get(str(kinds), str(kinds))


def _to_spec_error(err: Any, doc: Document) -> SpecError:
    path: YamlPath = tuple(err.absolute_path)
    what = describe(path)
    kind = err.validator
    naming = "propertyNames" in err.relative_schema_path or "propertyNames" in err.schema_path
    if naming:
        return _bad_name(err, path, doc)
    if kind == "additionalProperties":
        return _unknown_field(err, path, what, doc)
    if kind == "required":
        return _missing_field(err, path, what, doc)
    if kind in ("minItems", "minLength", "minProperties"):
        return doc.error(f"{what} must not be empty", path)
    if kind == "maxProperties":
        keys = ", ".join(f"'{key_text(k)}'" for k in err.instance)
        return doc.error(
            f"{what} must be a mapping with one key, got {len(err.instance)}: {keys}",
            path,
            hint="write one list entry per path, e.g. '- model.pkl: {cache: false}'",
        )
    if kind == "enum":
        allowed = [str(v) for v in err.validator_value]
        close = difflib.get_close_matches(str(err.instance), allowed, n=1)
        return doc.error(
            f"{what} must be {_expected(err)}, got {err.instance!r}",
            path,
            hint=f"did you mean '{close[0]}'?" if close else None,
        )
    if kind in ("type", "anyOf", "oneOf"):
        return doc.error(f"{what} must be {_expected(err)}, got {_got(err.instance)}", path)
    if kind in ("pattern", "minimum"):
        return doc.error(f"{what} must be {_expected(err)}, got {err.instance!r}", path)
    return doc.error(f"{what}: {err.message}", path)


def _unknown_field(err: Any, path: YamlPath, what: str, doc: Document) -> SpecError:
    allowed = list(err.schema.get("properties", {}))
    extras = [k for k in err.instance if k not in allowed]
    extra = key_text(extras[0])
    close = difflib.get_close_matches(extra, allowed, n=1)
    if close:
        hint = f"did you mean '{close[0]}'?"
    elif "do" in allowed and extra in _validator().schema["$defs"]["stage"]["properties"]:
        hint = "the fields of a templated stage go under 'do'"
    elif extra == "do":
        hint = "'do' goes with 'foreach' or 'matrix'"
    else:
        hint = "allowed fields: " + ", ".join(allowed)
    where = f"in {what}" if path else f"at the top level of {doc.file}"
    return doc.error(f"unknown field '{extra}' {where}", (*path, extra), hint=hint, at_key=True)


def _missing_field(err: Any, path: YamlPath, what: str, doc: Document) -> SpecError:
    missing = next(k for k in err.validator_value if k not in err.instance)
    if not path:
        return doc.error(
            f"{doc.file} has no '{missing}'",
            path,
            hint="add 'stages:' with a mapping of stage names to stages",
        )
    if missing == "cmd":
        hint = "add the command it runs, e.g. 'cmd: python train.py'"
    elif missing == "do":
        hint = "put the fields of the stage to make for each entry under 'do:'"
    else:
        hint = f"add '{missing}'"
    which = [k for k in ("foreach", "matrix") if k in err.instance]
    has = f" has '{which[0]}' but" if which else ""
    return doc.error(f"{what}{has} has no '{missing}'", path, hint=hint, at_key=True)


def _bad_name(err: Any, path: YamlPath, doc: Document) -> SpecError:
    name = err.instance
    at = (*path, key_text(name))
    if not isinstance(name, str):
        noun = "stage name" if path == ("stages",) else f"name in {describe(path)}"
        return doc.error(
            f"{noun} {key_text(name)} is not a string",
            at,
            hint="YAML reads true/false/yes/no/on/off/null and numbers as values: quote it",
            at_key=True,
        )
    if path == ("stages",):
        return doc.error(
            f"invalid stage name '{name}'",
            at,
            hint="use letters, digits, '_', '.' and '-', not starting with '.' or '-' "
            "('@' is reserved for the stages foreach and matrix make)",
            at_key=True,
        )
    if path and path[-1] == "matrix":
        return doc.error(
            f"invalid matrix axis name '{name}' in {describe(path[:-1])}",
            at,
            hint="use a name like in Python: letters, digits and '_'",
            at_key=True,
        )
    return doc.error(f"invalid name '{name}' in {describe(path)}", at, at_key=True)
