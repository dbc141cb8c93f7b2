"""``pipeflow aliases`` and ``pipeflow tag list|log``: where each alias points, and
every move that took it there (who, when, from, to, note, signature)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeflow.lineage import tags as tagfile
from pipeflow.lineage.aliasstate import AliasPolicy, overriding, refusal_warnings
from pipeflow.lineage.tags import LogProblem, TagMove
from pipeflow.lineage.versions import Version
from pipeflow.ops.lineage import light_versions
from pipeflow.project.project import Project
from pipeflow.registry.models import declared, name_of, resolve_target


@dataclass(frozen=True)
class HistoryMove:
    """One move of an alias, as ``--history`` shows it."""

    alias: str
    path: str
    model: str | None
    kind: str
    """``move``, ``rollback`` or ``delete``."""
    to_hash: str | None
    to_label: str | None
    from_hash: str | None
    from_label: str | None
    user: str
    when: str
    note: str | None
    signature: str
    """``trusted``, ``untrusted``, ``invalid`` or ``unsigned``."""
    signer: str | None
    refused: str | None = None
    """Why the move does not count (a protected alias without a trusted signature)."""
    id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"alias": self.alias, "model": self.model, "path": self.path,
                "kind": self.kind, "to": self.to_hash, "to_label": self.to_label,
                "from": self.from_hash, "from_label": self.from_label, "user": self.user,
                "when": self.when, "note": self.note, "signature": self.signature,
                "signer": self.signer, "refused": self.refused, "id": self.id}


@dataclass(frozen=True)
class Alias:
    """Where one alias points now."""

    alias: str
    path: str
    model: str | None
    hash: str
    label: str
    last: HistoryMove
    """The move that put it there."""
    rollback_to: str | None = None
    """The label a rollback would return to."""

    def to_json(self) -> dict[str, Any]:
        return {"alias": self.alias, "model": self.model, "path": self.path,
                "hash": self.hash, "version": self.label, "moved_by": self.last.user,
                "when": self.last.when, "note": self.last.note,
                "signature": self.last.signature, "signer": self.last.signer,
                "rollback_to": self.rollback_to}


@dataclass(frozen=True)
class AliasReport:
    aliases: list[Alias]
    history: list[HistoryMove]
    """Every move, oldest first (refused ones included, marked)."""
    problems: tuple[LogProblem, ...] = ()
    refused: tuple[str, ...] = ()
    """Messages for the moves of protected aliases that do not count."""


def aliases(repo: Project, model_or_path: str | None = None, *,
            alias: str | None = None) -> AliasReport:
    """Every alias (of one model or path, or of one name), and every move."""
    models = declared(repo)
    only = resolve_target(repo, model_or_path, models).path if model_or_path else None
    policy = AliasPolicy.of(repo)
    log = tagfile.read_log(repo.dot, policy)  # one policy: each signature checked once
    labels: dict[str, list[Version]] = {}

    def versions(path: str) -> list[Version]:
        if path not in labels:
            labels[path] = light_versions(repo, path, log.tags_of(path))
        return labels[path]

    def wanted(m: TagMove) -> bool:
        return (only is None or m.path == only) and (alias is None or m.name == alias)

    def as_move(m: TagMove, refused: str | None = None) -> HistoryMove:
        verdict = policy.verdict(m)
        model = m.model or name_of(models, m.path)
        hash_to = None if m.kind == "delete" else m.hash
        known = versions(m.path)
        return HistoryMove(m.name, m.path, model, m.kind, hash_to, label_of(known, hash_to),
                           m.previous, label_of(known, m.previous), m.user, m.when, m.note,
                           verdict.status.value, verdict.signer, refused, m.id)

    history = [as_move(m) for m in log.moves if wanted(m)]
    history += [as_move(r.move, r.verdict.describe()) for r in log.refused if wanted(r.move)]
    history.sort(key=lambda mv: (mv.when, mv.id))
    by_id = {mv.id: mv for mv in history}
    current: list[Alias] = []
    for (path, name), state in sorted(log.states.items()):
        if state.target is None or not wanted(state.move):
            continue
        current.append(Alias(name, path, name_of(models, path), state.target,
                             label_of(versions(path), state.target) or state.target[:8],
                             by_id[state.move.id], label_of(versions(path), state.before)))
    refused = tuple(refusal_warnings([r for r in overriding(log) if wanted(r.move)]))
    return AliasReport(current, history, log.problems, refused)


def label_of(versions: list[Version], oid: str | None) -> str | None:
    """The label of ``oid`` among ``versions`` (its hash prefix if it is not there)."""
    if oid is None:
        return None
    found = next((v for v in versions if v.hash == oid), None)
    return found.label if found else oid[:8]
