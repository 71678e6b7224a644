"""One sweep trial, in whichever process runs it: a `dlrun train` run of the trial's config that reports
its metric to the study every epoch and stops when the pruner says so (`run_trial`, an executor's worker)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dlrun import config as config_module, errors, runs
from dlrun.config import search as search_config
from dlrun.runs import history
from dlrun.trials import search as search_engine

if TYPE_CHECKING:
    from dlrun.training import trainer
    from dlrun.trials import outcomes


def run_trial(payload: dict, emit: outcomes.Emit) -> dict:
    """Train one trial through the one training function; its epochs go out through `emit`.

    `payload`: the trial's `config`, its run folder `run` when it continues one (a resumed sweep: the
    trainer's own resume, from that run's last checkpoint), the `command` recorded in its run.json, and
    `study` (`url`, `name`, `trial_id`, `search`) to report to; with `kfold` (K), a cross-validated trial
    (`dlrun.trials.sweep_kfold.run_trial`); with `seeds` (N > 1), N runs (`dlrun.trials.sweep_seeds.run_trial`). Returns {"state": "completed" or
    "pruned", "run", "history", "pruned": {"epoch", "reason"} when pruned}; a failure raises.
    """
    if payload.get("kfold"):  # a cross-validated trial: a K-fold run, scored over its folds
        from dlrun.trials import sweep_kfold

        return sweep_kfold.run_trial(payload, emit)
    if payload.get("seeds", 1) > 1:  # a trial point trained over seeds: a seeds group, scored by the mean
        from dlrun.trials import sweep_seeds

        return sweep_seeds.run_trial(payload, emit)
    trial = TrialRun(payload, emit)
    return trial.end(trial.start().fit)


class TrialRun:
    """One sweep trial's `dlrun train` run in stages (`dlrun.training.trainer.staged`), so the vectorized sweep
    (`dlrun.trials.sweep_vectorized`) can fit several trials together: `start()` makes or reopens its run
    folder and returns the `trainer.FitRequest`; `end(fit)` runs `fit()` (or takes its outcome) and returns
    what `run_trial` returns."""

    def __init__(self, payload: dict, emit: outcomes.Emit) -> None:
        from dlrun import backend
        from dlrun.training import checkpoints, resume

        config = config_module.validate(payload["config"])
        previous = runs.Run.open_to_continue(payload["run"]) if payload.get("run") else None
        if previous is not None and not checkpoints.exists(previous.path):
            previous = None  # stopped before its first checkpoint: a new run
        if previous is not None:  # continued on the backend it started on, never silently on another
            config = resume.on_run_backend(previous, config, None, None)
        backend.activate(config)  # quietly, on the trial's backend, before the trainer imports Keras
        self.config, self.previous, self.payload, self.emit = config, previous, payload, emit
        self.started: dict = {}
        self.stages: Any = None
        self.total_epochs = 0  # the fit's epochs, once started: the pruner never judges the last one

    def start(self) -> trainer.FitRequest:
        """Check the trial, make (or reopen) its run folder; the fit it waits for. Raises as `dlrun train` does."""
        from rich import console as rich_console

        from dlrun.training import trainer

        study, previous, emit = self.payload["study"], self.previous, self.emit
        reporter = search_engine.Reporter(
            study["url"], study["name"], study["trial_id"], search_config.SearchConfig.model_validate(study["search"])
        )

        def on_start(run: runs.Run) -> None:
            self.started["run"] = run
            if previous is not None:
                reporter.history(history.load(run.path / history.FILE_NAME))  # epochs trained before a kill, once
            emit({"type": "started", "run": str(run.path), "after_epoch": run.record.get("epochs_completed") if previous else None})

        def on_epoch(epoch: int, logs: dict) -> None:
            emit({"type": "epoch", "epoch": epoch, "logs": logs})
            # raises TrialPruned: the trainer records the run as pruned (never after its last epoch)
            reporter.epoch(epoch, logs, last=epoch >= self.total_epochs)

        quiet = rich_console.Console(file=io.StringIO(), width=120)  # the child run folder records everything
        self.stages = trainer.staged(
            self.config, quiet, command=self.payload["command"], resume_run=previous, on_start=on_start, on_epoch=on_epoch
        )
        try:
            request = next(self.stages)
        except errors.Interrupted:
            raise KeyboardInterrupt from None
        self.total_epochs = request.training.plan.total_epochs
        return request

    def end(self, fit: Callable[[], trainer.Fitted] | trainer.Fitted | BaseException) -> dict:
        """The trial's result once its fit ran (`fit()`, its `Fitted`, or what it raised); a failure raises."""
        from dlrun.training import trainer

        try:
            fitted = fit() if callable(fit) else fit
        except BaseException as error:  # recorded in the run's lifecycle by `conclude`
            fitted = error
        try:
            child = trainer.conclude(self.stages, fitted)
        except errors.Interrupted:
            raise KeyboardInterrupt from None
        except errors.TrialPruned as pruned:
            child = self.started["run"]
            return {
                "state": "pruned",
                "run": str(child.path),
                "history": history.load(child.path / history.FILE_NAME),
                "pruned": pruned.record(),
            }
        return {"state": "completed", "run": str(child.path), "history": history.load(child.path / history.FILE_NAME)}
