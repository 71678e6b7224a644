"""`dlrun list [KIND]`: what each registry holds, one line per entry."""

from __future__ import annotations

import typer

KINDS = ("datasets", "architectures", "optimizers", "losses", "metrics", "callbacks", "backends")


def registries() -> dict[str, dict]:
    """Every registry by kind (imports no TensorFlow)."""
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
):
    """List the datasets, architectures, optimizers, losses, metrics, callbacks and backends a config may name."""
    from dlrun import errors, registry

    found = registries()
    if kind is not None and kind not in found:
        import difflib

        close = difflib.get_close_matches(kind, KINDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise errors.UsageError(f"KIND: received {kind!r}; expected one of {', '.join(KINDS)}{hint}")
    for name in [kind] if kind else KINDS:
        typer.echo(f"{name}:")
        entries = found[name]
        width = max(len(key) for key in entries)
        for key, entry in entries.items():
            typer.echo(f"  {key:<{width}}  {registry.describe(entry)}")
