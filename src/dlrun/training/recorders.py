"""The Keras callbacks dlrun attaches to every fit: the run recorder (files, checkpoints, the NaN stop),
the callbacks' state on resume, the Rich progress display and torch's per-epoch seeding."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import progress as rich_progress

from dlrun import backend, errors
from dlrun.runs import history
from dlrun.training import checkpoints

if TYPE_CHECKING:
    from rich.console import Console

keras: Any = backend.import_keras()  # quietly, on the chosen backend, whoever imports this module first


class RunRecorder(keras.callbacks.Callback):
    """Keeps a training folder current every epoch: history.json, the resume checkpoint, then `on_epoch`.

    It is the one NaN stop: when the loss of a batch becomes NaN or infinite it stops training at once
    (Keras' TerminateOnNaN only sets a flag and returns normally; the trainer checks `non_finite`). The
    epoch in which that happens is not recorded and not checkpointed: the last good state stays on disk.
    `on_epoch(epochs_completed, logs)` tells the caller (a heartbeat in run.json, or an event sent from
    a worker process back to the one that runs the trials).
    """

    def __init__(
        self,
        folder: str | Path,
        initial_history: dict | None = None,
        checkpoint_every_epoch: bool = True,
        on_epoch: Callable[[int, dict], None] | None = None,
    ) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.history = history.empty() if initial_history is None else initial_history
        self.checkpoint_every_epoch = checkpoint_every_epoch
        self.on_epoch = on_epoch
        self.non_finite: str | None = None  # set when training stopped on NaN/Inf
        self.phase: str | None = None  # recorded in history.json's phase column when set
        # writes the checkpoint after `epochs_completed` epochs in place of `checkpoints.save(folder, model)`: copies
        # trained together (dlrun.trials.stacked) write theirs from the stacked values, their models untouched
        self.save_checkpoint: Callable[[int], Any] | None = None
        self._epoch = 0
        self.first_epoch_began: float | None = None  # time.perf_counter() when this fit's first epoch began
        self.epoch_seconds: list[float] = []  # each epoch of this fit, from its start to its records written
        self._epoch_began = 0.0
        self._save_history = history.Saver(self.folder / history.FILE_NAME)

    def began_after(self, started: float) -> float | None:
        """Seconds from `started` (the fit's start) to its first epoch's start; None when no epoch began."""
        return None if self.first_epoch_began is None else self.first_epoch_began - started

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        self._epoch_began = time.perf_counter()
        if self.first_epoch_began is None:
            self.first_epoch_began = self._epoch_began

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and self.non_finite is None:
            steps = getattr(self.model, "steps_per_execution", 1) or 1  # batches run in the call that just ended
            where = f"batch {batch + 1}" if steps == 1 else f"in batches {batch + 2 - steps}-{batch + 1} (one call of {steps} steps)"
            self.non_finite = f"loss became {float(loss)} at epoch {self._epoch + 1}, {where}"
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.non_finite is not None:
            return
        logs = {key: float(value) for key, value in (logs or {}).items()}
        bad = [key for key, value in logs.items() if not math.isfinite(value)]
        if bad:
            self.non_finite = f"{bad[0]} became {logs[bad[0]]} at epoch {epoch + 1}"
            self.model.stop_training = True
            return
        history.append(self.history, epoch + 1, logs, phase=self.phase)
        self._save_history(self.history)
        # History first, then the checkpoint: if a kill lands in between, resuming truncates the history
        # to the checkpoint's epoch and runs that epoch again, so no epoch appears twice.
        if self.checkpoint_every_epoch and self.save_checkpoint is not None:
            self.save_checkpoint(epoch + 1)
        elif self.checkpoint_every_epoch:
            checkpoints.save(self.folder, self.model, epochs_completed=epoch + 1)
        if self.on_epoch is not None:
            self.on_epoch(epoch + 1, logs)
        self.epoch_seconds.append(time.perf_counter() - self._epoch_began)

    def close(self) -> None:
        """The fit's end, however it ended (the trainer's, and each copy's trained together): the spare file
        history.json was rewritten through is removed."""
        self._save_history.close()

    def stopped(self) -> errors.TrainingFailed:
        """The error that ends a fit this recorder stopped on a NaN, naming the last good state on disk."""
        kept, latest = len(self.history["epoch"]), self.folder / checkpoints.LATEST
        return errors.TrainingFailed(
            f"training stopped: {self.non_finite}; "
            + (
                f"the last good state is in {latest} (epoch {kept})"
                if kept and latest.exists()
                else "no epoch completed: no state was kept"
            )
        )


class CallbackStateRestorer(keras.callbacks.Callback):
    """On a resumed run, gives EarlyStopping/ModelCheckpoint/ReduceLROnPlateau the best value and patience
    count they had reached, from the history so far (Keras resets them in on_train_begin)."""

    def __init__(self, callbacks: list, run_history: dict) -> None:
        super().__init__()
        self.callbacks = callbacks
        self.run_history = run_history

    def on_train_begin(self, logs: dict | None = None) -> None:
        for callback in self.callbacks:
            monitor = getattr(callback, "monitor", None)
            values = [value for value in self.run_history.get(monitor, []) if value is not None]
            if monitor is None or not values or not hasattr(callback, "best"):
                continue
            mode = getattr(callback, "mode", "auto")
            lower = history.lower_is_better(monitor) if mode == "auto" else mode == "min"
            best_index = (min if lower else max)(range(len(values)), key=values.__getitem__)
            callback.best = values[best_index]
            if hasattr(callback, "wait"):
                callback.wait = len(values) - 1 - best_index


class RichProgress(keras.callbacks.Callback):
    """One transient bar per epoch (batches, elapsed, ETA) and one printed line of metrics per epoch."""

    def __init__(self, console: Console, epochs: int) -> None:
        super().__init__()
        self.console = console
        self.epochs = epochs
        self.progress: rich_progress.Progress | None = None  # shown from on_train_begin to on_train_end
        self.task: rich_progress.TaskID | None = None
        self.epoch_started = 0.0
        self.last_refresh = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        progress = rich_progress.Progress(
            rich_progress.TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            rich_progress.BarColumn(),
            rich_progress.MofNCompleteColumn(),
            rich_progress.TextColumn("batches"),
            rich_progress.TimeElapsedColumn(),
            rich_progress.TextColumn("eta"),
            rich_progress.TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        progress.start()
        self.progress, self.task = progress, progress.add_task("train", total=self.params.get("steps"), epoch=0, epochs=self.epochs)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_started = time.perf_counter()
        # reset, not add_task: add_task re-renders the display at once, on every epoch
        if self.progress is not None and self.task is not None:
            self.progress.reset(self.task, total=self.params.get("steps"), epoch=epoch + 1, epochs=self.epochs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        # Cheap on the hot path: never touches `logs` (that would wait for the step to finish) and
        # updates the bar at most ten times a second.
        now = time.monotonic()
        if now - self.last_refresh >= 0.1 and self.progress is not None and self.task is not None:
            self.last_refresh = now
            self.progress.update(self.task, completed=batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self.epoch_started
        logs = dict(logs or {})
        keys = sorted(logs, key=lambda key: (key.startswith("val_"), key.removeprefix("val_") != "loss"))
        parts = "  ".join(f"{key} {float(logs[key]):.4f}" for key in keys)
        width = len(str(self.epochs))
        self.console.print(
            f"epoch {epoch + 1:>{width}}/{self.epochs}  {parts}  [dim]{seconds:.1f}s[/dim]",
            highlight=False,
            soft_wrap=True,
        )

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.progress is not None:
            self.progress.stop()


class TorchEpochSeeder(keras.callbacks.Callback):
    """On PyTorch, seeds torch's global generator from (seed, epoch) just before each epoch's first batch.

    Keras' torch Dropout (a layer without its own seed) draws its masks from torch's global generator,
    not from the layer's seed-generator variable, and each `fit` draws from it once more while setting
    up its data loader. Seeding at every epoch makes the masks a function of (seed, epoch) only, as
    dlrun.training.batches makes the batch order, so a resumed run repeats a straight one.
    """

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed
        self._epoch: int | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self._epoch is None:
            return
        import numpy as np
        import torch

        torch.manual_seed(int(np.random.SeedSequence([self.seed, self._epoch]).generate_state(1)[0]))
        self._epoch = None
