"""The vectorized executor (`dlrun kfold --executor vectorized`, or `auto` where it applies): a K-fold run's
folds trained together on JAX through one compiled epoch program (`dlrun.trials.stacked`).

Each fold is built by the one training function as it would be alone (`dlrun.training.trainer.Training`:
its seed, initial weights, optimizer and compile, restored from its checkpoint on `--resume`) and trained
as a copy: its folder is what the sequential executor writes, a copy whose loss becomes NaN fails while
the others go on. Folds may differ in size by one sample: each keeps its own batches, its numbers bit for bit
its sequential fit's.

Where it cannot apply (another backend, `train.loop: custom`, callbacks, TensorBoard, a streamed split,
several phases) the folds run one by one instead, or on a pool of processes with `--workers N`, after one
console line saying why.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dlrun import config as config_module, errors
from dlrun.trials import executors, kfold_fits, outcomes

if TYPE_CHECKING:
    from dlrun.trials import stacked


def run(
    tasks: list[tuple],
    on_event: outcomes.OnEvent,
    say: Callable[[str], None],
    auto: bool = False,
    record: dict | None = None,
    fallback: executors.Placement = executors.Placement(),
) -> None:
    """Train the folds `tasks` ((key, kfold_fits.FitTask) pairs, in this process) together; events and
    outcomes reach `on_event(key, event)` as from `executors.run`. `say(line)` prints a console line (with
    `auto`, the executor chosen and why). Where they cannot train together they run where `fallback` says
    (`Placement.fallback`: a pool with --workers N, else one by one). `record` (kfold.json's `executor`) gets
    the choice before any fold trains: {"chosen": "vectorized"}, or {"chosen": "sequential" or "pool",
    "reason": ...}."""
    import dataclasses

    record = {} if record is None else record
    reason = config_reason([task.config for _key, task in tasks])
    copies: list[stacked.Copy] = []
    failures: list[tuple] = []
    if reason is None:
        copies, failures, reason = _build(tasks, on_event)
    said = executors.vectorized_said(reason, "folds", auto, fallback.workers)
    if said:
        say(said)
    record.update({"chosen": fallback.executor, "reason": reason} if reason is not None else {"chosen": "vectorized"})
    if reason is not None:
        if fallback.executor == "pool":  # the workers load the pooled data themselves, as for --executor pool
            tasks = [(key, dataclasses.replace(task, dataset=None)) for key, task in tasks]
        executors.run(tasks, kfold_fits.train_part, on_event, fallback)
        return
    from dlrun.trials import stacked

    for key, error in failures:  # as the sequential executor: these folds' outcomes; the others still train
        on_event(key, outcomes.failure(error))
    stacked.train_together(copies)


def config_reason(configs: list[dict]) -> str | None:
    """Why the configs cannot train as one program, or None when they can (before anything is built)."""
    from dlrun import backend

    if backend.loaded() != "jax":
        return f"backend: {backend.loaded()}; it needs jax"
    config = config_module.validate(configs[0])
    train = config.train
    if train.loop != "fit":
        return f"train.loop: {train.loop}"
    if train.callbacks:
        return f"train.callbacks: {', '.join(callback.name for callback in train.callbacks)}"
    if train.tensorboard:
        return "train.tensorboard: true"
    if train.distribute != "none":
        return f"train.distribute: {train.distribute}"
    if train.precision != "float32":  # its stacked stateless steps assume float32 variables and no loss scaling
        return f"train.precision: {train.precision}"
    return None


def _build(tasks: outcomes.Tasks, on_event: outcomes.OnEvent) -> tuple[list[stacked.Copy], list[tuple], str | None]:
    """Each fold's copy, its Training built (and restored) as the sequential executor does, the (key, error)
    of folds whose Training could not be built, and why the folds cannot train together (or None)."""
    from rich import console as rich_console

    from dlrun.training import trainer
    from dlrun.trials import stacked

    built: list[tuple] = []
    failures: list[tuple] = []
    for key, task in tasks:
        config = config_module.validate(task.config)
        data = task.dataset.fold(task.validation_indices)
        quiet = rich_console.Console(file=io.StringIO(), width=120)
        try:
            training = trainer.Training(config, data, quiet)
        except (KeyboardInterrupt, errors.Interrupted):
            raise KeyboardInterrupt from None
        except Exception as error:  # reported as this fold's outcome, unless the folds run one by one
            failures.append((key, error))
            continue
        reason = stacked.model_reason(training)
        if reason is not None:
            return [], [], reason
        built.append((key, task, training))
    copies = []
    for key, task, training in built:
        copy = _copy(key, task, training, on_event)
        if training.can_restore(copy.folder):
            copy.first_epoch, source = training.restore(copy.folder)
            on_event(key, {"type": "resumed", "after_epoch": copy.first_epoch, "source": f"{copy.folder.name}/{source}"})
        copies.append(copy)
    return copies, failures, None


def _copy(key: Any, task: kfold_fits.FitTask, training: Any, on_event: outcomes.OnEvent) -> stacked.Copy:
    """The fold as a copy: its epochs and its outcome (as `kfold_fits.train_part` returns it) go to `on_event`."""
    from pathlib import Path

    from dlrun.trials import stacked

    def on_epoch(epoch: int, logs: dict) -> None:
        on_event(key, {"type": "epoch", "epoch": epoch, "logs": logs})

    def end(error: BaseException | None, seconds: float) -> None:
        if error is not None:
            on_event(key, outcomes.failure(error))
            return
        validation = training.plan.data.split("validation")
        on_event(
            key,
            {
                "type": "done",
                "result": {
                    "history": training.history,
                    "train_samples": len(training.plan.data.split("train")[1]),
                    "validation_samples": 0 if validation is None else len(validation[1]),
                    "seconds": seconds,
                },
            },
        )

    return stacked.Copy(training, Path(task.folder), 0, on_epoch, end)
