"""What the tag log's moves add up to: each tag's target, its history, the version a
rollback returns to, and which moves count when tags are protected.

Moves of one tag are replayed in (``when``, ``id``) order, the same order in every
clone whatever order a merge left the lines in. A move pushes its target; a
rollback pops the newest target (so two rollbacks go back two moves); a delete
empties the tag. A tag's target is the top of that stack.

``registry.protected`` (glob patterns, ``production*``) makes a move of a matching
tag count only when it carries a valid signature by a key in ``keys.trusted``
(docs/registry.md). Any other move of it is *refused*: left out of the replay,
so the tag keeps its last valid target, and reported (``verify``, a warning on read).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pipeflow.lineage.tags import TagLog, TagMove
from pipeflow.signing.signatures import Status, TrustedKeys, Verdict

if TYPE_CHECKING:
    from pipeflow.project.project import Project


@dataclass(frozen=True)
class Refused:
    """A move of a protected tag that does not count, and why."""

    move: TagMove
    verdict: Verdict

    @property
    def message(self) -> str:
        m = self.move
        return (f".pipeflow/tags.jsonl:{m.line}: move of protected alias '{m.name}' of "
                f"{m.path} to {m.hash[:8]} by {m.user or 'someone'} ignored: "
                f"{self.verdict.describe()}, not by a trusted key")


@dataclass(frozen=True)
class AliasPolicy:
    """Which tags are protected, and the keys whose signatures move them."""

    protected: tuple[str, ...]
    trusted: TrustedKeys
    project: str | None = None
    """``registry.project``: a protected move must name it (signed) to count."""
    _verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict, compare=False,
                                                      repr=False)
    """(entry id, signature value) -> its verdict: each signature is checked once per
    policy (a read judges a protected move, ``aliases`` shows it again)."""

    @classmethod
    def of(cls, repo: Project) -> AliasPolicy:
        registry = repo.config.registry
        return cls(registry.protected, registry.trusted, registry.project)

    @classmethod
    def committed(cls, repo: Project) -> AliasPolicy:
        """The policy of the committed ``.pipeflow/config`` alone: what the project
        decided, with no ``config.local`` override of ``registry.protected`` or
        ``keys.trusted`` (what ``push`` publishes for everyone must not follow one
        machine's choice)."""
        from pipeflow.project.config import Config, read_config_file

        shared = repo.config_files[0]
        registry = Config.from_mapping(read_config_file(shared), shared).registry
        return cls(registry.protected, registry.trusted, registry.project)

    def protects(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.protected)

    def verdict(self, move: TagMove) -> Verdict:
        if move.sig is None:
            return self.trusted.verify(move.payload, None)
        key = (move.id, move.sig.value)
        found = self._verdicts.get(key)
        if found is None:
            found = self._verdicts[key] = self.trusted.verify(move.payload, move.sig)
        return found

    def apply(self, log: TagLog) -> TagLog:
        """``log`` with the moves this policy refuses set apart."""
        if not self.protected:
            return log
        kept: list[TagMove] = []
        refused: list[Refused] = []
        for move in log.moves:
            if self.protects(move.name):
                verdict = self.verdict(move)
                if verdict.trusted and self.project is not None and move.project != self.project:
                    verdict = Verdict(Status.INVALID, verdict.signer,
                                      "it was signed for another project (registry.project)")
                if not verdict.trusted:
                    refused.append(Refused(move, verdict))
                    continue
            kept.append(move)
        return replace(log, moves=tuple(kept), refused=(*log.refused, *refused))


@dataclass(frozen=True)
class TagState:
    """One tag after the replay."""

    move: TagMove
    """The last move replayed (for a deleted tag: the delete)."""
    stack: tuple[str, ...]
    """Targets a rollback returns through, newest last (empty: deleted)."""
    moves: tuple[TagMove, ...]
    """Every move of the tag, in replay order."""
    pushed_by: tuple[str, ...] = ()
    """The id of the move that put each target of ``stack`` there."""

    @property
    def target(self) -> str | None:
        return self.stack[-1] if self.stack else None

    @property
    def before(self) -> str | None:
        """What a rollback would return to (None: nothing earlier)."""
        return self.stack[-2] if len(self.stack) > 1 else None

    @property
    def top_move(self) -> str | None:
        """The id of the move a rollback undoes (the one that set the target)."""
        return self.pushed_by[-1] if self.pushed_by else None


def replay(moves: tuple[TagMove, ...] | list[TagMove]) -> dict[tuple[str, str], TagState]:
    """(path, tag) -> its state after every move, in (when, id) order.

    A rollback names the move it undoes (``undoes``): that move's target leaves the
    stack wherever it is, so a colleague's move merged in between is kept and the
    undone version is never returned to; then the rollback's own target is the top.
    A rollback without ``undoes`` (none is written so) pops the newest target."""
    by_key: dict[tuple[str, str], list[TagMove]] = {}
    for move in moves:
        by_key.setdefault((move.path, move.name), []).append(move)
    states: dict[tuple[str, str], TagState] = {}
    for key, group in by_key.items():
        group.sort(key=lambda m: (m.when, m.id))
        stack: list[tuple[str, str]] = []  # (target, the move that pushed it)
        for move in group:
            if move.kind == "delete":
                stack.clear()
                continue
            if move.kind == "rollback" and stack:
                undone = [i for i, (_h, by) in enumerate(stack) if by == move.undoes]
                del stack[undone[-1] if undone else -1]
            if not stack or stack[-1][0] != move.hash:
                stack.append((move.hash, move.id))
        states[key] = TagState(group[-1], tuple(h for h, _ in stack), tuple(group),
                               tuple(by for _, by in stack))
    return states


def overriding(log: TagLog) -> list[Refused]:
    """The refused moves that would decide their tag if they counted (newer than its
    deciding valid move): what a reader is warned about. Older refused moves (history
    from before the tag was protected) only ``verify`` lists."""
    states = log.states
    out = []
    for refused in log.refused:
        m = refused.move
        state = states.get((m.path, m.name))
        if state is None or (m.when, m.id) > (state.move.when, state.move.id):
            out.append(refused)
    return out


def refusal_warnings(refused: list[Refused]) -> list[str]:
    """What a reader is told about ``refused`` (see :func:`overriding`): each ignored
    move, or one line for an alias with more than three (a project that turned
    protection on after unsigned moves), then how to settle it."""
    groups: dict[tuple[str, str], list[Refused]] = {}
    for r in refused:
        groups.setdefault((r.move.path, r.move.name), []).append(r)
    lines: list[str] = []
    for (path, name), group in groups.items():
        if len(group) <= 3:
            lines.extend(r.message for r in group)
            continue
        newest = max(group, key=lambda r: (r.move.when, r.move.id)).move
        lines.append(f".pipeflow/tags.jsonl: {len(group)} moves of protected alias '{name}' "
                     f"of {path} ignored: none is signed by a trusted key (the newest: to "
                     f"{newest.hash[:8]} by {newest.user or 'someone'})")
    if lines:
        lines.append("a `pipeflow promote` signed by a trusted key settles an alias; "
                     "`pipeflow aliases --history` lists the ignored moves")
    return lines
