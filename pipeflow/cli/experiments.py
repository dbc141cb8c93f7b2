"""``pipeflow exp``: the experiments group (run, show, diff, apply, remove).

Each verb lives in its own module (``exp_run``, ``exp_show``, ``exp_apply``); this one
only gathers them, importing nothing else."""

from __future__ import annotations

import typer


def exp_app() -> typer.Typer:
    """The ``exp`` group."""
    from pipeflow.cli import exp_apply, exp_run, exp_show

    app = typer.Typer(
        help="Experiments: try params without editing files, compare, keep the best.\n\n"
             "A day: `pipeflow exp run --set train.C=0.1,1,10`, then "
             "`pipeflow exp show --sort -metrics.accuracy`, then "
             "`pipeflow exp apply NAME` and commit; `pipeflow push` shares them.",
        no_args_is_help=True, rich_markup_mode=None)
    app.command("run")(exp_run.run_command)
    app.command("show")(exp_show.show_command)
    app.command("diff")(exp_show.diff_command)
    app.command("apply")(exp_apply.apply_command)
    app.command("remove")(exp_apply.remove_command)
    return app
