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

BACKEND_OPTION = typer.Option(
    None,
    "--backend",
    metavar="NAME",
    help="The Keras backend: tensorflow, jax, torch or auto (same as --set backend=NAME; default: the config's).",
    show_default=False,
)


def with_backend(set_items: list[str], backend: str | None) -> list[str]:
    """`--backend NAME` as the `--set backend=NAME` it means (validated with the config)."""
    return [*set_items, f"backend={backend}"] if backend else list(set_items)
