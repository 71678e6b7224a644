"""`dlrun init NAME`: copy an example config here, or `dlrun init NAME --dataset D --architecture A`: a starter."""

from __future__ import annotations

from pathlib import Path

import typer


def init(
    name: str = typer.Argument(
        ...,
        help="An example config (`dlrun list configs`) to copy here, or, with --dataset and "
        "--architecture, the new experiment's name (also the default file name, NAME.yaml).",
        show_default=False,
    ),
    dataset: str = typer.Option(None, "--dataset", "-d", help="A dataset (`dlrun list datasets`).", show_default=False),
    architecture: str = typer.Option(
        None, "--architecture", "-a", help="An architecture (`dlrun list architectures`).", show_default=False
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Where to write it (default NAME.yaml); never replaced.", show_default=False),
) -> None:
    """Copy an example config here, or write a starter config: every key of a dataset and an architecture, commented."""
    from dlrun import errors, examples
    from dlrun.config import starter

    if dataset is None and architecture is None:
        text = examples.text(name)  # an unknown name is an error before any file is looked at
        target = starter.write_new(Path(out) if out is not None else Path(examples.path(name).name), text)
        typer.echo(f"wrote {target}, a copy of the example config {name}: train it with `dlrun train {target}`")
        return
    if dataset is None or architecture is None:
        missing = "--dataset" if dataset is None else "--architecture"
        raise errors.UsageError(
            f"{missing}: received nothing; expected both --dataset and --architecture (a starter "
            "config), or neither (NAME is an example config to copy)"
        )
    target = starter.write(name, dataset, architecture, out)
    typer.echo(f"wrote {target}: check it with `dlrun config validate {target}`, train with `dlrun train {target}`")
