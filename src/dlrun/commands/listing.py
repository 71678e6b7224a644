"""`dlrun list [KIND]`: what each registry holds, one line per entry; datasets and architectures say where
each came from (built-in, or the plug-in's distribution); `configs` lists the example configs."""

from __future__ import annotations

import typer

KINDS = ("datasets", "architectures", "optimizers", "losses", "metrics", "callbacks", "backends", "configs")
BUILT_IN = "built-in"


def registries() -> dict[str, dict]:
    """Every built-in registry by kind (imports no TensorFlow)."""
    from dlrun import backend, data, models
    from dlrun.training import callbacks, losses, metrics, optimizers

    return {
        "datasets": data.DATASETS,
        "architectures": models.ARCHITECTURES,
        "optimizers": optimizers.OPTIMIZERS,
        "losses": losses.LOSSES,
        "metrics": metrics.METRICS,
        "callbacks": callbacks.CALLBACKS,
        "backends": backend.BACKENDS,
    }


def list_registries(
    kind: str = typer.Argument(None, help=f"One of {', '.join(KINDS)}; all when omitted.", show_default=False),
) -> None:
    """List what a config may name (datasets, architectures, optimizers, losses, metrics, callbacks, backends).

    Also the example configs: `dlrun init NAME` copies one here.
    """
    from dlrun import errors

    if kind is not None and kind not in KINDS:
        import difflib

        close = difflib.get_close_matches(kind, KINDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise errors.UsageError(f"KIND: received {kind!r}; expected one of {', '.join(KINDS)}{hint}")
    broken: list[str] = []
    for name in [kind] if kind else KINDS:
        typer.echo(f"{name}:")
        rows = _rows(name, broken)
        width = max(len(row[0]) for row in rows)
        for row in rows:
            typer.echo("  " + "  ".join(cell.ljust(width if index == 0 else 0) for index, cell in enumerate(row)).rstrip())
    if broken:
        raise errors.PluginError(
            "\n".join(broken) if len(broken) == 1 else f"{len(broken)} plug-ins cannot be used:\n  " + "\n  ".join(broken)
        )


def _rows(kind: str, broken: list[str]) -> list[tuple[str, ...]]:
    """(name, description), or (name, where from, description) for the kinds plug-ins add to; a plug-in
    that cannot be used is left out and its problem added to `broken`."""
    from dlrun import errors, plugins, registry

    if kind == "configs":
        from dlrun import examples

        return [(name, examples.describe(path)) for name, path in examples.names().items()]
    entries = registries()[kind]
    if kind not in plugins.KINDS:
        return [(key, registry.describe(entry)) for key, entry in entries.items()]
    rows = [(key, BUILT_IN, registry.describe(entry)) for key, entry in entries.items()]
    for name in plugins.available(kind):
        try:
            plugin = plugins.load(kind, name, entries)
        except errors.PluginError as error:
            broken.append(str(error))
            continue
        rows.append((name, plugin.entry.distribution, plugin.description))
    source_width = max(len(row[1]) for row in rows)
    return [(name, source.ljust(source_width), description) for name, source, description in rows]
