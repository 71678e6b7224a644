"""`dlrun train`: load the data, build and compile the model, fit it (phase by phase), fill the run folder."""

from __future__ import annotations

import functools
import time
import traceback

from dlrun import backend, batches, callbacks, config as config_module, errors, evaluation, history
from dlrun import losses, plots, resume, runs, schema, signals


def train(config: schema.Config, console, command: list[str] | None = None, resume_run: runs.Run | None = None,
          tracker=None, extra_callbacks: list | None = None) -> runs.Run:
    """Train as `config` says (or continue `resume_run`); return the completed run.

    `extra_callbacks` are added to every fit (a sweep streams each epoch back through one).
    Everything that can be checked (data, shapes, monitors) is checked before the run folder exists,
    so a mistake leaves nothing behind. Once the folder exists, every outcome is recorded in run.json.
    Raises DlrunError subclasses on failure.
    """
    console.print(f"[bold]dlrun train[/bold] {config.name}: importing Keras...", highlight=False)
    choice = backend.activate(config)
    console.print(f"backend: {choice.name} ({choice.reason})", highlight=False, soft_wrap=True)
    backend.seed_everything(config.seed)
    with backend.distribution_scope(config):  # train.distribute: the model and its variables are mirrored
        loaded, plan, compiler = _prepare(config, console)
        model = plan.model
        compiler.compile(plan.phases[0])

    if resume_run is None:
        run = runs.Run.create(config.output.runs_root, config.name)
        run.write_text(runs.CONFIG_FILE, config_module.to_yaml(config))
        extra = {"data": loaded.summary(), "parameters": int(plan.saved_model.count_params()),
                 "loss": compiler.loss, "metrics": compiler.metric_names, "backend": choice.record()}
        run.start(command, config.seed, runs.versions(), extra=extra)
        first_epoch, run_history = 0, history.empty()
    else:
        run = resume_run
        first_epoch, source = resume.restore(run.path, model, before_assign=lambda epochs: _enter_phase(plan, compiler, epochs))
        run_history = history.truncate(history.load(run.file(history.FILE_NAME)), first_epoch)
        history.save(run.file(history.FILE_NAME), run_history)
        run.write_text(runs.CONFIG_FILE, config_module.to_yaml(config))  # changed only with --force
        run.resume(command, first_epoch)
        run.update(backend=choice.record())
        console.print(f"resuming after epoch {first_epoch} (state from {source})", highlight=False, soft_wrap=True)
    if tracker is not None:  # e.g. dlrun.tracking.MlflowTracker: it never raises, it warns
        tracker.start(run, config)
    console.print(
        f"run folder: [bold]{run.path}[/bold]\n"
        f"data: {_sizes(loaded)}; model: {config.model.architecture}, {plan.saved_model.count_params():,} parameters",
        highlight=False,
        soft_wrap=True,
    )
    from dlrun import keras_callbacks, loop, tensorboard_logs

    fit = model.fit if config.train.loop == "fit" else functools.partial(loop.fit, model)
    recorder = keras_callbacks.RunRecorder(run, run_history, checkpoint_every_epoch=config.output.resume_checkpoints)
    configured = callbacks.build_all(config.train.callbacks, run.path)
    fit_callbacks = [
        recorder,
        *configured,
        keras_callbacks.CallbackStateRestorer(configured, run_history),
        keras_callbacks.RichProgress(console, plan.total_epochs),
        *([tensorboard_logs.callback(run.path)] if config.train.tensorboard else []),
        *([tracker.callback()] if tracker is not None else []),
        *(extra_callbacks or []),
        *([keras_callbacks.TorchEpochSeeder(config.seed)] if choice.name == "torch" else []),
    ]
    try:
        with signals.terminate_as_interrupt():
            fit_started = time.perf_counter()
            for index, (phase, start, end) in enumerate(plan.epoch_ranges()):
                if end <= first_epoch:
                    continue  # finished before the resume
                done = max(start, first_epoch)
                if len(plan.phases) > 1:
                    note = ""
                    if index and done == start:  # entering the phase now (a resume re-entered it already)
                        note = phase.prepare() if phase.prepare else ""
                        compiler.compile(phase)  # recompiling picks up new trainable flags and learning rate
                    recorder.phase = phase.name
                    console.print(
                        f"phase {index + 1}/{len(plan.phases)} {phase.name}: epochs {done + 1}-{end}, "
                        f"learning rate {phase.optimizer.learning_rate:g}{'; ' + note if note else ''}",
                        highlight=False,
                        soft_wrap=True,
                    )
                fit(
                    **batches.fit_arguments(plan.data, config.train, config.seed, done, end),
                    validation_data=plan.data.validation_data(config.train.batch_size),
                    initial_epoch=done,
                    epochs=end,
                    callbacks=fit_callbacks,
                    verbose=0,
                )
                if recorder.non_finite or model.stop_training:
                    break  # NaN, or early stopping: later phases do not start
            fit_seconds = time.perf_counter() - fit_started
            if recorder.non_finite:
                raise errors.TrainingFailed(
                    f"training stopped: {recorder.non_finite}; the last good state is in "
                    f"{run.path / resume.LATEST} (epoch {len(recorder.history['epoch'])})"
                )
            summary = _finish_files(run, config, model, plan.data, recorder.history, console, plan.saved_model)
            summary["fit_seconds"] = round(fit_seconds, 3)
    except KeyboardInterrupt:
        _write_plots(run, config, recorder.history)
        run.finish("interrupted", error="interrupted by the user (Ctrl-C or SIGTERM)")
        raise errors.Interrupted(
            f"interrupted; what was written so far is in {run.path} (continue with: dlrun train --resume {run.path})"
        ) from None
    except errors.DlrunError as error:
        run.finish("failed", error=str(error))
        raise
    except OSError as error:  # a full disk or a vanished folder while writing the run's files
        message = f"could not write the run's files: {error.strerror or error} ({error.filename or run.path})"
        run.finish_if_possible("failed", error=message)
        raise errors.TrainingFailed(message) from None
    except Exception as error:  # any other failure is recorded before it propagates
        run.finish("failed", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
        raise errors.TrainingFailed(f"training failed: {type(error).__name__}: {error} (see {run.path / runs.RUN_FILE})") from error
    run.finish("completed", **summary)
    return run


class _Compiler:
    """Compiles the trained model (and the saved one, when they differ) for a phase's optimizer."""

    def __init__(self, plan, config: schema.Config, task: str):
        self.plan, self.config, self.task = plan, config, task
        self.loss = losses.resolve(config.compile.loss, task)
        self.metric_names = config_module.metric_names(config, task)

    def compile(self, phase) -> None:
        # The saved model is compiled too when it is not the trained one (features mode), so model.keras evaluates.
        for target in dict.fromkeys([self.plan.model, self.plan.saved_model]):
            evaluation.compile_model(target, self.config, self.task, optimizer_config=phase.optimizer)


def _prepare(config: schema.Config, console):
    """Load the data and plan the training: everything that may reject the config, before any folder exists."""
    from dlrun import data, models

    loaded = data.load(config.data, config.seed)
    for warning in loaded.warnings:
        console.print(f"[yellow]warning[/yellow]: {warning}", highlight=False, soft_wrap=True)
    from dlrun import tensorboard_logs

    problems = config_module.consistency_problems(config, loaded.task) + tensorboard_logs.problems(config)
    if problems:
        raise errors.ConfigError(problems)
    plan = models.plan(config, loaded, console)  # usually one phase fitting the built model on `loaded`
    compiler = _Compiler(plan, config, loaded.task)
    return loaded, plan, compiler


def _enter_phase(plan, compiler, epochs_completed: int) -> None:
    """Before restoring a checkpoint: set the model up as it was after `epochs_completed` epochs
    (layers unfrozen and the optimizer of the phase that was running), so the variables line up."""
    for index, (phase, start, _end) in enumerate(plan.epoch_ranges()):
        if index and start <= epochs_completed:
            if phase.prepare:
                phase.prepare()
            compiler.compile(phase)


def _finish_files(run, config, model, loaded, run_history, console, saved_model=None) -> dict:
    """metrics.json, plots and model.keras (`saved_model`, default `model`); returns the run.json summary."""
    summary: dict = {}
    best = history.best_epoch(run_history, "val_loss")
    if best is not None:
        summary["best_epoch"] = {"monitor": "val_loss", "epoch": best[0], "value": best[1]}
        last = run_history["epoch"][-1]
        verdict = (
            f"overfitting starts after epoch {best[0]}"
            if best[0] < last
            else "still improving at the last epoch: no overfitting seen yet"
        )
        console.print(
            f"validation loss was lowest at epoch {best[0]} ({best[1]:.4f}): {verdict}",
            highlight=False,
            soft_wrap=True,
        )
    if loaded.test is not None:
        plots_dir = run.path / "plots" if config.output.plots else None
        payload = evaluation.report(model, loaded, "test", config.train.batch_size, plots_dir=plots_dir)
        if best is not None:
            payload["best_epoch"] = summary["best_epoch"]
        run.write_json("metrics.json", payload)
        summary["test_metrics"] = payload["metrics"]
        console.print(evaluation.summary_line(payload), highlight=False, soft_wrap=True)
    _write_plots(run, config, run_history)
    if config.output.save_model:
        target = run.file("model.keras")
        temp = target.with_name(".model.tmp.keras")
        (model if saved_model is None else saved_model).save(temp)
        temp.replace(target)
    console.print(f"[green]completed[/green]: {run.path}", highlight=False, soft_wrap=True)
    return summary


def _write_plots(run, config, run_history) -> None:
    if config.output.plots and run_history["epoch"]:
        plots.learning_curves(run_history, run.path / "plots")


def _sizes(loaded) -> str:
    sizes = loaded.summary()["sizes"]
    return ", ".join(f"{count} {name}" for name, count in sizes.items() if count)
