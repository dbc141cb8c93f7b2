"""Entries of the alias log that git history added and the log no longer holds.

The log is append-only and git merges it by union, so an entry once committed stays;
only a hand edit (or a rewritten file) removes one. Removing the last entry of a
chain is invisible to the chain itself (DESIGN: "the newest line of a chain can be
removed unseen"), and for a protected alias it would undo a signed move: the alias
would go back to what it named before, with nothing skipped and nothing to warn
about. The git history of the file is the witness: ``verify`` compares every entry
the first-parent history of HEAD ever added with the entries the file holds now
(entries ``verify --repair`` set aside, named by its repair entries, excepted).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeflow.lineage.tagline import TAGS_FILE

_MAX_HISTORY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Removed:
    """An entry a commit added that the log no longer holds."""

    id: str
    commit: str
    summary: str
    """``move of 'production' of models/model.pkl to 3fa9c2d1 by alice``."""
    how: str | None = None
    """None: removed by hand; else how it went."""


Body = dict[str, object]


def _ids(text: str) -> tuple[set[str], dict[str, Body]]:
    """The ids of the entries ``text`` holds, and the ids its repair entries excuse
    (with the repair entry that does)."""
    held: set[str] = set()
    excused: dict[str, Body] = {}
    for line in text.split("\n"):
        body = _body(line)
        if body is None:
            continue
        rid = body.get("id")
        if isinstance(rid, str):
            held.add(rid)
        removed = body.get("removed")
        if body.get("kind") == "repair" and isinstance(removed, list):
            excused.update((r, body) for r in removed if isinstance(r, str))
    return held, excused


def _body(line: str) -> Body | None:
    if not line.startswith("{"):
        return None
    try:
        body = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def _summary(body: Body) -> str:
    what = str(body.get("kind") or "move")
    if what == "note":
        return f"note on {str(body.get('path'))[:200]} by {str(body.get('user'))[:80]}"
    return (f"{what} of '{str(body.get('name'))[:100]}' of {str(body.get('path'))[:200]} to "
            f"{str(body.get('hash'))[:8]} by {str(body.get('user'))[:80]}")


def removed_entries(root: Path, dot: Path, text: str, *,
                    guarded: Callable[[Body], bool] = lambda _b: False,
                    vouched: Callable[[Body], bool] = lambda _b: True
                    ) -> tuple[list[Removed], str | None]:
    """Entries the first-parent history of HEAD added to the log and ``text`` (the log
    now) lacks; empty outside git or when git cannot say. A repair entry excuses what
    it names, except a ``guarded`` entry (a move of a protected alias) when the repair
    entry is not ``vouched`` for (signed by a trusted key): anyone can write a repair
    entry, and it must not be a way to remove a signed move."""
    import subprocess

    from pipeflow.git import gitcmd

    rel = f"{dot.name}/{TAGS_FILE}"
    try:
        proc = gitcmd.run(root, "log", "--first-parent", "--format=%x00%H", "-p", "-U0",
                          "--no-color", "--no-ext-diff", "--no-renames", "HEAD", "--", rel,
                          timeout=120)
    except subprocess.TimeoutExpired:
        return [], "git took over 120 s to list the history of the alias log"
    except (OSError, subprocess.SubprocessError):
        return [], None  # no git: nothing to compare with
    if proc.returncode != 0:
        return [], None  # not a repository, or no commit yet
    if len(proc.stdout) > _MAX_HISTORY_BYTES:
        return [], (f"the history of the alias log is {len(proc.stdout) >> 20} MiB, over "
                    f"the {_MAX_HISTORY_BYTES >> 20} MiB pipeflow reads")
    held, excused = _ids(text)
    found: dict[str, Removed] = {}
    commit = ""
    for raw in proc.stdout.decode("utf-8", "replace").split("\n"):
        if raw.startswith("\0"):
            commit = raw[1:].strip()
            continue
        if not raw.startswith("+") or raw.startswith("+++"):
            continue
        body = _body(raw[1:])
        rid = body.get("id") if body is not None else None
        if body is None or not isinstance(rid, str) or rid in held:
            continue
        marker = excused.get(rid)
        if marker is not None and (vouched(marker) or not guarded(body)):
            continue
        how = None if marker is None else "set aside by a repair entry no trusted key signed"
        found[rid] = Removed(rid, commit, _summary(body), how)  # log runs newest first
    return sorted(found.values(), key=lambda r: r.id), None
