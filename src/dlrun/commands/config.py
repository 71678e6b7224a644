"""`dlrun config show|validate CONFIG`."""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.commands import options


def show(
    config_file: Path = options.CONFIG_ARGUMENT,
    set_items: list[str] = options.SET_OPTION,
):
    """Print the fully resolved config (every default filled in) as YAML."""
    from dlrun import config

    typer.echo(config.to_yaml(config.load(config_file, set_items)), nl=False)


def validate(
    config_file: Path = options.CONFIG_ARGUMENT,
    set_items: list[str] = options.SET_OPTION,
):
    """Check a config without training; exit 2 and list every problem when it is invalid."""
    from dlrun import config

    loaded = config.load(config_file, set_items)
    typer.echo(f"{config_file}: valid ({loaded.data.name} / {loaded.model.architecture} / {loaded.compile.optimizer.name})")
