"""K-fold's conclusion: the mean curve over folds, its smoothing and the recommended epoch count, the plots,
and the final refit on every pooled sample for that many epochs, evaluated on the test split.

`dlrun.trials.kfold` calls `conclude` once every fold has completed (on a first run or a `--resume`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlrun import config as config_module, errors, runs
from dlrun.runs import history
from dlrun.training import evaluation
from dlrun.trials import executors, kfold_fits, kfold_plan, outcomes

if TYPE_CHECKING:
    from rich.console import Console

    from dlrun.config import schema
    from dlrun.data import dataset


def conclude(
    run: runs.Run, state: dict, config: schema.Config, pool: dataset.Dataset, console: Console, placement: executors.Placement
) -> dict:
    """Mean curves, smoothing, the recommendation and the plots; then the final refit when asked."""
    fold_histories = [history.load(run.path / "folds" / str(fold["index"]) / history.FILE_NAME) for fold in state["folds"]]
    mean = kfold_plan.mean_history(fold_histories)
    history.save(run.file(history.FILE_NAME), mean)
    monitor = state["monitor"]
    state["summary"] = kfold_plan.summarize(state["folds"])
    state.update(kfold_plan.recommend(mean, monitor, state["smoothing"]))
    recommended = state["recommended_epochs"]
    statistics = state["summary"][monitor]
    console.print(
        f"mean over {len(fold_histories)} folds: {monitor} last {statistics['last_mean']:.4f} ± {statistics['last_std']:.4f}, "
        f"best {statistics['best_mean']:.4f} ± {statistics['best_std']:.4f}\n"
        f"smoothed mean {monitor} (EMA {state['smoothing']}) is best at epoch {recommended}: "
        f"[bold]recommended epochs: {recommended}[/bold]",
        highlight=False,
        soft_wrap=True,
    )
    if config.output.plots:
        from dlrun.runs import plots

        for key in [key for key in mean if key.startswith("val_")]:
            plots.fold_curves(
                [fold_history[key] for fold_history in fold_histories],
                mean[key],
                state["smoothed"] if key == monitor else None,
                recommended if key == monitor else None,
                key,
                run.path / "plots" / f"kfold_{key}.png",
            )
        plots.learning_curves(mean, run.path / "plots")
    outcome = {"recommended_epochs": recommended, "folds_completed": len(fold_histories)}
    state["status"] = "folds_completed"
    run.write_json(kfold_plan.FILE_NAME, state)
    if state["final"]:
        outcome.update(_final(run, state, config, pool, recommended, console, placement))
    state["status"] = "completed"
    run.write_json(kfold_plan.FILE_NAME, state)
    return outcome


def _final(
    run: runs.Run, state: dict, config: schema.Config, pool: dataset.Dataset, epochs: int, console: Console, placement: executors.Placement
) -> dict:
    """Retrain on every pooled sample for `epochs`, evaluate on test next to the baseline, save the model.

    With a process pool the refit is one more task for a worker, which has Keras loaded already (this
    process would otherwise pay a Keras import for it); otherwise it runs here. Either way the epochs
    come back as events.
    """
    from dlrun import backend
    from dlrun.trials import progress as trial_progress

    console.print(f"final: training on all {state['samples']} samples for {epochs} epochs", highlight=False)
    # On the pool unless this process has Keras loaded already (a resumed run whose folds were done).
    in_pool = placement.executor == "pool" and backend.loaded() is None
    if not in_pool:
        backend.import_keras()
    task = kfold_fits.FitTask(
        config=config_module.to_data(kfold_fits.refit_config(config)),
        folder=str(run.path / "final"),
        epochs=epochs,
        run=str(run.path),
        data_seed=config.seed,
        dataset=None if in_pool else pool,
    )
    epochs_before = sum(fold["epochs"] for fold in state["folds"])
    outcome: dict = {}

    def on_event(_key: Any, event: outcomes.Event) -> None:
        if event["type"] == "resumed":
            progress.say(f"resuming the final refit after epoch {event['after_epoch']} (state from {event['source']})")
        elif event["type"] == "epoch":
            run.heartbeat(at_most_every=kfold_plan.LIVE_WRITE_SECONDS, epochs_completed=epochs_before + event["epoch"], fold="final")
            progress.epoch("final", "final", event["epoch"], epochs, f"loss {event['logs'].get('loss', float('nan')):.4f}")
        elif event["type"] == "done":
            outcome.update(event["result"])
            history.save(run.file(f"final/{history.FILE_NAME}"), outcome["history"])
            run.heartbeat(epochs_completed=epochs_before + len(outcome["history"]["epoch"]), fold="final")
        else:
            outcome.update(error=event["error"], traceback=event.get("traceback"))  # no traceback: a dlrun error

    with trial_progress.TrialProgress(console) as progress:
        executors.run([("final", task)], kfold_fits.train_part, on_event, placement if in_pool else executors.Placement())
    if "error" in outcome:
        failure = errors.TrainingFailed(f"final: {outcome['error']}")
        failure.traceback = outcome["traceback"]  # recorded in run.json
        raise failure
    result = {"final_epochs": epochs, **{key: outcome[key] for key in ("feature_cache",) if key in outcome}}
    metrics = outcome.get("metrics")
    if metrics is not None:
        run.write_json("metrics.json", metrics)
        result["test_metrics"] = metrics["metrics"]
        state["final_test"] = {"metrics": metrics["metrics"], "baseline": metrics["baseline"]}
        console.print(evaluation.summary_line(metrics), highlight=False, soft_wrap=True)
    return result
