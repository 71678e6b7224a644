"""`dlrun predict RUN_DIR INPUT...`."""

from __future__ import annotations

from pathlib import Path

import typer


def predict(
    run_dir: Path = typer.Argument(..., help="A run folder written by `dlrun train`.", show_default=False),
    inputs: list[Path] = typer.Argument(
        None,
        metavar="INPUT...",
        help="Image files, .npy/.csv arrays (one sample per row), .txt files, or folders of them.",
        show_default=False,
    ),
    text: list[str] = typer.Option([], "--text", help="A text to classify (text datasets; repeatable).", show_default=False),
    out: Path = typer.Option(None, "--out", "-o", help="Also write the predictions to this .csv or .json file.", show_default=False),
    top: int = typer.Option(3, "--top", help="How many classes to show per sample, most probable first."),
    checkpoint: str = typer.Option("final", "--checkpoint", help="final (model.keras) or best (checkpoints/best.keras)."),
    word_index: Path = typer.Option(
        None, "--word-index", help="Keras' word index JSON for text (default: the dataset's).", show_default=False
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out file."),
) -> None:
    """Predict with a trained run's model; the model applies the preprocessing it was trained with."""
    from dlrun import terminal
    from dlrun.inference import predict as predict_module

    predict_module.predict_run(
        run_dir,
        list(inputs or []),
        terminal.console(),
        texts=text,
        out=out,
        top=top,
        checkpoint=checkpoint,
        word_index_file=word_index,
        force=force,
    )
