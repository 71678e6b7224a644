"""What a `dlrun train` run writes about itself (`dlrun.training.trainer`): run.json's records of how it
trains (precision, jit_compile, devices, steps per execution) and, when it ends, metrics.json with the test
split's evaluation, the learning-curve plots and model.keras, and the summary run.json keeps of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlrun import terminal
from dlrun.runs import history, plots
from dlrun.training import distribution, evaluation, precision

if TYPE_CHECKING:
    from rich.console import Console

    from dlrun.config import schema
    from dlrun.runs import folder


def finish_files(run: folder.Run, config: schema.Config, training: Any, console: Console, evaluated: tuple | None = None) -> dict:
    """metrics.json, plots and model.keras of `training` (the run's `trainer.Training`; `evaluated`: its test
    split's (metrics, outputs), computed already, see `Training.evaluate`); returns the run.json summary."""
    summary: dict = {}
    run_history = training.history
    best = history.best_epoch(run_history, "val_loss")
    if best is not None:
        summary["best_epoch"] = {"monitor": "val_loss", "epoch": best[0], "value": best[1]}
        last = run_history["epoch"][-1]
        verdict = (
            f"val_loss stopped improving after epoch {best[0]}: overfitting starts there"
            if best[0] < last
            else "val_loss still improving at the last epoch: no overfitting seen yet"
        )
        console.print(f"{history.describe_best(run_history)}\n{verdict}", highlight=False, soft_wrap=True)
    payload = training.evaluate(run.path / "plots" if config.output.plots else None, evaluated)
    if payload is not None:
        if best is not None:
            payload["best_epoch"] = summary["best_epoch"]
        run.write_json("metrics.json", payload)
        summary["test_metrics"] = payload["metrics"]
        console.print(evaluation.summary_line(payload), highlight=False, soft_wrap=True)
    write_plots(run, config, run_history)
    if config.output.save_model:
        training.save(run.file("model.keras"))
    console.print(f"[green]completed[/green]: {terminal.text(run.path)}", highlight=False, soft_wrap=True)
    return summary


def write_plots(run: folder.Run, config: schema.Config, run_history: dict) -> None:
    """The learning curves so far, when the config draws plots."""
    if config.output.plots and run_history["epoch"]:
        plots.learning_curves(run_history, run.path / "plots")


def numerics(training: Any) -> dict:
    """run.json's precision, Keras' resolved jit_compile (XLA) and, for data_parallel, the devices."""
    spread = distribution.record(training.config, training.share)
    return {
        "precision": precision.record(training.model),
        "jit_compile": bool(training.model.jit_compile),
        **({"distribution": spread} if spread else {}),
    }


def steps_record(training: Any) -> dict:
    """run.json's steps_per_execution: the batches per compiled call and why."""
    steps, reason = training.steps_per_execution
    return {"steps": steps, "reason": reason}


def fit_time_record(fitted: Any) -> dict:
    """run.json's account of `fit_seconds`: the seconds before the first epoch began and each epoch's own
    (from its start to its records written), so a slow fit shows whether the epochs or what lies around
    them took the time."""
    if fitted.before_first_epoch is None:
        return {}
    return {
        "fit_before_first_epoch_seconds": round(fitted.before_first_epoch, 3),
        "epoch_seconds": [round(seconds, 3) for seconds in fitted.epoch_seconds],
    }
