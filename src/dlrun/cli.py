"""The `dlrun` command line: parse, load the config, call one worker. Nothing heavy is imported here."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import typer

from dlrun import __version__, errors
from dlrun.commands import (
    calibrate,
    config as config_commands,
    eval as eval_command,
    export,
    help_text,
    init,
    kfold,
    listing,
    predict,
    report,
    runs,
    sweep,
    train,
    visualize,
)
from dlrun.runs import folder as runs_folder

app = typer.Typer(
    name="dlrun",
    cls=help_text.Group,
    help="Run deep-learning experiments from YAML configs: train, evaluate, compare, visualise.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(
    cls=help_text.Group, help="Show or validate a config without training; print its JSON Schema or reference.", no_args_is_help=True
)
app.add_typer(config_app, name="config")
runs_app = typer.Typer(cls=runs.ListByDefault, help=runs.HELP)
app.add_typer(runs_app, name="runs")
sweep_app = typer.Typer(cls=sweep.Group, invoke_without_command=True)


def _reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn DlrunError into one stderr line and its exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except errors.DlrunError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) outside a run's lifecycle, which says more
            typer.echo("interrupted", err=True)
            raise typer.Exit(errors.Interrupted.exit_code) from None
        finally:
            runs_folder.release_locks()  # a command run in-process (tests, embedding) frees its run folders

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dlrun {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Run deep-learning experiments from YAML configs."""


app.command("train", cls=help_text.Command)(_reports_errors(train.train))
app.command("list", cls=help_text.Command)(_reports_errors(listing.list_registries))
app.command("eval", cls=help_text.Command)(_reports_errors(eval_command.evaluate))
app.command("kfold", cls=help_text.Command)(_reports_errors(kfold.kfold))
app.command("predict", cls=help_text.Command)(_reports_errors(predict.predict))
app.command("export", cls=help_text.Command)(_reports_errors(export.export))
app.command("init", cls=help_text.Command)(_reports_errors(init.init))
app.command("report", cls=help_text.Command)(_reports_errors(report.report))
sweep_app.callback()(_reports_errors(sweep.sweep))
sweep_app.command("dashboard", cls=help_text.Command)(_reports_errors(sweep.dashboard))
app.add_typer(sweep_app, name="sweep")
app.command("calibrate", cls=help_text.Command)(_reports_errors(calibrate.calibrate))
runs_app.command("list", cls=help_text.Command)(_reports_errors(runs.list_runs))
runs_app.command("compare", cls=help_text.Command)(_reports_errors(runs.compare))
runs_app.command("clean", cls=help_text.Command)(_reports_errors(runs.clean))
config_app.command("show", cls=help_text.Command)(_reports_errors(config_commands.show))
config_app.command("validate", cls=help_text.Command)(_reports_errors(config_commands.validate))
config_app.command("schema", cls=help_text.Command)(_reports_errors(config_commands.schema))
config_app.command("docs", cls=help_text.Command)(_reports_errors(config_commands.docs))
app.add_typer(visualize.typer_app(_reports_errors), name="visualize")


def main() -> None:
    """Console-script entry point. It ends the process (see `_exit`): call `app` to embed the CLI."""
    try:
        app(prog_name="dlrun")
    except SystemExit as done:
        _exit(done.code)
    _exit(0)


def _exit(code: str | int | None) -> None:
    """Leave with `code`, skipping the interpreter's module-by-module teardown once Keras is loaded.

    Keras brings JAX or TensorFlow, scikit-learn, SciPy and pandas with it; freeing them one by one
    at exit achieves nothing yet is a noticeable share of a short JAX run (measured in BENCHMARKS.md,
    "Keras backends"). By now every file dlrun wrote is closed and renamed into place; the exit
    handlers (Ray, MLflow, logging) still run and stdout and stderr are flushed. Without Keras, or
    with another non-daemon thread still running, Python exits as usual.
    """
    import threading

    others = [thread for thread in threading.enumerate() if thread is not threading.main_thread() and not thread.daemon]
    if "keras" not in sys.modules or others:
        sys.exit(code)
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): Python prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(code)


if __name__ == "__main__":
    main()  # never returns: it ends the process
