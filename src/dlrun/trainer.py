"""`dlrun train`: load the data, build and compile the model, fit it, and fill the run folder."""

from __future__ import annotations

import traceback

from dlrun import backend, callbacks, config as config_module, errors, evaluation, history
from dlrun import plots, runs, schema, signals


def train(config: schema.Config, console, command: list[str] | None = None) -> runs.Run:
    """Train as `config` says; return the completed run. Raises DlrunError subclasses on failure.

    Everything that can be checked (data, shapes, monitors) is checked before the run folder exists,
    so a mistake leaves nothing behind. Once the folder exists, every outcome is recorded in run.json.
    """
    console.print(f"[bold]dlrun train[/bold] {config.name}: importing TensorFlow...", highlight=False)
    keras = backend.import_keras()
    backend.seed_everything(config.seed)
    from dlrun import data, models

    loaded = data.load(config.data, config.seed)
    problems = config_module.consistency_problems(config, loaded.task)
    if problems:
        raise errors.ConfigError(problems)
    model = models.build(config.model, loaded)
    compiled = evaluation.compile_model(model, config, loaded.task)
    loss, metric_names = compiled["loss"], compiled["metrics"]

    run = runs.Run.create(config.output.runs_root, config.name)
    run.write_text(runs.CONFIG_FILE, config_module.to_yaml(config))
    run.start(
        command,
        config.seed,
        runs.versions(),
        extra={"data": loaded.summary(), "parameters": int(model.count_params()), "loss": loss, "metrics": metric_names},
    )
    console.print(
        f"run folder: [bold]{run.path}[/bold]\n"
        f"data: {_sizes(loaded)}; model: {config.model.architecture}, {model.count_params():,} parameters",
        highlight=False,
        soft_wrap=True,
    )
    from dlrun import keras_callbacks

    recorder = keras_callbacks.RunRecorder(run)
    fit_callbacks = [
        recorder,
        *callbacks.build_all(config.train.callbacks, run.path),
        keras_callbacks.RichProgress(console, config.train.epochs),
    ]
    try:
        with signals.terminate_as_interrupt():
            model.fit(
                **loaded.fit_arguments("train", config.train.batch_size),
                validation_data=loaded.validation_data(config.train.batch_size),
                epochs=config.train.epochs,
                shuffle=config.train.shuffle,
                callbacks=fit_callbacks,
                verbose=0,
            )
            if recorder.non_finite:
                raise errors.TrainingFailed(f"training stopped: {recorder.non_finite}")
            summary = _finish_files(run, config, model, loaded, recorder.history, console)
    except KeyboardInterrupt:
        _write_plots(run, config, recorder.history)
        run.finish("interrupted", error="interrupted by the user (Ctrl-C or SIGTERM)")
        raise errors.Interrupted(f"interrupted; what was written so far is in {run.path}") from None
    except errors.DlrunError as error:
        run.finish("failed", error=str(error))
        raise
    except Exception as error:  # any other failure is recorded before it propagates
        run.finish("failed", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
        raise errors.TrainingFailed(f"training failed: {type(error).__name__}: {error} (see {run.path / runs.RUN_FILE})") from error
    run.finish("completed", **summary)
    return run


def _finish_files(run, config, model, loaded, run_history, console) -> dict:
    """metrics.json, plots and model.keras; returns the summary that goes into run.json."""
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
        model.save(temp)
        temp.replace(target)
    console.print(f"[green]completed[/green]: {run.path}", highlight=False, soft_wrap=True)
    return summary


def _write_plots(run, config, run_history) -> None:
    if config.output.plots and run_history["epoch"]:
        plots.learning_curves(run_history, run.path / "plots")


def _sizes(loaded) -> str:
    sizes = loaded.summary()["sizes"]
    return ", ".join(f"{count} {name}" for name, count in sizes.items() if count)
