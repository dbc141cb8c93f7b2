"""What made a version, and what differs between two versions.

A version's makings are read from the run index alone (``versions`` of thousands of
versions opens no record file): walking up from the run that produced it through the
runs that produced each of its ``deps``, they are

- **data**: the source inputs (a path no run produced, or one ``pipeflow add``
  recorded) and their hashes: the raw data two stages up counts, not the
  intermediate files between;
- **code**: every code file (path -> hash) those runs hashed;
- **env**: their environments (exact versions, secret values concealed), flattened to
  ``python``, ``packages.NAME``, ``vars.NAME``;
- **params**: every params key they read (file -> key -> value).

Where two runs of one history read one key differently (possible only when the params
file changed between them), the producing run's value, the nearest, is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeflow.records import batch
from pipeflow.records.index import RunIndex


@dataclass(frozen=True)
class Makings:
    """What made one version (see the module docstring)."""

    data: Mapping[str, str] = field(default_factory=dict)
    code: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Differs:
    """What differs between a version and the one before it; falsy when nothing
    recorded does (a nondeterministic run, or the same content made twice)."""

    data: tuple[str, ...] = ()
    """Source paths whose content differs (added or gone too)."""
    code: tuple[str, ...] = ()
    env: tuple[tuple[str, Any, Any], ...] = ()
    """(flat key, old, new)."""
    params: tuple[tuple[str, Any, Any], ...] = ()
    """(``file:key``, old, new); None on the side that did not read the key."""

    def __bool__(self) -> bool:
        return bool(self.data or self.code or self.env or self.params)

    def to_json(self) -> dict[str, Any]:
        return {"data": list(self.data), "code": list(self.code),
                "env": [key for key, _, _ in self.env],
                "params": {key: [old, new] for key, old, new in self.params}}


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Keys whose value differs, or that one side lacks (a key read as null on one
    side and not read on the other is a difference too)."""
    return [k for k in sorted(set(old) | set(new))
            if k not in old or k not in new or old[k] != new[k]]


def _flat_params(params: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {f"{f}:{k}": v for f, values in params.items() for k, v in values.items()}


def compare(old: Makings, new: Makings) -> Differs:
    """What differs from ``old`` to ``new``."""
    before, after = _flat_params(old.params), _flat_params(new.params)
    return Differs(
        data=tuple(_changed(old.data, new.data)),
        code=tuple(_changed(old.code, new.code)),
        env=tuple((k, old.env.get(k), new.env.get(k)) for k in _changed(old.env, new.env)),
        params=tuple((k, before.get(k), after.get(k)) for k in _changed(before, after)),
    )


def flat_env(env: Any) -> dict[str, Any]:
    """``{"packages": {"numpy": "2.0"}}`` -> ``{"packages.numpy": "2.0"}`` (one level)."""
    if not isinstance(env, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in env.items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{name}": v for name, v in value.items()})
        else:
            out[str(key)] = value
    return out


class MakingsReader:
    """Reads the makings of many runs' outputs at once: the index is queried a batch
    per level of the histories, and a run shared by many versions' histories (the
    prepare stage under every retrained model) is read once."""

    def __init__(self, index: RunIndex) -> None:
        self.index = index
        self._inputs: dict[str, list[tuple[str, str, str]]] = {}
        self._producer: dict[tuple[str, str], str | None] = {}
        """(path, hash) -> the run that made it; None for source data."""
        self._params: dict[str, dict[str, dict[str, Any]]] = {}
        self._env: dict[str, dict[str, Any]] = {}
        self._made: dict[str, Makings] = {}
        self._kind: dict[str, str] = {}

    def of_versions(self, path: str, versions: Iterable[tuple[str, str]]) -> dict[str, Makings]:
        """Hash -> the makings of that version of ``path``, for each (first run, hash)
        of ``versions``. A version ``pipeflow add`` recorded is source data itself."""
        wanted = list(versions)
        self._load(list(dict.fromkeys(rid for rid, _ in wanted)))
        return {oid: Makings(data={path: oid}) if self._kind.get(rid) == "add"
                else self._makings(rid, frozenset()) for rid, oid in wanted}

    def own_params(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The params run ``run_id`` itself read (once :meth:`of_versions` loaded it)."""
        return self._params.get(run_id, {})

    def _load(self, frontier: list[str]) -> None:
        """Index rows of every run in the histories of ``frontier``, level by level."""
        while frontier:
            found = batch.inputs_of(self.index, frontier)
            params = batch.params_of_runs(self.index, frontier)
            extras = batch.extras_of(self.index, frontier)
            self._kind.update(batch.kinds_of(self.index, frontier))
            for rid in frontier:
                self._inputs[rid] = found.get(rid, [])
                self._params[rid] = params.get(rid, {})
                self._env[rid] = flat_env(extras.get(rid, (None, None))[0])
            deps = {(path, oid) for rid in frontier for role, path, oid in self._inputs[rid]
                    if role == "deps" and (path, oid) not in self._producer}
            made = batch.producers(self.index, deps)
            for pair in deps:
                by = made.get(pair)
                # an `add` record or no run at all: the data itself
                self._producer[pair] = by[0] if by is not None and by[1] != "add" else None
            upstream = {self._producer[pair] for pair in deps}
            frontier = sorted(r for r in upstream if r is not None and r not in self._inputs)

    def _makings(self, rid: str, seen: frozenset[str]) -> Makings:
        if rid in self._made:
            return self._made[rid]
        data: dict[str, str] = {}
        code: dict[str, str] = {}
        env = dict(self._env.get(rid, {}))
        params = {f: dict(v) for f, v in self._params.get(rid, {}).items()}
        for role, path, oid in self._inputs.get(rid, []):
            if role == "code":
                code[path] = oid
                continue
            producer = self._producer.get((path, oid))
            if producer is None or producer in seen:  # a crafted loop ends as data
                data[path] = oid
                continue
            up = self._makings(producer, seen | {rid})
            for source, value in up.data.items():
                data.setdefault(source, value)
            for file, value in up.code.items():
                code.setdefault(file, value)
            for key, value in up.env.items():
                env.setdefault(key, value)
            for file, values in up.params.items():
                for key, value in values.items():
                    params.setdefault(file, {}).setdefault(key, value)
        # a script listed in `deps` is read as code too: it is code, not data
        data = {p: o for p, o in data.items() if p not in code}
        made = Makings(data, code, env, params)
        self._made[rid] = made
        return made
