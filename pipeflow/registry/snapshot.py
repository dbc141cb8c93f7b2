"""The registry snapshot ``push`` publishes on a remote: models, versions, aliases.

``<remote>/registry/snapshot.json`` lets a serving process go from ``MODEL@ALIAS`` or
``MODEL@vN`` to an object id with no clone (docs/registry.md, "Serving"). It is written
under a temporary name and renamed (object stores publish an upload whole), and with
this user's key set, ``registry/snapshot.json.sig`` beside it signs its exact bytes.

A version is marked ``available`` only when the remote holds its object (and, for a
folder, every file of it) once the push is done: the aliased versions' objects are
pushed with the snapshot, so ``push TARGETS`` does not publish an alias that ``get``
cannot serve. A project that declares no model publishes no snapshot.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeflow.errors import StorageError, UsageError
from pipeflow.files import safepath
from pipeflow.project.project import Project
from pipeflow.registry.models import DeclaredModel, declared
from pipeflow.signing.signatures import Signature
from pipeflow.storage.remote import Remote

if TYPE_CHECKING:
    from pipeflow.lineage.versions import Version

FORMAT = 1
KIND = "pipeflow-registry-snapshot"
FOLDER = "registry"
NAME = "snapshot.json"
SIG_NAME = "snapshot.json.sig"
MAX_BYTES = 16 << 20
"""A snapshot larger than this is not one pipeflow wrote (thousands of versions fit)."""
MAX_SIG_BYTES = 4096
_HEX = re.compile(r"[0-9a-f]{4,32}")


@dataclass(frozen=True)
class SnapshotVersion:
    label: str
    """``vN`` (or ``local:``/``side:`` and a hash prefix, as ``versions`` shows it)."""
    hash: str
    isdir: bool = False
    size: int | None = None
    created: str | None = None
    """When its first run made it."""
    available: bool = True
    """Whether the remote held its object when the snapshot was published."""
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SnapshotModel:
    name: str
    path: str
    desc: str | None
    versions: tuple[SnapshotVersion, ...]
    aliases: dict[str, str]
    """Alias -> hash."""

    def resolve(self, version: str) -> tuple[SnapshotVersion, str | None]:
        """The version ``version`` (vN, hash prefix or alias) names, and the alias if it
        was one; a UsageError listing what there is when it names none."""
        by_hash = {v.hash: v for v in self.versions}
        if re.fullmatch(r"v\d+", version):
            found = [v for v in self.versions if v.label == version]
        elif _HEX.fullmatch(version):
            found = [v for v in self.versions if v.hash.startswith(version)]
            found += [SnapshotVersion(version[:8], h) for h in set(self.aliases.values())
                      if h.startswith(version) and h not in by_hash]
        elif version in self.aliases:
            oid = self.aliases[version]
            return by_hash.get(oid, SnapshotVersion(oid[:8], oid)), version
        else:
            found = []
        if len(found) == 1:
            return found[0], None
        if len(found) > 1:
            raise UsageError(f"'{version}' matches several versions of model '{self.name}'",
                             hint="give more hex digits")
        close = [a for a in sorted(self.aliases) if a.startswith(version)][:1] or (
            difflib.get_close_matches(version, list(self.aliases), n=1))
        aliases = ", ".join(sorted(self.aliases)) or "none"
        labels = ", ".join(f"{v.label} ({v.hash[:8]})" for v in self.versions[-12:]) or "none"
        raise UsageError(f"model '{self.name}' has no version or alias '{version}'",
                         hint=(f"did you mean '{close[0]}'? " if close else "")
                         + f"aliases: {aliases}; versions: {labels}")


@dataclass(frozen=True)
class Snapshot:
    project: str | None
    published: str | None
    by: str | None
    models: dict[str, SnapshotModel]

    def model(self, name: str) -> SnapshotModel:
        """The model ``name`` (or the model whose path is ``name``); did-you-mean."""
        found = self.models.get(name) or next(
            (m for m in self.models.values() if m.path == name), None)
        if found is not None:
            return found
        close = difflib.get_close_matches(name, list(self.models), n=1)
        listed = ", ".join(sorted(self.models)) or "none"
        raise UsageError(f"the registry has no model '{name}'",
                         hint=(f"did you mean '{close[0]}'? " if close else "")
                         + f"models there: {listed}")


@dataclass(frozen=True)
class Published:
    """What :func:`publish` did."""

    models: int
    objects: int
    """Objects of aliased versions pushed with it (``push TARGETS`` had left them)."""
    signed_by: str | None


def _model_json(model: DeclaredModel, versions: list[Version], aliases: dict[str, str],
                complete: Callable[[Version], bool]) -> dict[str, Any]:
    listed = [{"label": v.label, "hash": v.hash, "isdir": v.isdir, "size": v.size,
               "created": v.first_seen, "available": complete(v), "metrics": v.metrics}
              for v in versions]
    return {"path": model.path, "desc": model.desc, "stage": model.stage,
            "versions": listed, "aliases": dict(sorted(aliases.items()))}


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


def build(repo: Project, remote: Remote) -> tuple[bytes, int] | None:
    """The snapshot's bytes (canonical JSON) and how many objects of aliased versions
    the remote lacked and were pushed first; None when the project declares no model."""
    from pipeflow.lineage import tags
    from pipeflow.lineage.versions import list_versions
    from pipeflow.records.runrecord import canonical, iso
    from pipeflow.storage import exchange

    if not repo.spec_path.is_file():
        return None  # source data only (`pipeflow add`): no model to publish
    models = declared(repo)
    if not models:
        return None
    log = tags.read(repo)
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

    body = {"format": FORMAT, "kind": KIND, "project": repo.root.name,
            "published": iso(time.time()), "by": _who(repo),
            "models": {name: _model_json(m, versions[name], aliases[name], complete)
                       for name, m in models.items()}}
    return canonical(body) + b"\n", len(send)


def publish(repo: Project, remote: Remote) -> Published | None:
    """Write the snapshot (and its signature, when this user has a key) on ``remote``;
    None when the project declares no model (nothing is written)."""
    from pipeflow.signing.signatures import sign

    built = build(repo, remote)
    if built is None:
        return None
    data, pushed = built
    signer = repo.signer
    if signer is not None:
        sig = {**sign(signer, data).to_json(), "sha256": hashlib.sha256(data).hexdigest()}
        _upload(remote, SIG_NAME, json.dumps(sig, sort_keys=True).encode() + b"\n")
    _upload(remote, NAME, data)
    if signer is None:
        # a signature of an earlier snapshot would read as this one's, tampered
        remote.remove(FOLDER, SIG_NAME)
    count = len(json.loads(data)["models"])
    return Published(count, pushed, signer.name if signer else None)


def _upload(remote: Remote, name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="pipeflow-snapshot-") as folder:
        local = Path(folder) / name
        local.write_bytes(data)
        remote.upload(local, FOLDER, name)


def parse(data: bytes, where: str) -> Snapshot:
    """The snapshot ``data`` holds; a StorageError naming ``where`` when it is not one."""
    def bad(what: str) -> StorageError:
        return StorageError(f"{where}: {what}: not a registry snapshot this pipeflow reads",
                            hint="publish it again with `pipeflow push` from a clone of the "
                                 "project")
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise bad("not JSON") from None
    if not isinstance(body, dict) or body.get("kind") != KIND:
        raise bad(f"no \"kind\": \"{KIND}\"")
    if body.get("format") != FORMAT:
        raise bad(f"format {str(body.get('format'))[:20]!r}, this pipeflow reads {FORMAT}")
    models = body.get("models")
    if not isinstance(models, dict):
        raise bad("no 'models' mapping")
    out = {}
    for name, model in models.items():
        try:
            out[str(name)] = _model(str(name), model)
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise bad(f"model {str(name)[:60]!r} is malformed ({exc})") from None
    return Snapshot(_opt(body.get("project")), _opt(body.get("published")),
                    _opt(body.get("by")), out)


def _opt(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _model(name: str, body: dict[str, Any]) -> SnapshotModel:
    if not isinstance(body["path"], str) or not isinstance(body["aliases"], dict):
        raise ValueError("'path' or 'aliases' has the wrong type")
    unsafe = safepath.problem(body["path"])  # get names its output after it
    if unsafe is not None:
        raise ValueError(f"its path {body['path'][:60]!r} {unsafe}")
    aliases = {str(a): _oid(h) for a, h in body["aliases"].items()}
    versions = tuple(SnapshotVersion(str(v["label"]), _oid(v["hash"]), bool(v.get("isdir")),
                                     v.get("size") if isinstance(v.get("size"), int) else None,
                                     _opt(v.get("created")), v.get("available") is True,
                                     dict(v.get("metrics") or {}))
                     for v in body["versions"])
    return SnapshotModel(name, body["path"], _opt(body.get("desc")), versions, aliases)


def _oid(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{32}", value):
        raise ValueError(f"{str(value)[:40]!r} is not an object id")
    return value


def parse_signature(data: bytes) -> tuple[Signature | None, str | None]:
    """The signature a ``.sig`` file holds and the SHA-256 of the snapshot it claims
    to sign (None, None when it does not parse: read as a bad signature)."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(body, dict):
        return None, None
    digest = body.get("sha256")
    return Signature.from_json(body), digest if isinstance(digest, str) else None

