"""Tags: team-shared names for versions (``production``, ``staging``...).

``.pipeflow/tags.jsonl`` is committed with the code and only ever appended to: one
JSON object per move — path, tag, the version's hash, the hash it had before, who,
when. Like run records, each clone appends to its own chain: an entry names its
clone's ``chain`` id, its ``seq`` in that chain, the ``id`` of the entry before it in
the same chain (``prev``), and its own ``id`` (the SHA-256 of its canonical body
without ``id``). Two clones' additions never touch the same line, so git merges the
file by keeping both sides (``merge=union`` in ``.gitattributes``).

A tag names the target of its valid move with the greatest (``when``, ``id``): the
same answer in every clone holding the same lines, in whatever order a merge left
them. Every move stays in the history.

Entries have a ``kind``: a move (no ``kind``: the format older pipeflow writes),
``rollback`` and ``delete`` (both name a hash too, so a reader that knows only moves
still reads the right target for a rollback, and keeps a deleted tag), ``note`` (a
version's note: path, hash, text) and ``repair``. An entry may carry ``sig``, an
ed25519 signature of its canonical body without ``id`` and ``sig``
(:mod:`pipeflow.signing`): stored beside the body, so ids stay what they were. Which
moves count (``registry.protected``) and what a rollback returns to is decided by
replaying the moves: :mod:`pipeflow.lineage.aliasstate`.

Reads never fail on a damaged log: a line that does not parse, whose ``id`` does not
match its body (edited by hand), or whose ``prev``/``seq`` names no line of its chain
is skipped and returned as a :class:`LogProblem`. Logs written before chains existed
(one global ``prev`` chain of line hashes, no ``chain`` field) read as the ``legacy``
chain. ``repair`` rewrites the log keeping every valid line and moves the others
aside; a repair entry (``"kind": "repair"``, the ids it removed) in the repairing
clone's chain keeps the lines that followed a removed one valid.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeflow.errors import PipeflowError, UsageError
from pipeflow.files import atomicfile, projectfile, safeload
from pipeflow.lineage.tagline import (
    LEGACY_CHAIN,
    NOTE,
    TAGS_FILE,
    Parsed,
    entry_id,
    link_problem,
    parse_line,
    signed_bytes,
)
from pipeflow.records.records import canonical, iso
from pipeflow.signing.signatures import Signature

if TYPE_CHECKING:
    from pipeflow.lineage.aliasstate import AliasPolicy, Refused, TagState
    from pipeflow.project.project import Project
    from pipeflow.signing.keys import Signer

@dataclass(frozen=True)
class TagMove:
    """One valid line of the tag log."""

    path: str
    name: str
    hash: str
    previous: str | None
    user: str
    when: str
    id: str
    """SHA-256 of the canonical body (legacy lines: of the line's text)."""
    chain: str
    seq: int
    line: int
    """1-based line number in the file as read."""
    kind: str = "move"
    """One of :data:`MOVE_KINDS`."""
    note: str | None = None
    """Why (``promote --note``)."""
    model: str | None = None
    """The model name the move was made through (shown; the path decides)."""
    undoes: str | None = None
    """For a rollback: the id of the move it undid."""
    project: str | None = None
    """The ``registry.project`` the move was made in (signed with it)."""
    sig: Signature | None = field(default=None, compare=False)
    payload: bytes = field(default=b"", compare=False, repr=False)
    """The bytes ``sig`` signs."""


@dataclass(frozen=True)
class Note:
    """A note on a version (``pipeflow note MODEL@VERSION TEXT``)."""

    path: str
    hash: str
    text: str
    user: str
    when: str
    id: str
    chain: str
    seq: int
    line: int
    sig: Signature | None = field(default=None, compare=False)
    payload: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True)
class LogProblem:
    """A line of the tag log that reads skip."""

    line: int
    text: str
    reason: str
    file: str = f".pipeflow/{TAGS_FILE}"
    claimed: str | None = None
    """The id a well-formed line claims (what the lines after it in its chain name)."""
    missing: str | None = None
    """For an intact line skipped only because the line it follows is gone: that
    line's id (``repair`` keeps the line and names the gone one)."""

    @property
    def message(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class TagLog:
    """Every valid move (in file order) and the lines that were skipped."""

    moves: tuple[TagMove, ...]
    problems: tuple[LogProblem, ...]
    heads: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    """Chain -> (seq, id) of its newest valid entry, repair markers included."""
    markers: tuple[int, ...] = ()
    """Line numbers of the valid repair markers (entries that move no tag)."""
    notes: tuple[Note, ...] = ()
    refused: tuple[Refused, ...] = ()
    """Moves of protected tags without a trusted signature: read as if absent."""

    @cached_property
    def states(self) -> dict[tuple[str, str], TagState]:
        """(path, tag) -> its state after replaying every move (replayed once per log:
        every reader of the log asks for it, often more than once)."""
        from pipeflow.lineage.aliasstate import replay

        return replay(self.moves)

    @cached_property
    def current(self) -> dict[tuple[str, str], TagMove]:
        """(path, tag) -> the move that decides the tag: the last one replayed in
        (when, id) order, unless it deleted the tag."""
        return {key: state.move for key, state in self.states.items()
                if state.target is not None}

    def tags_of(self, path: str) -> dict[str, str]:
        """Tag name -> hash for one path."""
        return {name: m.hash for (p, name), m in self.current.items() if p == path}

    def notes_of(self, path: str) -> dict[str, list[Note]]:
        """Hash -> the notes on that version of ``path``, oldest first."""
        out: dict[str, list[Note]] = {}
        for note in sorted(self.notes, key=lambda n: (n.when, n.id)):
            if note.path == path:
                out.setdefault(note.hash, []).append(note)
        return out

    def head(self, chain: str) -> tuple[int, str] | None:
        """(seq, id) of the newest valid entry of ``chain`` (highest seq, then id)."""
        return self.heads.get(chain)


def check_name(name: str) -> None:
    """A UsageError when ``name`` is not a valid tag (alias) name."""
    from pipeflow.names import name_problem

    problem = name_problem(name, alias=True)
    if problem is not None:
        raise UsageError(f"invalid alias name {name!r}: it {problem}",
                         hint="use letters, digits, '-', '_' or '.' (e.g. production, "
                              "production-eu, canary); not vN or a hex string, which read "
                              "as a version or a hash prefix")


def parse_log(text: str, policy: AliasPolicy | None = None) -> TagLog:
    """The moves, notes and problems of a tag log's text (never raises). With
    ``policy``, moves it refuses (protected tags) are set apart in ``refused``."""
    parsed: list[Parsed] = []
    problems: list[LogProblem] = []
    # split("\n"), not splitlines(): a JSON string may hold U+2028 and its kin.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        result = parse_line(number, line)
        if isinstance(result, str):
            problems.append(LogProblem(number, line, result))
        else:
            parsed.append(result)
    # A line is linked by the id it claims, so one edited line is skipped alone and the
    # lines after it in its chain still read.
    claimed: dict[str, dict[str, int]] = {}
    for entry in parsed:
        claimed.setdefault(entry.chain, {})[entry.claimed] = entry.seq
    excused = {r for e in parsed if e.removed is not None and e.problem is None
               for r in e.removed}
    moves: list[TagMove] = []
    notes: list[Note] = []
    markers: list[int] = []
    heads: dict[str, tuple[int, str]] = {}
    for entry in parsed:
        reason = entry.problem or link_problem(entry, claimed, excused)
        if reason is not None:
            prev = entry.body.get("prev")
            gone = (prev if entry.problem is None and isinstance(prev, str)
                    and prev not in claimed.get(entry.chain, {}) else None)
            problems.append(LogProblem(entry.line, entry.text, reason, claimed=entry.claimed,
                                       missing=gone))
            continue
        heads[entry.chain] = max(heads.get(entry.chain, (0, "")), (entry.seq, entry.id))
        if entry.removed is not None:
            markers.append(entry.line)  # a repair marker moves no tag
            continue
        if entry.body.get("kind") == NOTE:
            notes.append(_note(entry))
        else:
            moves.append(_move(entry))
    problems.sort(key=lambda p: p.line)
    log = TagLog(tuple(moves), tuple(problems), heads, tuple(markers), tuple(notes))
    return log if policy is None else policy.apply(log)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _move(entry: Parsed) -> TagMove:
    b = entry.body
    chain_fields = entry.chain != LEGACY_CHAIN
    return TagMove(b["path"], b["name"], b["hash"], _text(b.get("previous")),
                   str(b.get("user", "")), str(b.get("when", "")), entry.id, entry.chain,
                   entry.seq, entry.line, str(b.get("kind", "move")), _text(b.get("note")),
                   _text(b.get("model")), _text(b.get("undoes")), _text(b.get("project")),
                   Signature.from_json(b.get("sig")),
                   signed_bytes(b) if chain_fields else b"")


def _note(entry: Parsed) -> Note:
    b = entry.body
    return Note(b["path"], b["hash"], b["text"], str(b.get("user", "")),
                str(b.get("when", "")), entry.id, entry.chain, entry.seq, entry.line,
                Signature.from_json(b.get("sig")), signed_bytes(b))


def _read_text(path: Path) -> str:
    # pipeflow rewrites the log: a link is refused, never read (a rewrite would copy
    # the file it names into the log the team pushes), and so is a device
    data = projectfile.read(path, "tags", name=f"{path.parent.name}/{path.name}",
                            error=safeload.plain(PipeflowError))
    if data is None:
        return ""
    # Undecodable bytes become lines that do not parse, not a failed read.
    return data.decode("utf-8", "surrogateescape")


def log_text(dot: Path) -> str:
    """The log's text as read (undecodable bytes kept as escapes)."""
    return _read_text(dot / TAGS_FILE)


def read_log(dot: Path, policy: AliasPolicy | None = None) -> TagLog:
    """The tag log of the project whose ``.pipeflow`` is ``dot``, as ``policy`` reads
    it (none: every valid move counts, as for ``gc``, which keeps them all)."""
    return parse_log(_read_text(dot / TAGS_FILE), policy)


def read(repo: Project) -> TagLog:
    """The project's tag log as its config says to read it (protected tags)."""
    from pipeflow.lineage.aliasstate import AliasPolicy

    return read_log(repo.dot, AliasPolicy.of(repo))


def current(dot: Path) -> dict[tuple[str, str], str]:
    """(path, tag) -> hash of the version the tag names now, every valid move
    counting (``gc`` keeps what any reading could name)."""
    return {key: move.hash for key, move in read_log(dot).current.items()}


def tags_of(dot: Path, path: str) -> dict[str, str]:
    """Tag name -> hash for one path (every valid move counting)."""
    return read_log(dot).tags_of(path)


def _after(when: str) -> str:
    """A time 1 ms after ``when`` (an ISO time written by :func:`iso`)."""
    try:
        then = datetime.datetime.fromisoformat(when)
        later = then.astimezone(datetime.UTC) + datetime.timedelta(milliseconds=1)
    except (ValueError, OverflowError):  # read_log skips such lines; never a crash
        return iso(time.time())
    return later.isoformat(timespec="milliseconds")


def move(dot: Path, chain: str, path: str, name: str, oid: str | None, user: str, *,
         kind: str = "move", note: str | None = None, model: str | None = None,
         undoes: str | None = None, signer: Signer | None = None,
         policy: AliasPolicy | None = None) -> TagMove:
    """Point tag ``name`` of ``path`` at content ``oid`` (``kind`` delete: at nothing;
    ``oid`` None then): one entry appended to this clone's ``chain`` in the log,
    signed when ``signer`` is given (the file is rewritten atomically, never torn).
    ``policy`` reads the log as the project does (the tag's current target)."""
    check_name(name)
    log = read_log(dot, policy)
    held = log.current.get((path, name))
    if kind == "delete":
        if held is None:
            raise UsageError(f"'{path}' has no tag '{name}' to delete")
        oid = held.hash  # a reader that knows only moves keeps the tag: never a wrong one
    assert oid is not None
    when = iso(time.time())
    last = _last_move(log, path, name)
    if last is not None and (when, "") <= (last.when, last.id):
        # A clock behind a colleague's (or a move within the same millisecond) must
        # not make this move lose to the one it replaces, a delete included.
        when = max(when, _after(last.when))
    fields: dict[str, Any] = {"path": path, "name": name, "hash": oid,
                              "previous": held.hash if held else None, "user": user,
                              "when": when}
    if kind != "move":
        fields["kind"] = kind
    project = policy.project if policy is not None else None
    fields.update({k: v for k, v in (("note", note), ("model", model), ("undoes", undoes),
                                     ("project", project)) if v})
    body, number = _append(dot, log, chain, fields, signer)
    return _move(Parsed(number, "", body, body["id"], body["id"], chain, body["seq"]))


def _last_move(log: TagLog, path: str, name: str) -> TagMove | None:
    """The move of tag ``name`` of ``path`` that replays last (a delete too)."""
    own = [m for m in log.moves if m.path == path and m.name == name]
    return max(own, key=lambda m: (m.when, m.id), default=None)


def add_note(dot: Path, chain: str, path: str, oid: str, text: str, user: str, *,
             signer: Signer | None = None) -> Note:
    """Append a note on version ``oid`` of ``path`` to this clone's chain."""
    log = read_log(dot)
    fields = {"kind": NOTE, "path": path, "hash": oid, "text": text, "user": user,
              "when": iso(time.time())}
    body, number = _append(dot, log, chain, fields, signer)
    return _note(Parsed(number, "", body, body["id"], body["id"], chain, body["seq"]))


def _append(dot: Path, log: TagLog, chain: str, fields: dict[str, Any],
            signer: Signer | None) -> tuple[dict[str, Any], int]:
    """Write ``fields`` as the next entry of ``chain`` (signed by ``signer``); the
    entry's body and its line number."""
    from pipeflow.signing.signatures import sign

    body = _chained(log, chain, fields)
    if signer is not None:
        body["sig"] = sign(signer, signed_bytes(body)).to_json()
    tags_path = dot / TAGS_FILE
    data = _read_text(tags_path).encode("utf-8", "surrogateescape")
    if data and not data.endswith(b"\n"):
        data += b"\n"
    atomicfile.write_bytes(tags_path, data + _line(body), durable=True)
    return body, data.count(b"\n") + 1


def _chained(log: TagLog, chain: str, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` as the next entry of ``chain``: chain, seq, prev and id filled."""
    head = log.head(chain)
    body = {"chain": chain, "seq": head[0] + 1 if head else 1,
            "prev": head[1] if head else None, **fields}
    body["id"] = entry_id(body)
    return body


def _line(body: Mapping[str, Any]) -> bytes:
    return canonical(body) + b"\n"


@dataclass(frozen=True)
class RepairReport:
    """What ``repair`` did: lines kept, lines moved aside and where."""

    kept: int
    moved: tuple[LogProblem, ...]
    aside: Path | None


def repair(dot: Path, chain: str, user: str, *, signer: Signer | None = None) -> RepairReport:
    """Rewrite the log with its valid lines only (in file order, which is stable) and
    append the others, each with its reason, to ``state/tags.jsonl.damaged``. When lines
    that others follow are set aside, a repair entry in ``chain`` names their ids, so
    the lines after them keep reading (and the repair stays in the history)."""
    tags_path = dot / TAGS_FILE
    text = _read_text(tags_path)
    log = parse_log(text)
    if not log.problems:
        return RepairReport(len(log.moves) + len(log.notes), (), None)
    lines = text.split("\n")
    # a line skipped only because the line before it in its chain is gone is kept:
    # the repair entry names the gone line, and it reads again
    valid = sorted({m.line for m in log.moves} | {n.line for n in log.notes}
                   | set(log.markers) | {p.line for p in log.problems if p.missing})
    kept = "".join(lines[n - 1] + "\n" for n in valid)
    removed = sorted({p.missing or p.claimed or "" for p in log.problems} - {""})
    if removed:
        marker = _chained(log, chain, {"kind": "repair", "removed": removed, "user": user,
                                       "when": iso(time.time())})
        if signer is not None:
            from pipeflow.signing.signatures import sign

            marker["sig"] = sign(signer, signed_bytes(marker)).to_json()
        kept += _line(marker).decode("utf-8", "surrogatepass")
    aside = dot / "state" / f"{TAGS_FILE}.damaged"  # git-ignored: this clone's to read
    aside.parent.mkdir(exist_ok=True)
    before = _read_text(aside)
    moved = "".join(
        json.dumps({"line": p.line, "reason": p.reason, "text": p.text},
                   ensure_ascii=False) + "\n"
        for p in log.problems if not p.missing)
    atomicfile.write_bytes(aside, (before + moved).encode("utf-8", "surrogateescape"),
                           durable=True)
    atomicfile.write_bytes(tags_path, kept.encode("utf-8", "surrogateescape"), durable=True)
    return RepairReport(len(valid), tuple(p for p in log.problems if not p.missing), aside)

