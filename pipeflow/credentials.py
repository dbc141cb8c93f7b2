"""What looks like a credential, and how pipeflow keeps credentials out of what it
writes and prints.

One rule serves every code path: the committed config (``remote add``/``modify``,
and every read of ``.pipeflow/config``), the options sent to Dask workers, the
``env.vars`` component kept in ``pipeline.lock`` and run records, and every text
shown (messages, lineage, ``--json``, tracebacks).

- A *name* looks secret when one of its words (split at ``_``, ``-``, ``.``, spaces
  and camelCase humps, case-insensitive) is in :data:`SECRET_WORDS` (``sas_token``,
  ``aws_secret_access_key``, ``credentials_file``), when it ends in ``key``, ``auth``
  or ``signature`` (``AZURE_STORAGE_KEY``, ``basic_auth``; not ``SORT_KEY``, a key
  of data), holds ``key_file``/``key_path`` or an access key's id, or says
  ``connection_string``; unless it is a known storage setting
  (:data:`NOT_SECRET_NAMES`: ``signature_version``, ``SSEKMSKeyId``). Whole words,
  so ``TOKENIZERS_PARALLELISM``, ``AUTH_MODE`` and ``SESSION_ID`` are not secrets.
- A *value* carries credentials when it holds a URL with userinfo
  (``https://bob:pw@host``), a credential-named query parameter (``?sig=``) or a
  ``Key=value`` pair of a connection string (``AccountKey=...``).
- :func:`redact` hides both in any text.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

SECRET_WORDS = frozenset({
    # a secret wherever they stand in a name
    "password", "passwd", "passphrase", "secret", "secrets", "token", "credential",
    "credentials", "creds", "sas", "dsn", "cookie", "jwt", "bearer",
    "pass",  # DB_PASS, SMTP_PASS
    # the same glued together, as SDKs and fsspec backends spell them
    "apikey", "accesskey", "secretkey", "privatekey", "accountkey", "sastoken",
    "authtoken", "accesstoken", "refreshtoken", "sessiontoken", "idtoken",
    "clientsecret", "connectionstring", "connstr", "keyfile", "sharedaccesskey",
    "sharedaccesssignature",
})
"""Words that make a name credential-like wherever they stand. ``credentials`` covers
paths to credentials files (a path is not itself a secret, but it is per-machine and
names where one is: it belongs in ``config.local`` or the environment, not in the
repository). ``key``, ``auth``, ``signature``, ``connection`` and the like are secret
only in some combinations: see :func:`is_secret_name`."""

LAST_WORD_SECRETS = frozenset({"key", "keys", "auth", "signature", "sig", "pat", "pwd"})
"""Secret as the last word of a name (``account_key``, ``basic_auth``,
``X-Amz-Signature``, ``sig``, ``GITHUB_PAT``: a personal access token,
``MYSQL_PWD``), not before another word (``KEY_COLUMN``, ``AUTH_MODE``,
``signature_version``). ``pwd`` needs a word before it: ``PWD`` alone is the
shell's folder."""

DATA_KEY_QUALIFIERS = frozenset({
    "sort", "partition", "hash", "range", "foreign", "join", "group",
    "index", "lookup", "cache", "dict", "map", "row", "column", "col", "merge", "shard",
    "cluster", "order", "label", "target", "feature", "unique", "composite", "natural",
    "surrogate", "dedup", "split", "public", "kms", "record", "item", "lock",
})
"""Words before a final ``key`` that make it a key of data (``SORT_KEY``,
``partition_key``) or a public identifier (``public_key``, ``kms_key``), not a
credential. Not ``primary``: Azure's "primary key" is an account key."""

_KEY_PATH_WORDS = frozenset({"file", "files", "path", "filename", "pem", "material", "b64",
                             "base64", "data", "json"})
"""``key`` followed by one of these names where a key is or the key itself
(``key_file``, ``PRIVATE_KEY_PATH``, ``SSH_KEY_PEM``): per-machine, a credential."""

_PAIRED_ID_WORDS = frozenset({"access", "private", "secret", "api", "client"})
"""``<word>_key_id`` is half of a credential pair (``aws_access_key_id``, a service
account's ``private_key_id``): it names the account the secret unlocks and secret
scanners flag it, so it goes where its secret goes. ``SSEKMSKeyId``/``kms_key_id``
(an encryption key's ARN) is not."""

_SECRET_PAIRS = frozenset({("connection", "string"), ("connection", "str"),
                           ("conn", "string"), ("conn", "str")})
"""Adjacent words that name a secret (``AZURE_STORAGE_CONNECTION_STRING``); alone,
``connection`` is a setting (``CONNECTION_POOL_SIZE``)."""

NOT_SECRET_NAMES = frozenset({
    "signatureversion", "ssekmskeyid", "kmskeyid", "serversideencryption",
    "sessionkwargs", "configkwargs", "clientkwargs", "endpointurl", "regionname",
    "s3additionalkwargs", "sessionname", "rolesessionname", "authmode", "authtype",
    "keyvaulturl",
})
"""Settings of the storage libraries (fsspec, s3fs, gcsfs, adlfs, boto) known not to
be credentials, by their words glued (``signature_version`` and ``signatureVersion``
alike). Their values are still searched (``endpoint_url`` with userinfo is refused)
and the settings nested under them are checked by their own names
(``client_kwargs.aws_secret_access_key`` is a credential)."""

_GLUED_ENDINGS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey",
                  "secretkey", "privatekey", "accountkey")
"""A word ending so is secret too (``PGPASSWORD``, ``ghtoken``); not bare ``key``
(``monkey``)."""

NOT_SECRET_VALUES = frozenset({"anon", "google_default", "cloud", "browser", "cache"})
"""Modes that gcsfs accepts for ``token`` (and similar), not credentials."""

FINGERPRINT_KEY_VAR = "PIPEFLOW_FINGERPRINT_KEY"
"""A team secret, shared out of band, that keys the digests of secret env vars."""

_HUMPS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# Searching text, a match is tried only where a run of scheme (name) characters
# starts, its leading digits and signs skipped (what the plain pattern would skip
# one try at a time): tried at every character of a long run, each try reading to
# its end, redact took quadratic time (a 40,000-letter value: 9 s).
_SCHEME_IN_TEXT = re.compile(r"(?<![A-Za-z0-9+.-])[0-9+.-]*(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)")
_URL_END = re.compile(r"[\s'\"<>`]")
_PAIR = re.compile(r"(?<![A-Za-z0-9_.-])(?P<lead>[0-9_.-]*)"
                   r"(?P<name>[A-Za-z][A-Za-z0-9_.-]*)(?P<sep>=)(?P<value>[^;&\s'\"]*)")
_PLAIN = re.compile(r"[0-9.]+|true|false|none|null", re.IGNORECASE)
HIDDEN = "***"


def words(name: str) -> list[str]:
    """``AZURE_STORAGE_KEY`` -> azure, storage, key; ``sasToken`` -> sas, token."""
    return [w.lower() for part in re.split(r"[^A-Za-z0-9]+", name) for w in _HUMPS.findall(part)]


def is_secret_name(name: object) -> bool:
    """Does ``name`` (an option, a config key, an environment variable) look like it
    holds a credential? See the word lists above; an unknown ``*_key`` counts as a
    credential (the safe side: its value is hidden, or it goes to config.local)."""
    found = words(str(name))
    glued = "".join(found)
    if glued in NOT_SECRET_NAMES:
        return False
    if glued in SECRET_WORDS or any(w in SECRET_WORDS or w.endswith(_GLUED_ENDINGS)
                                    for w in found):
        return True
    if any(pair in _SECRET_PAIRS for pair in itertools.pairwise(found)):
        return True
    return any(_is_secret_word_at(found, i) for i in range(len(found)))


def _is_secret_word_at(found: list[str], i: int) -> bool:
    """Is ``found[i]`` a ``key``/``auth``/``signature`` that means a credential here?"""
    word, before = found[i], found[i - 1] if i else ""
    after = found[i + 1] if i + 1 < len(found) else ""
    if word not in LAST_WORD_SECRETS:
        return False
    if not after:
        if word == "pwd":
            return bool(before)
        return not (word in ("key", "keys") and before in DATA_KEY_QUALIFIERS)
    if word in ("key", "keys"):
        return after in _KEY_PATH_WORDS or (after == "id" and before in _PAIRED_ID_WORDS)
    return False


def has_credentials(value: object) -> bool:
    """Does a value carry credentials whatever its name (URL userinfo, a signed
    query, a connection string's key)?"""
    return isinstance(value, str) and redact(value) != value


def secret_settings(settings: Mapping[Any, Any], prefix: str = "") -> list[str]:
    """Dotted names of the settings (at any depth: ``client_kwargs`` may hold keys)
    that are or carry credentials. Booleans, None and the modes of
    :data:`NOT_SECRET_VALUES` under a secret name are settings, not secrets; a
    mapping under a secret name (gcsfs's ``token`` as a service account) is one."""
    found: list[str] = []
    for name, value in settings.items():
        dotted = f"{prefix}{name}"
        if is_secret_name(name) and _is_secret_value(value):
            found.append(dotted)
        elif isinstance(value, Mapping):
            found += secret_settings(value, dotted + ".")
        elif has_credentials(value):
            found.append(dotted)
    return found


def _is_secret_value(value: object) -> bool:
    if value is None or isinstance(value, bool) or value == {}:
        return False
    return not (isinstance(value, str) and value.strip().lower() in NOT_SECRET_VALUES)


def secret_values(settings: Mapping[Any, Any]) -> tuple[str, ...]:
    """The values (at any depth) of the settings :func:`secret_settings` names, so
    that a message quoting one can be redacted."""
    found: list[str] = []
    for name, value in settings.items():
        if is_secret_name(name) and _is_secret_value(value):
            found += _strings(value)
        elif isinstance(value, Mapping):
            found += secret_values(value)
        elif has_credentials(value):
            found += _strings(value)
    return tuple(found)


def _strings(value: object) -> list[str]:
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return [] if value is None or isinstance(value, bool) else [str(value)]


def without_secrets(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with every name that looks secret left out (at any depth)."""
    kept: dict[str, Any] = {}
    for name, value in settings.items():
        if is_secret_name(name) or has_credentials(value):
            continue
        kept[name] = without_secrets(value) if isinstance(value, Mapping) else value
    return kept


# -- redaction ------------------------------------------------------------------------

def redact(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with the credentials of every URL in it, credential-named query
    parameters and ``Key=value`` pairs, and each string of ``known`` (the secret
    values the caller holds, e.g. a remote's options) replaced by ``***``."""
    for value in sorted({k for k in known if isinstance(k, str) and len(k) >= 4},
                        key=len, reverse=True):
        text = text.replace(value, HIDDEN)
    out: list[str] = []
    pos = 0
    for match in _SCHEME_IN_TEXT.finditer(text):
        start = match.start("scheme")
        if start < pos:
            continue  # inside a URL already handled
        end = _URL_END.search(text, match.end())
        stop = end.start() if end else len(text)
        out.append(_redact_pairs(text[pos:start]))
        out.append(match.group("scheme") + _redact_rest(text[match.end():stop]))
        pos = stop
    out.append(_redact_pairs(text[pos:]))
    return "".join(out)


def unescaped_userinfo(url: str) -> bool:
    """Does ``url`` hold userinfo with an unescaped ``/`` (a URL parser would take
    the password for a path, and the user name and password for host and port)?"""
    match = _SCHEME.match(url)
    if match is None:
        return False
    rest = url[match.end():]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return ":" in authority and "@" in rest[len(authority):] and "@" not in authority


def _redact_rest(rest: str) -> str:
    """What follows ``scheme://`` in one URL, its userinfo and signed query hidden.

    The userinfo ends at the LAST ``@`` before the path, and a password may hold
    ``/`` and ``@`` unescaped (users write them so): when the authority (up to the
    first ``/``) holds a ``:`` and an ``@`` comes later, everything up to the last
    ``@`` of the URL is taken as userinfo. ``host:8080/a@b`` is then over-hidden,
    which is the safe side; a password is never shown, not even its tail.
    """
    if "@" in rest:
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
        if ":" in authority:
            rest = HIDDEN + rest[rest.rindex("@"):]
        elif "@" in authority:  # a token as user name: https://TOKEN@github.com/...
            rest = HIDDEN + rest[authority.rindex("@"):]
    return _redact_pairs(rest)


def _redact_pairs(text: str) -> str:
    """``sig=...``, ``AccountKey=...;``, ``password=...``: the value hidden."""
    if "=" not in text:
        return text

    def hide(m: re.Match[str]) -> str:
        value = m.group("value")
        # a number or a flag under a secret-looking name (key_dim=64) is a setting
        if is_secret_name(m.group("name")) and value and not _PLAIN.fullmatch(value):
            return f"{m.group('lead')}{m.group('name')}{m.group('sep')}{HIDDEN}"
        return m.group()

    return _PAIR.sub(hide, text)


def redact_data(value: Any, known: Iterable[str] = ()) -> Any:
    """:func:`redact` applied to every string in a JSON-like value."""
    known = tuple(known)
    if isinstance(value, str):
        return redact(value, known)
    if isinstance(value, Mapping):
        return {k: redact_data(v, known) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v, known) for v in value]
    return value


# -- environment variables ---------------------------------------------------------------

DIGEST_PREFIXES = ("hidden:", "hidden+key:")
"""How a secret variable's digest starts; ``+key`` when keyed by the team secret."""
_DOMAIN = b"pipeflow env.vars v1\x00"


def env_value(name: str, value: str | None) -> str | None:
    """What the ``env.vars`` component keeps of variable ``name``: its value, or for
    a secret (by name or by value) a digest, so a changed secret still reruns the
    stage while the lock, the records and lineage never hold it.

    The digest is scrypt (n=2**14, r=8: 16 MiB of memory and slow, each guess) over the value,
    salted with the variable's name and, when set, ``$PIPEFLOW_FINGERPRINT_KEY``.
    Without the key the digest is the same in every clone and CI job (the run cache
    is shared) but a short secret can be guessed offline, slowly; with the key,
    guessing needs the key, and every clone and CI job must set the same one or
    their fingerprints differ (the stage reruns).
    """
    if value is None or not (is_secret_name(name) or has_credentials(value)):
        return value
    return _digest(name, value, os.environ.get(FINGERPRINT_KEY_VAR, ""))


_MEMO: dict[tuple[str, str, str], str] = {}


def _digest(name: str, value: str, key: str) -> str:
    """The digest, computed once per machine: scrypt is slow on purpose, and every
    command that fingerprints the stage needs it (see :mod:`pipeflow.files.digestcache`)."""
    from pipeflow.files import digestcache

    memo = (name, value, key)
    if memo not in _MEMO:
        prefix = DIGEST_PREFIXES[1] if key else DIGEST_PREFIXES[0]
        found = digestcache.recall(name, value, key)
        if found is None or not re.fullmatch(re.escape(prefix) + "[0-9a-f]{32}", found):
            salt = _DOMAIN + name.encode() + b"\x00" + key.encode()
            raw = hashlib.scrypt(value.encode("utf-8", "surrogateescape"), salt=salt,
                                 n=2**14, r=8, p=1, dklen=16)
            found = prefix + raw.hex()
            digestcache.remember(name, value, key, found)
        _MEMO[memo] = found
    return _MEMO[memo]


def is_digest(value: object) -> bool:
    return isinstance(value, str) and value.startswith(DIGEST_PREFIXES)


def conceal_env(env: Mapping[str, Any]) -> dict[str, Any]:
    """An environment component fit to show: values of secret variables that an
    older pipeflow stored in clear become ``***`` (digests stay)."""
    shown = dict(env)
    variables = env.get("vars")
    if isinstance(variables, Mapping):
        shown["vars"] = {name: conceal_var(str(name), value) for name, value in variables.items()}
    return shown


def conceal_var(name: str, value: Any) -> Any:
    """One variable's value fit to show (see :func:`conceal_env`)."""
    if value is None or is_digest(value):
        return value
    if is_secret_name(name):
        return HIDDEN
    return redact(value) if isinstance(value, str) else value
