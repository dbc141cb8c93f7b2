"""``pipeflow models``, ``promote``, ``rollback``, ``aliases``, ``note`` and the ``tag``
group: the registry's commands (docs/registry.md). ``tag`` and ``promote`` are one
mechanism: both move an alias."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose, Wait

if TYPE_CHECKING:
    from pipeflow.registry.aliases import AliasMove
    from pipeflow.registry.aliaslist import AliasReport, HistoryMove
    from pipeflow.registry.catalog import Catalog, ModelVersion

Target = Annotated[str, typer.Argument(
    metavar="MODEL_OR_PATH@VERSION",
    help="A declared model or an output path, and its version: vN, a hash prefix or "
         "an alias.")]
AliasName = Annotated[str, typer.Argument(
    metavar="ALIAS", help="An alias name: production, staging, production-eu, canary...")]
Note = Annotated[str | None, typer.Option("--note", "-m", help="Why: kept with the move.")]


def _warn_log(problems: Any, refused: Any = ()) -> None:
    from pipeflow.cli.history import tag_warnings

    tag_warnings(problems)
    for message in refused:
        output.warn(message)


def _move_json(move: AliasMove) -> dict[str, Any]:
    v = move.version
    return {"schema": 1, "alias": move.alias, "model": move.model, "path": move.path,
            "kind": move.kind, "version": v.label if v else None, "hash": v.hash if v else None,
            "previous": move.previous, "previous_version": move.previous_label,
            "signed_by": move.signer, "signature": move.signature}


def print_move(move: AliasMove, json_out: bool) -> None:
    _warn_log(move.problems)
    if json_out:
        output.emit_json(_move_json(move))
        return
    owner = move.model or move.path
    signed = {"trusted": f"; signed by {move.signer}",
              "untrusted": f"; signed with key '{move.signer}', which keys.trusted does "
                           "not list"}.get(move.signature, "")
    if move.kind == "delete":
        output.out(f"deleted alias {move.alias} of {owner} (it named {move.previous_label})"
                   f"{signed}")
        return
    v = move.version
    if move.kind == "none" and v is not None:
        output.out(f"{move.alias} already names {owner} {v.label} ({v.hash[:8]}): nothing "
                   "written (`--note` records a move anyway)")
        return
    was = (f" (was {move.previous[:8]})" if move.previous and v and move.previous != v.hash
           else "")
    what = "rolled back: " if move.kind == "rollback" else ""
    label = f"{v.label} ({v.hash[:8]})" if v else "?"
    output.out(f"{what}{move.alias} -> {owner} {label}{was}{signed}")


def promote_command(target: Target, alias: AliasName, note: Note = None, wait: Wait = 0.0,
                    json_out: Json = False, verbose: Verbose = False) -> None:
    """Point ALIAS at a version of a model (or of any output path).

    Aliases are free names; any number may name versions of one model at once
    (production-eu and production-us, canary). Every move is kept: who, when, from,
    to, note; commit .pipeflow/tags.jsonl to share it (git merges two clones' moves).
    `pipeflow tag` is the same command.

    \b
    Examples:
      pipeflow promote wine-classifier@v3 production --note "beats v2 on March data"
      pipeflow promote models/model.pkl@3fa9c2d1 canary
    """
    from pipeflow.project.project import Project
    from pipeflow.registry.aliases import promote

    with Project.find() as repo:
        move = promote(repo, target, alias, note=note, wait=wait)
    print_move(move, json_out)


def rollback_command(
    alias: AliasName,
    model: Annotated[str | None, typer.Argument(
        metavar="[MODEL]", help="The model (or path) whose alias to roll back; needed "
                                "when several have ALIAS.")] = None,
    note: Note = None, wait: Wait = 0.0, json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Move ALIAS back to the version it named before its last move.

    The rollback is a move of its own in the history; a second rollback goes back
    one more. Then `pipeflow checkout MODEL@ALIAS` puts that version in the
    workspace.

    \b
    Examples:
      pipeflow rollback production
      pipeflow rollback production-eu wine-classifier --note "v4 drifts on EU traffic"
    """
    from pipeflow.project.project import Project
    from pipeflow.registry.aliases import rollback

    with Project.find() as repo:
        move = rollback(repo, alias, model, note=note, wait=wait)
    print_move(move, json_out)


def aliases_command(
    model: Annotated[str | None, typer.Argument(
        metavar="[MODEL_OR_PATH]", help="Only this model's (or path's) aliases.")] = None,
    history: Annotated[bool, typer.Option(
        "--history", help="Every move: who, when, from, to, note, signature.")] = False,
    json_out: Json = False, verbose: Verbose = False,
) -> None:
    """Where each alias points (with --history: every move that took it there).

    \b
    Examples:
      pipeflow aliases
      pipeflow aliases wine-classifier --history --json
    """
    from pipeflow.project.project import Project
    from pipeflow.registry.aliaslist import aliases

    with Project.find() as repo:
        report = aliases(repo, model)
    _print_aliases(report, history, json_out)


def _print_aliases(report: AliasReport, history: bool, json_out: bool) -> None:
    _warn_log(report.problems, report.refused)
    if json_out:
        body: dict[str, Any] = {"schema": 1,
                                "aliases": [a.to_json() for a in report.aliases]}
        if history:
            body["history"] = [m.to_json() for m in report.history]
        output.emit_json(body)
        return
    if history:
        for m in report.history:
            when = m.when[:19].replace("T", " ")
            to = f"{m.to_label}" if m.to_hash else "(deleted)"
            frm = f"{m.from_label} -> " if m.from_hash else ""
            kind = "" if m.kind == "move" else f" [{m.kind}]"
            refused = f"  IGNORED: {m.refused}" if m.refused else ""
            note = f"  \"{m.note}\"" if m.note else ""
            output.out(f"{when}  {m.model or m.path}  {m.alias}: {frm}{to}{kind}  "
                       f"{who(m)}{note}{refused}")
        if not report.history:
            output.out("no alias has been moved yet")
        return
    if not report.aliases:
        output.out("no aliases yet: `pipeflow promote MODEL@VERSION ALIAS` makes one")
    for a in report.aliases:
        when = a.last.when[:19].replace("T", " ")
        back = f"  (rollback -> {a.rollback_to})" if a.rollback_to else ""
        output.out(f"{a.model or a.path}  {a.alias} -> {a.label} ({a.hash[:8]})  "
                   f"by {who(a.last)} {when}{back}")


def who(move: HistoryMove) -> str:
    """``alice (signed)``, ``mallory (untrusted key)``, ``bob@x (unsigned)``."""
    if move.signature == "trusted":
        return f"{move.signer} (signed)"
    mark = {"untrusted": "untrusted key", "invalid": "BAD SIGNATURE"}.get(move.signature,
                                                                           "unsigned")
    return f"{move.user} ({mark})"


def note_command(
    target: Target,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The note.")],
    wait: Wait = 0.0, json_out: Json = False, verbose: Verbose = False,
) -> None:
    """Add a note to a version (`versions` and `models` show it).

    \b
    Examples:
      pipeflow note wine-classifier@v3 "trained on the March export; EU only"
    """
    from pipeflow.project.project import Project
    from pipeflow.registry.notes import note

    with Project.find() as repo:
        done = note(repo, target, text, wait=wait)
    if json_out:
        output.emit_json({"schema": 1, "model": done.model, "path": done.path,
                          "version": done.version.label, "hash": done.version.hash,
                          "note": done.note.text, "user": done.note.user,
                          "when": done.note.when})
        return
    output.out(f"noted {done.model or done.path} {done.version.label} "
               f"({done.version.hash[:8]})")


def models_command(json_out: Json = False, verbose: Verbose = False) -> None:
    """Every declared model: its versions, where its aliases point, key metrics.

    Declare a model in pipeline.yaml: `outs: - models/model.pkl: {model: NAME}`.

    \b
    Examples:
      pipeflow models
      pipeflow models --json
    """
    from pipeflow.project.project import Project
    from pipeflow.registry.catalog import catalog

    with Project.find() as repo:
        found = catalog(repo)
    _warn_log(found.problems, found.refused)
    if json_out:
        output.emit_json({"schema": 1, "models": [m.to_json() for m in found.models]})
        return
    _print_catalog(found)


def _print_catalog(found: Catalog) -> None:
    if not found.models:
        output.out("no models declared: mark an output in pipeline.yaml, e.g. "
                   "`outs: - models/model.pkl: {model: wine-classifier}`")
    for m in found.models:
        desc = f"  {m.desc}" if m.desc else ""
        output.out(f"{m.name}  {m.path}  {m.versions} version(s){desc}")
        shown = [("latest", m.latest)] if m.latest is not None else []
        rows = [*shown, *sorted(m.aliases.items())]
        width = max((len(label) for label, _v in rows), default=0) + 1
        for label, v in rows:
            output.out(f"  {label:<{width}} {_version_line(v)}")
            if v.params:
                output.out(f"  {'':<{width}} params: {_params_line(v)}")


def _params_line(v: ModelVersion, most: int = 6) -> str:
    """``train.C=2.0, train.seed=1 (+3)``: the params that made the version."""
    flat = [f"{k}={val}" for _f, values in sorted(v.params.items())
            for k, val in sorted(values.items())]
    more = f" (+{len(flat) - most})" if len(flat) > most else ""
    return ", ".join(flat[:most]) + more


def _version_line(v: ModelVersion) -> str:
    metrics = ", ".join(f"{k.split(':', 1)[-1]}={val}" for k, val in list(v.metrics.items())[:4])
    more = f" (+{len(v.metrics) - 4})" if len(v.metrics) > 4 else ""
    note = f"  \"{v.notes[-1].text}\"" if v.notes else ""
    return (f"{v.label} ({v.hash[:8]}) {v.when[:10]}"
            f"{'  ' + metrics + more if metrics else ''}{note}")
