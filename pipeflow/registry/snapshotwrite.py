"""Publish the registry snapshot on a remote (``push``): what serving reads.

The snapshot is built from this clone's tag log (read with the committed policy:
``config.local`` does not decide what everyone is served) and its index, and written
as one object (format 2: body and signature together) under a temporary name, then
renamed. Before writing, the remote's current snapshot is read: a push from a clone
that is behind must not rewind it. When it names an alias move this clone's tag log
does not hold, nothing is written (``git pull``, then push again); versions the
remote's snapshot lists and this clone's index does not know (run records not
fetched yet) are kept. A snapshot of format 1 carries no move ids: it is replaced.

A version is marked ``available`` only when the remote holds its object (and, for a
folder, every file of it) once the push is done: the aliased versions' objects are
pushed with the snapshot, so ``push TARGETS`` does not publish an alias that ``get``
cannot serve. A project that declares no model publishes no snapshot.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeflow.errors import StorageError
from pipeflow.project.project import Project
from pipeflow.registry import snapshot as snap
from pipeflow.registry.models import DeclaredModel, declared
from pipeflow.storage.remote import Remote, read_bounded

if TYPE_CHECKING:
    from pipeflow.lineage.tags import TagLog
    from pipeflow.lineage.versions import Version
    from pipeflow.signing.signatures import TrustedKeys


@dataclass(frozen=True)
class Published:
    """What :func:`publish` did."""

    models: int
    objects: int
    """Objects of aliased versions pushed with it (``push TARGETS`` had left them)."""
    signed_by: str | None
    unseen: tuple[str, ...] = ()
    """``MODEL@ALIAS`` whose move on the remote's snapshot this clone's tag log lacks:
    when any, the remote's snapshot was kept and nothing written."""
    kept_versions: int = 0
    """Versions only the remote's snapshot listed, kept in the new one."""

    @property
    def written(self) -> bool:
        return not self.unseen


def _model_json(model: DeclaredModel, versions: list[Version], aliases: dict[str, str],
                moves: dict[str, dict[str, str]],
                complete: Callable[[Version], bool]) -> dict[str, Any]:
    listed = [{"label": v.label, "hash": v.hash, "isdir": v.isdir, "size": v.size,
               "created": v.first_seen, "available": complete(v), "metrics": v.metrics}
              for v in versions]
    return {"path": model.path, "desc": model.desc, "stage": model.stage,
            "versions": listed, "aliases": dict(sorted(aliases.items())),
            "moves": dict(sorted(moves.items()))}


def _files(repo: Project, version: Version) -> set[str]:
    """The objects serving ``version`` takes: its own and, for a folder whose manifest
    the cache holds, its files'."""
    if version.isdir and repo.store.has(version.hash):
        return {version.hash, *(e.hash for e in repo.store.manifest(version.hash).entries)}
    return {version.hash}


def _who(repo: Project) -> str:
    import subprocess

    from pipeflow.git import gitcmd

    if repo.signer is not None:
        return repo.signer.name
    try:
        out = gitcmd.run(repo.root, "config", "user.email", timeout=30)
        email = out.stdout.decode("utf-8", "replace").strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        email = ""
    return f"{email or 'unknown'} (unverified)"


def _moves(log: TagLog, path: str) -> dict[str, dict[str, str]]:
    """Alias of ``path`` -> the id and ``when`` of the move that decided it, a delete
    too: a clone that has not seen the delete must not publish the alias again."""
    return {name: {"id": state.move.id, "when": state.move.when}
            for (at, name), state in log.states.items() if at == path}


def build(repo: Project, remote: Remote,
          log: TagLog) -> tuple[dict[str, Any], int, set[str]] | None:
    """The snapshot's body, read with ``log``; how many objects of aliased versions
    the remote lacked and were pushed first; the objects the remote holds now. None
    when the project declares no model."""
    from pipeflow.lineage.versions import list_versions
    from pipeflow.records.runrecord import iso
    from pipeflow.storage import exchange

    if not repo.spec_path.is_file():
        return None  # source data only (`pipeflow add`): no model to publish
    models = declared(repo)
    if not models:
        return None
    aliases = {name: log.tags_of(m.path) for name, m in models.items()}
    versions = {name: list_versions(repo, m.path, tags=aliases[name])
                for name, m in models.items()}
    wanted: set[str] = set()
    for name, listed in versions.items():
        for v in listed:
            if v.hash in aliases[name].values():
                wanted |= _files(repo, v)
    have = remote.objects()
    send = sorted(o for o in wanted - have if repo.store.has(o))
    exchange.push_objects(repo.store, remote, send)  # raises unless every one landed
    have |= set(send)

    def complete(v: Version) -> bool:
        # a folder whose manifest this cache lacks cannot be checked: not claimed
        return v.hash in have and (not v.isdir or repo.store.has(v.hash)) \
            and _files(repo, v) <= have

    body = {"kind": snap.KIND, "project": repo.root.name,
            "published": iso(time.time()), "by": _who(repo), "models": {
                name: _model_json(m, versions[name], aliases[name], _moves(log, m.path),
                                  complete)
                for name, m in models.items()}}
    return body, len(send), have


def _current(remote: Remote, trusted: TrustedKeys) -> tuple[snap.Snapshot | None, bool]:
    """The remote's snapshot as it is now (None: none, or one not to keep), and whether
    a key of ``trusted`` signed it. A remote that cannot be read fails the publishing:
    writing blind could rewind it."""
    where = f"{remote.name}: {snap.FOLDER}/{snap.NAME}"
    data = read_bounded(remote, snap.FOLDER, snap.NAME, snap.MAX_BYTES)
    if data is None or len(data) > snap.MAX_BYTES:
        return None, False  # none yet, or not one pipeflow wrote: replaced
    try:
        envelope = snap.decode(data, where)
        if envelope.format == snap.LEGACY:
            return None, False  # no move ids to compare: replaced
        signed = trusted.verify(envelope.signed, envelope.signature).trusted
        return snap.parse_body(envelope.body, where), signed
    except StorageError:
        return None, False  # not one this pipeflow reads (or newer): replaced


def _unseen(there: snap.Snapshot, log: TagLog) -> tuple[str, ...]:
    """``MODEL@ALIAS`` whose deciding move on the remote this clone's log lacks."""
    held = {m.id for m in log.moves} | {r.move.id for r in log.refused}
    return tuple(sorted(f"{model.name}@{alias}" for model in there.models.values()
                        for alias, move in model.moves.items() if move.id not in held))


def _merge(body: dict[str, Any], there: snap.Snapshot, have: set[str]) -> int:
    """Add to ``body`` the versions ``there`` lists that it lacks; how many."""
    kept = 0
    for name, model in body["models"].items():
        old = there.models.get(name)
        if old is None or old.path != model["path"]:
            continue
        known = {v["hash"] for v in model["versions"]}
        for v in old.versions:
            if v.hash not in known:
                model["versions"].append({
                    "label": v.label, "hash": v.hash, "isdir": v.isdir, "size": v.size,
                    "created": v.created, "available": v.available and v.hash in have,
                    "metrics": v.metrics})
                kept += 1
    return kept


def publish(repo: Project, remote: Remote) -> Published | None:
    """Write the snapshot (signed, when this user has a key) on ``remote``; None when
    the project declares no model. When the remote's snapshot names alias moves this
    clone has not seen, it is kept (``Published.unseen``)."""
    from pipeflow.lineage import tags
    from pipeflow.lineage.aliasstate import AliasPolicy
    from pipeflow.records.runrecord import canonical
    from pipeflow.signing.signatures import sign

    log = tags.read_log(repo.dot, AliasPolicy.committed(repo))  # the project's, not a machine's
    built = build(repo, remote, log)
    if built is None:
        return None
    body, pushed, have = built
    signer = repo.signer
    policy = AliasPolicy.committed(repo)
    there, vouched = _current(remote, policy.trusted)
    unseen = _unseen(there, log) if there is not None else ()
    if unseen:
        return Published(len(body["models"]), pushed, None, unseen)
    # versions only the remote's snapshot lists are kept, never laundered: a signed
    # snapshot keeps them only from one a trusted key signed (anyone who can write to
    # the remote could have planted them in an unsigned one)
    keep = there is not None and (signer is None or vouched)
    kept = _merge(body, there, have) if keep and there is not None else 0
    sig = sign(signer, canonical(body)).to_json() if signer is not None else None
    data = canonical({"format": snap.FORMAT, "kind": snap.KIND, "body": body,
                      "sig": sig}) + b"\n"
    _upload(remote, snap.NAME, data)
    # a format-1 signature left beside it would be read by an older pipeflow as this
    # snapshot's, tampered: the signature lives inside the snapshot now
    remote.remove(snap.FOLDER, snap.SIG_NAME)
    return Published(len(body["models"]), pushed, signer.name if signer else None,
                     kept_versions=kept)


def _upload(remote: Remote, name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="pipeflow-snapshot-") as folder:
        local = Path(folder) / name
        local.write_bytes(data)
        remote.upload(local, snap.FOLDER, name)
