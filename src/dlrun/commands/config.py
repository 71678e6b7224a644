"""`dlrun config show|validate CONFIG`."""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.commands import options


def show(
    config_file: Path = options.CONFIG_ARGUMENT,
    set_items: list[str] = options.SET_OPTION,
    origin: bool = typer.Option(False, "--origin", help="Print each value with the file (or --set) that set it, or `default`."),
) -> None:
    """Print the fully resolved config (every default filled in) as YAML."""
    from dlrun import config
    from dlrun.config import composition

    loaded, composed = config.load_composed(config_file, set_items)
    if origin:
        typer.echo(composition.describe(config.to_data(loaded), composed.origins), nl=False)
        return
    typer.echo(config.to_yaml(loaded), nl=False)


def validate(
    config_file: Path = options.CONFIG_ARGUMENT,
    set_items: list[str] = options.SET_OPTION,
) -> None:
    """Check a config without training; exit 2 and list every problem when it is invalid."""
    from dlrun import config

    loaded = config.load(config_file, set_items)
    typer.echo(f"{config_file}: valid ({loaded.data.name} / {loaded.model.architecture} / {loaded.compile.optimizer.name})")


OUT_OPTION = typer.Option(None, "--out", "-o", help="Write to this file (atomically) instead of printing.", show_default=False)


def schema(out: Path = OUT_OPTION) -> None:
    """Print the JSON Schema of a config file (for editors: see docs/configs.md), or write it with --out."""
    from dlrun.config import json_schema

    _emit(json_schema.text(), out)


def docs(out: Path = OUT_OPTION) -> None:
    """Print the config reference (docs/config.md) generated from the schema, or write it with --out."""
    from dlrun.config import docs as config_docs

    _emit(config_docs.render(), out)


def _emit(text: str, out: Path | None) -> None:
    from dlrun import atomic, errors

    if out is None:
        typer.echo(text, nl=False)
        return
    if not out.parent.is_dir():
        raise errors.UsageError(f"--out: received {str(out)!r}; expected a file in an existing folder")
    atomic.write_text(out, text)
    typer.echo(f"wrote {out}", err=True)
