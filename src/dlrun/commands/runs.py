"""`dlrun runs [ROOT]` (the table of runs), `dlrun runs compare RUN_DIR...` and `dlrun runs clean [RUNS_ROOT]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dlrun.commands import help_text

HELP = (
    "List the runs under a folder (`dlrun runs [ROOT]`), compare runs (`dlrun runs compare RUN_DIR...`), or free "
    "disk space (`dlrun runs clean [RUNS_ROOT]`)."
)


class ListByDefault(help_text.Group):
    """`dlrun runs ...` without a sub-command means `dlrun runs list ...`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args and ctx.resilient_parsing:  # shell completion of `dlrun runs <TAB>`: offer list and compare
            return super().parse_args(ctx, args)
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


def list_runs(
    root: Path = typer.Argument(Path("runs"), help="The folder that holds the run folders."),
    name: str = typer.Option(None, "--name", help="Only runs whose name contains this (or matches this glob).", show_default=False),
    status: str = typer.Option(
        None, "--status", help="Only runs with this status (running, completed, failed, interrupted, pruned, crashed).", show_default=False
    ),
    wide: bool = typer.Option(False, "--wide", help="Show every column, however wide the table gets (default: the columns that fit)."),
    as_json: bool = typer.Option(False, "--json", help="Print the runs as a JSON list of objects, for scripts (see docs/cli-output.md)."),
) -> None:
    """A table of the runs under ROOT, newest first: status, best validation epoch, test score, and more when wide."""
    from dlrun import terminal
    from dlrun.runs import table as runs_table

    if as_json:
        runs_table.check_status(status)
        typer.echo(runs_table.to_json(runs_table.select(runs_table.collect(root), name=name, status=status)))
        return
    runs_table.show(root, terminal.console(), name=name, status=status, wide=wide)


def clean(
    root: Path = typer.Argument(Path("runs"), metavar="[RUNS_ROOT]", help="The folder that holds the run folders."),
    yes: bool = typer.Option(False, "--yes", help="Delete what is listed (without it, nothing is deleted)."),
) -> None:
    """Free disk space: completed runs' resume checkpoints, stale temp files, unused feature-cache entries.

    Lists what would go, with sizes; --yes deletes it.
    """
    from dlrun import terminal
    from dlrun.training import cleanup

    console = terminal.console()
    items = cleanup.plan(root)
    if not items:
        console.print(f"nothing to clean under {terminal.text(root)}", highlight=False, soft_wrap=True)
        return
    if yes:
        items = cleanup.remove(items)
    for item in items:
        console.print(f"{cleanup.human_size(item.size):>9}  {terminal.text(item.path)}  ({item.why})", highlight=False, soft_wrap=True)
    total = cleanup.human_size(sum(item.size for item in items))
    said = f"removed {len(items)} item(s), {total}" if yes else f"would remove {len(items)} item(s), {total}: pass --yes to delete them"
    console.print(said, highlight=False, soft_wrap=True)


def compare(
    run_dirs: list[Path] = typer.Argument(..., metavar="RUN_DIR...", help="Two or more run folders.", show_default=False),
    plot: Path = typer.Option(None, "--plot", help="Also overlay their learning curves in this PNG.", show_default=False),
) -> None:
    """Put runs side by side: the config keys that differ, and their metrics."""
    from dlrun import terminal
    from dlrun.runs import compare as comparison

    comparison.show(run_dirs, terminal.console(), plot=plot)
