"""One line of the tag log (:mod:`pipeflow.lineage.tags`): parsed, checked, and linked
to the line before it in its chain. Never raises: a line that is no entry gives the
reason, and a well-formed line whose content is wrong carries it as its problem."""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeflow.errors import PipeflowError
from pipeflow.files import safeload, safepath
from pipeflow.records.records import canonical

TAGS_FILE = "tags.jsonl"
_OID = re.compile(r"[0-9a-f]{32}")
LEGACY_CHAIN = "legacy"
# How far ahead of this machine's clock a move's time may be (a colleague's clock
# running fast). A later time would pin the tag: no honest move could follow it.
CLOCK_SKEW = datetime.timedelta(days=1)
_FIELDS = ("path", "name", "hash")
_NOTE_FIELDS = ("path", "hash", "text")
MOVE_KINDS = ("move", "rollback", "delete")
"""Entries that move a tag (``delete`` moves it to nothing)."""
NOTE = "note"
_UNSIGNED = ("id", "sig")
"""What a signature and an id do not cover."""


def signed_bytes(body: Mapping[str, Any]) -> bytes:
    """What an entry's id and signature cover: its canonical body without them."""
    return canonical({k: v for k, v in body.items() if k not in _UNSIGNED})


def entry_id(body: Mapping[str, Any]) -> str:
    """The SHA-256 an entry is known by: its canonical body without ``id`` (nor ``sig``)."""
    return hashlib.sha256(signed_bytes(body)).hexdigest()


@dataclass(frozen=True)
class Parsed:
    line: int
    text: str
    body: dict[str, Any]
    id: str
    claimed: str
    """The id the line says it has (what its successor names)."""
    chain: str
    seq: int
    problem: str | None = None
    """Set for a well-formed line whose content does not match its id."""
    removed: tuple[str, ...] | None = None
    """For a repair marker: the ids of the lines ``repair`` set aside."""


def parse_line(number: int, text: str) -> Parsed | str:
    """One line as an entry, or the reason it is not one."""
    if len(text) > safeload.limits("tagline").max_bytes:
        return "longer than a tag log line may be"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # bytes the read could not decode (surrogateescape)
            return "not UTF-8 text"
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested brackets
        return "not a JSON line"
    if not isinstance(body, dict):
        return "not a JSON object"
    try:
        safeload.bound(body, TAGS_FILE, "tagline")
    except PipeflowError as exc:
        return exc.message.split(": ", 1)[-1]
    kind = body.get("kind", "move")
    if kind == "repair":
        return _parse_marker(number, text, body)
    if kind not in (*MOVE_KINDS, NOTE):
        return f"an entry of unknown kind {str(kind)[:40]!r} (written by a newer pipeflow?)"
    for key in _NOTE_FIELDS if kind == NOTE else _FIELDS:
        if not isinstance(body.get(key), str) or not body[key]:
            return f"no '{key}' string"
    if not isinstance(body.get("when", ""), str) or not isinstance(body.get("prev"),
                                                                    (str, type(None))):
        return "'when' or 'prev' is not a string"
    # A tag of "../x" or ".git/hooks/x" (pipeflow.files.safepath), or a time that is no time
    # or lies in the future, is skipped like a damaged line; set as the line's problem,
    # so the lines after it in its chain still read.
    unsafe = safepath.problem(body["path"])
    bad_path = None if unsafe is None else f"its path {body['path'][:200]!r} {unsafe}"
    bad_path = bad_path or _when_problem(body.get("when"))
    if not bad_path and not _OID.fullmatch(body["hash"]):
        # a version is a content id: anything else would be served as one (a snapshot
        # built from it would not parse, and every `get` would fail)
        bad_path = f"its hash {body['hash'][:40]!r} is not a content id (32 hex digits)"
    if "chain" not in body:  # the format before chains: the line's own hash is its id
        line_hash = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        return Parsed(number, text, body, line_hash, line_hash, LEGACY_CHAIN, 0, bad_path)
    chain, seq, claimed = body.get("chain"), body.get("seq"), body.get("id")
    if not isinstance(chain, str) or not chain or chain == LEGACY_CHAIN:
        return "'chain' is not a chain id"
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return "'seq' is not a positive integer"
    if not isinstance(claimed, str):
        return "no 'id'"
    real = entry_id(body)
    problem = bad_path if real == claimed else (
        f"its content does not match its id {claimed[:12]}: the line was edited after it "
        "was written")
    return Parsed(number, text, body, real, claimed, chain, seq, problem)


def _when_problem(when: object) -> str | None:
    """Why a move's ``when`` cannot order it (None when it can): it must be an ISO-8601
    time with its UTC offset, no later than now plus :data:`CLOCK_SKEW`."""
    if when is None:
        return None  # lines from before 'when' was written sort first
    try:
        then = datetime.datetime.fromisoformat(str(when))
        if then.tzinfo is None:
            return f"its time {str(when)[:40]!r} has no UTC offset"
        if then - CLOCK_SKEW > datetime.datetime.now(datetime.UTC):
            return f"its time {str(when)[:40]!r} is in the future (it would pin the tag)"
    except (ValueError, OverflowError):
        return f"its time {str(when)[:40]!r} is not an ISO-8601 time"
    return None


def _parse_marker(number: int, text: str, body: dict[str, Any]) -> Parsed | str:
    """A repair marker: an entry of the repairing clone's chain naming the lines
    ``repair`` set aside, so the lines that followed them still read."""
    chain, seq, claimed, removed = (body.get("chain"), body.get("seq"), body.get("id"),
                                    body.get("removed"))
    if (not isinstance(chain, str) or not chain or chain == LEGACY_CHAIN
            or not isinstance(seq, int) or isinstance(seq, bool) or seq < 1
            or not isinstance(claimed, str) or not isinstance(body.get("prev"), str | None)
            or not isinstance(removed, list)
            or not all(isinstance(r, str) for r in removed)):
        return "a repair entry without chain, seq, id and removed ids"
    problem = None if entry_id(body) == claimed else (
        f"its content does not match its id {claimed[:12]}: the line was edited after it "
        "was written")
    return Parsed(number, text, body, entry_id(body), claimed, chain, seq, problem,
                   tuple(removed))


def link_problem(entry: Parsed, claimed: dict[str, dict[str, int]],
                  excused: set[str]) -> str | None:
    """Why ``entry`` does not follow a line of its chain (None when it does)."""
    prev = entry.body.get("prev")
    if prev in excused:
        return None  # it followed a line that `repair` set aside
    if entry.chain == LEGACY_CHAIN:
        if prev is None or prev in claimed.get(LEGACY_CHAIN, {}):
            return None
        return "it names a previous line that is not in the log (a line was removed or edited)"
    if prev is None:
        return None if entry.seq == 1 else f"seq {entry.seq} names no previous entry"
    before = claimed.get(entry.chain, {}).get(prev)
    if before is None:
        return (f"it follows entry {prev[:12]} of chain {entry.chain}, which is not in the "
                "log (a line was removed or edited)")
    if before != entry.seq - 1:
        return f"seq {entry.seq} follows an entry with seq {before}"
    return None
