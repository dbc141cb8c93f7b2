"""Batch queries of the run index: ``versions`` of a path with thousands of versions
asks for the inputs, params and environments of thousands of runs in one query per
chunk of run ids, not one per run."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pipeflow.records.index import RunIndex, sql_text


def inputs_of(index: RunIndex, run_ids: Iterable[str]) -> dict[str, list[tuple[str, str, str]]]:
    """Run id -> its (role ``deps``/``code``, path, hash) inputs."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    sql = "SELECT run_id, role, path, hash FROM inputs WHERE run_id IN ({})"
    for rid, role, path, oid in _each(index, sql, run_ids):
        out.setdefault(str(rid), []).append((str(role), str(path), str(oid)))
    return out


def params_of_runs(index: RunIndex, run_ids: Iterable[str]
                   ) -> dict[str, dict[str, dict[str, Any]]]:
    """Run id -> file -> key -> value (what :meth:`RunIndex.params_of` gives, in bulk)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    sql = "SELECT run_id, file, key, value FROM params WHERE run_id IN ({})"
    for rid, f, k, v in _each(index, sql, run_ids):
        out.setdefault(str(rid), {}).setdefault(str(f), {})[str(k)] = json.loads(v)
    return out


def metrics_of_runs(index: RunIndex, run_ids: Iterable[str]
                    ) -> dict[str, dict[str, dict[str, Any]]]:
    """Run id -> metrics file -> key -> value (:meth:`RunIndex.metrics_of`, in bulk)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    sql = "SELECT run_id, path, key, value FROM metrics WHERE run_id IN ({})"
    for rid, p, k, v in _each(index, sql, run_ids):
        out.setdefault(str(rid), {}).setdefault(str(p), {})[str(k)] = json.loads(v)
    return out


def users_and_files(index: RunIndex, run_ids: Iterable[str]) -> dict[str, tuple[str | None, str]]:
    """Run id -> (the user its record names, its record file ``chain/seq-sha.json``)."""
    sql = "SELECT id, user, rel FROM runs WHERE id IN ({})"
    return {str(rid): (None if user is None else str(user), str(rel))
            for rid, user, rel in _each(index, sql, run_ids)}


def readers_of(index: RunIndex, path: str) -> dict[str, list[str]]:
    """Hash -> the successful runs that read that content of ``path`` (a ``deps``
    input), oldest first."""
    rows = index.db.execute(
        """SELECT i.hash, i.run_id FROM inputs i JOIN runs r ON r.id = i.run_id
           WHERE i.path = ? AND r.exit_status = 0 ORDER BY r.ended, r.seq""",
        (sql_text(path),))
    out: dict[str, list[str]] = {}
    for oid, rid in rows:
        runs = out.setdefault(str(oid), [])
        if str(rid) not in runs:
            runs.append(str(rid))
    return out


def kinds_of(index: RunIndex, run_ids: Iterable[str]) -> dict[str, str]:
    """Run id -> its record's kind (``run``, ``restore``, ``add``...)."""
    rows = _each(index, "SELECT id, kind FROM runs WHERE id IN ({})", run_ids)
    return {str(rid): str(kind) for rid, kind in rows}


def rels_of(index: RunIndex, run_ids: Iterable[str]) -> dict[str, str]:
    """Run id -> its record's path (:meth:`RunIndex.run_rel`, in bulk)."""
    rows = _each(index, "SELECT id, rel FROM runs WHERE id IN ({})", run_ids)
    return {str(rid): str(rel) for rid, rel in rows}


def extras_of(index: RunIndex, run_ids: Iterable[str]) -> dict[str, tuple[Any, Any]]:
    """Run id -> (environment, experiment mark), each None when the record has none."""
    sql = "SELECT run_id, env, experiment FROM run_extras WHERE run_id IN ({})"
    rows = _each(index, sql, run_ids)
    return {str(rid): (_loads(env), _loads(mark)) for rid, env, mark in rows}


def producers(index: RunIndex, pairs: Iterable[tuple[str, str]]
              ) -> dict[tuple[str, str], tuple[str, str]]:
    """(path, hash) -> (id, kind) of the first successful run that wrote it (as
    :meth:`RunIndex.producer`), for those some run wrote."""
    wanted = set(pairs)
    best: dict[tuple[str, str], tuple[tuple[str, int], str, str]] = {}
    sql = ("SELECT o.path, o.hash, r.id, r.kind, r.ended, r.seq FROM outputs o "
           "JOIN runs r ON r.id = o.run_id WHERE r.exit_status = 0 AND o.hash IN ({})")
    rows = _each(index, sql, {oid for _, oid in wanted})
    for path, oid, rid, kind, ended, seq in rows:
        key = (str(path), str(oid))
        order = (str(ended or ""), int(seq))
        if key in wanted and (key not in best or order < best[key][0]):
            best[key] = (order, str(rid), str(kind))
    return {key: (rid, kind) for key, (_, rid, kind) in best.items()}


def nondeterministic_of_runs(index: RunIndex, run_ids: Iterable[str]
                            ) -> dict[str, dict[str, Any]]:
    """Run id -> its record's ``nondeterministic`` field, for the marked runs among
    ``run_ids`` (``status``: the lock's runs, read from the index, not the records)."""
    sql = ("SELECT run_id, nondeterministic FROM run_extras WHERE nondeterministic IS NOT "
           "NULL AND run_id IN ({})")
    return {str(rid): json.loads(mark) for rid, mark in _each(index, sql, run_ids)}


def _each(index: RunIndex, sql: str, values: Iterable[str], chunk: int = 500) -> Iterable[Any]:
    """The rows of ``sql`` (one ``IN ({})``) over ``values``, a chunk at a time (SQLite
    bounds the parameters of one statement)."""
    listed = list(dict.fromkeys(values))
    for start in range(0, len(listed), chunk):
        part = listed[start:start + chunk]
        yield from index.db.execute(sql.format(",".join("?" * len(part))), part)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def reproduction_rels(index: RunIndex, path: str, oid: str) -> list[str]:
    """The record paths of the ``reproduction`` records of ``path`` at content ``oid``,
    oldest first (as :meth:`RunIndex.rels_of_kind` orders them)."""
    rows = index.db.execute(
        """SELECT r.rel FROM reproductions p JOIN runs r ON r.id = p.run_id
           WHERE p.path = ? AND p.hash = ? ORDER BY r.ended, r.chain, r.seq""",
        (sql_text(path), oid))
    return [str(r[0]) for r in rows]
