"""Signatures beside what they sign, and the keys a project trusts.

A signature is ``{"key": "ed25519:...", "name": "alice", "value": "<base64>"}``: the
public key that made it, the name its holder gave, and the ed25519 signature of the
signed bytes (a run record file's bytes; a log entry's canonical body without ``id``
and ``sig``). It is stored beside what it signs, so content addresses do not change
and unsigned history stays valid (DESIGN "Signatures beside, not inside").

Whose signature counts is the project's decision: ``keys.trusted`` in the committed
config maps a name to a public key (``pipeflow keys trust NAME KEY``). A signature
by a key in that list is *trusted* and names that list's name for its signer (the
name inside the signature is only a claim); one by another key is *untrusted*; one
that does not verify is *invalid*.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pipeflow.signing.keys import Signer, decode_public


@dataclass(frozen=True)
class Signature:
    key: str
    """The public key that made it (``ed25519:...``)."""
    name: str
    """The name its holder gave (a claim until the key is trusted)."""
    value: str
    """base64 of the 64-byte ed25519 signature."""

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "name": self.name, "value": self.value}

    @classmethod
    def from_json(cls, data: object) -> Signature | None:
        """The signature ``data`` holds, or None when it is not one (never raises)."""
        if not isinstance(data, dict):
            return None
        key, name, value = data.get("key"), data.get("name"), data.get("value")
        if not all(isinstance(v, str) and 0 < len(v) <= 200 for v in (key, name, value)):
            return None
        return cls(str(key), str(name), str(value))


def sign(signer: Signer, data: bytes) -> Signature:
    return Signature(signer.public, signer.name, signer.sign(data))


class Status(StrEnum):
    TRUSTED = "trusted"
    """Verifies, by a key the project trusts."""
    UNTRUSTED = "untrusted"
    """Verifies, by a key the project does not list."""
    INVALID = "invalid"
    """Does not verify: the signed bytes or the signature were changed."""
    UNSIGNED = "unsigned"


@dataclass(frozen=True)
class Verdict:
    status: Status
    signer: str | None = None
    """The trusted name (trusted), or the name the signature claims (untrusted)."""
    reason: str = ""

    @property
    def trusted(self) -> bool:
        return self.status is Status.TRUSTED

    def describe(self) -> str:
        """``signed by alice``, ``signed by an untrusted key (claims 'mallory')``..."""
        if self.status is Status.TRUSTED:
            return f"signed by {self.signer}"
        if self.status is Status.UNTRUSTED:
            return f"signed by an untrusted key (claims {self.signer!r})"
        if self.status is Status.INVALID:
            return f"bad signature ({self.reason})"
        return "unsigned"


@dataclass(frozen=True)
class TrustedKeys:
    """The keys a project trusts: name -> public key text."""

    keys: Mapping[str, str]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, where: str) -> TrustedKeys:
        """``keys.trusted`` of a config; ConfigError naming the entry that does not parse."""
        from pipeflow.errors import ConfigError
        from pipeflow.names import name_problem

        keys: dict[str, str] = {}
        for name, text in (data or {}).items():
            problem = name_problem(str(name))
            if problem is not None:
                raise ConfigError(f"{where}: key name {str(name)!r} {problem}")
            decode_public(text, f"{where}.{name}")
            keys[str(name)] = str(text)
        return cls(keys)

    def name_of(self, public: str) -> str | None:
        for name, key in self.keys.items():
            if key == public:
                return name
        return None

    def verify(self, data: bytes, signature: Signature | None) -> Verdict:
        """Whether ``signature`` signs ``data``, and whose it is."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        from pipeflow.errors import ConfigError

        if signature is None:
            return Verdict(Status.UNSIGNED)
        try:
            raw = decode_public(signature.key, "signature")
            value = base64.b64decode(signature.value.encode("ascii"), validate=True)
            Ed25519PublicKey.from_public_bytes(raw).verify(value, data)
        except ConfigError:
            return Verdict(Status.INVALID, signature.name, "its key is not an ed25519 key")
        except (binascii.Error, UnicodeEncodeError, ValueError):
            return Verdict(Status.INVALID, signature.name, "its value is not base64")
        except InvalidSignature:
            return Verdict(Status.INVALID, signature.name,
                           "it does not verify: what it signs was changed after signing")
        name = self.name_of(signature.key)
        if name is None:
            return Verdict(Status.UNTRUSTED, signature.name, "its key is not in keys.trusted")
        return Verdict(Status.TRUSTED, name)
