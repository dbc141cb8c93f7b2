"""Tags: team-shared names for versions (``production``, ``staging``...).

``.pipeflow/tags.jsonl`` is committed with the code and only ever appended to:
one JSON object per move — path, tag, the version's hash, the hash it had before,
who, when — each naming the SHA-256 of the line before it, so a rewritten history
of moves is detectable. The current tags are the last move of each (path, name).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeflow.errors import StorageError, UsageError
from pipeflow.lineage.records import iso

TAGS_FILE = "tags.jsonl"


@dataclass(frozen=True)
class TagMove:
    """One line of the tag log."""

    path: str
    name: str
    hash: str
    previous: str | None
    user: str
    when: str
    line_hash: str


def _check_name(name: str) -> None:
    looks_like_label = name.startswith("v") and name[1:].isdigit()
    if not name or any(c in name for c in "@/ \t\n") or looks_like_label:
        msg = f"invalid tag name {name!r}"
        raise UsageError(msg, hint="use letters, digits, '-', '_' or '.'; not vN, no '@' or '/'")


def read_moves(dot: Path) -> list[TagMove]:
    """Every move in order; raises StorageError when the log's chain is broken."""
    path = dot / TAGS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    moves: list[TagMove] = []
    prev_hash = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except ValueError as exc:
            raise StorageError(f"{path}:{number}: not a JSON line") from exc
        if body.get("prev") != prev_hash:
            raise StorageError(f"{path}:{number}: the tag history was rewritten "
                               "(this line does not follow the one before it)")
        prev_hash = hashlib.sha256(line.encode("utf-8")).hexdigest()
        moves.append(TagMove(str(body["path"]), str(body["name"]), str(body["hash"]),
                             body.get("previous"), str(body.get("user", "")),
                             str(body.get("when", "")), prev_hash))
    return moves


def current(dot: Path) -> dict[tuple[str, str], str]:
    """(path, tag) -> hash of the version the tag names now."""
    tags: dict[tuple[str, str], str] = {}
    for move in read_moves(dot):
        tags[(move.path, move.name)] = move.hash
    return tags


def tags_of(dot: Path, path: str) -> dict[str, str]:
    """Tag name -> hash for one path."""
    return {name: h for (p, name), h in current(dot).items() if p == path}


def move(dot: Path, path: str, name: str, oid: str, user: str) -> TagMove:
    """Point tag ``name`` of ``path`` at content ``oid``, appending to the log."""
    _check_name(name)
    moves = read_moves(dot)
    previous = None
    for m in moves:
        if m.path == path and m.name == name:
            previous = m.hash
    body: dict[str, Any] = {
        "path": path, "name": name, "hash": oid, "previous": previous, "user": user,
        "when": iso(time.time()), "prev": moves[-1].line_hash if moves else None,
    }
    line = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    tags_path = dot / TAGS_FILE
    with open(tags_path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return TagMove(path, name, oid, previous, user, body["when"],
                   hashlib.sha256(line.encode("utf-8")).hexdigest())
