"""``pipeflow keys generate|trust|untrust|list``: this user's signing key and the keys
a project trusts.

The private key lives in the user's config directory (pipeflow.signing.keys), never
in a project. Whom a project trusts is ``keys.trusted`` in the committed
``.pipeflow/config``: a change to it is a code change, reviewed like one
(docs/registry.md, "The trust model"). Edits go through the config lock as ``remote add`` does.
"""

from __future__ import annotations

import getpass
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeflow.errors import ConfigError, UsageError
from pipeflow.names import name_problem
from pipeflow.ops.remotes import edit_config
from pipeflow.project.project import Project
from pipeflow.signing.keys import Signer, decode_public, generate, key_path, load_signer


@dataclass(frozen=True)
class TrustedKey:
    name: str
    public: str
    yours: bool
    """It is this user's own key."""


@dataclass(frozen=True)
class KeyList:
    mine: Signer | None
    path: Path
    """Where this user's key is (or would be)."""
    trusted: tuple[TrustedKey, ...]

    def to_json(self) -> dict[str, Any]:
        mine = None if self.mine is None else {
            "name": self.mine.name, "public": self.mine.public, "file": str(self.mine.path)}
        return {"schema": 1, "mine": mine, "file": str(self.path),
                "trusted": [{"name": k.name, "public": k.public, "yours": k.yours}
                            for k in self.trusted]}


@dataclass(frozen=True)
class TrustChange:
    name: str
    public: str
    previous: str | None
    """The key ``name`` named before (None when new)."""


def default_name(start: Path | None = None) -> str:
    """The local part of git's ``user.email`` (made a valid name), else the login name."""
    try:
        out = subprocess.run(["git", "config", "user.email"], capture_output=True, text=True,
                             timeout=30, cwd=start, check=False)
        email = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        email = ""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = ""
    for candidate in (email.split("@", 1)[0], login):
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", candidate).strip("-.")
        if name and name_problem(name) is None:
            return name
    raise UsageError("cannot tell your name from git's user.email or the login name",
                     hint="`pipeflow keys generate --name NAME`")


def generate_key(name: str | None, *, force: bool = False) -> Signer:
    """Make this user's key (``name`` defaults to :func:`default_name`)."""
    return generate(name or default_name(), force=force)


def list_keys(repo: Project | None) -> KeyList:
    """This user's key (a damaged one is a ConfigError naming its file) and, inside a
    project, the keys it trusts."""
    mine = load_signer()
    keys = repo.config.registry.trusted.keys if repo is not None else {}
    own = mine.public if mine is not None else None
    trusted = tuple(TrustedKey(n, k, k == own) for n, k in sorted(keys.items()))
    return KeyList(mine, key_path(), trusted)


def trust_key(repo: Project, name: str, public: str, *, force: bool = False) -> TrustChange:
    """Write ``keys.trusted.NAME: PUBLIC`` into the committed config. Refuses a key
    that does not parse, and a name trusted with another key unless ``force``."""
    problem = name_problem(name)
    if problem is not None:
        raise UsageError(f"key name {name!r} {problem}",
                         hint="e.g. `pipeflow keys trust alice ed25519:...`")
    public = public.strip()
    try:
        decode_public(public, f"the key given for {name!r}")
    except ConfigError as exc:  # about an argument, not a file: a usage error here
        raise UsageError(exc.message + "; nothing was written", hint=exc.hint) from None
    found: dict[str, str | None] = {}

    def change(data: dict[str, Any]) -> None:
        trusted = _trusted_of(data)
        previous = trusted.get(name)
        if previous not in (None, public) and not force:
            raise UsageError(f"keys.trusted.{name} names another key ({str(previous)[:20]}...); "
                             "nothing was written",
                             hint="--force replaces it (signatures by the old key then "
                                  "count as untrusted)")
        found["previous"] = previous if isinstance(previous, str) else None
        trusted[name] = public
        _ensure_project_id(data)

    edit_config(repo, False, change)
    return TrustChange(name, public, found.get("previous"))


def _ensure_project_id(data: dict[str, Any]) -> None:
    """Give the project an id (``registry.project``) the first time it trusts a key:
    alias moves sign it, so a signed move copied from another project never counts."""
    import secrets

    registry = data.get("registry")
    if not isinstance(registry, dict):
        registry = data["registry"] = {}
    registry.setdefault("project", secrets.token_hex(16))


def untrust_key(repo: Project, name: str) -> TrustChange:
    """Remove ``keys.trusted.NAME`` from the committed config."""
    found: dict[str, str] = {}

    def change(data: dict[str, Any]) -> None:
        trusted = _trusted_of(data)
        if name not in trusted:
            known = ", ".join(sorted(map(str, trusted))) or "none"
            raise UsageError(f"no trusted key named {name!r} in .pipeflow/config "
                             f"(trusted: {known})", hint="`pipeflow keys list`")
        found["previous"] = str(trusted.pop(name))
        if not trusted:
            data["keys"].pop("trusted")

    edit_config(repo, False, change)
    return TrustChange(name, "", found["previous"])


def _trusted_of(data: dict[str, Any]) -> dict[str, Any]:
    """``keys.trusted`` of a config file's mapping, made when absent."""
    keys = data.setdefault("keys", {})
    if not isinstance(keys, dict):
        raise UsageError("the config's 'keys' section is not a mapping: fix .pipeflow/config")
    trusted = keys.setdefault("trusted", {})
    if not isinstance(trusted, dict):
        raise UsageError("keys.trusted in .pipeflow/config is not a mapping: fix it by hand")
    return trusted
