"""Options shared by several commands."""

from __future__ import annotations

import typer

CONFIG_ARGUMENT = typer.Argument(..., help="The YAML config file.", show_default=False)
SET_OPTION = typer.Option(
    [],
    "--set",
    "-s",
    metavar="KEY.PATH=VALUE",
    help="Override one config value (repeatable; VALUE is YAML), e.g. --set train.epochs=3.",
)

