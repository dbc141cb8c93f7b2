"""Aliases: ``promote``, ``rollback``, ``tag``, ``tag delete``, ``aliases``.

An alias is a tag: a team-shared name for one version of a path, moved by entries of
``.pipeflow/tags.jsonl`` (:mod:`pipeflow.lineage.tags`). ``pipeflow tag PATH@V NAME``
and ``pipeflow promote MODEL@V NAME`` are the same move; a model name is only a way
to name its path (:mod:`pipeflow.registry.models`). Any number of aliases may name
versions of one model at once (``production-eu``, ``production-us``, ``canary``).

Every move is signed when this user has a key (``pipeflow keys generate``); an alias
matching ``registry.protected`` moves only with a signature by a key in
``keys.trusted``, refused here before anything is written (and ignored on read when
it arrives otherwise: :mod:`pipeflow.lineage.aliasstate`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

from pipeflow.errors import CheckFailed, UsageError
from pipeflow.lineage import tags as tagfile
from pipeflow.lineage.aliasstate import AliasPolicy, TagState
from pipeflow.lineage.tags import LogProblem, TagLog, TagMove
from pipeflow.lineage.versions import Version, resolve
from pipeflow.ops.lineage import light_versions
from pipeflow.project.project import Project
from pipeflow.registry.aliaslist import label_of
from pipeflow.registry.models import DeclaredModel, declared, name_of, resolve_target


@dataclass(frozen=True)
class AliasMove:
    """What ``promote``, ``tag``, ``rollback`` or ``tag delete`` did."""

    alias: str
    path: str
    model: str | None
    kind: str
    """``move``, ``rollback``, ``delete``, or ``none`` (the alias named that version
    already: nothing was written)."""
    version: Version | None
    """The version the alias names now (None after a delete)."""
    previous: str | None
    """The hash it named before (None if it is new)."""
    previous_label: str | None
    signer: str | None
    """The signing key's name when the move was signed."""
    signature: str = "unsigned"
    """``trusted`` (by a key in keys.trusted), ``untrusted`` or ``unsigned``."""
    problems: tuple[LogProblem, ...] = ()


def user_of(repo: Project) -> str:
    """Who a move is by: the signing key's name, else git's user.email."""
    from pipeflow.project.provenance import provenance

    return provenance(repo).user


def _check_allowed(repo: Project, policy: AliasPolicy, alias: str) -> None:
    """Refuse, before anything is written, a move of a protected alias this user
    cannot sign with a trusted key."""
    if not policy.protects(alias):
        return
    signer = repo.signer
    why = ("you have no signing key" if signer is None else
           f"your key '{signer.name}' is not in keys.trusted"
           if policy.trusted.name_of(signer.public) is None else None)
    if why is None:
        return
    patterns = ", ".join(policy.protected)
    hint = ("`pipeflow keys generate` makes a key; a maintainer trusts it with `pipeflow "
            "keys trust NAME PUBLIC_KEY` and commits .pipeflow/config (docs/registry.md)"
            if signer is None else
            f"ask a maintainer to run `pipeflow keys trust {signer.name} {signer.public}` "
            "and commit .pipeflow/config (docs/registry.md)")
    raise UsageError(
        f"alias '{alias}' is protected (registry.protected: {patterns}): moving it needs "
        f"a signature by a trusted key, and {why}", hint=hint)


def _write(repo: Project, path: str, alias: str, oid: str | None, *, kind: str,
           note: str | None, model: str | None, policy: AliasPolicy,
           undoes: str | None = None) -> TagMove:
    from pipeflow.git.gitattributes import ensure_attributes

    ensure_attributes(repo.root)
    return tagfile.move(repo.dot, repo.records.chain, path, alias, oid, user_of(repo),
                        kind=kind, note=note, model=model, undoes=undoes, signer=repo.signer,
                        policy=policy)


def _confirm(repo: Project, path: str, alias: str, expected: str | None) -> None:
    """The move was written; make sure it decides (a damaged line could outrank it)."""
    now = tagfile.read(repo).tags_of(path).get(alias)
    if now != expected:
        msg = (f"alias '{alias}' of {path} still names {str(now)[:8]} after the move to "
               f"{str(expected)[:8]}: a line of .pipeflow/tags.jsonl outranks every new move")
        raise CheckFailed(msg, hint="run `pipeflow verify` to see the damaged lines, "
                                    "`pipeflow verify --repair` to set them aside")


def promote(repo: Project, target: str, alias: str, *, note: str | None = None,
            wait: float = 0.0) -> AliasMove:
    """Point ``alias`` at ``MODEL_OR_PATH@VERSION`` (``pipeflow promote`` and ``tag``)."""
    tagfile.check_name(alias)
    models = declared(repo)
    where = resolve_target(repo, target, models)
    if where.version is None:
        raise UsageError(f"give the version to promote as {target}@VERSION",
                         hint="VERSION: vN, a hash prefix or an alias (`pipeflow versions "
                              f"{target}` lists them)")
    policy = AliasPolicy.of(repo)
    _check_allowed(repo, policy, alias)
    model = where.model.name if where.model else None
    with repo.lock(wait=wait):
        log = tagfile.read(repo)
        versions = light_versions(repo, where.path, log.tags_of(where.path))
        chosen = resolve(repo, where.path, where.version, versions)
        if note is None and log.tags_of(where.path).get(alias) == chosen.hash:
            # already there: a move that changes nothing would only lengthen the history
            return AliasMove(alias, where.path, model, "none", chosen, chosen.hash,
                             chosen.label, *_signed(repo, policy), log.problems)
        move = _write(repo, where.path, alias, chosen.hash, kind="move", note=note,
                      model=model, policy=policy)
        _confirm(repo, where.path, alias, chosen.hash)
    chosen = replace(chosen, tags=tuple(sorted({*chosen.tags, alias})))
    return AliasMove(alias, where.path, model, "move", chosen, move.previous,
                     label_of(versions, move.previous), *_signed(repo, policy), log.problems)


def _signed(repo: Project, policy: AliasPolicy) -> tuple[str | None, str]:
    """(the key's name, ``trusted``/``untrusted``/``unsigned``) of this user's moves."""
    signer = repo.signer
    if signer is None:
        return None, "unsigned"
    trusted = policy.trusted.name_of(signer.public)
    return (trusted, "trusted") if trusted is not None else (signer.name, "untrusted")


def _pick(repo: Project, log: TagLog, alias: str, model_or_path: str | None,
          models: dict[str, DeclaredModel]) -> tuple[str, TagState]:
    """The (path, state) of ``alias``: of ``model_or_path``, or of the one model or
    path that has it."""
    states = {key: s for key, s in log.states.items() if key[1] == alias}
    if model_or_path is not None:
        path = resolve_target(repo, model_or_path, models).path
        state = states.get((path, alias))
        if state is None:
            names = sorted({n for (p, n), s in log.states.items() if p == path and s.target})
            close = difflib.get_close_matches(alias, names, n=1)
            hint = (f"did you mean '{close[0]}'?" if close else
                    f"its aliases: {', '.join(names)}" if names else "it has no aliases yet")
            raise UsageError(f"'{model_or_path}' has no alias '{alias}'", hint=hint)
        return path, state
    live = {key: s for key, s in states.items() if s.target is not None} or states
    if len(live) == 1:
        (path, _), state = next(iter(live.items()))
        return path, state
    if not live:
        names = sorted({n for (_p, n), s in log.states.items() if s.target})
        close = difflib.get_close_matches(alias, names, n=1)
        hint = (f"did you mean '{close[0]}'?" if close else
                f"aliases: {', '.join(names)}" if names else
                "no alias exists yet: `pipeflow promote MODEL@VERSION ALIAS`")
        raise UsageError(f"no model has an alias '{alias}'", hint=hint)
    owners = ", ".join(sorted(_owner(p, models) for p, _ in live))
    raise UsageError(f"alias '{alias}' exists for several models: {owners}",
                     hint=f"name one: `pipeflow rollback {alias} MODEL`")


def _owner(path: str, models: dict[str, DeclaredModel]) -> str:
    return name_of(models, path) or path


def rollback(repo: Project, alias: str, model_or_path: str | None = None, *,
             note: str | None = None, wait: float = 0.0) -> AliasMove:
    """Move ``alias`` back to the version it named before its last move; recorded as
    a move of its own (kind ``rollback``), so it stays in the history. ``MODEL@ALIAS``
    names both at once."""
    if "@" in alias and model_or_path is None:
        model_or_path, _, alias = alias.rpartition("@")
    models = declared(repo)
    policy = AliasPolicy.of(repo)
    _check_allowed(repo, policy, alias)
    with repo.lock(wait=wait):
        log = tagfile.read(repo)
        path, state = _pick(repo, log, alias, model_or_path, models)
        versions = light_versions(repo, path, log.tags_of(path))
        if state.before is None:
            what = "was deleted" if state.target is None else \
                f"names {label_of(versions, state.target)}, and no move before it is left"
            raise UsageError(f"alias '{alias}' of {_owner(path, models)} {what}: there is no "
                             "earlier target to roll back to (each rollback undoes one move)",
                             hint=f"`pipeflow aliases {_owner(path, models)} --history` "
                                  "shows its moves; `pipeflow promote` moves it anywhere")
        model = name_of(models, path)
        move = _write(repo, path, alias, state.before, kind="rollback", note=note,
                      model=model, policy=policy,
                      undoes=state.top_move)
        _confirm(repo, path, alias, state.before)
    chosen = next((replace(v, tags=tuple(sorted({*v.tags, alias}))) for v in versions
                   if v.hash == state.before), None)
    return AliasMove(alias, path, model, "rollback", chosen,
                     move.previous, label_of(versions, move.previous), *_signed(repo, policy),
                     log.problems)


def delete(repo: Project, model_or_path: str, alias: str, *,
           wait: float = 0.0) -> AliasMove:
    """Remove ``alias`` (``pipeflow tag delete``): a move to nothing, kept in the
    history; a later ``promote`` brings it back."""
    models = declared(repo)
    policy = AliasPolicy.of(repo)
    _check_allowed(repo, policy, alias)
    with repo.lock(wait=wait):
        log = tagfile.read(repo)
        path, state = _pick(repo, log, alias, model_or_path, models)
        if state.target is None:
            raise UsageError(f"alias '{alias}' of {_owner(path, models)} is already deleted")
        versions = light_versions(repo, path, log.tags_of(path))
        model = name_of(models, path)
        move = _write(repo, path, alias, None, kind="delete", note=None,
                      model=model, policy=policy)
        _confirm(repo, path, alias, None)
    return AliasMove(alias, path, model, "delete", None,
                     move.previous, label_of(versions, move.previous), *_signed(repo, policy),
                     log.problems)
