"""One fit of a K-fold run, as a worker runs it: a fold or the final refit, trained by the one training
function (`dlrun.training.trainer.Training`), and the one place where such a fit differs from
`dlrun train` (`fold_config`, `refit_config`), said on the console by `differences_said`."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from dlrun import config as config_module
from dlrun.config import schema
from dlrun.runs import history
from dlrun.training import checkpoints

if TYPE_CHECKING:
    from dlrun.data import dataset
    from dlrun.trials import outcomes


def fold_config(config: schema.Config, index: int, keep_early_stopping: bool = False) -> schema.Config:
    """Fold `index`'s config: `config` seeded with `seed + index - 1`, and without `early_stopping`
    callbacks unless `keep_early_stopping` (every fold runs its whole curve, so the mean curve can
    pick the epoch count). Every other key is the one `dlrun train` reads."""
    kept = [callback for callback in config.train.callbacks if keep_early_stopping or callback.name != "early_stopping"]
    train = config.train.model_copy(update={"callbacks": kept})
    return config.model_copy(update={"seed": config.seed + index - 1, "train": train})


def refit_config(config: schema.Config) -> schema.Config:
    """The final refit's config: `config` without the callbacks that watch a validation value (the refit
    trains on every pooled sample, so it has none) and without early stopping (it trains exactly the
    recommended epochs)."""
    kept = [
        callback for callback in config.train.callbacks if callback.name != "early_stopping" and not callback.monitor.startswith("val_")
    ]
    return config.model_copy(update={"train": config.train.model_copy(update={"callbacks": kept})})


def differences_said(config: schema.Config, keep_early_stopping: bool, final: bool = True) -> list[str]:
    """The console lines that say how this K-fold run trains differently from `dlrun train`."""
    lines = []
    stopping = [callback for callback in config.train.callbacks if callback.name == "early_stopping"]
    if stopping and not keep_early_stopping:
        lines.append("folds train without early_stopping, so each runs its whole curve (keep it with --keep-early-stopping)")
    kept = refit_config(config).train.callbacks
    dropped = [callback.name for callback in config.train.callbacks if callback not in kept]
    if final and dropped:
        lines.append(f"the final refit has no validation data: it trains without {', '.join(dict.fromkeys(dropped))}")
    return lines


@dataclasses.dataclass
class FitTask:
    """One fit of a K-fold run, for a worker: a fold (its validation indices) or the final refit (`epochs`).

    Plain data, so it crosses to pool processes and Ray; `dataset` (the pooled data) only when the task
    runs in this process, elsewhere it is loaded once per worker process.
    """

    config: dict  # the resolved config of this fit (fold_config / refit_config), as plain data
    folder: str  # where the fit writes history.json and its checkpoints
    validation_indices: list[int] | None = None  # a fold; None: the final refit on every pooled sample
    epochs: int | None = None  # the refit's epoch count (a fold trains train.epochs)
    run: str | None = None  # the refit: the run folder, for metrics plots and model.keras
    data_seed: int = 0  # the seed the data was loaded with (the run's seed; a fold's config seed differs)
    dataset: dataset.Dataset | None = None
    # stream: the worker shares no file system with `folder` (Ray): it trains in a scratch folder and sends
    # each epoch's history and checkpoint back in its events, for the driver to write; it continues from
    # `resume_checkpoint` (the file's bytes, base64) and `resume_history` when the driver had them.
    stream: bool = False
    resume_checkpoint: str | None = None
    resume_history: dict | None = None


def train_part(task: FitTask, emit: outcomes.Emit) -> dict:
    """Train one fold or the final refit, here or in a worker, through the one training function.

    The fit continues from its folder's last checkpoint when there is one (a resumed run). Each epoch
    goes out through `emit`; returns the history, sizes and time, and for the refit the test metrics
    (its plots go into the run folder, with model.keras, saved atomically). A streamed task (`stream`)
    trains in a scratch folder and sends its files back with each epoch instead.
    """
    if not task.stream:
        return _train(task, Path(task.folder), emit)
    with tempfile.TemporaryDirectory(prefix="dlrun-fit-") as scratch:
        folder = Path(scratch) / Path(task.folder).name
        if task.resume_checkpoint is not None:
            checkpoints.write(folder, base64.b64decode(task.resume_checkpoint))
            history.save(folder / history.FILE_NAME, task.resume_history or history.empty())

        def with_files(event: dict) -> None:
            if event["type"] == "epoch":
                found = checkpoints.latest_bytes(folder)
                event = {
                    **event,
                    "history": history.load(folder / history.FILE_NAME),
                    "checkpoint": None if found is None else base64.b64encode(found).decode("ascii"),
                }
            emit(event)

        return _train(task, folder, with_files)


def _train(task: FitTask, folder: Path, emit: outcomes.Emit) -> dict:
    from rich import console as rich_console

    from dlrun.training import trainer

    config = config_module.validate(task.config)
    pooled = task.dataset or _pooled_in_this_process(config, task.data_seed)
    data = pooled if task.validation_indices is None else pooled.fold(task.validation_indices)
    quiet = rich_console.Console(file=io.StringIO(), width=120)  # the caller shows the progress
    training = trainer.Training(config, data, quiet)
    first_epoch = 0
    if training.can_restore(folder):
        first_epoch, source = training.restore(folder)
        emit({"type": "resumed", "after_epoch": first_epoch, "source": f"{folder.name}/{source}"})
    fitted = training.fit(
        folder,
        first_epoch,
        epochs=task.epochs,
        progress=False,
        on_epoch=lambda epoch, logs: emit({"type": "epoch", "epoch": epoch, "logs": logs}),
    )
    result = {
        "history": fitted.history,
        "train_samples": data.size("train"),
        "validation_samples": data.size("validation"),
        "seconds": round(fitted.seconds, 3),
    }
    if training.plan.feature_cache is not None:  # recorded in kfold.json: `dlrun runs clean` keeps the entry
        result["feature_cache"] = str(Path(training.plan.feature_cache).resolve())
    if task.run is not None:  # the final refit
        run_path = Path(task.run)
        metrics = training.evaluate(run_path / "plots" if config.output.plots else None)
        if metrics is not None:
            metrics["epochs"] = task.epochs
        result["metrics"] = metrics
        if config.output.save_model:
            training.save(run_path / "model.keras")
    return result


def streamed_task(task: FitTask) -> FitTask:
    """`task` for a worker that shares no file system with its folder: the state to continue from, if any,
    travels with it (see `FitTask.stream`)."""
    folder = Path(task.folder)
    found = checkpoints.latest_bytes(folder)
    saved = folder / history.FILE_NAME
    return dataclasses.replace(
        task,
        stream=True,
        resume_checkpoint=None if found is None else base64.b64encode(found).decode("ascii"),
        resume_history=history.load(saved) if found is not None and saved.is_file() else None,
    )


def write_streamed(folder: Path, event: dict) -> None:
    """In the driver: write a streamed epoch's history, then its checkpoint (the order a worker keeps)."""
    if "history" not in event:
        return
    folder.mkdir(parents=True, exist_ok=True)
    history.save(folder / history.FILE_NAME, event["history"], durable=False)
    if event.get("checkpoint") is not None:
        checkpoints.write(folder, base64.b64decode(event["checkpoint"]))


_POOLED: dict[str, dataset.Dataset] = {}  # in a worker process: the pooled dataset per data config, loaded once


def _pooled_in_this_process(config: schema.Config, seed: int) -> dataset.Dataset:
    from dlrun import data

    key = json.dumps([config.data.model_dump(mode="json"), seed], sort_keys=True)
    if key not in _POOLED:
        _POOLED[key] = data.load(config.data, seed).pooled()
    return _POOLED[key]
