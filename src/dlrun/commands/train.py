"""`dlrun train CONFIG`."""

from __future__ import annotations

from pathlib import Path

from dlrun.commands import options


def train(
    config_file: Path = options.CONFIG_ARGUMENT,
    set_items: list[str] = options.SET_OPTION,
):
    """Train the model a config describes and write a run folder under output.runs_root."""
    from rich import console as rich_console

    from dlrun import config, trainer

    loaded = config.load(config_file, set_items)
    command = ["dlrun", "train", str(config_file), *(f"--set={item}" for item in set_items)]
    trainer.train(loaded, rich_console.Console(highlight=False), command=command)
