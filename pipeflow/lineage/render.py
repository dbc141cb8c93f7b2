"""A lineage as text (a tree), JSON, Graphviz dot, Mermaid, or OpenLineage events.

JSON follows ``docs/lineage.schema.json`` (``schema: 1``). OpenLineage output is one
``RunEvent`` per stage run (COMPLETE, or FAIL for a failed run), one JSON object a
line, oldest first, with pipeflow facets: ``pipeflow_params``,
``pipeflow_fingerprint`` and ``pipeflow_metrics`` on the run, ``pipeflow_version``
on each dataset (beside the standard ``version`` facet holding the content hash).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from pipeflow.lineage.model import ExperimentMark, Lineage, LineageArtifact, LineageRun

FORMATS = ("text", "json", "dot", "mermaid", "openlineage")
LINEAGE_SCHEMA = 1

OPENLINEAGE_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_DATASET_VERSION_FACET = (
    "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json"
    "#/$defs/DatasetVersionDatasetFacet"
)
# Where our custom facets' schemas live: the $defs of docs/lineage.schema.json at
# the release tag (the spec asks for an immutable, versioned URL per facet schema).
FACETS_SCHEMA = "https://github.com/pipeflow/pipeflow/blob/v{version}/docs/lineage.schema.json"
# A fixed namespace makes runId a stable UUID of the record id (OpenLineage wants
# a UUID; our records are named by SHA-256).
_RUN_NAMESPACE = uuid.UUID("6f1d2c9e-2b7a-4d59-9a53-0c1f3e5b8a47")


def render(lineage: Lineage, fmt: str) -> str:
    """``lineage`` in one of FORMATS, as text ending with a newline."""
    if fmt == "text":
        return to_text(lineage)
    if fmt == "json":
        return json.dumps(to_json(lineage), indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "dot":
        return to_dot(lineage)
    if fmt == "mermaid":
        return to_mermaid(lineage)
    if fmt == "openlineage":
        return "".join(json.dumps(e, ensure_ascii=False, sort_keys=True, default=str) + "\n"
                       for e in to_openlineage(lineage))
    raise ValueError(f"unknown lineage format {fmt!r}")


# --- text --------------------------------------------------------------------------


def when(stamp: str | None) -> str:
    """A record's ISO time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    if not stamp:
        return "?"
    return stamp[:19].replace("T", " ") + (" UTC" if stamp.endswith("+00:00") else "")


def size_text(n: int | None) -> str:
    """A size in bytes, readably."""
    if n is None:
        return "? B"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _artifact_line(a: LineageArtifact) -> str:
    label = f"{a.version} ({a.hash[:8]})" if a.version else (a.hash[:8] or "-")
    parts = [f"{a.path}  {label}"]
    if a.size is not None:
        parts.append(size_text(a.size) + (" folder" if a.isdir else ""))
    if a.within is not None:
        inside = f"{a.within.version} " if a.within.version else ""
        parts.append(f"in {a.within.path} {inside}({a.within.hash[:8]})")
    if a.status == "git":
        parts.append(a.note or "in git")
    elif a.status == "untracked":
        parts.append("UNTRACKED INPUT: no run, `pipeflow add` or git commit recorded it")
    elif a.status == "absent":
        parts.append("absent when the run started")
    if a.runs > 1:
        parts.append(f"made by {a.runs} runs")
    return "  ".join(parts)


def _run_lines(run: LineageRun) -> tuple[str, list[str]]:
    """The run's headline and its detail lines."""
    if run.kind == "add":
        head = f"source data, added by {run.who.describe()} {when(run.ended)}"
        details = []
        if run.git_commit:
            details.append(f"git      {run.git_commit[:12]}")
        if run.problem:
            details.append(f"PROBLEM  {run.problem}")
        if run.trust is not None:
            details.append(f"trust    {run.trust.describe()}")
        return head, details
    status = "" if run.exit_status in (0, None) else f" · exit {run.exit_status}"
    duration = f" · {run.duration:.2f} s" if run.duration is not None else ""
    head = f"{run.stage or '?'} · run {run.id[:12]} · {when(run.started)}{duration}{status}"
    d: list[str] = []
    if run.problem:
        d.append(f"PROBLEM  {run.problem}")
    if run.trust is not None:
        vouch = "" if run.trust.signed else ": nothing vouches for who wrote it (docs/remotes.md)"
        d.append(f"trust    {run.trust.describe()}{vouch}")
    if run.restored_by:
        d.append(f"restored from the run cache by {run.restored_by[:12]}")
    if run.nondeterministic is not None:
        d.append(run.nondeterministic.sentence())
    if run.command:
        d.append("command  " + run.command[0])
        d.extend("         " + c for c in run.command[1:])
    if run.experiment is not None:
        d.append(_experiment_line(run.experiment, run.params))
    params = _params_lines(run)
    if params:
        d.append("params   " + params[0])
        d.extend("         " + p for p in params[1:])
    if run.code:
        d.append("code     " + ", ".join(f"{c.path} ({c.hash[:8] or 'absent'})"
                                         for c in run.code))
    plain = {k: v for k, v in run.env.items() if k != "packages"}
    if plain:
        d.append("env      " + ", ".join(f"{k}={_scalar(v)}" for k, v in plain.items()))
    if run.env.get("packages"):
        d.append("packages " + packages_text(run.env["packages"]))
    if run.git_commit or run.dirty_paths:
        dirty = f" (modified: {', '.join(run.dirty_paths)})" if run.dirty_paths else ""
        d.append(f"git      {(run.git_commit or 'no commit')[:12]}{dirty}")
    if run.user or run.host:
        version = f", pipeflow {run.pipeflow_version}" if run.pipeflow_version else ""
        d.append(f"by       {run.who.describe()} on {run.host or '?'}{version}")
    return head, d


PACKAGES_SHOWN = 6
"""Distributions a run's text line names before ``(+N)``; ``--json`` has them all."""


def packages_text(packages: Mapping[str, Any], shown: int = PACKAGES_SHOWN) -> str:
    """``numpy 2.1.0, scikit-learn 1.5.2, ... (+N)``: a run's distributions, by name."""
    names = sorted(packages, key=str.lower)
    words = [f"{n} {packages[n] if packages[n] is not None else '(not installed)'}"
             for n in names[:shown]]
    more = f" (+{len(names) - shown})" if len(names) > shown else ""
    return ", ".join(words) + more


def _params_lines(run: LineageRun) -> list[str]:
    """``file: k=v, ...`` per params file; a key set for the run's experiment on a line
    of its own: ``file: train.C = 10 (set for experiment lr-high)``."""
    exp = run.experiment
    lines = []
    for f, values in run.params.items():
        plain = {k: v for k, v in values.items() if exp is None or not exp.overrides_key(f, k)}
        if plain:
            lines.append(f"{f}: " + ", ".join(f"{k}={_scalar(v)}" for k, v in plain.items()))
        lines.extend(f"{f}: {k} = {_scalar(v)} (set for experiment {exp.name})"
                     for k, v in values.items() if exp is not None and k not in plain)
    return lines


def _experiment_line(exp: ExperimentMark, params: Mapping[str, Mapping[str, Any]]) -> str:
    """The experiment a run was made for, and what it set that this run did not read."""
    line = f"exp      {exp.name} (id {exp.id[:12]})"
    unread = [f"{k}={_scalar(v)}" for f, keys in exp.overrides.items()
              for k, v in keys.items() if k not in params.get(f, {})]
    if unread:
        line += "; also set, not read by this stage: " + ", ".join(unread)
    return line


def to_text(lineage: Lineage) -> str:
    """A tree: each artifact, beneath it the run that made it with what that run
    recorded, beneath that the run's inputs, and so on down to source data."""
    lines: list[str] = []
    shown: set[str] = set()

    def artifact(aid: str, prefix: str, last: bool, top: bool) -> None:
        a = lineage.artifacts.get(aid)
        branch = "" if top else ("└── " if last else "├── ")
        if a is None:  # an input the walk did not reach (it never does; be safe)
            lines.append(f"{prefix}{branch}{aid}")
            return
        lines.append(f"{prefix}{branch}{_artifact_line(a)}")
        inner = prefix + ("" if top else ("    " if last else "│   "))
        for extra in filter(None, (a.note if a.status == "output" else None, a.problem)):
            lines.append(f"{inner}    ({extra})")
        run = lineage.producer_of(a)
        if run is None:
            return
        head, details = _run_lines(run)
        if run.id in shown:
            lines.append(f"{inner}└── {head.split(' · ')[0]} · run {run.id[:12]} (shown above)")
            return
        shown.add(run.id)
        lines.append(f"{inner}└── {head}")
        body = inner + "    "
        lines.extend(f"{body}{line}" for line in details)
        for i, dep in enumerate(run.inputs):
            artifact(dep, body, i == len(run.inputs) - 1, False)

    artifact(lineage.target, "", True, True)
    lines += _audit_lines(lineage)
    problems = lineage.problems
    if problems:
        lines.append("")
        lines.append(f"{len(problems)} problem(s) met on the way (run `pipeflow verify`):")
        lines.extend(f"  {p}" for p in problems)
    return "\n".join(lines) + "\n"


def _audit_lines(lineage: Lineage) -> list[str]:
    """The target version's last reproduction (``never reproduced`` only in a
    project that reproduces versions: elsewhere it would be noise on every lineage)."""
    from pipeflow.lineage.verdicttext import headline, stage_lines

    audit = lineage.audit
    if audit is None or (audit.last is None and not audit.any_in_project):
        return []
    if audit.last is None:
        return ["", "never reproduced (`pipeflow reproduce` rebuilds it and says whether it "
                    "comes out the same)"]
    return ["", headline(audit.last, audit.earlier),
            *(f"  {line}" for line in stage_lines(audit.last))]


# --- json --------------------------------------------------------------------------


def artifact_json(a: LineageArtifact) -> dict[str, Any]:
    """One artifact as ``lineage --format json`` lists it."""
    return {
        "id": a.id, "path": a.path, "hash": a.hash, "size": a.size, "isdir": a.isdir,
        "status": a.status, "version": a.version, "producer": a.producer, "runs": a.runs,
        "within": None if a.within is None else {
            "path": a.within.path, "hash": a.within.hash, "version": a.within.version},
        "note": a.note, "problem": a.problem,
    }


def run_json(r: LineageRun) -> dict[str, Any]:
    """One run as ``lineage --format json`` lists it."""
    return {
        "id": r.id, "kind": r.kind, "stage": r.stage, "command": list(r.command),
        "fingerprint": r.fingerprint, "exit_status": r.exit_status, "started": r.started,
        "ended": r.ended, "duration": r.duration, **r.who.to_json(), "host": r.host,
        "pipeflow_version": r.pipeflow_version,
        "git": {"commit": r.git_commit, "dirty_paths": list(r.dirty_paths)},
        "params": {f: dict(v) for f, v in r.params.items()},
        "code": [{"path": c.path, "hash": c.hash} for c in r.code],
        "env": dict(r.env),
        "inputs": list(r.inputs),
        "outputs": [{"path": o.path, "hash": o.hash, "size": o.size, "kind": o.kind,
                     "version": o.version} for o in r.outputs],
        "metrics": {p: dict(v) for p, v in r.metrics.items()},
        "restored_by": r.restored_by, "problem": r.problem,
        "trust": r.trust.to_json() if r.trust is not None else None,
        "experiment": r.experiment.to_json() if r.experiment is not None else None,
        "nondeterministic": (r.nondeterministic.to_json() if r.nondeterministic is not None
                             else None),
    }


def to_json(lineage: Lineage) -> dict[str, Any]:
    """The lineage as plain data (``docs/lineage.schema.json``)."""
    return {
        "schema": LINEAGE_SCHEMA,
        "target": lineage.target,
        "artifacts": [artifact_json(a) for a in lineage.artifacts.values()],
        "runs": [run_json(r) for r in lineage.runs.values()],
        "problems": lineage.problems,
        "reproduction": lineage.audit.to_json() if lineage.audit is not None else None,
    }


# --- graphs ------------------------------------------------------------------------


def _edges(lineage: Lineage) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str]]]:
    """Node ids (a0.., r0..) for artifacts and runs, and edges input -> run -> output."""
    art_ids = {aid: f"a{i}" for i, aid in enumerate(lineage.artifacts)}
    run_ids = {rid: f"r{i}" for i, rid in enumerate(lineage.runs)}
    edges: list[tuple[str, str]] = []
    for aid, a in lineage.artifacts.items():
        if a.producer in run_ids:
            edges.append((run_ids[a.producer], art_ids[aid]))
    for rid, run in lineage.runs.items():
        for dep in run.inputs:
            if dep in art_ids:
                edges.append((art_ids[dep], run_ids[rid]))
    return art_ids, run_ids, list(dict.fromkeys(edges))


def _art_label(a: LineageArtifact) -> str:
    label = f"{a.path}\n{a.version + ' ' if a.version else ''}{a.hash[:8]}"
    if a.status in ("untracked", "absent"):
        label += f"\n({a.status})"
    return label


def _run_label(r: LineageRun) -> str:
    if r.kind == "add":
        return f"pipeflow add\n{r.user or ''}"
    params = ", ".join(f"{k}={_scalar(v)}" for values in r.params.values()
                       for k, v in values.items())
    label = f"{r.stage}\nrun {r.id[:8]}"
    if r.experiment is not None:
        label += f"\nexperiment {r.experiment.name}"
    if r.nondeterministic is not None:
        label += "\n(NONDETERMINISTIC)"
    return (label + (f"\n{params}" if params else "") + ("\n(PROBLEM)" if r.problem else "")
            + ("\n(unsigned, from elsewhere)" if r.trust is not None else ""))


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(lineage: Lineage) -> str:
    """Graphviz: artifacts as notes, runs as boxes, edges from inputs to outputs."""
    art_ids, run_ids, edges = _edges(lineage)
    lines = ["digraph lineage {", "  rankdir=BT;", '  node [fontname="Helvetica"];']
    for aid, a in lineage.artifacts.items():
        style = ', style=dashed' if a.status in ("untracked", "absent") else ""
        shape = "cylinder" if a.status == "source" else "note"
        lines.append(f"  {art_ids[aid]} [shape={shape}{style}, label={_dot_quote(_art_label(a))}];")
    for rid, r in lineage.runs.items():
        color = ', color=red' if r.problem else ""
        lines.append(f"  {run_ids[rid]} [shape=box{color}, label={_dot_quote(_run_label(r))}];")
    lines.extend(f"  {a} -> {b};" for a, b in edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_quote(text: str) -> str:
    escaped = text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;")
    return '"' + escaped.replace(">", "#gt;").replace("\n", "<br/>") + '"'


def to_mermaid(lineage: Lineage) -> str:
    """A Mermaid flowchart: inputs at the bottom, the target at the top."""
    art_ids, run_ids, edges = _edges(lineage)
    lines = ["flowchart BT"]
    for aid, a in lineage.artifacts.items():
        label = _mermaid_quote(_art_label(a))
        shape = f"[({label})]" if a.status == "source" else f"[/{label}/]" if (
            a.status in ("untracked", "absent")) else f"[{label}]"
        lines.append(f"  {art_ids[aid]}{shape}")
    for rid, r in lineage.runs.items():
        lines.append(f"  {run_ids[rid]}{{{{{_mermaid_quote(_run_label(r))}}}}}")
    lines.extend(f"  {a} --> {b}" for a, b in edges)
    return "\n".join(lines) + "\n"


# --- OpenLineage -------------------------------------------------------------------


def run_uuid(record_id: str) -> str:
    """The OpenLineage runId of a record: a UUID derived from its SHA-256 id."""
    return str(uuid.uuid5(_RUN_NAMESPACE, record_id))


def _facet(name: str, body: dict[str, Any], version: str) -> dict[str, Any]:
    return {"_producer": _producer(version),
            "_schemaURL": FACETS_SCHEMA.format(version=version) + f"#/$defs/{name}",
            **body}


def _producer(version: str) -> str:
    return f"https://pypi.org/project/pipeflow/{version}/"


def _dataset(path: str, oid: str, label: str | None, version: str) -> dict[str, Any]:
    return {
        "namespace": "file",
        "name": path,
        "facets": {
            "version": {"_producer": _producer(version), "_schemaURL": _DATASET_VERSION_FACET,
                        "datasetVersion": oid},
            "pipeflow_version": _facet("PipeflowVersionDatasetFacet",
                                       {"hash": oid, "label": label}, version),
        },
    }


def to_openlineage(lineage: Lineage) -> list[dict[str, Any]]:
    """One OpenLineage RunEvent per stage run of the lineage, oldest first."""
    from pipeflow.version import __version__
    events = []
    runs = [r for r in lineage.runs.values() if r.kind != "add"]
    for run in sorted(runs, key=lambda r: (r.ended or "", r.id)):
        version = run.pipeflow_version or __version__
        inputs = []
        for aid in run.inputs:
            art = lineage.artifacts.get(aid)
            path, _, oid = aid.rpartition("@")
            inputs.append(_dataset(path, oid, art.version if art else None, version))
        outputs = [_dataset(o.path, o.hash, o.version, version) for o in run.outputs]
        facets = {
            "pipeflow_params": _facet(
                "PipeflowParamsRunFacet",
                {"params": {f: dict(v) for f, v in run.params.items()},
                 "experiment": run.experiment.to_json() if run.experiment else None}, version),
            "pipeflow_fingerprint": _facet(
                "PipeflowFingerprintRunFacet",
                {"fingerprint": run.fingerprint, "record": run.id,
                 "code": {c.path: c.hash for c in run.code}, "env": dict(run.env),
                 "gitCommit": run.git_commit, "dirtyPaths": list(run.dirty_paths),
                 "user": run.user, "host": run.host,
                 "trust": run.trust.to_json() if run.trust is not None else None}, version),
            "pipeflow_metrics": _facet("PipeflowMetricsRunFacet",
                                       {"metrics": {p: dict(v) for p, v in run.metrics.items()}},
                                       version),
        }
        events.append({
            "eventType": "COMPLETE" if run.exit_status in (0, None) else "FAIL",
            "eventTime": run.ended or run.started or "1970-01-01T00:00:00+00:00",
            "producer": _producer(version),
            "schemaURL": OPENLINEAGE_SCHEMA,
            "run": {"runId": run_uuid(run.id), "facets": facets},
            "job": {"namespace": "pipeflow", "name": run.stage or "unknown"},
            "inputs": inputs,
            "outputs": outputs,
        })
    return events
