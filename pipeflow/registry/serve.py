"""Serve a model from the registry without a clone: ``get`` and ``pipeflow.open``.

A source is either a remote (any fsspec URL or folder; its registry snapshot, which
``push`` publishes, names each model's versions and aliases) or the project's git
repository (a URL, a path, ``git+...``): then a shallow clone in a temporary folder
(removed on every way out) gives the spec, the tag log read through the project's own
policy (protected aliases) and the config's default remote, whose snapshot (if any)
adds the ``vN`` labels a one-commit history cannot compute (with keys to check, only
when that snapshot passes the check: a label from an unchecked snapshot could name
any object). Either way the object's bytes are checked against its xxh3-128 id
before anyone sees them (docs/registry.md, "Serving").
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipeflow.credentials import redact
from pipeflow.errors import StorageError, UsageError
from pipeflow.registry import snapshot as snap
from pipeflow.storage.remote import Remote, read_small

if TYPE_CHECKING:
    from pipeflow.project.project import Project
    from pipeflow.signing.signatures import Signature, TrustedKeys, Verdict

REMOTE_NAME = "registry"
"""The name errors give a remote named by its URL."""


@dataclass(frozen=True)
class Trust:
    """What a signature must prove: ``keys`` (name -> public key) and whether one is
    required at all (``--key`` implies it)."""

    keys: TrustedKeys | None = None
    required: bool = False

    @classmethod
    def of(cls, keys: Sequence[str] = (), required: bool = False) -> Trust:
        """From ``--key`` texts (``ed25519:...`` or ``NAME=ed25519:...``)."""
        from pipeflow.signing.signatures import TrustedKeys

        if not keys:
            return cls(None, required)
        named = {}
        for n, text in enumerate(keys, start=1):
            name, sep, key = text.partition("=")
            if not sep or name.startswith("ed25519:"):  # a bare key (base64 ends in '=')
                name, key = f"key{n}", text
            named[name] = key
        return cls(TrustedKeys.from_mapping(named, "--key"), True)


@dataclass(frozen=True)
class Served:
    """Which version a request named, and where it came from."""

    model: str
    path: str
    version: snap.SnapshotVersion
    alias: str | None
    source: str
    """``remote`` or ``git``."""
    remote: str
    """The remote's URL (credentials redacted)."""
    signed_by: str | None = None
    """Who signed what decided it (trusted: a name from --key; else the name claimed)."""
    signature: str = "unsigned"
    """``trusted`` (by a key given), ``untrusted`` (valid, no key given to check it
    against) or ``unsigned``."""
    signed_what: str = "snapshot"
    """What the signature covers: ``snapshot``, or ``alias move in the tag log``."""
    output: Path | None = None


def split_request(text: str) -> tuple[str, str]:
    """``MODEL@VERSION`` -> (model, version); the version is required."""
    model, sep, version = text.rpartition("@")
    if not sep or not model or not version:
        raise UsageError(f"'{text}' names no version",
                         hint="say which one: MODEL@production (an alias), MODEL@v3 or "
                              "MODEL@<hash prefix>")
    return model, version


def is_git_source(source: str) -> bool:
    """A git repository (``git+URL``, ``*.git``, a folder with ``.git`` or a bare
    repository) rather than a remote."""
    if source.startswith("git+") or source.rstrip("/").endswith(".git"):
        return True
    folder = Path(source.removeprefix("file://")).expanduser()
    return (folder / ".git").exists() or (
        (folder / "HEAD").is_file() and (folder / "objects").is_dir()
        and (folder / "refs").is_dir())


def resolve(source: str, request: str, *, remote_name: str | None = None,
            trust: Trust = Trust()) -> tuple[Served, Remote]:
    """The version ``request`` (``MODEL@VERSION``) names at ``source``, and the remote
    holding its object."""
    name, version = split_request(request)
    if is_git_source(source):
        with _clone(source) as root:
            return _from_git(root, name, version, remote_name, trust, source)
    if remote_name is not None:
        raise UsageError("--remote-name chooses among a git project's remotes; "
                         f"{source} is a remote already")
    remote = _open(source)
    snapshot, verdict = _read_snapshot(remote, trust)
    if snapshot is None:
        raise StorageError(f"no registry snapshot at {remote.url}",
                           hint="`pipeflow push` publishes one (from a project that "
                                "declares a model: `outs: - PATH: {model: NAME}`)")
    model = snapshot.model(name)
    found, alias = model.resolve(version)
    return Served(model.name, model.path, found, alias, "remote", _shown(remote),
                  *_signature(verdict)), remote


def _signature(verdict: Verdict | None) -> tuple[str | None, str]:
    """(signer, ``trusted|untrusted|unsigned``) of a verdict that passed :func:`_judge`."""
    if verdict is None or verdict.status == "unsigned":
        return None, "unsigned"
    return verdict.signer, "trusted" if verdict.trusted else "untrusted"


def _shown(remote: Remote) -> str:
    return redact(remote.url)


def _open(url: str) -> Remote:
    remote = Remote(REMOTE_NAME, url)
    try:
        there = remote.fs.exists(remote.base)
    except remote.errors as exc:
        raise StorageError(f"cannot reach {_shown(remote)}: {redact(str(exc))}") from exc
    if not there:
        raise StorageError(f"nothing at {_shown(remote)}",
                           hint="give the remote's URL (`pipeflow remote list` in a clone "
                                "shows it) or the project's git URL")
    return remote


def _read_snapshot(remote: Remote,
                   trust: Trust) -> tuple[snap.Snapshot | None, Verdict | None]:
    """The snapshot and the verdict on its signature (None: unsigned), judged by
    ``trust``. A format-1 snapshot is read twice at most: a push may replace it
    between the snapshot and its separate signature file."""
    where = f"{_shown(remote)}/{snap.FOLDER}/{snap.NAME}"
    for attempt in (1, 2):
        data = read_small(remote, snap.FOLDER, snap.NAME, snap.MAX_BYTES)
        if data is None:
            return None, None
        envelope = snap.decode(data, where)
        if envelope.format == snap.LEGACY:
            sig = read_small(remote, snap.FOLDER, snap.SIG_NAME, snap.MAX_SIG_BYTES)
            verdict, digest = _check(data, sig, trust)
            racing = digest is not None and digest != hashlib.sha256(data).hexdigest()
            if verdict is not None and verdict.status == "invalid" and racing \
                    and attempt == 1:
                continue
        else:
            verdict = _verify(envelope.signed, envelope.signature, trust)
        _judge(where, verdict, trust)
        return snap.parse_body(envelope.body, where), verdict
    raise AssertionError("unreachable")


def _verify(data: bytes, signature: Signature | None, trust: Trust) -> Verdict | None:
    from pipeflow.signing.signatures import TrustedKeys

    if signature is None:
        return None
    return (trust.keys or TrustedKeys({})).verify(data, signature)


def _check(data: bytes, sig: bytes | None, trust: Trust) -> tuple[Verdict | None, str | None]:
    from pipeflow.signing.signatures import Status, TrustedKeys, Verdict

    if sig is None:
        return None, None
    signature, digest = snap.parse_signature(sig)
    if signature is None:
        return Verdict(Status.INVALID, None, "the .sig file does not parse"), None
    return (trust.keys or TrustedKeys({})).verify(data, signature), digest


PUSH_SIGNED = ("push with a signing key: `pipeflow keys generate` on the machine that "
               "pushes, then `pipeflow push` again")
PROMOTE_SIGNED = ("move the alias with a signing key: `pipeflow keys generate`, then "
                  "`pipeflow promote` again and push the tag log with git")


def _judge(where: str, verdict: Verdict | None, trust: Trust,
           unsigned_hint: str = PUSH_SIGNED) -> None:
    """Refuse what ``trust`` refuses; a signature that does not verify, always."""
    hint = ("publish it again with `pipeflow push` (signed by a key you trust); never "
            "serve from a registry whose snapshot was changed after signing")
    status = verdict.status if verdict is not None else "unsigned"
    if verdict is not None and status == "invalid":
        raise StorageError(f"{where}: bad signature ({verdict.reason})", hint=hint)
    if status == "unsigned" and trust.required:
        raise StorageError(f"{where} is not signed, and a signature is required",
                           hint=unsigned_hint)
    if verdict is not None and trust.keys is not None and not verdict.trusted:
        raise StorageError(f"{where} is signed by a key that is none of the keys given "
                           f"(it claims {verdict.signer!r})",
                           hint="the signature verifies, by another key: add that person's "
                                "key (`--key NAME=ed25519:...`, `keys=[...]`) if you trust "
                                "them, or ask someone whose key you give to push")


@contextlib.contextmanager
def _clone(source: str) -> Iterator[Path]:
    """A shallow clone of ``source`` in a temporary folder, removed on the way out."""
    from pipeflow.git import gitcmd

    url = source.removeprefix("git+")
    if "://" not in url and Path(url).expanduser().exists():
        url = Path(url).expanduser().resolve().as_uri()  # file://: --depth applies
    folder = Path(tempfile.mkdtemp(prefix="pipeflow-get-"))
    try:
        try:
            done = gitcmd.clone(url, folder / "project")
        except (OSError, subprocess.SubprocessError) as exc:
            raise StorageError(f"cannot clone {redact(source)}: {exc}") from exc
        if done.returncode != 0:  # git's message may quote the URL: a token in it too
            said = redact(done.stderr.decode("utf-8", "replace")).strip().splitlines()
            raise StorageError(f"cannot clone {redact(source)}: "
                               f"{said[-1] if said else 'git failed'}",
                               hint="give the project's git URL, or its remote's URL")
        yield folder / "project"
    finally:
        try:
            shutil.rmtree(folder, ignore_errors=True)
        except KeyboardInterrupt:  # a Ctrl-C during the clean-up: finish it, then stop
            shutil.rmtree(folder, ignore_errors=True)
            raise


def _from_git(root: Path, name: str, version: str, remote_name: str | None,
              trust: Trust, source: str) -> tuple[Served, Remote]:
    from pipeflow.lineage import tags
    from pipeflow.ops.remotes import open_remote
    from pipeflow.project.project import Project
    from pipeflow.registry.models import declared

    if not (root / ".pipeflow").is_dir():
        empty = not any(p.name != ".git" for p in root.iterdir())
        raise UsageError("the repository is empty (its HEAD names no commit)" if empty else
                         "the repository holds no pipeflow project (no .pipeflow/ at its "
                         "top)", hint="give the git URL of the project, or its remote's URL")
    with Project(root) as repo:
        models = declared(repo)
        listed = snap.Snapshot(None, None, None, {
            n: snap.SnapshotModel(n, m.path, m.desc, (), {}) for n, m in models.items()})
        model = listed.model(name)
        log = tags.read(repo)
        remote = _anchored(repo, open_remote(repo, remote_name), source)
        published, labelled, labels = _labels(remote, trust)
        locked = _locked(repo, model.path)
    if labels is not None and re.fullmatch(r"v\d+", version):
        raise UsageError(f"{model.name}@{version}: from a git source, vN labels come from "
                         f"the remote's registry snapshot, and {labels}",
                         hint=f"ask for an alias (its move in the tag log is checked: "
                              f"{model.name}@production) or a hash prefix "
                              f"({model.name}@<hex>)")
    known = published.models.get(model.name) if published else None
    aliases = log.tags_of(model.path)  # the tag log in git decides, not the snapshot
    versions = known.versions if known else ()
    if locked is not None and locked.hash not in {v.hash for v in versions}:
        versions = (*versions, locked)  # pushed since the snapshot was: still a version
    model = replace(model, versions=versions, aliases=aliases)
    found, alias = model.resolve(version)
    verdict, what = labelled, "snapshot"
    if alias is not None:
        what = "alias move in the tag log"
        from pipeflow.signing.signatures import TrustedKeys

        move = log.current[(model.path, alias)]
        verdict = (trust.keys or TrustedKeys({})).verify(move.payload, move.sig)
        _judge(f"the move of alias '{alias}' ({move.when})", verdict, trust,
               PROMOTE_SIGNED)
    signer, status = _signature(verdict)
    return Served(model.name, model.path, found, alias, "git", _shown(remote), signer,
                  status, what), remote


def _labels(remote: Remote, trust: Trust
            ) -> tuple[snap.Snapshot | None, Verdict | None, str | None]:
    """The remote's snapshot (for its ``vN`` labels), the verdict on it when ``trust``
    asks for a signature and it passed, and else why its labels are not to be
    believed (None: they are, or there was no check)."""
    checking = trust.keys is not None or trust.required
    if checking:
        try:
            checked, verdict = _read_snapshot(remote, trust)
        except StorageError as exc:
            checked, verdict, why = None, None, exc.message
        else:
            why = ("there is none" if checked is None else
                   "it is unsigned" if verdict is None else "")
        if not why:
            return checked, verdict, None
    try:  # unchecked: only for the vN labels (the tag log in git names the aliases)
        published, _ = _read_snapshot(remote, Trust())
    except StorageError:
        published = None
    return published, None, (f"that snapshot does not verify: {why}" if checking else None)


def _anchored(repo: Project, remote: Remote, source: str) -> Remote:
    """``remote`` with a relative URL made absolute against the project's folder when
    ``source`` is that folder (a working tree); refused otherwise: a clone's folder is
    the cloner's choice, so a git URL does not say what a relative URL is relative
    to, and the caller's folder (what it would resolve against) is unrelated."""
    url = remote.url
    if "://" in url or "::" in url or os.path.isabs(os.path.expanduser(url)):
        return remote
    folder = Path(source.removeprefix("git+").removeprefix("file://")).expanduser()
    if not (folder / ".git").exists():
        raise UsageError(f"the project's remote '{remote.name}' has a relative URL "
                         f"({url!r}): relative to a clone's folder, which {redact(source)} "
                         "does not give", hint="give the remote's own URL as the source "
                         "(`pipeflow get URL MODEL@...`), or commit an absolute URL "
                         f"(`pipeflow remote modify {remote.name} url /abs/path`)")
    options = repo.config.remotes[remote.name].fs_options
    return Remote(remote.name, str((folder.resolve() / url).resolve()), options)


def _locked(repo: Project, path: str) -> snap.SnapshotVersion | None:
    """The version of ``path`` the clone's pipeline.lock names (folder or file)."""
    from pipeflow.lock import lockfile
    from pipeflow.project.project import LOCK_FILE

    lock = lockfile.read(repo.lock_path, LOCK_FILE)
    for stage in lock.stages.values():
        entry = lockfile.out_entries(stage).get(path)
        if entry is not None:
            return snap.SnapshotVersion(entry.hash[:8], entry.hash, entry.isdir, entry.size)
    return None


def _download(served: Served, remote: Remote, local: Path) -> None:
    """The version's bytes into ``local`` (a new file), verified: a StorageError (and
    ``local`` removed) when the remote lacks it or its bytes do not match its id."""
    oid = served.version.hash
    what = f"{served.model}@{served.alias or served.version.label} ({oid[:8]})"
    if served.version.isdir:
        raise UsageError(f"{what} is a folder; get and pipeflow.open serve files",
                         hint="clone the project and `pipeflow pull` it")
    if not remote.has_object(oid):
        raise StorageError(f"{what}: its object is not on {served.remote}",
                           hint="push it from a clone that has it: `pipeflow push`")
    try:
        good = remote.download_object(oid, local)
    except BaseException:
        local.unlink(missing_ok=True)
        raise
    if not good:
        local.unlink(missing_ok=True)
        raise StorageError(f"{what}: the object on {served.remote} does not match its "
                           "hash (corrupt or replaced): nothing written",
                           hint="push a good copy from a clone that has it")


def get(source: str, request: str, out: Path, *, remote_name: str | None = None,
        trust: Trust = Trust()) -> Served:
    """Write the version ``request`` names to ``out`` (atomically, verified)."""
    from pipeflow.files import atomicfile

    def unusable(exc: OSError) -> UsageError:
        return UsageError(f"cannot write {_short(out)}: {exc.strerror or exc}",
                          hint="give -o a file name (or folder) that can be written")

    try:
        if not out.parent.is_dir():
            raise UsageError(f"cannot write {_short(out)}: the folder {_short(out.parent)} "
                             "does not exist")
    except OSError as exc:
        raise unusable(exc) from None
    served, remote = resolve(source, request, remote_name=remote_name, trust=trust)
    try:
        if out.is_dir():
            out = out / Path(served.path).name
        staged = atomicfile.Staged(out)
        staged.tmp.touch(exist_ok=False)  # an unusable name fails here, not mid-download
        staged.tmp.unlink()  # the download makes it anew
    except OSError as exc:
        raise unusable(exc) from None
    with staged:
        _download(served, remote, staged.tmp)
        staged.publish()
    return replace(served, output=out)


def _short(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 120 else f"{text[:60]}...{text[-40:]}"


def open_model(source: str, request: str, *, remote_name: str | None = None,
               trust: Trust = Trust()) -> io.BufferedReader:
    """The verified bytes of the version ``request`` names, as an open binary file
    (a temporary file already unlinked where the system allows)."""
    served, remote = resolve(source, request, remote_name=remote_name, trust=trust)
    folder = Path(tempfile.mkdtemp(prefix="pipeflow-open-"))
    local = folder / "object"
    try:
        _download(served, remote, local)
        handle = io.open(local, "rb")  # noqa: SIM115, UP020 -- returned to the caller
    finally:
        with contextlib.suppress(OSError):  # Windows keeps an open file: left in temp
            os.unlink(local)
            os.rmdir(folder)
    return handle
