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
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeflow.errors import PipeflowError, UsageError
from pipeflow.files import atomicfile, projectfile, safeload, safepath
from pipeflow.records.records import canonical, iso
from pipeflow.signing.signatures import Signature

if TYPE_CHECKING:
    from pipeflow.lineage.aliasstate import AliasPolicy, Refused
    from pipeflow.project.project import Project
    from pipeflow.signing.keys import Signer

TAGS_FILE = "tags.jsonl"
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

    @property
    def current(self) -> dict[tuple[str, str], TagMove]:
        """(path, tag) -> the move that decides the tag: the last one replayed in
        (when, id) order, unless it deleted the tag."""
        from pipeflow.lineage.aliasstate import replay

        return {key: state.move for key, state in replay(self.moves).items()
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


def signed_bytes(body: Mapping[str, Any]) -> bytes:
    """What an entry's id and signature cover: its canonical body without them."""
    return canonical({k: v for k, v in body.items() if k not in _UNSIGNED})


def entry_id(body: Mapping[str, Any]) -> str:
    """The SHA-256 an entry is known by: its canonical body without ``id`` (nor ``sig``)."""
    return hashlib.sha256(signed_bytes(body)).hexdigest()


@dataclass(frozen=True)
class _Parsed:
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


def _parse(number: int, text: str) -> _Parsed | str:
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
    if "chain" not in body:  # the format before chains: the line's own hash is its id
        line_hash = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        return _Parsed(number, text, body, line_hash, line_hash, LEGACY_CHAIN, 0, bad_path)
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
    return _Parsed(number, text, body, real, claimed, chain, seq, problem)


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


def _parse_marker(number: int, text: str, body: dict[str, Any]) -> _Parsed | str:
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
    return _Parsed(number, text, body, entry_id(body), claimed, chain, seq, problem,
                   tuple(removed))


def _link_problem(entry: _Parsed, claimed: dict[str, dict[str, int]],
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


def parse_log(text: str, policy: AliasPolicy | None = None) -> TagLog:
    """The moves, notes and problems of a tag log's text (never raises). With
    ``policy``, moves it refuses (protected tags) are set apart in ``refused``."""
    parsed: list[_Parsed] = []
    problems: list[LogProblem] = []
    # split("\n"), not splitlines(): a JSON string may hold U+2028 and its kin.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        result = _parse(number, line)
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
        reason = entry.problem or _link_problem(entry, claimed, excused)
        if reason is not None:
            problems.append(LogProblem(entry.line, entry.text, reason, claimed=entry.claimed))
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


def _move(entry: _Parsed) -> TagMove:
    b = entry.body
    chain_fields = entry.chain != LEGACY_CHAIN
    return TagMove(b["path"], b["name"], b["hash"], _text(b.get("previous")),
                   str(b.get("user", "")), str(b.get("when", "")), entry.id, entry.chain,
                   entry.seq, entry.line, str(b.get("kind", "move")), _text(b.get("note")),
                   _text(b.get("model")), Signature.from_json(b.get("sig")),
                   signed_bytes(b) if chain_fields else b"")


def _note(entry: _Parsed) -> Note:
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
         signer: Signer | None = None, policy: AliasPolicy | None = None) -> TagMove:
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
    if held is not None and (when, "") <= (held.when, held.id):
        # A clock behind a colleague's must not make this move lose to the one it replaces.
        when = max(when, _after(held.when))
    fields: dict[str, Any] = {"path": path, "name": name, "hash": oid,
                              "previous": held.hash if held else None, "user": user,
                              "when": when}
    if kind != "move":
        fields["kind"] = kind
    fields.update({k: v for k, v in (("note", note), ("model", model)) if v})
    body, number = _append(dot, log, chain, fields, signer)
    return _move(_Parsed(number, "", body, body["id"], body["id"], chain, body["seq"]))


def add_note(dot: Path, chain: str, path: str, oid: str, text: str, user: str, *,
             signer: Signer | None = None) -> Note:
    """Append a note on version ``oid`` of ``path`` to this clone's chain."""
    log = read_log(dot)
    fields = {"kind": NOTE, "path": path, "hash": oid, "text": text, "user": user,
              "when": iso(time.time())}
    body, number = _append(dot, log, chain, fields, signer)
    return _note(_Parsed(number, "", body, body["id"], body["id"], chain, body["seq"]))


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


def repair(dot: Path, chain: str, user: str) -> RepairReport:
    """Rewrite the log with its valid lines only (in file order, which is stable) and
    append the others, each with its reason, to ``state/tags.jsonl.damaged``. When lines
    that others follow are set aside, a repair entry in ``chain`` names their ids, so
    the lines after them keep reading (and the repair stays in the history)."""
    tags_path = dot / TAGS_FILE
    text = _read_text(tags_path)
    log = parse_log(text)
    if not log.problems:
        return RepairReport(len(log.moves), (), None)
    lines = text.split("\n")
    valid = sorted({m.line for m in log.moves} | set(log.markers))
    kept = "".join(lines[n - 1] + "\n" for n in valid)
    removed = sorted({p.claimed for p in log.problems if p.claimed})
    if removed:
        marker = _chained(log, chain, {"kind": "repair", "removed": removed, "user": user,
                                       "when": iso(time.time())})
        kept += _line(marker).decode("utf-8", "surrogatepass")
    aside = dot / "state" / f"{TAGS_FILE}.damaged"  # git-ignored: this clone's to read
    aside.parent.mkdir(exist_ok=True)
    before = _read_text(aside)
    moved = "".join(
        json.dumps({"line": p.line, "reason": p.reason, "text": p.text},
                   ensure_ascii=False) + "\n"
        for p in log.problems)
    atomicfile.write_bytes(aside, (before + moved).encode("utf-8", "surrogateescape"),
                           durable=True)
    atomicfile.write_bytes(tags_path, kept.encode("utf-8", "surrogateescape"), durable=True)
    return RepairReport(len(log.moves), log.problems, aside)

