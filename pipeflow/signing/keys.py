"""Signing keys: a user's private key (outside any repository) and public key texts.

A private key lives in the user's config directory, never in a project:
``$PIPEFLOW_CONFIG_DIR`` or ``$XDG_CONFIG_HOME/pipeflow`` or ``~/.config/pipeflow``,
file ``signing-key.json`` (mode 0600), or the file ``$PIPEFLOW_SIGNING_KEY`` names (a CI
secret written to disk). Its text is a JSON object ``{"name": ..., "private":
"ed25519:<base64 of the 32-byte seed>"}``; ``name`` is who the signatures say signed.

A public key is written ``ed25519:<base64 of 32 bytes>`` wherever it travels (the
committed config's ``keys.trusted``, a signature).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeflow.errors import ConfigError, Location, UsageError
from pipeflow.names import name_problem

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PREFIX = "ed25519:"
KEY_FILE = "signing-key.json"
ENV_KEY = "PIPEFLOW_SIGNING_KEY"
ENV_DIR = "PIPEFLOW_CONFIG_DIR"
_MAX_KEY_FILE = 4096


def config_dir() -> Path:
    """The user's pipeflow config directory (not a project's)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "pipeflow"


def key_path() -> Path:
    """Where this user's private key is (or would be written)."""
    named = os.environ.get(ENV_KEY)
    return Path(named) if named else config_dir() / KEY_FILE


def decode_public(text: str, where: str) -> bytes:
    """The 32 bytes of a public key text; ConfigError naming ``where`` when it is not one."""
    hint = "a public key reads 'ed25519:' and 44 base64 characters (`pipeflow keys list` " \
           "prints yours)"
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise ConfigError(f"{where}: {str(text)[:60]!r} is not an ed25519 public key",
                          hint=hint)
    raw = _b64(text[len(PREFIX):])
    if raw is None or len(raw) != 32:
        raise ConfigError(f"{where}: the public key {text[:60]!r} does not decode to 32 "
                          "bytes", hint=hint)
    return raw


def encode_public(raw: bytes) -> str:
    return PREFIX + base64.b64encode(raw).decode("ascii")


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


@dataclass(frozen=True)
class Signer:
    """A loaded private key: signs bytes in ``name``'s name."""

    name: str
    private: Ed25519PrivateKey
    path: Path

    @property
    def public(self) -> str:
        from cryptography.hazmat.primitives import serialization

        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw,
                                                     serialization.PublicFormat.Raw)
        return encode_public(raw)

    def sign(self, data: bytes) -> str:
        """The base64 ed25519 signature of ``data``."""
        return base64.b64encode(self.private.sign(data)).decode("ascii")


def _key_error(path: Path, what: str) -> ConfigError:
    return ConfigError(
        f"this signing key file: {what}", Location(str(path)),
        hint="make a new one with `pipeflow keys generate --force` (then have it trusted "
             f"again), or point {ENV_KEY} at a good key file")


def load_signer(path: Path | None = None) -> Signer | None:
    """This user's key, or None when there is none. A key file that exists but is
    damaged (not JSON, a seed of the wrong size, no name) is a ConfigError: signing
    silently off would be worse."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = path or key_path()
    try:
        if path.stat().st_size > _MAX_KEY_FILE:
            raise _key_error(path, f"larger than {_MAX_KEY_FILE} bytes: not a key file")
        data = path.read_bytes()
    except FileNotFoundError:
        if os.environ.get(ENV_KEY):
            raise _key_error(path, f"no such file (named by {ENV_KEY})") from None
        return None
    except OSError as exc:
        raise _key_error(path, f"cannot read it: {exc.strerror}") from None
    try:
        body = json.loads(data)
    except ValueError:
        raise _key_error(path, "not a JSON key file") from None
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) \
            or not isinstance(body.get("private"), str):
        raise _key_error(path, "it needs 'name' and 'private' strings")
    private = body["private"]
    seed = _b64(private[len(PREFIX):]) if private.startswith(PREFIX) else None
    if seed is None or len(seed) != 32:
        raise _key_error(path, "its private key is not 32 bytes of base64 after 'ed25519:'")
    return Signer(body["name"], Ed25519PrivateKey.from_private_bytes(seed), path)


def generate(name: str, *, force: bool = False, path: Path | None = None) -> Signer:
    """Make a new key for ``name`` and write it (mode 0600). Refuses to replace an
    existing key unless ``force``: signatures made with it would lose their signer."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from pipeflow.files import atomicfile

    problem = name_problem(name)
    if problem is not None:
        raise UsageError(f"key name {name!r} {problem}",
                         hint="e.g. `pipeflow keys generate --name alice`")
    path = path or key_path()
    if path.exists() and not force:
        raise UsageError(f"a signing key already exists at {path}",
                         hint="`pipeflow keys list` shows it; `--force` replaces it (its "
                              "signatures then name a key nobody holds)")
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(serialization.Encoding.Raw,
                                 serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    text = json.dumps({"name": name, "private": PREFIX + base64.b64encode(seed).decode()})
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomicfile.write_bytes(path, (text + "\n").encode(), durable=True, mode=0o600)
    return Signer(name, private, path)
