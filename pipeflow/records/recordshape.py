"""The shape a run record's body must have before anything reads it.

Records travel through remotes others can write to. A record whose SHA-256 matches
its name can still hold anything: ``outputs: 5``, ``size: "abc"``, ``metrics: [1,
2]``. The index, ``versions`` and ``lineage`` read fields without re-checking each
one, so a body is checked here once, on read (``RecordBody.from_json`` in
:mod:`pipeflow.records.records`), and a bad one is refused like a damaged file
(skipped with a warning; ``verify`` reports it). Unknown fields are kept: newer
pipeflows may add some.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

Check = Callable[[Any], bool]


def _opt(check: Check) -> Check:
    return lambda v: v is None or check(v)


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _count(v: Any) -> bool:
    return _int(v) and v >= 0


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _entries(fields: Mapping[str, Check]) -> Check:
    """A list of objects whose listed fields pass their checks (absent is fine
    unless the check refuses None)."""
    return lambda v: isinstance(v, list) and all(
        isinstance(e, dict) and all(check(e.get(k)) for k, check in fields.items())
        for e in v)


def _table(v: Any) -> bool:
    """file -> {key: value}: params and metrics values."""
    return isinstance(v, dict) and all(isinstance(t, dict) for t in v.values())


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


OUTPUT_KINDS = ("out", "metric", "source")
RECORD_KINDS = ("run", "restore", "add", "experiment", "reproduction")
VERDICTS = ("frozen", "bit-identical", "within-tolerance", "differs", "failed", "cannot-reproduce")
"""What ``reproduce`` says of a stage (and of a whole version: its worst stage's)."""
_FILE: dict[str, Check] = {"path": _str, "hash": _str, "size": _opt(_count),
                           "isdir": _opt(_bool), "nfiles": _opt(_count)}
_INPUT = _entries(_FILE)
_OUTPUT = _entries({**_FILE, "kind": _opt(lambda v: v in OUTPUT_KINDS),
                    "cache": _opt(_bool)})
_COMPONENTS: dict[str, Check] = {
    "deps": _opt(_INPUT), "code": _opt(_INPUT), "params": _opt(_table),
    "env": _opt(lambda v: isinstance(v, dict)), "cmd": _opt(_str_list),
    "outs": _opt(_str_list),
}
_GIT: dict[str, Check] = {"commit": _opt(_str), "dirty_paths": _opt(_str_list)}
_STAGE_OUTCOME: dict[str, Check] = {"how": _str, "run": _opt(_str), "fingerprint": _opt(_str)}
_EXPERIMENT: dict[str, Check] = {
    "id": _str, "name": _str, "set": _opt(_table), "status": _opt(_str),
    "params": _opt(_table), "metrics": _opt(_table), "targets": _opt(_str_list),
    "stages": _opt(lambda v: isinstance(v, dict) and all(
        isinstance(o, dict) and _fields_problem(o, _STAGE_OUTCOME) is None
        for o in v.values())),
    "outputs": _opt(_OUTPUT), "failed_stage": _opt(_str), "log_tail": _opt(_str),
    "sweep": _opt(_str), "index": _opt(_count),
}
"""The ``experiment`` field: on a stage's record the mark (id, name, set); on an
``experiment`` record the summary (:mod:`pipeflow.lineage.experiments`)."""
_VALUE_DIFF: dict[str, Check] = {"key": _str, "file": _opt(_str),
                                  "relative": _opt(_number)}
_OUTPUT_DIFF: dict[str, Check] = {
    "path": _str, "recorded": _str, "produced": _opt(_str), "recorded_size": _opt(_count),
    "produced_size": _opt(_count), "same": _bool, "within_tolerance": _opt(_bool),
    "first_byte": _opt(_count), "files": _opt(_str_list), "note": _opt(_str),
    "values": _opt(_entries(_VALUE_DIFF)),
}
_REPRO_STAGE: dict[str, Check] = {
    "stage": _str, "verdict": lambda v: v in VERDICTS, "reason": _opt(_str),
    "run": _opt(_str), "fingerprint": _opt(_str), "exit_status": _opt(_int),
    "log_tail": _opt(_str), "outputs": _opt(_entries(_OUTPUT_DIFF)),
    "blocked_by": _opt(_str),
}
_REPRODUCTION: dict[str, Check] = {
    "path": _str, "hash": _str, "version": _opt(_str), "model": _opt(_str),
    "verdict": lambda v: v in VERDICTS, "commit": _opt(_str),
    "stages": lambda v: _entries(_REPRO_STAGE)(v) and len(v) > 0,
    "env": _opt(_entries({"name": _str, "recorded": _opt(_str), "current": _opt(_str)})),
    "executor": _opt(_str), "duration": _opt(_number),
}
"""The ``reproduction`` field of a ``reproduction`` record
(:mod:`pipeflow.lineage.reproductions`)."""
_NONDETERMINISTIC: dict[str, Check] = {"runs": _str_list, "outputs": _str_list}
_FIELDS: dict[str, Check] = {
    "format": _opt(_int), "kind": _opt(lambda v: v in RECORD_KINDS),
    "stage": _opt(_str), "fingerprint": _opt(_str), "chain": _opt(_str),
    "seq": _opt(_count), "prev": _opt(_str), "exit_status": _opt(_int),
    "started": _opt(_str), "ended": _opt(_str), "duration": _opt(_number),
    "user": _opt(_str), "host": _opt(_str), "source_run": _opt(_str),
    "pipeflow_version": _opt(_str), "command": _opt(_str_list),
    "outputs": _opt(_OUTPUT), "metrics": _opt(_table),
    "env_exact": _opt(lambda v: isinstance(v, dict)),
    "components": _opt(lambda v: isinstance(v, dict) and _fields_problem(v, _COMPONENTS)
                       is None),
    "git": _opt(lambda v: isinstance(v, dict) and _fields_problem(v, _GIT) is None),
    "error": _opt(_str),
    "experiment": _opt(lambda v: isinstance(v, dict)
                       and _fields_problem(v, _EXPERIMENT) is None),
    "reproduction": _opt(lambda v: isinstance(v, dict)
                         and _fields_problem(v, _REPRODUCTION) is None),
    "nondeterministic": _opt(lambda v: isinstance(v, dict)
                             and _fields_problem(v, _NONDETERMINISTIC) is None),
}


def _fields_problem(body: Mapping[str, Any], fields: Mapping[str, Check]) -> str | None:
    for key, check in fields.items():
        if not check(body.get(key)):
            return key
    return None


def problem(body: Mapping[str, Any]) -> str | None:
    """Why ``body`` is not a run record's body (the first bad field), or None."""
    bad = _fields_problem(body, _FIELDS)
    if bad is None:
        return None
    shown = repr(body.get(bad))
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return f"field '{bad}' has the wrong type or shape ({shown})"


def _record_paths(body: Mapping[str, Any]) -> Iterator[tuple[str, object]]:
    """(field, path) of every project path a record names (entries of the wrong shape
    are the type checks' business, not this walk's; ``components.outs`` holds labels,
    not paths, and is used as text only)."""
    outputs = body.get("outputs")
    for i, out in enumerate(outputs if isinstance(outputs, list) else []):
        if isinstance(out, dict):
            yield f"outputs[{i}].path", out.get("path")
    metrics = body.get("metrics")
    for key in metrics if isinstance(metrics, dict) else {}:
        yield "metrics", key
    exp = body.get("experiment")
    exp_outputs = exp.get("outputs") if isinstance(exp, dict) else None
    for i, out in enumerate(exp_outputs if isinstance(exp_outputs, list) else []):
        if isinstance(out, dict):
            yield f"experiment.outputs[{i}].path", out.get("path")
    for part in ("set", "params", "metrics"):
        table = exp.get(part) if isinstance(exp, dict) else None
        for key in table if isinstance(table, dict) else {}:
            yield f"experiment.{part}", key
    repro = body.get("reproduction")
    if isinstance(repro, dict):
        yield "reproduction.path", repro.get("path")
    comps = body.get("components")
    if isinstance(comps, dict):
        params = comps.get("params")
        for file in params if isinstance(params, dict) else {}:
            yield "components.params", file
        for part in ("deps", "code"):
            items = comps.get(part)
            for i, item in enumerate(items if isinstance(items, list) else []):
                if isinstance(item, dict):
                    yield f"components.{part}[{i}].path", item.get("path")


def unsafe_path(body: Mapping[str, Any]) -> str | None:
    """Why a record's body names a path pipeflow must not use (``../x``, ``/etc/x``,
    ``.git/hooks/x``: :mod:`pipeflow.files.safepath`), or None. Such a record is a bad
    record: skipped with a warning, reported by ``verify``, never used."""
    from pipeflow.files import safepath

    for fld, path in _record_paths(body):
        why = safepath.problem(path)
        if why is not None:
            shown = repr(path[:200]) if isinstance(path, str) else type(path).__name__
            return f"field '{fld}': path {shown} {why}"
    return None
