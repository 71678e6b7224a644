"""`dlrun kfold`: K-fold and iterated K-fold validation, the recommended epoch count, and the final refit.

The folds cover every labelled sample outside the test split (train + validation, when the dataset
holds a validation split out), arrays or image files alike. Each fold is one run of the one training
function (`dlrun.trainer.Training`) on that fold's split, so every config key means in a fold what it
means in `dlrun train`: the same phases, feature cache, loop, callbacks, NaN stop and per-epoch
checkpoints. K-fold changes exactly what `fold_config` and `refit_config` say, and says so on the
console. The mean validation curve over folds is smoothed with an exponential moving average; its
best epoch is the recommended epoch count, and `final` retrains on all the folds' data for that many
epochs and evaluates on the test split.

The run folder: `kfold.json` (the plan with each fold's validation indices, per-fold results, mean
and std, the recommendation), `folds/<i>/` (each fold's history.json and checkpoints), `history.json`
(the mean over folds per epoch), `plots/`, and with `final`: `final/` (the refit's history and
checkpoints), `metrics.json`, `model.keras`. Folds are seeded by their index, so a fold's numbers do
not depend on which folds ran before it, nor on the executor (`dlrun.executors`) that ran it. A fold
or refit that stops continues from its last checkpoint on `--resume`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np

from dlrun import config as config_module, errors, runs
from dlrun.training import evaluation
from dlrun.trials import executors
from dlrun.runs import history
from dlrun.config import schema

FILE_NAME = "kfold.json"
FORMAT = 2  # kfold.json's layout; 1: before folds trained through the one training function
LIVE_WRITE_SECONDS = 1.0  # how often run.json's heartbeat is rewritten from the folds' epochs, at most


# --- the one place where a fold differs from `dlrun train` -------------------------------------------


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
    kept = [callback for callback in config.train.callbacks
            if callback.name != "early_stopping" and not callback.monitor.startswith("val_")]
    return config.model_copy(update={"train": config.train.model_copy(update={"callbacks": kept})})


def differences_said(config: schema.Config, keep_early_stopping: bool) -> list[str]:
    """The console lines that say how this K-fold run trains differently from `dlrun train`."""
    lines = []
    stopping = [callback for callback in config.train.callbacks if callback.name == "early_stopping"]
    if stopping and not keep_early_stopping:
        lines.append("folds train without early_stopping, so each runs its whole curve (keep it with --keep-early-stopping)")
    dropped = [callback.name for callback in refit_config(config).train.callbacks]
    dropped = [callback.name for callback in config.train.callbacks if callback.name not in dropped]
    if dropped:
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
    dataset: object | None = None



def check_options(k: int, repeats: int, shuffle: bool, smoothing: float) -> None:
    """Refuse impossible options before anything is loaded or written."""
    if k < 2:
        raise errors.ConfigError(f"--k: received {k}; expected a number of folds >= 2")
    if repeats < 1:
        raise errors.ConfigError(f"--repeats: received {repeats}; expected a number >= 1")
    if repeats > 1 and not shuffle:
        raise errors.ConfigError(
            f"--repeats: received {repeats} with --no-shuffle; expected --shuffle (without it every repeat has the same folds)"
        )
    if not 0 <= smoothing < 1:
        raise errors.ConfigError(f"--smoothing: received {smoothing}; expected a factor in [0, 1)")


def plan_folds(targets: np.ndarray, task: str, k: int, repeats: int, shuffle: bool, seed: int) -> list[dict]:
    """P x K folds (scikit-learn's StratifiedKFold for classification, KFold for regression).

    Repeat r shuffles with seed + r, so each repeat splits differently and the plan is reproducible.
    """
    from sklearn import model_selection

    count = len(targets)
    if k > count:
        raise errors.ConfigError(f"--k: received {k}; expected at most the number of samples ({count})")
    stratified = task != "regression"
    labels = evaluation.class_ids(targets) if stratified else np.zeros(count)
    if stratified and k > int(np.bincount(labels).max()):
        raise errors.ConfigError(
            f"--k: received {k}; expected at most {int(np.bincount(labels).max())} "
            "(stratified folds need that many samples in at least one class)"
        )
    plan = []
    for repeat in range(repeats):
        options = {"n_splits": k, "shuffle": shuffle, "random_state": seed + repeat if shuffle else None}
        splitter = model_selection.StratifiedKFold(**options) if stratified else model_selection.KFold(**options)
        for fold, (_, validation) in enumerate(splitter.split(np.zeros(count), labels), start=1):
            plan.append(
                {
                    "index": len(plan) + 1,
                    "repeat": repeat + 1,
                    "fold": fold,
                    "status": "pending",
                    "validation_indices": validation.tolist(),
                }
            )
    return plan


def smooth(values: list, factor: float = 0.9) -> list:
    """Exponential moving average: each point is `previous * factor + value * (1 - factor)` (None is skipped)."""
    smoothed, previous = [], None
    for value in values:
        if value is not None:
            previous = value if previous is None else previous * factor + value * (1 - factor)
        smoothed.append(previous)
    return smoothed


def mean_history(fold_histories: list[dict]) -> dict:
    """The per-epoch mean over folds of every logged value, over the epochs every fold reached."""
    epochs = min(len(fold_history["epoch"]) for fold_history in fold_histories)
    keys = [key for key in fold_histories[0] if key != "epoch" and all(key in other for other in fold_histories)]
    mean = {"epoch": list(range(1, epochs + 1))}
    for key in keys:
        columns = np.array([[np.nan if value is None else value for value in other[key][:epochs]] for other in fold_histories], dtype="float64")
        with np.errstate(all="ignore"):
            values = np.nanmean(columns, axis=0) if columns.size else np.array([])
        mean[key] = [None if not np.isfinite(value) else float(value) for value in values]
    return mean


def fold_results(fold_history: dict) -> dict:
    """A fold's last and best value of every validation key."""
    last, best = {}, {}
    for key in fold_history:
        if key.startswith("val_"):
            last[key] = fold_history[key][-1]
            found = history.best_epoch(fold_history, key)
            if found is not None:
                best[key] = {"epoch": found[0], "value": found[1]}
    return {"epochs": len(fold_history["epoch"]), "last": last, "best": best}


def summarize(folds: list[dict]) -> dict:
    """Mean and (population) std over folds of each validation key's last and best value."""
    done = [fold for fold in folds if fold["status"] == "completed"]
    keys = list(dict.fromkeys(key for fold in done for key in fold["last"]))
    summary = {}
    for key in keys:
        last = [fold["last"][key] for fold in done if fold["last"].get(key) is not None]
        best = [fold["best"][key]["value"] for fold in done if key in fold["best"]]
        summary[key] = {
            "last_mean": float(np.mean(last)) if last else None,
            "last_std": float(np.std(last)) if last else None,
            "best_mean": float(np.mean(best)) if best else None,
            "best_std": float(np.std(best)) if best else None,
        }
    return summary


def recommend(mean: dict, monitor: str, factor: float) -> dict:
    """The smoothed mean curve of `monitor` and its best epoch (the recommended epoch count)."""
    smoothed = smooth(mean[monitor], factor)
    found = history.best_epoch({"epoch": mean["epoch"], monitor: smoothed}, monitor)
    raw = history.best_epoch(mean, monitor)
    return {
        "monitor": monitor,
        "smoothing": factor,
        "smoothed": smoothed,
        "recommended_epochs": found[0] if found else len(mean["epoch"]),
        "smoothed_best": {"epoch": found[0], "value": found[1]} if found else None,
        "mean_best": {"epoch": raw[0], "value": raw[1]} if raw else None,
    }


def kfold(
    config,
    console,
    k: int = 4,
    repeats: int = 1,
    shuffle: bool = True,
    final: bool = True,
    monitor: str | None = None,
    smoothing: float = 0.9,
    command: list[str] | None = None,
    executor: str = "sequential",
    workers: int = 1,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
    keep_early_stopping: bool = False,
) -> runs.Run:
    """Run K-fold validation as configured; return the completed run (see the module docstring).

    `executor` (`dlrun.executors.resolve`), `workers`, `address` and `cpus_per_trial` say where the folds run.
    """
    check_options(k, repeats, shuffle, smoothing)
    executor = executors.resolve(executor, workers, address, cpus_per_trial)
    placement = {"executor": executor, "workers": workers, "address": address, "cpus_per_trial": cpus_per_trial}
    from dlrun import backend

    # Decide the backend before any worker starts: workers inherit $KERAS_BACKEND, so every fold runs on
    # the backend this process uses (and the numbers equal a sequential run's).
    os.environ["KERAS_BACKEND"] = backend.choose(config).name
    options = {"k": k, "repeats": repeats, "shuffle": shuffle, "final": final, "smoothing": smoothing,
               "keep_early_stopping": keep_early_stopping}
    return _with_workers(placement, lambda placement: _start(config, console, options, monitor, command, placement))


def _with_workers(placement: dict, body):
    """Call `body(placement)`; for the pool executor, its workers start first (importing TensorFlow
    while this process does the same) and are closed, or stopped on an error, afterwards."""
    if placement["executor"] != "pool":
        return body(placement)
    pool = executors.Pool(placement["workers"])
    try:
        outcome = body({**placement, "pool": pool})
    except BaseException:
        pool.stop()
        raise
    pool.close()
    return outcome


def _start(config, console, options: dict, monitor, command, placement) -> runs.Run:
    starting = "importing Keras..." if placement["executor"] == "sequential" else f"starting the {placement['executor']} executor..."
    console.print(f"[bold]dlrun kfold[/bold] {config.name}: {starting}", highlight=False)
    from dlrun import backend
    from dlrun.training import trainer

    if config.train.distribute != "none":
        raise errors.ConfigError(f"train.distribute: received {config.train.distribute!r} with dlrun kfold; expected "
                                 "'none' (folds are independent trials: spread them over processes, not replicas)")
    if placement["executor"] == "sequential":
        choice = backend.activate(config)
    else:
        # The folds train in worker processes: this one needs Keras only for the final refit, so it
        # does not spend a core importing it while the workers import theirs.
        choice = backend.choose(config)
    loaded = trainer.load(config, console, validating=True)  # every fold validates
    monitor = _monitor(config, loaded.task, monitor)
    pool = loaded.pooled()
    k, repeats = options["k"], options["repeats"]
    plan = plan_folds(pool.labels("train"), loaded.task, k, repeats, options["shuffle"], config.seed)

    run = runs.Run.create(config.output.runs_root, config.name)
    run.write_text(runs.CONFIG_FILE, config_module.to_yaml(config))
    state = {
        "format": FORMAT,
        **options,
        "stratified": loaded.task != "regression",
        "monitor": monitor,
        "samples": len(pool.labels("train")),
        "pooled_splits": [name for name in ("train", "validation") if loaded.split(name) is not None],
        "folds": plan,
    }
    run.write_json(FILE_NAME, state)
    run.start(
        command,
        config.seed,
        runs.versions(),
        extra={"kind": "kfold", "data": loaded.summary(), "data_fingerprint": pool.fingerprint(),
               "metrics": config_module.metric_names(config, loaded.task),
               "backend": choice.record()},
    )
    stratified = "stratified " if state["stratified"] else ""
    console.print(
        f"run folder: [bold]{run.path}[/bold]\n"
        f"data: {state['samples']} samples ({' + '.join(state['pooled_splits'])}) in {k} {stratified}folds"
        f"{f' x {repeats} repeats' if repeats > 1 else ''}; "
        f"{len(loaded.labels('test')) if loaded.test is not None else 0} test samples; "
        f"each fold trains {config.train.epochs} epochs as `dlrun train` would",
        highlight=False,
        soft_wrap=True,
    )
    for line in differences_said(config, options["keep_early_stopping"]):
        console.print(f"note: {line}", highlight=False, soft_wrap=True)
    return _execute(run, state, config, pool, console, placement)


def resume(run_dir, console, command: list[str] | None = None, executor: str = "sequential", workers: int = 1,
           address: str | None = None, cpus_per_trial: float = 1.0) -> runs.Run:
    """Continue an interrupted K-fold run in its own folder: completed folds are kept, a fold (or the
    final refit) that stopped part-way continues from its last checkpoint, the others start.

    Folds are seeded by their index and the plan (every fold's indices) is read back from kfold.json,
    so the resumed run ends with the numbers an uninterrupted run would have had.
    """
    executor = executors.resolve(executor, workers, address, cpus_per_trial)
    run = runs.Run.open(run_dir)
    try:
        state = json.loads((run.path / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise errors.RunError(f"{run.path / FILE_NAME}: missing or unreadable; expected a run made by `dlrun kfold`") from None
    if state.get("status") == "completed" or run.record.get("status") == "completed":
        raise errors.RunError(f"{run.path}: received a completed K-fold run; expected an interrupted or crashed one")
    config = config_module.load(run.path / runs.CONFIG_FILE)
    console.print(f"[bold]dlrun kfold --resume[/bold] {run.path}: importing Keras...", highlight=False, soft_wrap=True)
    from dlrun import backend
    from dlrun.training import trainer

    backend.activate(config)
    pool = trainer.load(config, console, validating=True).pooled()
    _check_same_data(run, state, pool)
    done = sum(fold["status"] == "completed" for fold in state["folds"])
    run.resume(command, epochs_completed=sum(fold.get("epochs", 0) for fold in state["folds"] if fold["status"] == "completed"))
    console.print(f"run folder: [bold]{run.path}[/bold]; {done} of {len(state['folds'])} folds already completed",
                  highlight=False, soft_wrap=True)
    placement = {"executor": executor, "workers": workers, "address": address, "cpus_per_trial": cpus_per_trial}
    return _with_workers(placement, lambda placement: _execute(run, state, config, pool, console, placement))


def _check_same_data(run: runs.Run, state: dict, pool) -> None:
    """Refuse to continue a K-fold run on other data than it was planned on (its folds' indices would be wrong)."""
    samples = len(pool.labels("train"))
    if samples != state["samples"]:
        raise errors.DataError(
            f"data: received {samples} samples; expected the {state['samples']} this K-fold run was planned on"
        )
    run.check_same_data(pool.fingerprint())


def _monitor(config, task: str, monitor: str | None) -> str:
    names = ["loss", *config_module.metric_names(config, task)]
    allowed = [f"val_{name}" for name in names]
    if monitor is None:
        return allowed[1] if len(allowed) > 1 else allowed[0]
    if monitor not in allowed:
        raise errors.ConfigError(f"--monitor: received {monitor!r}; expected one of {', '.join(allowed)}")
    return monitor


def _execute(run, state, config, pool, console, placement: dict) -> runs.Run:
    """Run every fold still pending, then the summary, plots and the final refit; record the outcome."""

    def stopped() -> tuple[str, dict]:
        done = sum(fold["status"] == "completed" for fold in state["folds"])
        state["status"] = "interrupted"
        run.write_json(FILE_NAME, state)
        return f"after {done} completed fold(s)", {"folds_completed": done}

    with runs.recorded(run, "K-fold", f"dlrun kfold --resume {run.path}", stopped):
        _run_folds(run, state, config, pool, console, placement)
        outcome = _conclude(run, state, config, pool, console, placement)
    run.finish("completed", **outcome)
    console.print(f"[green]completed[/green]: {run.path}", highlight=False, soft_wrap=True)
    return run


def _run_folds(run, state, config, pool, console, placement: dict) -> None:
    """Train every fold not completed yet on the chosen executor; record each fold as its events arrive.

    A fold that fails is recorded (`status: failed`, its error) while the others go on; then the run fails.
    """
    from dlrun.trials import progress as trial_progress

    folds = {fold["index"]: fold for fold in state["folds"]}
    todo = [fold for fold in state["folds"] if fold["status"] != "completed"]
    if not todo:
        return
    state["executor"] = {key: value for key, value in placement.items() if value is not None and key != "pool"}
    if placement["executor"] != "sequential":
        console.print(f"executor: {_describe(placement)}", highlight=False, soft_wrap=True)
    local = placement["executor"] == "sequential"  # in this process the pooled data is handed over as it is
    keep = state.get("keep_early_stopping", False)
    tasks = [(fold["index"], FitTask(config=config_module.to_data(fold_config(config, fold["index"], keep)),
                                     folder=str(run.path / "folds" / str(fold["index"])), data_seed=config.seed,
                                     validation_indices=fold["validation_indices"], dataset=pool if local else None))
             for fold in todo]
    monitor, total = state["monitor"], len(state["folds"])
    epochs_done = sum(fold.get("epochs", 0) for fold in state["folds"] if fold["status"] == "completed")
    failed: list[str] = []

    def on_event(index, event):
        nonlocal epochs_done
        fold, label = folds[index], _label(folds[index], state)
        if event["type"] == "resumed":
            progress.say(f"resuming fold {index} after epoch {event['after_epoch']} ({label}; state from {event['source']})")
        elif event["type"] == "epoch":
            epochs_done += 1
            run.heartbeat(at_most_every=LIVE_WRITE_SECONDS, epochs_completed=epochs_done, fold=index, folds=total)
            value = event["logs"].get(monitor)
            progress.epoch(index, label, event["epoch"], config.train.epochs, f"{monitor} {value:.4f}" if value is not None else "")
        elif event["type"] == "done":
            result = event["result"]
            # The worker wrote it as it went; written here too for workers that share no file system with this one.
            history.save(run.file(f"folds/{index}/{history.FILE_NAME}"), result["history"])
            fold.update(status="completed", train_samples=result["train_samples"], validation_samples=result["validation_samples"],
                        seconds=result["seconds"], **fold_results(result["history"]))
            fold.pop("error", None)
            fold.pop("traceback", None)
            run.write_json(FILE_NAME, state)
            run.heartbeat(epochs_completed=epochs_done, fold=index, folds=total)  # exact at every fold's end
            best = fold["best"].get(monitor)
            progress.finish(index, f"{label}: {monitor} last {fold['last'][monitor]:.4f}"
                            + (f", best {best['value']:.4f} at epoch {best['epoch']}" if best else "")
                            + f"  [dim]{fold['seconds']:.1f}s[/dim]")
        elif event["type"] == "failed":
            fold.update(status="failed", error=event["error"], **({"traceback": event["traceback"]} if "traceback" in event else {}))
            run.write_json(FILE_NAME, state)
            run.heartbeat(epochs_completed=epochs_done, fold=index, folds=total)
            failed.append(f"{label}: {event['error']}")
            progress.finish(index, f"[red]{label} failed[/red]: {event['error']}")

    with trial_progress.TrialProgress(console) as progress:
        executors.run(tasks, train_part, on_event, **placement)
    if failed:
        state["status"] = "failed"
        run.write_json(FILE_NAME, state)
        raise errors.TrainingFailed(
            f"{len(failed)} of {len(todo)} fold(s) failed ({'; '.join(failed)}); the completed folds are kept in "
            f"{run.path} (train the rest with: dlrun kfold --resume {run.path})"
        )


def train_part(task: FitTask, emit) -> dict:
    """Train one fold or the final refit, here or in a worker, through the one training function.

    The fit continues from its folder's last checkpoint when there is one (a resumed run). Each epoch
    goes out through `emit`; returns the history, sizes and time, and for the refit the test metrics
    (its plots go into the run folder, with model.keras, saved atomically).
    """
    from rich import console as rich_console

    from dlrun.training import trainer

    config = config_module.validate(task.config)
    pooled = task.dataset or _pooled_in_this_process(config, task.data_seed)
    data = pooled if task.validation_indices is None else pooled.fold(task.validation_indices)
    folder = Path(task.folder)
    quiet = rich_console.Console(file=io.StringIO(), width=120)  # the caller shows the progress
    training = trainer.Training(config, data, quiet)
    first_epoch = 0
    if training.can_restore(folder):
        first_epoch, source = training.restore(folder)
        emit({"type": "resumed", "after_epoch": first_epoch, "source": f"{folder.name}/{source}"})
    fitted = training.fit(folder, first_epoch, epochs=task.epochs, progress=False,
                          on_epoch=lambda epoch, logs: emit({"type": "epoch", "epoch": epoch, "logs": logs}))
    result = {
        "history": fitted.history,
        "train_samples": len(data.labels("train")),
        "validation_samples": 0 if data.validation is None else len(data.labels("validation")),
        "seconds": round(fitted.seconds, 3),
    }
    if task.run is not None:  # the final refit
        run_path = Path(task.run)
        metrics = training.evaluate(run_path / "plots" if config.output.plots else None)
        if metrics is not None:
            metrics["epochs"] = task.epochs
        result["metrics"] = metrics
        if config.output.save_model:
            training.save(run_path / "model.keras")
    return result


_POOLED: dict = {}  # in a worker process: the pooled dataset per data config, loaded once


def _pooled_in_this_process(config, seed: int):
    from dlrun import data

    key = json.dumps([config.data.model_dump(mode="json"), seed], sort_keys=True)
    if key not in _POOLED:
        _POOLED[key] = data.load(config.data, seed).pooled()
    return _POOLED[key]


def _describe(placement: dict) -> str:
    if placement["executor"] == "pool":
        threads = executors.threads_per_worker(placement["workers"])
        return f"a pool of {placement['workers']} worker processes, {threads} compute thread(s) each"
    return f"Ray Tune at {placement.get('address') or 'a local Ray instance'}, {placement['cpus_per_trial']:g} CPU(s) per trial"


def _label(fold: dict, state: dict) -> str:
    prefix = f"repeat {fold['repeat']}/{state['repeats']} " if state["repeats"] > 1 else ""
    return f"{prefix}fold {fold['fold']}/{state['k']}"


def _conclude(run, state, config, pool, console, placement: dict) -> dict:
    """Mean curves, smoothing, the recommendation and the plots; then the final refit when asked."""
    fold_histories = [history.load(run.path / "folds" / str(fold["index"]) / history.FILE_NAME) for fold in state["folds"]]
    mean = mean_history(fold_histories)
    history.save(run.file(history.FILE_NAME), mean)
    monitor = state["monitor"]
    state["summary"] = summarize(state["folds"])
    state.update(recommend(mean, monitor, state["smoothing"]))
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
    run.write_json(FILE_NAME, state)
    if state["final"]:
        outcome.update(_final(run, state, config, pool, recommended, console, placement))
    state["status"] = "completed"
    run.write_json(FILE_NAME, state)
    return outcome


def _final(run, state, config, pool, epochs: int, console, placement: dict) -> dict:
    """Retrain on every pooled sample for `epochs`, evaluate on test next to the baseline, save the model.

    With a process pool the refit is one more task for a worker, which has Keras loaded already (this
    process would otherwise pay a Keras import for it); otherwise it runs here. Either way the epochs
    come back as events.
    """
    from dlrun import backend
    from dlrun.trials import progress as trial_progress

    console.print(f"final: training on all {state['samples']} samples for {epochs} epochs", highlight=False)
    # On the pool unless this process has Keras loaded already (a resumed run whose folds were done).
    in_pool = placement["executor"] == "pool" and backend.loaded() is None
    if not in_pool:
        backend.import_keras()
    task = FitTask(config=config_module.to_data(refit_config(config)), folder=str(run.path / "final"), epochs=epochs,
                   run=str(run.path), data_seed=config.seed, dataset=None if in_pool else pool)
    epochs_before = sum(fold["epochs"] for fold in state["folds"])
    outcome: dict = {}

    def on_event(_key, event):
        if event["type"] == "resumed":
            progress.say(f"resuming the final refit after epoch {event['after_epoch']} (state from {event['source']})")
        elif event["type"] == "epoch":
            run.heartbeat(at_most_every=LIVE_WRITE_SECONDS, epochs_completed=epochs_before + event["epoch"], fold="final")
            progress.epoch("final", "final", event["epoch"], epochs, f"loss {event['logs'].get('loss', float('nan')):.4f}")
        elif event["type"] == "done":
            outcome.update(event["result"])
            history.save(run.file(f"final/{history.FILE_NAME}"), outcome["history"])
            run.heartbeat(epochs_completed=epochs_before + len(outcome["history"]["epoch"]), fold="final")
        else:
            outcome.update(error=event["error"], traceback=event.get("traceback"))  # no traceback: a dlrun error

    with trial_progress.TrialProgress(console) as progress:
        executors.run([("final", task)], train_part, on_event, executor="pool" if in_pool else "sequential",
                      pool=placement.get("pool"))
    if "error" in outcome:
        failure = errors.TrainingFailed(f"final: {outcome['error']}")
        failure.traceback = outcome["traceback"]  # recorded in run.json
        raise failure
    result = {"final_epochs": epochs}
    metrics = outcome.get("metrics")
    if metrics is not None:
        run.write_json("metrics.json", metrics)
        result["test_metrics"] = metrics["metrics"]
        state["final_test"] = {"metrics": metrics["metrics"], "baseline": metrics["baseline"]}
        console.print(evaluation.summary_line(metrics), highlight=False, soft_wrap=True)
    return result
