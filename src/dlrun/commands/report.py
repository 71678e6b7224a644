"""`dlrun report RUN_DIR... [--out report.html]`."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    run_dirs: list[Path] = typer.Argument(..., metavar="RUN_DIR...", help="One or more run folders.", show_default=False),
    out: Path = typer.Option(
        None, "--out", "-o", help="The HTML file to write (default for one run: RUN_DIR/report.html).", show_default=False
    ),
) -> None:
    """Write one self-contained HTML page for a run, or for several side by side.

    It shows config, status, metrics vs baselines, learning curves, confusion matrix or residuals, K-fold summary, pictures.
    """
    from dlrun.runs import report as report_module

    target = report_module.write(run_dirs, out)
    typer.echo(f"report: {target}")
