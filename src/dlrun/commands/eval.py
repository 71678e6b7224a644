"""`dlrun eval RUN_DIR`."""

from __future__ import annotations

from pathlib import Path

import typer


def evaluate(
    run_dir: Path = typer.Argument(..., help="A run folder written by `dlrun train` or `dlrun kfold`.", show_default=False),
    split: str = typer.Option("test", "--split", help="Which split to evaluate: test, validation or train."),
    checkpoint: str = typer.Option("final", "--checkpoint", help="final (model.keras) or best (checkpoints/best.keras)."),
    data_path: str = typer.Option(None, "--data-path", help="Read the data from here instead of the stored data.path.", show_default=False),
    backend: str = typer.Option(
        None,
        "--backend",
        metavar="NAME",
        show_default=False,
        help="Evaluate on this Keras backend instead of the one the run trained on (tensorflow, jax, torch or auto).",
    ),
) -> None:
    """Evaluate a run's model on one split, next to the naive baseline; write eval_<split>.json into the run."""
    from dlrun import backend as backend_module, errors, terminal
    from dlrun.training import evaluation

    if split not in ("test", "validation", "train"):
        raise errors.UsageError(f"--split: received {split!r}; expected one of test, validation, train")
    command = ["dlrun", "eval", str(run_dir), f"--split={split}", f"--checkpoint={checkpoint}"]
    if data_path is not None:
        command.append(f"--data-path={data_path}")
    if backend is not None:
        if backend not in ("auto", *backend_module.BACKENDS):
            raise errors.ConfigError(f"--backend: received {backend!r}; expected one of auto, {', '.join(backend_module.BACKENDS)}")
        command.append(f"--backend={backend}")
    evaluation.evaluate_run(run_dir, split, checkpoint, data_path, terminal.console(), command=command, backend_name=backend)
