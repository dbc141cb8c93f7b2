"""``pipeflow versions``: the history of one path (aliases: pipeflow.registry)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from pipeflow.errors import UsageError
from pipeflow.lineage import tags as tagfile
from pipeflow.lineage.labels import Relabel
from pipeflow.lineage.pathspec import split_spec
from pipeflow.lineage.tags import LogProblem
from pipeflow.lineage.versions import Version, list_versions
from pipeflow.lineage.who import Who
from pipeflow.lock.lockfile import FileEntry
from pipeflow.project.project import LOCK_FILE, Project


def _locked_entries(repo: Project) -> dict[str, FileEntry]:
    from pipeflow.lock import lockconflict
    from pipeflow.ops.checkout import out_entries_all

    # in a merge conflict, an entry in conflict has no current version
    return out_entries_all(lockconflict.read(repo.lock_path, LOCK_FILE).lock)


@dataclass(frozen=True)
class VersionList:
    """What ``pipeflow versions PATH`` shows."""

    path: str
    versions: list[Version]
    in_git: bool
    """False outside a git repository: every version is then local."""
    problems: tuple[LogProblem, ...]
    """Lines of the tag log that were skipped (``verify`` explains, ``--repair`` fixes)."""
    relabeled: tuple[Relabel, ...] = ()
    """Labels shown before in this clone that now name other content."""
    unfetched: tuple[tuple[str, str], ...] = ()
    """(label, hash) of committed versions whose run records this clone lacks."""
    unsigned: dict[str, str] = field(default_factory=dict)
    """First-run id -> ``unsigned, from remote 'NAME'`` for runs this clone did not
    write (pipeflow.lineage.trust): shown beside the run, never taken as fact."""
    who: dict[str, Who] = field(default_factory=dict)
    """First-run id -> who ran it (``alice (signed)``, ``bob@x (unverified)``)."""
    model: str | None = None
    """The declared model named instead of the path, if one was."""


def versions(repo: Project, target: str, *, sort: str | None = None) -> VersionList:
    """Every version of the path (or declared model) ``target`` names: committed ones
    by label, then the local ones (or by ``sort``: ``metrics.KEY`` ranks by a metric,
    highest first; ``size``; ``time``). What differs is always against the version
    before by label, whatever the sort."""
    from pipeflow.lineage.labels import version_labels

    locked = _locked_entries(repo)
    path, version = split_spec(repo, target, set(locked))
    if version is not None:
        raise UsageError("`versions` takes a path or a model, not PATH@VERSION")
    log = tagfile.read(repo)
    labels = version_labels(repo.root, repo.index)
    model: str | None = None

    def listed(path: str) -> list[Version]:
        current = locked.get(path)
        return list_versions(repo, path, current_hash=current.hash if current else None,
                             tags=log.tags_of(path), labels=labels, notes=log.notes_of(path))

    found = listed(path)
    if not found:
        model, path = _model_path(repo, target, path)
        found = listed(path)
    if not found:
        raise UsageError(f"model '{model}' ({path}) has no recorded versions",
                         hint="versions are recorded when `pipeflow repro` produces it")
    if sort:
        found = _sorted(found, sort)
    hashes = {v.hash for v in found}
    unfetched = tuple((f"v{n}", oid) for oid, n in sorted(labels.numbers(path).items(),
                                                          key=lambda item: item[1])
                      if oid not in hashes)
    return VersionList(path, found, labels.in_git, log.problems,
                       tuple(labels.relabel(path)), unfetched, _unsigned(repo, found),
                       _who(repo, found), model)



def _model_path(repo: Project, target: str, path: str) -> tuple[str, str]:
    """(model, its path) for ``target`` naming a model the pipeline declares (asked
    only when ``path`` has no recorded versions: ``versions`` of a path never loads the
    spec); a UsageError, with the model it may have meant, otherwise. The model
    lookup lives here, not in ``pipeflow.registry`` (a layer above ops)."""
    from pipeflow.errors import PipeflowError
    from pipeflow.ops.project import load_project

    try:
        pipeline = load_project(repo).graph.pipeline
        models = {out.model: out.path for stage in pipeline.stages.values()
                  for out in stage.outs if out.model is not None}
    except PipeflowError:
        models = {}  # no readable spec: `target` can only be a path
    if target in models:
        return target, models[target]
    close = difflib.get_close_matches(target, list(models), n=1)
    hint = (f"did you mean the model '{close[0]}'?" if close else
            "versions are recorded when `pipeflow repro` or `pipeflow add` produces the path")
    raise UsageError(f"'{path}' has no recorded versions", hint=hint)


def _unsigned(repo: Project, found: list[Version]) -> dict[str, str]:
    from pipeflow.lineage.trust import TrustPolicy
    from pipeflow.records.batch import rels_of

    policy = TrustPolicy.of(repo)
    rels = rels_of(repo.index, [v.first_run for v in found])
    out: dict[str, str] = {}
    for v in found:
        rel = rels.get(v.first_run)
        what = policy.describe_rel(rel) if rel else ""
        if what:
            out[v.first_run] = what
    return out


def _who(repo: Project, found: list[Version]) -> dict[str, Who]:
    from pipeflow.lineage.trust import TrustPolicy
    from pipeflow.records.batch import users_and_files

    policy = TrustPolicy.of(repo)
    # the user and the record file from the index, in bulk: no record is read unless
    # it has a signature to check (5,000 versions read 5,000 records: 2 s)
    rows = users_and_files(repo.index, {v.first_run for v in found})
    return {rid: Who(user, policy.verdict(rel)) for rid, (user, rel) in rows.items()}


def _sorted(found: list[Version], key: str) -> list[Version]:
    if key in ("time", "version"):
        return found
    if key == "size":
        return sorted(found, key=lambda v: v.size or 0, reverse=True)
    if key.startswith("metrics."):
        name = key.removeprefix("metrics.")

        def value(v: Version) -> tuple[int, Any]:
            for k, val in v.metrics.items():
                if k.split(":", 1)[-1] == name and isinstance(val, (int, float)):
                    return (1, val)
            return (0, 0)

        if not any(value(v)[0] for v in found):
            known = sorted({k.split(":", 1)[-1] for v in found for k in v.metrics})
            raise UsageError(f"no version has a metric '{name}'",
                             hint=f"metrics recorded: {', '.join(known) or 'none'}")
        return sorted(found, key=value, reverse=True)
    raise UsageError(f"cannot sort by '{key}'", hint="use time, size or metrics.NAME")


def repair_tags(repo: Project, *, wait: float = 0.0) -> tagfile.RepairReport:
    """Rewrite the tag log keeping every valid line; damaged ones go to
    ``.pipeflow/state/tags.jsonl.damaged``."""
    from pipeflow.project.provenance import provenance

    with repo.lock(wait=wait):
        return tagfile.repair(repo.dot, repo.records.chain, provenance(repo).user,
                              signer=repo.signer)
