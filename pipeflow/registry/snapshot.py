"""The registry snapshot ``push`` publishes on a remote: models, versions, aliases.

``<remote>/registry/snapshot.json`` lets a serving process go from ``MODEL@ALIAS`` or
``MODEL@vN`` to an object id with no clone (docs/registry.md, "Serving"). Format 2 is
one object, ``{"format": 2, "kind": ..., "body": {...}, "sig": {...} | null}``, the
signature over the canonical bytes of ``body``: one upload replaces both, so two
pushes at once cannot leave one's snapshot beside the other's signature. Format 1
(the body at the top, its signature in ``snapshot.json.sig``) is still read.
:mod:`pipeflow.registry.snapshotwrite` writes it; this module reads it.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pipeflow.errors import StorageError, UsageError
from pipeflow.files import safepath
from pipeflow.signing.signatures import Signature

FORMAT = 2
LEGACY = 1
"""The format with the body at the top and a ``.sig`` file beside it."""
KIND = "pipeflow-registry-snapshot"
FOLDER = "registry"
NAME = "snapshot.json"
SIG_NAME = "snapshot.json.sig"
MAX_BYTES = 16 << 20
"""A snapshot larger than this is not one pipeflow wrote (thousands of versions fit)."""
MAX_SIG_BYTES = 4096
_HEX = re.compile(r"[0-9a-f]{4,32}")


@dataclass(frozen=True)
class MoveRef:
    """The tag-log move that decided an alias (its ``id`` and ``when``): a push from a
    clone whose log lacks it would publish an older state (docs/registry.md)."""

    id: str
    when: str


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
    moves: dict[str, MoveRef] = field(default_factory=dict)
    """Alias -> the move that decided it (empty in format 1)."""

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
class Envelope:
    """A snapshot file taken apart: its body, the bytes a signature covers, and the
    signature it carries (format 2; format 1 keeps it in a separate file)."""

    format: int
    body: dict[str, Any]
    signed: bytes
    signature: Signature | None


def _bad(where: str, what: str) -> StorageError:
    return StorageError(f"{where}: {what}: not a registry snapshot this pipeflow reads",
                        hint="publish it again with `pipeflow push` from a clone of the "
                             "project")


def decode(data: bytes, where: str) -> Envelope:
    """The envelope ``data`` holds; a StorageError naming ``where`` when it is none."""
    from pipeflow.records.runrecord import canonical

    try:
        top = json.loads(data)
    except (ValueError, RecursionError):
        raise _bad(where, "not JSON") from None
    if not isinstance(top, dict) or top.get("kind") != KIND:
        raise _bad(where, f"no \"kind\": \"{KIND}\"")
    fmt = top.get("format")
    if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > FORMAT:
        raise StorageError(f"{where}: format {fmt} not supported (a newer pipeflow wrote "
                           f"it; this one reads formats {LEGACY} and {FORMAT})",
                           hint="upgrade pipeflow: `pip install -U pipeflow`")
    if fmt == LEGACY:
        return Envelope(LEGACY, top, data, None)
    if fmt != FORMAT:
        raise _bad(where, f"format {str(fmt)[:20]!r}, this pipeflow reads {LEGACY} and "
                          f"{FORMAT}")
    body, sig = top.get("body"), top.get("sig")
    if not isinstance(body, dict):
        raise _bad(where, "no 'body' mapping")
    signature = Signature.from_json(sig) if isinstance(sig, dict) else None
    if sig is not None and signature is None:
        raise StorageError(f"{where}: bad signature (its 'sig' does not parse)",
                           hint="publish it again with `pipeflow push`")
    return Envelope(FORMAT, body, canonical(body), signature)


def parse(data: bytes, where: str) -> Snapshot:
    """The snapshot ``data`` holds; a StorageError naming ``where`` when it is not one."""
    return parse_body(decode(data, where).body, where)


def parse_body(body: dict[str, Any], where: str) -> Snapshot:
    """The snapshot an envelope's body describes."""
    models = body.get("models")
    if not isinstance(models, dict):
        raise _bad(where, "no 'models' mapping")
    out = {}
    for name, model in models.items():
        try:
            out[str(name)] = _model(str(name), model)
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise _bad(where, f"model {str(name)[:60]!r} is malformed ({exc})") from None
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
    moves = {str(a): MoveRef(str(m["id"]), str(m["when"]))
             for a, m in (body.get("moves") or {}).items()}
    return SnapshotModel(name, body["path"], _opt(body.get("desc")), versions, aliases,
                         moves)


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

