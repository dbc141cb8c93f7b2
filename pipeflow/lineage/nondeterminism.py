"""Everyday detection of nondeterminism: a stage ran again with a fingerprint a
successful run recorded before, and its outputs came out different.

:func:`detect` compares a new run's outputs with what earlier runs of the same
fingerprint wrote (as the index lists them) and gives the ``nondeterministic`` field
of the new run's record; :class:`Nondeterminism` is that mark as ``status`` and
``lineage`` show it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SHORT = 12
"""Hex digits of a record id a sentence shows."""


@dataclass(frozen=True)
class Nondeterminism:
    """A run whose outputs differ from an earlier successful run's with the same
    fingerprint: the run, the earlier run(s) and the output paths that differ."""

    run: str
    earlier: tuple[str, ...]
    outputs: tuple[str, ...]

    @classmethod
    def of(cls, run: str, field: Mapping[str, Any] | None) -> Nondeterminism | None:
        """The mark a record's ``nondeterministic`` field holds (its shape was checked
        when the record was read), or None for an unmarked run."""
        if not field:
            return None
        return cls(run, tuple(str(r) for r in field.get("runs") or ()),
                   tuple(str(p) for p in field.get("outputs") or ()))

    @property
    def runs(self) -> tuple[str, ...]:
        """The earlier run(s), then this one: the runs that disagree."""
        return (*self.earlier, self.run)

    def sentence(self) -> str:
        """``nondeterministic: outputs differed for the same inputs (runs A, B): out``."""
        runs = ", ".join(r[:SHORT] for r in self.runs)
        return (f"nondeterministic: outputs differed for the same inputs (runs {runs}): "
                + ", ".join(self.outputs))

    def to_json(self) -> dict[str, Any]:
        """``{"runs": [earlier ids..., this id], "outputs": [paths]}`` (``--json``)."""
        return {"runs": list(self.runs), "outputs": list(self.outputs)}


def detect(
    outputs: Iterable[tuple[str, str]], earlier: Iterable[tuple[str, str, str]]
) -> dict[str, Any] | None:
    """The ``nondeterministic`` field for a run that wrote ``outputs`` (path, hash),
    given what earlier successful runs of its fingerprint wrote: ``earlier`` rows of
    (run id, path, hash), newest first (one row per distinct content is enough). None
    when no earlier run wrote other content (or there was no earlier run). ``runs``
    names, per differing path, the newest earlier run that wrote other content, once
    each. (The fingerprint holds the declared outputs, so runs of one fingerprint list
    the same paths; a path this run did not write differs all the same.)"""
    now = dict(outputs)
    differs: dict[str, str] = {}  # path -> newest earlier run with other content
    for rid, path, oid in earlier:
        if path not in differs and now.get(path) != oid:
            differs[path] = rid
    if not differs:
        return None
    runs = list(dict.fromkeys(differs[p] for p in sorted(differs)))
    return {"runs": runs, "outputs": sorted(differs)}
