"""``pipeflow export MODEL_OR_PATH@VERSION DEST``: one version, with its lineage and a
model card, under a descriptive name, in a folder or at any fsspec URL.

Three entries land in DEST: ``<name>`` (the content, a folder for a folder output;
bytes copied from the cache and checked against the version's hash),
``<name>.lineage.json`` (what ``pipeflow lineage PATH@VERSION --format json``
prints) and ``<name>.card.md`` (:mod:`pipeflow.registry.card`). ``<name>`` comes from
a template (:mod:`pipeflow.registry.nametemplate`). An existing entry is never
replaced without ``force``, and nothing is published before all three are staged.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeflow.errors import StorageError, UsageError
from pipeflow.lineage.model import Lineage, LineageRun
from pipeflow.lineage.tags import LogProblem
from pipeflow.lineage.versions import FETCH_ONE_HINT, Version
from pipeflow.project.project import Project
from pipeflow.registry import card, nametemplate
from pipeflow.registry.envexport import KEPT, VersionEnvironment
from pipeflow.registry.models import DeclaredModel


@dataclass(frozen=True)
class ModelVersion:
    """One version of a path with everything the name and the card are made of."""

    path: str
    model: DeclaredModel | None
    version: Version
    """With its metrics (``pipeflow versions`` shows the same)."""
    asked: str
    """The VERSION text as given (vN, hash prefix or alias)."""
    lineage: Lineage
    environment: VersionEnvironment
    notes: tuple[str, ...] = ()
    problems: tuple[LogProblem, ...] = ()
    """Lines of the tag log that were skipped."""
    refused: tuple[str, ...] = ()
    """Refused moves of this path's protected aliases that would decide them."""

    @property
    def name(self) -> str:
        return self.model.name if self.model else posixpath.basename(self.path)

    @property
    def producer(self) -> LineageRun | None:
        return self.lineage.producer_of(self.lineage.root)

    def params(self) -> dict[str, dict[str, Any]]:
        """params file -> dotted key -> value, of every run of the lineage: the run that
        made the version first, then those upstream (a key two runs read: the nearer)."""
        out: dict[str, dict[str, Any]] = {}
        for run in self.lineage.runs.values():
            for file, values in run.params.items():
                for key, value in values.items():
                    out.setdefault(file, {}).setdefault(key, value)
        return out

    def code_paths(self) -> set[str]:
        """Paths a run of the lineage hashed as its code (not data)."""
        return {c.path for run in self.lineage.runs.values() for c in run.code}


@dataclass(frozen=True)
class Exported:
    """What ``export`` wrote."""

    path: str
    model: str | None
    version: str
    hash: str
    isdir: bool
    dest: str
    name: str
    files: tuple[str, ...]
    """Where the content, the lineage JSON and the card landed."""
    replaced: tuple[str, ...] = ()
    problems: tuple[LogProblem, ...] = ()
    refused: tuple[str, ...] = ()


def describe(repo: Project, target: str) -> ModelVersion:
    """Resolve ``MODEL_OR_PATH@VERSION`` and gather what an export says about it."""
    from pipeflow.lineage import tags as tagfile
    from pipeflow.lineage.aliasstate import overriding, refusal_warnings
    from pipeflow.lineage.versions import list_versions, resolve
    from pipeflow.ops.lineage import light_versions, lineage
    from pipeflow.registry.envexport import gather
    from pipeflow.registry.models import resolve_target

    aim = resolve_target(repo, target)
    if aim.version is None:
        raise UsageError(f"give the version to export: {target}@VERSION",
                         hint="VERSION is vN, a hash prefix or an alias such as production "
                              f"(`pipeflow versions {aim.path}` lists them)")
    log = tagfile.read(repo)
    tags = log.tags_of(aim.path)
    chosen = resolve(repo, aim.path, aim.version, light_versions(repo, aim.path, tags))
    full = next((v for v in list_versions(repo, aim.path, tags=tags) if v.hash == chosen.hash),
                chosen)
    found = lineage(repo, aim.path, aim.version)
    env = gather(found, aim.path, chosen.label, chosen.hash,
                 aim.model.name if aim.model else None)
    notes = tuple(n.text for n in log.notes_of(aim.path).get(chosen.hash, []))
    refused = tuple(refusal_warnings([r for r in overriding(log) if r.move.path == aim.path]))
    return ModelVersion(aim.path, aim.model, full, aim.version, found, env, notes,
                        log.problems, refused)


def name_fields(mv: ModelVersion) -> nametemplate.NameFields:
    """The values a name template may use."""
    v = mv.version
    base = posixpath.basename(mv.path)
    stem, ext = (base, "") if v.isdir else posixpath.splitext(base)
    alias = mv.asked if mv.asked in v.tags else (v.tags[0] if v.tags else None)
    params: dict[str, Any] = {}
    for values in mv.params().values():
        for key, value in values.items():
            params.setdefault(key, value)
    never = (f"{v.label} is committed off this branch's first-parent history (a merged "
             "side branch): it has no vN here" if v.side else
             f"{v.label} was never committed (commit pipeline.lock to number it)")
    missing = {"n": never,
               "alias": f"no alias names {v.label} (`pipeflow promote` gives it one)",
               "date": "its first run's time is not recorded"}
    return nametemplate.NameFields(
        model=mv.name, version=v.label if v.number is not None else v.hash[:8],
        hash=v.hash[:8], stem=stem, ext=ext, n=v.number, alias=alias,
        date=v.first_seen[:10] or None, params=params, missing=missing)


def _author(run: LineageRun | None) -> str | None:
    """``alice (signed)`` or ``bob@x (unverified)``, as ``lineage`` says it."""
    from pipeflow.lineage.who import UNSIGNED, Who

    if run is None:
        return None
    return Who(run.user, run.trust.signature if run.trust else UNSIGNED).describe()


def card_facts(mv: ModelVersion) -> card.CardFacts:
    """What the model card says about ``mv``."""
    producer = mv.producer
    code = mv.code_paths()
    data = tuple(card.DataVersion(a.path, a.hash, a.version,
                                  {"source": "pipeflow add", "git": "git"}.get(a.status,
                                                                               a.status))
                 for a in mv.lineage.artifacts.values()
                 if a.status in ("source", "git", "untracked") and a.path not in code)
    brief = []
    for run in mv.lineage.runs.values():
        if run.kind == "add":
            continue
        inputs = []
        for aid in run.inputs:
            art = mv.lineage.artifacts.get(aid)
            path, _, oid = aid.rpartition("@")
            inputs.append(f"{path} {art.version if art and art.version else oid[:8]}")
        brief.append(card.StageLine(run.stage, run.id, tuple(inputs)))
    env = mv.environment
    conflicts = "; ".join(c.describe() for c in env.conflicts)
    note = f"Recorded by the runs of {', '.join(env.stages) or 'no stage'}; {KEPT}." + (
        f" The runs differ: {conflicts} (the run nearest the model is shown)."
        if conflicts else "")
    python = f"{env.implementation} {env.python.chosen}" if env.python else None
    return card.CardFacts(
        name=mv.name, path=mv.path, label=mv.version.label, hash=mv.version.hash,
        desc=mv.model.desc if mv.model else None, aliases=mv.version.tags,
        params=mv.params(), metrics=mv.version.metrics, data=data,
        code=tuple(sorted({(c.path, c.hash) for run in mv.lineage.runs.values()
                           for c in run.code if not c.path.startswith("<")})),
        commit=producer.git_commit if producer else None,
        dirty_paths=producer.dirty_paths if producer else (), python=python,
        packages=env.pins(), environment_note=note,
        user=_author(producer), date=mv.version.first_seen[:10] or None,
        notes=mv.notes, lineage=tuple(brief))


def export(repo: Project, target: str, dest: str, *,
           template: str = nametemplate.DEFAULT, force: bool = False,
           cwd: Path | None = None) -> Exported:
    """Export ``MODEL_OR_PATH@VERSION`` to ``dest`` (a folder, relative to ``cwd``, or a
    URL). UsageError for a bad template or an entry that exists (without ``force``);
    StorageError when the content is not in the cache or fails its hash."""
    from pipeflow.lineage.render import render
    from pipeflow.registry.publish import Destination

    mv = describe(repo, target)
    name = nametemplate.render(template, name_fields(mv))
    names = [name, f"{name}.lineage.json", f"{name}.card.md"]
    where = Destination(dest, cwd or Path.cwd())
    taken = where.taken(names)
    if taken and not force:
        raise UsageError(f"{where} already holds {', '.join(taken)}",
                         hint="pass --force to replace them, or choose another "
                              "--name-template or destination")
    with where.staging() as staged:
        _copy_version(repo, mv.version, staged / name)
        (staged / names[1]).write_text(render(mv.lineage, "json"), encoding="utf-8")
        (staged / names[2]).write_text(card.render(card_facts(mv)), encoding="utf-8")
        where.publish(staged, names)
    v = mv.version
    return Exported(mv.path, mv.model.name if mv.model else None, v.label, v.hash, v.isdir,
                    str(where), name, tuple(where.where(n) for n in names), tuple(taken),
                    mv.problems, mv.refused)


def _copy_version(repo: Project, v: Version, dst: Path) -> None:
    """The content of ``v`` at ``dst`` (a file, or a folder of files), every file
    checked against its hash."""
    if not v.isdir:
        _copy_object(repo, v.hash, dst, f"{v.path} {v.label}")
        return
    if not repo.store.has(v.hash):
        raise _not_cached(f"{v.path} {v.label}", v.hash)
    dst.mkdir()
    for entry in repo.store.manifest(v.hash).entries:
        target = dst / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_object(repo, entry.hash, target, f"{v.path}/{entry.path} ({v.label})")
        if entry.executable:
            os.chmod(target, os.stat(target).st_mode | 0o111)


def _not_cached(what: str, oid: str) -> StorageError:
    return StorageError(f"{what} ({oid[:8]}) is not in the cache",
                        hint=FETCH_ONE_HINT)


def _copy_object(repo: Project, oid: str, dst: Path, what: str) -> None:
    from pipeflow.content.hashing import hash_file

    src = repo.store.path_of(oid)
    try:
        shutil.copyfile(src, dst)
    except FileNotFoundError as exc:
        raise _not_cached(what, oid) from exc
    except OSError as exc:
        raise StorageError(f"cannot copy {what}: {exc.strerror}") from exc
    got = hash_file(dst)
    if got != oid:
        raise StorageError(f"{what}: the cached copy is damaged (hash {got[:8]}, expected "
                           f"{oid[:8]}); nothing was exported",
                           hint="run `pipeflow verify`, then `pipeflow fetch` to get it back")


def to_json(done: Exported) -> dict[str, Any]:
    """What ``export --json`` prints."""
    return {"schema": 1, "path": done.path, "model": done.model, "version": done.version,
            "hash": done.hash, "isdir": done.isdir, "dest": done.dest, "name": done.name,
            "files": {"content": done.files[0], "lineage": done.files[1],
                      "card": done.files[2]},
            "replaced": list(done.replaced)}
