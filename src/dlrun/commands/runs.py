"""`dlrun runs [ROOT]` (the table of runs) and `dlrun runs compare RUN_DIR...`."""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.commands import help_text

HELP = "List the runs under a folder (`dlrun runs [ROOT]`), or compare runs (`dlrun runs compare RUN_DIR...`)."


class ListByDefault(help_text.Group):
    """`dlrun runs ...` without a sub-command means `dlrun runs list ...`."""

    def parse_args(self, ctx, args):
        if not args and ctx.resilient_parsing:  # shell completion of `dlrun runs <TAB>`: offer list and compare
            return super().parse_args(ctx, args)
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


def list_runs(
    root: Path = typer.Argument(Path("runs"), help="The folder that holds the run folders."),
    name: str = typer.Option(None, "--name", help="Only runs whose name contains this (or matches this glob).", show_default=False),
    status: str = typer.Option(None, "--status", help="Only runs with this status (running, completed, failed, interrupted, pruned, crashed).", show_default=False),
    wide: bool = typer.Option(False, "--wide", help="Show every column, however wide the table gets (default: the columns that fit)."),
    as_json: bool = typer.Option(False, "--json", help="Print the runs as a JSON list of objects, for scripts (see docs/cli-output.md)."),
):
    """A table of the runs under ROOT, newest first: status, best validation epoch, test score, and more when wide."""
    from dlrun import terminal
    from dlrun.runs import table as runs_table

    if as_json:
        runs_table.check_status(status)
        typer.echo(runs_table.to_json(runs_table.select(runs_table.collect(root), name=name, status=status)))
        return
    runs_table.show(root, terminal.console(), name=name, status=status, wide=wide)


def compare(
    run_dirs: list[Path] = typer.Argument(..., metavar="RUN_DIR...", help="Two or more run folders.", show_default=False),
    plot: Path = typer.Option(None, "--plot", help="Also overlay their learning curves in this PNG.", show_default=False),
):
    """Put runs side by side: the config keys that differ, and their metrics."""
    from dlrun import terminal
    from dlrun.runs import compare as comparison

    comparison.show(run_dirs, terminal.console(), plot=plot)
