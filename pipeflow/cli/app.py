"""The ``pipeflow`` command: typer wiring and the one place errors become exit codes.

Exit status: 0 success; 2 the input is wrong (usage, spec, config, an unreadable lock);
1 the work failed (a stage, a check, the cache, an I/O failure such as a lock that
cannot be written, another writer holding the lock); 130 interrupted (143 SIGTERM);
3 pipeflow itself failed (a bug: rerun with --verbose and report the traceback). Each
error carries its own code: the tree is drawn in :mod:`pipeflow.errors`.
"""

from __future__ import annotations

import sys

EXIT_INTERNAL = 3


def _version_fast_path(argv: list[str]) -> bool:
    if argv in (["--version"], ["-V"]):
        from pipeflow.version import __version__
        sys.stdout.write(f"pipeflow {__version__}\n")
        return True
    return False


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and exit with pipeflow's exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if _version_fast_path(args):
        sys.exit(0)
    sys.exit(run(args))


def run(args: list[str]) -> int:
    """Run the CLI on ``args``; returns the exit status instead of exiting."""
    import click

    from pipeflow.cli import output
    from pipeflow.cli.commands import build_app, invoked_command
    from pipeflow.errors import PipeflowError

    verbose = "--verbose" in args or "-v" in args
    command = build_app(only=invoked_command(args))
    try:
        result = command.main(args, prog_name="pipeflow", standalone_mode=False)
    except PipeflowError as exc:
        output.error(exc)
        if verbose:
            output.traceback_()
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        output.err("interrupted")
        return 130
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        no_such_command = getattr(click.exceptions, "NoSuchCommand", None)  # click >= 8.2
        if no_such_command and isinstance(exc, no_such_command) and "Did you mean" in exc.message:
            exc.possibilities = None  # typer already suggested: click would say it again
        exc.show()
        return 2
    except Exception as exc:
        from pipeflow.files import diskfull

        if not diskfull.is_disk_full(exc):
            return _internal(exc, verbose)
        full = diskfull.error(exc)  # a write with no message of its own: still clear
        output.error(full)
        return full.exit_code
    if result == 130:  # typer turns a Ctrl-C it catches into a silent exit status 130
        output.err("interrupted")
    return int(result) if isinstance(result, int) else 0


def _internal(exc: Exception, verbose: bool) -> int:
    """Report a bug: an exception no part of pipeflow turned into a PipeflowError."""
    from pipeflow.cli import output

    output.err(f"internal error: {type(exc).__name__}: {exc}")
    if verbose:
        output.traceback_()
    else:
        output.err("rerun with --verbose for the traceback, and please report it")
    return EXIT_INTERNAL
