"""A stage's fingerprint: the digest of named components, and why two differ.

Components are kept apart (and in the lock) so that "why is this stage stale"
is answered to the key: which file, which param (old -> new), which line of the
command, which part of the environment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pipeflow.content.hashing import hash_bytes
from pipeflow.credentials import FINGERPRINT_KEY_VAR, conceal_var, is_digest, is_secret_name
from pipeflow.lock.lockfile import FileEntry, StageLock
from pipeflow.params import diff as params_diff

FORMAT = 1


@dataclass(frozen=True)
class Components:
    """Everything a stage's result is taken to depend on."""

    cmd: tuple[str, ...]
    deps: tuple[FileEntry, ...]
    params: Mapping[str, Mapping[str, Any]]
    code: tuple[FileEntry, ...]
    env: Mapping[str, Any]
    outs: tuple[str, ...]
    """Declared outputs as ``path|flags`` labels (see ``out_label``)."""
    notes: tuple[str, ...] = field(default=(), compare=False)
    """What ``status`` should say beside the state (dynamic imports not followed, code
    that does not parse); not part of the digest."""
    details: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Messages for code entries that differ from the lock, by path (the module map's
    change, worked out by the planner, which knows the earlier map); not digested."""

    def digest(self) -> str:
        """xxh3-128 of the canonical JSON form; equal components give equal digests."""
        body = {
            "format": FORMAT,
            "cmd": list(self.cmd),
            "deps": {d.path: d.hash for d in self.deps},
            "params": {f: dict(v) for f, v in self.params.items()},
            "code": {c.path: c.hash for c in self.code},
            "env": dict(self.env),
            "outs": list(self.outs),
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hash_bytes(text.encode("utf-8", "surrogatepass"))


def out_label(path: str, kind: str, cache: bool, persist: bool) -> str:
    """How one declared output enters the fingerprint: its path and options."""
    flags = [kind] + (["nocache"] if not cache else []) + (["persist"] if persist else [])
    return "|".join([path, *flags])


class ChangeKind(StrEnum):
    """What changed, as ``status --json`` and ``repro --dry --json`` name it."""

    NEW = "new"
    """Never run."""
    CONFLICT = "conflict"
    """Its entry in pipeline.lock is in merge conflict."""
    FORCED = "forced"
    """``repro --force``."""
    ALWAYS = "always"
    """``always_changed`` is set."""
    UPSTREAM = "upstream"
    """Only a stage it depends on changed."""
    CMD = "cmd"
    DEP = "dep"
    PARAM = "param"
    CODE = "code"
    ENV = "env"
    OUTS = "outs"
    """The declared outputs (or their options) changed."""
    OUTPUT = "output"
    """An output is missing, modified, or cannot be restored."""


@dataclass(frozen=True)
class Change:
    """One reason a stage is not up to date; ``message`` is what a user reads."""

    kind: ChangeKind
    subject: str
    message: str
    old: Any = None
    new: Any = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind.value, "subject": self.subject,
                                "message": self.message}
        if self.old is not None:
            body["old"] = self.old
        if self.new is not None:
            body["new"] = self.new
        return body


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _short(h: str) -> str:
    return h[:8]


def diff_cmd(old: tuple[str, ...], new: tuple[str, ...]) -> list[Change]:
    if old == new:
        return []
    if len(old) == len(new) == 1:
        msg = f"command changed: '{old[0]}' -> '{new[0]}'"
        return [Change(ChangeKind.CMD, "", msg, old[0], new[0])]
    changes = []
    for i in range(max(len(old), len(new))):
        a = old[i] if i < len(old) else None
        b = new[i] if i < len(new) else None
        if a != b:
            if a is None:
                msg = f"command line {i + 1} added: '{b}'"
            elif b is None:
                msg = f"command line {i + 1} removed: '{a}'"
            else:
                msg = f"command line {i + 1} changed: '{a}' -> '{b}'"
            changes.append(Change(ChangeKind.CMD, str(i + 1), msg, a, b))
    return changes


def diff_files(
    kind: ChangeKind,
    old: tuple[FileEntry, ...],
    new: tuple[FileEntry, ...],
    details: Mapping[str, str] | None = None,
) -> list[Change]:
    """Added, removed and modified files of a deps or code component; ``details``
    gives the message for a path whose change needs more than its hash to explain."""
    before = {e.path: e for e in old}
    after = {e.path: e for e in new}
    label = "dependency" if kind is ChangeKind.DEP else "code"
    changes = []
    for path, entry in after.items():
        prev = before.get(path)
        if details and path in details and (prev is None or prev.hash != entry.hash):
            old_hash = None if prev is None else prev.hash
            changes.append(Change(kind, path, details[path], old_hash, entry.hash))
        elif prev is None:
            changes.append(Change(kind, path, f"{label} added: {path}", None, entry.hash))
        elif prev.hash != entry.hash:
            if entry.hash == "":
                msg = f"{label} missing: {path}"
            else:
                msg = f"{label} modified: {path} ({_short(prev.hash)} -> {_short(entry.hash)})"
            changes.append(Change(kind, path, msg, prev.hash, entry.hash))
    for path, prev in before.items():
        if path not in after:
            msg = details[path] if details and path in details else f"{label} removed: {path}"
            changes.append(Change(kind, path, msg, prev.hash, None))
    return changes


def diff_params(
    old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]
) -> list[Change]:
    """Params added, removed or changed, per file and dotted key.

    Values compare by type at every depth (``[1]`` -> ``[1.0]`` is a change), as
    the digest's JSON form does.
    """
    changes = []
    for file in sorted(set(old) | set(new)):
        if (file in old) != (file in new) and not (old.get(file) or new.get(file)):
            # a file read for no key (an empty one) has no key to name
            what = "added" if file in new else "removed"
            changes.append(Change(ChangeKind.PARAM, file, f"params file {what}: {file}"))
            continue
        for ch in params_diff(old.get(file, {}), new.get(file, {})):
            subject = f"{file}:{ch.key}"
            if ch.added:
                msg = f"{file}: {ch.key} added ({_show(ch.new)})"
                changes.append(Change(ChangeKind.PARAM, subject, msg, None, ch.new))
            elif ch.removed:
                msg = f"{file}: {ch.key} removed (was {_show(ch.old)})"
                changes.append(Change(ChangeKind.PARAM, subject, msg, ch.old, None))
            else:
                msg = f"{file}: {ch.key} {_show(ch.old)} -> {_show(ch.new)}"
                changes.append(Change(ChangeKind.PARAM, subject, msg, ch.old, ch.new))
    return changes


def _secret_change(name: str, old: Any, new: Any) -> str:
    said = f"env: {name} changed (a secret: values not shown)"
    if is_digest(old) and is_digest(new) and old.split(":")[0] != new.split(":")[0]:
        said += (f"; ${FINGERPRINT_KEY_VAR} is set in one place and not in the other "
                 "(set it alike in every clone and CI job)")
    elif old is not None and not is_digest(old):
        said += "; the lock held its value in clear, the next repro replaces it"
    elif is_digest(old) and new is not None and not is_digest(new):
        # an older pipeflow took SORT_KEY, SESSION_ID... for secrets: say why it reruns
        said = (f"env: {name} is no longer taken for a secret: its value counts from now "
                "on (the lock held a digest; the stage reruns once)")
    return said


def _diff_named(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Per-name changes of env ``vars`` (None: unset) or ``packages`` (None: absent).

    A package enters the component when declared or when the code starts importing
    it (or something requiring it), so its arrival says "added", not "declared".
    """
    gone = "unset" if kind == "vars" else "not installed"
    changes = []
    for name in sorted(set(old) | set(new)):
        if kind == "vars" and name in old and name in new and old[name] != new[name] and (
                is_digest(old[name]) or is_digest(new[name]) or is_secret_name(name)):
            # a secret's change is said without its values (an older lock may hold one)
            changes.append(Change(ChangeKind.ENV, name, _secret_change(name, old[name], new[name]),
                                  conceal_var(name, old[name]), conceal_var(name, new[name])))
        elif name in old and name in new and old[name] != new[name]:
            was = gone if old[name] is None else _show(old[name])
            now = gone if new[name] is None else _show(new[name])
            changes.append(Change(ChangeKind.ENV, name, f"env: {name} {was} -> {now}",
                                  old[name], new[name]))
        elif kind == "packages" and name not in old:
            now = gone if new[name] is None else _show(new[name])
            changes.append(Change(ChangeKind.ENV, name, f"env: package {name} added ({now})",
                                  None, new[name]))
        elif kind == "packages" and name not in new:
            was = gone if old[name] is None else _show(old[name])
            changes.append(Change(ChangeKind.ENV, name, f"env: package {name} removed (was {was})",
                                  old[name], None))
        elif (name in old) != (name in new):
            what = "declared" if name in new else "no longer declared"
            changes.append(Change(ChangeKind.ENV, name, f"env: variable {name} {what}"))
    return changes


def diff_env(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if key in ("vars", "packages") and isinstance(a, Mapping | None) and isinstance(
            b, Mapping | None
        ):
            named = _diff_named(key, a or {}, b or {})
            if not named and a != b:  # an empty section appeared or went away
                what = "added" if a is None else "removed"
                named = [Change(ChangeKind.ENV, key, f"env: {key} {what}", a, b)]
            changes.extend(named)
            continue
        if a != b:
            msg = f"env: {key} {_show(a) if a is not None else 'unset'} -> " + (
                _show(b) if b is not None else "unset"
            )
            changes.append(Change(ChangeKind.ENV, key, msg, a, b))
    return changes


def diff_outs(entry: StageLock, declared: tuple[str, ...]) -> list[Change]:
    """Outputs declared now but not in the lock, and the other way round."""
    before = [e.path for e in (*entry.outs, *entry.metrics)]
    after = [label.split("|", 1)[0] for label in declared]
    outs = ChangeKind.OUTS
    changes = [Change(outs, p, f"output added: {p}") for p in after if p not in before]
    changes += [Change(outs, p, f"output removed: {p}") for p in before if p not in after]
    return changes


def explain(entry: StageLock, comps: Components) -> list[Change]:
    """Why ``comps`` differ from what the lock recorded (empty when they do not)."""
    code = diff_files(ChangeKind.CODE, entry.code, comps.code, comps.details)
    # A source file both declared in deps and found as code changes both entries
    # (both take its normalized hash): name it once, as code.
    as_code = {c.subject for c in code}
    deps = [c for c in diff_files(ChangeKind.DEP, entry.deps, comps.deps)
            if c.subject not in as_code]
    changes = [
        *diff_cmd(entry.cmd, comps.cmd),
        *deps,
        *diff_params(entry.params, comps.params),
        *code,
        *diff_env(entry.env, comps.env),
        *diff_outs(entry, comps.outs),
    ]
    if comps.digest() != entry.fingerprint and not changes:
        changes.append(Change(ChangeKind.OUTS, "",
                              "output options changed (cache, persist or kind)"))
    return changes
