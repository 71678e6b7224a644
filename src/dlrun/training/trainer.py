"""The one training function: `Training` fits a config on one data split into one folder.

Every command trains through it: `dlrun train`, each K-fold fold and K-fold's final refit, each sweep
trial. It plans the model (phases, the pretrained feature cache), compiles it, fits it phase by phase
with the configured callbacks on `fit` or the custom loop, writes history.json and a state checkpoint
into the folder every epoch, stops at the first NaN, and continues from the folder's last checkpoint
when asked. What differs between commands is only where the folder is and who watches the epochs.

`train` below is `dlrun train`: it loads the data, makes the run folder, and records the run's outcome.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlrun import atomic, backend, config as config_module, errors, runs, signals, terminal
from dlrun.config import schema
from dlrun.runs import history
from dlrun.training import (
    batches,
    calibration,
    callbacks,
    checkpoints,
    distribution,
    evaluation,
    outputs,
    plan as training_plan,
    precision,
    resume,
)

if TYPE_CHECKING:
    from rich.console import Console

    from dlrun.data import dataset
    from dlrun.runs import tracking

OnEpoch = Callable[[int, dict], None]  # on_epoch(epochs_completed, logs), after the epoch's files are written


@dataclasses.dataclass
class Fitted:
    """What one fit produced: the whole history (earlier epochs of a resumed fit included) and its time."""

    history: dict
    seconds: float
    first_epoch: int  # 0, or the epoch a resumed fit continued after
    # where `seconds` went: before the first epoch began (the input pipeline, Keras' set-up), and each epoch
    # of this fit from its start to its records written; the rest is between and after the epochs
    before_first_epoch: float | None = None
    epoch_seconds: list[float] = dataclasses.field(default_factory=list)
    # the test split's (metrics, outputs), when computed already: trials trained together are evaluated together
    evaluated: tuple | None = None


class Training:
    """One config trained on one dataset (`dlrun.data.dataset.Dataset`), ready to fit into a folder.

    Building it seeds everything from `config.seed`, plans the model (`dlrun.training.plan`: usually one
    phase, more for fine-tuning; cached features for a pretrained base in features mode) and compiles
    it: everything that may reject the config happens here, before the caller creates any folder.
    """

    def __init__(self, config: schema.Config, dataset: dataset.Dataset, console: Console) -> None:
        self.config, self.dataset, self.console = config, dataset, console
        self.share = distribution.activate(config)  # data_parallel: joins the other processes before JAX computes
        backend.seed_everything(config.seed)
        # train.distribute: mirrored: the model and its variables are mirrored; train.precision: its dtype policy
        with distribution.scope(config), precision.policy(config, console):
            self.plan = training_plan.plan(config, dataset, console)
            distribution.check_batches(config, self.plan.data, self.share)
            self.steps_per_execution = batches.steps_per_execution(
                config.train, self.plan.data, int(self.plan.model.count_params()), backend.loaded()
            )
            self.compiler = training_plan.Compiler(self.plan, config, dataset.task, self.steps_per_execution[0])
            self.compiler.compile(self.plan.phases[0])
        self.history = history.empty()  # the epochs so far, kept current while fitting

    @property
    def model(self) -> Any:
        """The model being trained (the head alone in features mode)."""
        return self.plan.model

    @property
    def saved_model(self) -> Any:
        """The model a run saves and evaluates (base + head in features mode)."""
        return self.plan.saved_model

    def restore(self, folder: Path, new_learning_rate: bool = False) -> tuple[int, str]:
        """Load `folder`'s newest readable checkpoint; return (epochs completed, the file used).

        The history is cut back to the checkpoint's epoch, so the epochs that follow are not recorded twice.
        `new_learning_rate` (a resume forced onto a config with another learning rate): the configured
        learning rate of the phase it continues replaces the one restored with the optimizer's state.
        """
        first_epoch, source = checkpoints.restore(folder, self.model, before_assign=self._enter_phase)
        self.history = history.truncate(history.load(folder / history.FILE_NAME), first_epoch)
        history.save(folder / history.FILE_NAME, self.history)
        if new_learning_rate:
            phase = [phase for index, (phase, start, _end) in enumerate(self.plan.epoch_ranges()) if index == 0 or start <= first_epoch][-1]
            self.model.optimizer.learning_rate = phase.optimizer.learning_rate
        return first_epoch, source

    def can_restore(self, folder: Path) -> bool:
        """Whether `folder` holds a checkpoint to continue from."""
        return checkpoints.exists(folder)

    def fit(
        self,
        folder: Path,
        first_epoch: int = 0,
        epochs: int | None = None,
        on_epoch: OnEpoch | None = None,
        extra_callbacks: list | None = None,
        progress: bool = True,
    ) -> Fitted:
        """Fit from `first_epoch` (after `restore`) to `epochs` (default: every phase's epochs), into `folder`.

        `on_epoch(epochs_completed, logs)` runs after each epoch's files are written; `extra_callbacks`
        join every phase's fit; `progress` shows a bar and a line per epoch on the console. A NaN or
        infinite value stops training at once and raises TrainingFailed; the last good state stays on disk.
        """
        from dlrun.runs import tensorboard as tensorboard_logs
        from dlrun.training import loop, recorders

        config, model = self.config, self.model
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        total = self.plan.total_epochs if epochs is None else min(epochs, self.plan.total_epochs)
        fit = model.fit if config.train.loop == "fit" else functools.partial(loop.fit, model)
        recorder = recorders.RunRecorder(folder, self.history, config.output.resume_checkpoints, on_epoch)
        self.history = recorder.history
        configured = callbacks.build_all(config.train.callbacks, folder)
        fit_callbacks = [
            recorder,
            *configured,
            recorders.CallbackStateRestorer(configured, self.history),
            *([recorders.RichProgress(self.console, total)] if progress else []),
            *([tensorboard_logs.callback(folder)] if config.train.tensorboard else []),
            *(extra_callbacks or []),
            *([recorders.TorchEpochSeeder(config.seed)] if backend.loaded() == "torch" else []),
        ]
        started = time.perf_counter()
        try:
            self._fit_phases(fit, fit_callbacks, recorder, first_epoch, total)
        finally:
            recorder.close()
        distribution.gather(model, self.share)  # several processes: each holds the whole model again
        if recorder.non_finite:
            raise recorder.stopped()
        return Fitted(self.history, time.perf_counter() - started, first_epoch, recorder.began_after(started), recorder.epoch_seconds)

    def _fit_phases(self, fit: Callable[..., Any], fit_callbacks: list, recorder: Any, first_epoch: int, total: int) -> None:
        config, model = self.config, self.model
        for index, (phase, start, end) in enumerate(self.plan.epoch_ranges()):
            end, done = min(end, total), max(start, first_epoch)
            if end <= done:
                continue  # finished before the resume (or past the epochs asked for)
            if len(self.plan.phases) > 1:
                note = ""
                if index and done == start:  # entering the phase now (a resume re-entered it already)
                    note = phase.prepare() if phase.prepare else ""
                    self.compiler.compile(phase)  # recompiling picks up new trainable flags and learning rate
                recorder.phase = phase.name
                self.console.print(
                    f"phase {index + 1}/{len(self.plan.phases)} {phase.name}: epochs {done + 1}-{end}, "
                    f"learning rate {phase.optimizer.learning_rate:g}{'; ' + note if note else ''}",
                    highlight=False,
                    soft_wrap=True,
                )
            data = self.plan.data
            fit(
                **batches.fit_arguments(data, config.train, config.seed, done, end, self.share),
                **distribution.validation(data, config.train.batch_size, self.share),
                initial_epoch=done,
                epochs=end,
                callbacks=fit_callbacks,
                verbose=0,
            )
            if recorder.non_finite or model.stop_training:
                break  # NaN, or early stopping: later phases do not start

    def evaluate(self, plots_dir: Path | None = None, evaluated: tuple | None = None) -> dict | None:
        """The test split's metrics next to the naive baseline (`evaluation.report`), or None without one;
        `evaluated`: the model's (metrics, outputs) on it, computed already (`Fitted.evaluated`)."""
        if self.plan.data.test is None:
            return None
        return evaluation.report(self.model, self.plan.data, "test", self.config.train.batch_size, plots_dir, evaluated=evaluated)

    def save(self, path: Path) -> Path:
        """Write the saved model (base + head in features mode) to `path`, atomically.

        In features mode the saved model's optimizer never stepped (the head trained on its own): it is
        built first, so the file holds a (fresh) state for every variable and loading it compiled does not
        warn that the saved optimizer has fewer variables than the model.
        """
        saved = self.saved_model
        optimizer = getattr(saved, "optimizer", None)
        if saved is not self.model and optimizer is not None and not optimizer.built:
            optimizer.build(saved.trainable_variables)
        return atomic.write_with(path, saved.save)

    def _enter_phase(self, epochs_completed: int) -> None:
        """Before restoring a checkpoint: set the model up as it was after `epochs_completed` epochs
        (layers unfrozen and the optimizer of the phase that was running), so the variables line up."""
        for index, (phase, start, _end) in enumerate(self.plan.epoch_ranges()):
            if index and start <= epochs_completed:
                if phase.prepare:
                    phase.prepare()
                self.compiler.compile(phase)


def load(config: schema.Config, console: Console, validating: bool | None = None) -> dataset.Dataset:
    """The dataset `config` names, after the checks across sections that need its task.

    Its warnings (skipped files) go to the console. `validating`: whether the fits will have
    validation data, when the caller knows better than the config (K-fold's folds always do).
    """
    from dlrun import data
    from dlrun.runs import tensorboard as tensorboard_logs

    loaded = data.load(config.data, config.seed)
    for warning in loaded.warnings:
        console.print(f"[yellow]warning[/yellow]: {terminal.text(warning)}", highlight=False, soft_wrap=True)
    problems = config_module.consistency_problems(config, loaded.task, validating) + tensorboard_logs.problems(config)
    if problems:
        raise errors.ConfigError(problems)
    return loaded


@dataclasses.dataclass
class FitRequest:
    """The fit a staged `dlrun train` run waits for (`staged`): `fit()` is what `train` does with it."""

    training: Training
    folder: Path
    first_epoch: int
    on_epoch: OnEpoch
    extra_callbacks: list | None = None

    def fit(self) -> Fitted:
        return self.training.fit(self.folder, self.first_epoch, on_epoch=self.on_epoch, extra_callbacks=self.extra_callbacks)


def train(
    config: schema.Config,
    console: Console,
    command: list[str] | None = None,
    resume_run: runs.Run | None = None,
    tracker: tracking.MlflowTracker | None = None,
    on_start: Callable[[runs.Run], None] | None = None,
    on_epoch: OnEpoch | None = None,
) -> runs.Run:
    """`dlrun train`: train as `config` says (or continue `resume_run`); return the completed run.

    Everything that can be checked (data, shapes, monitors) is checked before the run folder exists,
    so a mistake leaves nothing behind. Once the folder exists, every outcome is recorded in run.json.
    `on_start(run)` and `on_epoch(epochs_completed, logs)` let a sweep follow its trials.
    Raises DlrunError subclasses on failure.
    """
    stages = staged(config, console, command, resume_run, tracker, on_start, on_epoch)
    request = next(stages)
    try:
        fitted: Fitted | BaseException = request.fit()
    except BaseException as error:  # recorded in run.json by the stages, then raised again
        fitted = error
    return conclude(stages, fitted)


def conclude(stages: Generator[FitRequest, Fitted, runs.Run], fitted: Fitted | BaseException) -> runs.Run:
    """Hand a staged run its fit's outcome (`Fitted`, or what the fit raised: run.json records it); return the run."""
    try:
        if isinstance(fitted, BaseException):
            stages.throw(fitted)
        else:
            stages.send(fitted)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("Received training stages that went on after their fit; expected one fit per run")


def staged(
    config: schema.Config,
    console: Console,
    command: list[str] | None = None,
    resume_run: runs.Run | None = None,
    tracker: tracking.MlflowTracker | None = None,
    on_start: Callable[[runs.Run], None] | None = None,
    on_epoch: OnEpoch | None = None,
) -> Generator[FitRequest, Fitted, runs.Run]:
    """`train` in stages, so several runs can fit together (`dlrun.trials.sweep_vectorized`): `next()` makes the
    run folder and yields its `FitRequest` inside the run's lifecycle; `conclude` hands back the outcome."""
    first_epoch = 0

    def heartbeat(epochs_completed: int, logs: dict) -> None:
        run.heartbeat(epochs_completed=epochs_completed)
        if on_epoch is not None:
            on_epoch(epochs_completed, logs)

    def stopped() -> tuple[str, dict]:
        outputs.write_plots(run, config, training.history)  # the curves so far
        return "", {}

    # Ctrl-C or SIGTERM before the run folder exists leaves nothing; once it is made (or a --resume has
    # marked it running again), the run is marked interrupted: never a folder left `running` or bare.
    with runs.starting("dlrun train --resume {path}", resume_run.path if resume_run is not None else None):
        measured = calibration.choose(config, console)  # backend: auto, timed on each backend (or cached)
        console.print(f"[bold]dlrun train[/bold] {terminal.text(config.name)}: importing Keras...", highlight=False)
        choice = backend.activate(config, measured)
        console.print(resume.backend_line(choice, config, resume_run), highlight=False, soft_wrap=True)
        # The run folder stores the backend `auto` resolved to: its config.yaml trains on it anywhere.
        config = config.model_copy(update={"backend": choice.name})
        loaded = load(config, console)
        training = Training(config, loaded, console)
        config = distribution.runs_root(config, training.share, resume_run is not None, console)  # process 0's only
        if resume_run is None:
            run = runs.create(config.output.runs_root, config.name)
            run.write_text(runs.CONFIG_FILE, config_module.to_yaml(config))
            extra = {
                "data": loaded.summary(),
                "data_fingerprint": loaded.fingerprint(),
                "parameters": int(training.saved_model.count_params()),
                "loss": training.compiler.loss,
                "metrics": training.compiler.metric_names,
                "backend": choice.record(),
                "steps_per_execution": outputs.steps_record(training),
                **outputs.numerics(training),
            }
            if training.plan.feature_cache is not None:  # the cache entry it trains on: `dlrun runs clean` keeps it
                extra["feature_cache"] = str(Path(training.plan.feature_cache).resolve())
            run.start(command, config.seed, runs.versions(), extra=extra)
            said = None
        else:
            run = resume_run
            run.lock()  # taken already by Run.open_to_continue; never write a run another process writes
            run.check_same_data(loaded.fingerprint())
            if training.can_restore(run.path) or run.record.get("epochs_completed"):
                trained_with = config_module.load(run.path / runs.CONFIG_FILE)
                first_epoch, source = training.restore(run.path, new_learning_rate=_learning_rates(trained_with) != _learning_rates(config))
                said = f"resuming after epoch {first_epoch} (state from {source})"
            else:  # stopped before its first checkpoint was complete (a kill while writing it): start again
                history.save(run.path / history.FILE_NAME, training.history)
                said = "resuming from the start (no epoch was completed)"
            run.write_text(runs.CONFIG_FILE, config_module.to_yaml(config))  # changed only with --force
            run.resume(command, first_epoch)
            earlier = run.record.get("backend") or {}
            if earlier.get("name") != choice.name:  # asked for with --backend: the run says it switched
                run.update(backend={**choice.record(), "switched_from": earlier.get("name"), "after_epoch": first_epoch})
            run.update(steps_per_execution=outputs.steps_record(training), **outputs.numerics(training))

        with runs.recorded(run, "training", f"dlrun train --resume {run.path}", stopped):
            if said is not None:
                console.print(said, highlight=False, soft_wrap=True)
            if on_start is not None:
                on_start(run)
            if tracker is not None:  # e.g. dlrun.runs.tracking.MlflowTracker: it never raises, it warns
                tracker.start(run, config)
            console.print(
                f"run folder: [bold]{terminal.text(run.path)}[/bold]\n"
                f"data: {_sizes(loaded)}; model: {config.model.architecture}, {training.saved_model.count_params():,} parameters",
                highlight=False,
                soft_wrap=True,
            )
            fitted = yield FitRequest(training, run.path, first_epoch, heartbeat, [tracker.callback()] if tracker is not None else None)
            summary = outputs.finish_files(run, config, training, console, fitted.evaluated)
            summary["fit_seconds"] = round(fitted.seconds, 3)
            summary.update(outputs.fit_time_record(fitted))
        with signals.deferred(raise_on_exit=False) as late:  # run.json is never left `running` by a late Ctrl-C
            run.finish("completed", **summary)
            if not config.output.keep_checkpoints:  # after `completed` is written: a crash before keeps them for --resume
                from dlrun.training import cleanup

                cleanup.remove_resume_checkpoints(run.path)
            distribution.remove_scratch(config, training.share)
    if late:
        raise errors.Interrupted(f"interrupted as the run completed; it is complete: {run.path}")
    return run


def _learning_rates(config: schema.Config) -> tuple:
    """The learning rates a config sets: its optimizer's, and a fine-tuning phase's."""
    fine_tune = getattr(config.model, "fine_tune", None)
    return config.compile.optimizer.learning_rate, getattr(fine_tune, "learning_rate", None)


def _sizes(loaded: dataset.Dataset) -> str:
    sizes = loaded.summary()["sizes"]
    return ", ".join(f"{count} {name}" for name, count in sizes.items() if count)
