"""`dlrun export RUN_DIR --format keras|saved_model|onnx`."""

from __future__ import annotations

from pathlib import Path

import typer


def export(
    run_dir: Path = typer.Argument(..., help="A run folder written by `dlrun train`.", show_default=False),
    export_format: str = typer.Option(
        ..., "--format", "-f", help="keras, saved_model (TensorFlow SavedModel) or onnx.", show_default=False
    ),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="Where to write it (default: RUN_DIR/export/<model.keras|saved_model|model.onnx>); never replaced.",
        show_default=False,
    ),
    checkpoint: str = typer.Option("final", "--checkpoint", help="final (model.keras) or best (checkpoints/best.keras)."),
) -> None:
    """Export a run's model (with its preprocessing) for other tools: Keras, TensorFlow SavedModel or ONNX."""
    from dlrun import terminal
    from dlrun.inference import export as export_module

    export_module.export_run(run_dir, export_format, terminal.console(), out=out, checkpoint=checkpoint)
