"""`dlrun init NAME --dataset D --architecture A`."""

from __future__ import annotations

from pathlib import Path

import typer


def init(
    name: str = typer.Argument(..., help="The experiment's name (also the default file name, NAME.yaml).", show_default=False),
    dataset: str = typer.Option(..., "--dataset", "-d", help="A dataset (`dlrun list datasets`).", show_default=False),
    architecture: str = typer.Option(..., "--architecture", "-a", help="An architecture (`dlrun list architectures`).", show_default=False),
    out: Path = typer.Option(None, "--out", "-o", help="Where to write it (default NAME.yaml); never replaced.", show_default=False),
):
    """Write a starter config with every key of the dataset and architecture at its default, each commented."""
    from dlrun.config import starter

    target = starter.write(name, dataset, architecture, out)
    typer.echo(f"wrote {target}: check it with `dlrun config validate {target}`, train with `dlrun train {target}`")
