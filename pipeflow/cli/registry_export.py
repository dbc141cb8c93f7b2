"""``export`` and ``env export``: a version out of the registry, with its lineage, its
model card, or the environment it was made in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeflow.cli import output
from pipeflow.cli.options import Json, Verbose

Target = Annotated[str, typer.Argument(
    metavar="MODEL_OR_PATH@VERSION",
    help="A declared model or an output path; VERSION is vN, a hash prefix or an alias.")]


def export_command(
    target: Target,
    dest: Annotated[str, typer.Argument(
        metavar="DEST", help="A folder (created if missing) or an fsspec URL (s3://...).")],
    template: Annotated[str, typer.Option(
        "--name-template", metavar="TEMPLATE",
        help="The exported file's name: {model} {n} {version} {hash} {alias} {stem} {ext} "
             "{date} {params.SECTION.KEY}.")] = "{model}-{version}{ext}",
    force: Annotated[bool, typer.Option(
        "--force", help="Replace entries DEST already holds.")] = False,
    json_out: Json = False,
    verbose: Verbose = False,
) -> None:
    """Copy one version of a model to a folder or URL, under a descriptive name, with
    its lineage (NAME.lineage.json) and a model card (NAME.card.md) beside it.

    The bytes come from the cache and are checked against the version's hash; a
    folder output is exported as a folder. Nothing DEST holds is replaced without
    --force. Example:
    `pipeflow export wine-classifier@production s3://models/ --name-template
    '{model}-v{n}-C{params.train.C}{ext}'`.
    """
    from pipeflow.project.project import Project
    from pipeflow.registry.export import export, to_json

    with Project.find() as repo:
        done = export(repo, target, dest, template=template, force=force)
    from pipeflow.cli.history import tag_warnings

    tag_warnings(done.problems)
    for message in done.refused:
        output.warn(message)
    if json_out:
        output.emit_json(to_json(done))
        return
    what = f"{done.model} ({done.path})" if done.model else done.path
    output.out(f"exported {what} {done.version} ({done.hash[:8]}) to {done.dest}")
    for where in done.files:
        output.out(f"  {where}")
    if done.replaced:
        output.warn(f"replaced {', '.join(done.replaced)}")


def env_app() -> typer.Typer:
    """The ``env`` group."""
    app = typer.Typer(help="The Python environment a version was made in.",
                      no_args_is_help=True, add_completion=False, rich_markup_mode=None)
    app.command("export")(env_export_command)
    return app


def env_export_command(
    target: Target,
    fmt: Annotated[str, typer.Option(
        "--format", metavar="requirements|conda|json",
        help="requirements.txt lines, a conda environment.yml, or JSON.")] = "requirements",
    out_file: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", help="Write to FILE instead of printing.")] = None,
    first: Annotated[bool, typer.Option(
        "--first", help="When the runs used different versions of a package (or of "
                        "Python), take the run nearest the model instead of failing.")
    ] = False,
    verbose: Verbose = False,
) -> None:
    """Write the exact Python version and distributions (name==version) the runs of a
    version's lineage recorded, so that a colleague can recreate the environment.

    Run records keep the distributions a stage's code imports (with what they
    require) and those `env.packages` declares, not everything installed: the
    header says so. Runs that disagree on a version fail (exit 1) unless --first.
    Example: `pipeflow env export wine-classifier@production -o requirements.txt`.
    """
    from pipeflow.errors import UsageError
    from pipeflow.project.project import Project
    from pipeflow.registry.envexport import FORMATS, environment, render

    if fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}'", hint=f"choose one of {', '.join(FORMATS)}")
    with Project.find() as repo:
        env = environment(repo, target, first=first)
    text = render(env, fmt)
    for conflict in env.conflicts:
        output.warn(f"the runs differ, took the run nearest the model: {conflict.describe()}")
    for note in env.notes:
        output.warn(note)
    if out_file is None:
        output.out(text.rstrip("\n"))
        return
    from pipeflow.errors import StorageError
    from pipeflow.files.atomicfile import write_text

    try:
        write_text(out_file, text)
    except OSError as exc:
        raise StorageError(f"cannot write {out_file}: {exc.strerror}") from exc
    output.out(f"wrote {out_file} ({len(env.packages)} distributions, python "
               f"{env.python.chosen if env.python else 'not recorded'})")
