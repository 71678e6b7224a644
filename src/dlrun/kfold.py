"""`dlrun kfold`: K-fold and iterated K-fold validation, the recommended epoch count, and the final refit.

The folds cover every labelled sample outside the test split (train + validation, when the dataset
holds a validation split out). Each fold gets a fresh model whose input normalisation is adapted on
that fold's training part only. The mean validation curve over folds is smoothed with an exponential
moving average (as the book does for Boston); its best epoch is the recommended epoch count, and
`final` retrains on all the folds' data for that many epochs and evaluates on the test split.

The run folder: `kfold.json` (the plan with each fold's validation indices, per-fold results, mean
and std, the recommendation), `folds/<i>/history.json`, `history.json` (the mean over folds per
epoch), `plots/`, and with `final`: `final/history.json`, `metrics.json`, `model.keras`. Folds are
seeded by their index, so a fold's numbers do not depend on which folds ran before it, nor on the
executor (`dlrun.executors`: in this process, in a pool of worker processes, or as Ray Tune trials)
that ran it. Workers send their epochs back as events and this process writes the run folder, except
that the final refit, on a pool worker, writes its test plots and model.keras there itself.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import traceback
from pathlib import Path

import numpy as np

from dlrun import batches, config as config_module, errors, evaluation, executors, history, runs, signals

FILE_NAME = "kfold.json"
LIVE_WRITE_SECONDS = 1.0  # how often a running fold's history.json and the heartbeat are rewritten, at most


class _LiveHistory:
    """The history.json of a fit running elsewhere (a fold, the final refit), built from its epoch events.

    It is for watching the fit (a fit that stops restarts from scratch), so it is rewritten at most once
    every LIVE_WRITE_SECONDS; `save` writes it durably, once the fit has ended.
    """

    def __init__(self, path):
        self.path = path
        self.history = history.empty()
        self._written = -math.inf  # time.monotonic() of the last write

    def add(self, epoch: int, logs: dict) -> None:
        history.append(self.history, epoch, logs)
        now = time.monotonic()
        if now - self._written >= LIVE_WRITE_SECONDS:
            self._written = now
            history.save(self.path, self.history, durable=False)

    def save(self, whole: dict | None = None) -> None:
        history.save(self.path, self.history if whole is None else whole)


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
    return _with_workers(placement, lambda placement: _start(config, console, k, repeats, shuffle, final, monitor,
                                                             smoothing, command, placement))


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


def _start(config, console, k, repeats, shuffle, final, monitor, smoothing, command, placement) -> runs.Run:
    starting = "importing Keras..." if placement["executor"] == "sequential" else f"starting the {placement['executor']} executor..."
    console.print(f"[bold]dlrun kfold[/bold] {config.name}: {starting}", highlight=False)
    from dlrun import backend, data

    if config.train.distribute != "none":
        raise errors.ConfigError(f"train.distribute: received {config.train.distribute!r} with dlrun kfold; expected "
                                 "'none' (folds are independent trials: spread them over processes, not replicas)")
    if placement["executor"] == "sequential":
        choice = backend.activate(config)
        backend.seed_everything(config.seed)
    else:
        # The folds train in worker processes: this one needs Keras only for the final refit, so it
        # does not spend a core importing it while the workers import theirs.
        choice = backend.choose(config)
    loaded = data.load(config.data, config.seed)
    problems = config_module.consistency_problems(config, loaded.task)
    if problems:
        raise errors.ConfigError(problems)
    monitor = _monitor(config, loaded.task, monitor)
    pool = pooled(loaded)
    plan = plan_folds(pool.train[1], loaded.task, k, repeats, shuffle, config.seed)

    run = runs.Run.create(config.output.runs_root, config.name)
    run.write_text(runs.CONFIG_FILE, config_module.to_yaml(config))
    state = {
        "k": k,
        "repeats": repeats,
        "shuffle": shuffle,
        "stratified": loaded.task != "regression",
        "monitor": monitor,
        "smoothing": smoothing,
        "final": final,
        "samples": int(len(pool.train[1])),
        "pooled_splits": [name for name in ("train", "validation") if loaded.split(name) is not None],
        "folds": plan,
    }
    run.write_json(FILE_NAME, state)
    run.start(
        command,
        config.seed,
        runs.versions(),
        extra={"kind": "kfold", "data": loaded.summary(), "metrics": config_module.metric_names(config, loaded.task),
               "backend": choice.record()},
    )
    stratified = "stratified " if state["stratified"] else ""
    console.print(
        f"run folder: [bold]{run.path}[/bold]\n"
        f"data: {state['samples']} samples ({' + '.join(state['pooled_splits'])}) in {k} {stratified}folds"
        f"{f' x {repeats} repeats' if repeats > 1 else ''}; "
        f"{len(loaded.labels('test')) if loaded.test is not None else 0} test samples; "
        f"each fold trains {config.train.epochs} epochs (train.callbacks are not used in K-fold)",
        highlight=False,
        soft_wrap=True,
    )
    return _execute(run, state, config, pool, console, placement)


def resume(run_dir, console, command: list[str] | None = None, executor: str = "sequential", workers: int = 1,
           address: str | None = None, cpus_per_trial: float = 1.0) -> runs.Run:
    """Continue an interrupted K-fold run in its own folder: only the folds not completed are trained.

    Folds are seeded by their index and the plan (every fold's indices) is read back from kfold.json,
    so the resumed run ends with the numbers an uninterrupted run would have had.
    """
    import json

    executor = executors.resolve(executor, workers, address, cpus_per_trial)
    run = runs.Run.open(run_dir)
    try:
        state = json.loads((run.path / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise errors.RunError(f"{run.path / FILE_NAME}: missing or unreadable; expected a run made by `dlrun kfold`") from None
    if state.get("status") == "completed" or run.record.get("status") == "completed":
        raise errors.RunError(f"{run.path}: received a completed K-fold run; expected an interrupted or crashed one")
    config = config_module.load(run.path / runs.CONFIG_FILE)
    console.print(f"[bold]dlrun kfold --resume[/bold] {run.path}: importing TensorFlow...", highlight=False, soft_wrap=True)
    from dlrun import backend, data

    backend.activate(config)
    backend.seed_everything(config.seed)
    loaded = data.load(config.data, config.seed)
    pool = pooled(loaded)
    if len(pool.train[1]) != state["samples"]:
        raise errors.DataError(
            f"data: received {len(pool.train[1])} samples; expected the {state['samples']} this K-fold run was planned on"
        )
    done = sum(fold["status"] == "completed" for fold in state["folds"])
    run.resume(command, epochs_completed=sum(fold.get("epochs", 0) for fold in state["folds"] if fold["status"] == "completed"))
    console.print(f"run folder: [bold]{run.path}[/bold]; {done} of {len(state['folds'])} folds already completed",
                  highlight=False, soft_wrap=True)
    placement = {"executor": executor, "workers": workers, "address": address, "cpus_per_trial": cpus_per_trial}
    return _with_workers(placement, lambda placement: _execute(run, state, config, pool, console, placement))


def pooled(loaded):
    """The dataset with its validation split folded into train (the data K-fold splits), test kept."""
    arrays = [loaded.split(name) for name in ("train", "validation") if loaded.split(name) is not None]
    if not all(isinstance(part, np.ndarray) for arrays_of_split in arrays for part in arrays_of_split):
        raise errors.DataError("data: received a dataset streamed from files; expected in-memory arrays for K-fold")
    inputs = np.concatenate([part[0] for part in arrays])
    targets = np.concatenate([part[1] for part in arrays])
    return dataclasses.replace(loaded, train=(inputs, targets), validation=None)


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
    try:
        with signals.terminate_as_interrupt():
            _run_folds(run, state, config, pool, console, placement)
            outcome = _conclude(run, state, config, pool, console, placement)
    except KeyboardInterrupt:
        done = sum(fold["status"] == "completed" for fold in state["folds"])
        state["status"] = "interrupted"
        run.write_json(FILE_NAME, state)
        (run.path / ".model.tmp.keras").unlink(missing_ok=True)  # a refit stopped while saving its model
        run.finish("interrupted", error="interrupted by the user (Ctrl-C or SIGTERM)", folds_completed=done)
        raise errors.Interrupted(f"interrupted after {done} completed fold(s); they are kept in {run.path}") from None
    except errors.DlrunError as error:
        found = getattr(error, "traceback", None)  # a task's own traceback, when it failed unexpectedly
        run.finish("failed", error=str(error), **({"traceback": found} if found else {}))
        raise
    except Exception as error:  # any other failure is recorded before it propagates
        run.finish("failed", error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
        raise errors.TrainingFailed(f"K-fold failed: {type(error).__name__}: {error} (see {run.path / runs.RUN_FILE})") from error
    run.finish("completed", **outcome)
    console.print(f"[green]completed[/green]: {run.path}", highlight=False, soft_wrap=True)
    return run


def _run_folds(run, state, config, pool, console, placement: dict) -> None:
    """Train every fold not completed yet on the chosen executor; write each fold's files as its events arrive.

    A fold that fails is recorded (`status: failed`, its error) while the others go on; then the run fails.
    """
    from dlrun import trial_progress

    folds = {fold["index"]: fold for fold in state["folds"]}
    todo = [fold for fold in state["folds"] if fold["status"] != "completed"]
    if not todo:
        return
    state["executor"] = {key: value for key, value in placement.items() if value is not None and key != "pool"}
    if placement["executor"] != "sequential":
        console.print(f"executor: {_describe(placement)}", highlight=False, soft_wrap=True)
    data = config_module.to_data(config)
    # In this process the pooled arrays are handed over as they are; other processes load them once each.
    local = placement["executor"] == "sequential"
    tasks = [(fold["index"], {"config": data, "fold": _fold_plan(fold), "pool": pool if local else None}) for fold in todo]
    monitor, total = state["monitor"], len(state["folds"])
    epochs_done = sum(fold.get("epochs", 0) for fold in state["folds"] if fold["status"] == "completed")
    live = {fold["index"]: _LiveHistory(run.file(f"folds/{fold['index']}/{history.FILE_NAME}")) for fold in todo}
    failed: list[str] = []

    def on_event(index, event):
        nonlocal epochs_done
        fold, label = folds[index], _label(folds[index], state)
        if event["type"] == "epoch":
            live[index].add(event["epoch"], event["logs"])
            epochs_done += 1
            run.heartbeat(at_most_every=LIVE_WRITE_SECONDS, epochs_completed=epochs_done, fold=index, folds=total)
            value = event["logs"].get(monitor)
            progress.epoch(index, label, event["epoch"], config.train.epochs, f"{monitor} {value:.4f}" if value is not None else "")
        elif event["type"] == "done":
            result = event["result"]
            live[index].save(result["history"])  # the whole history, whatever events arrived
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
        executors.run(tasks, train_fold, on_event, **placement)
    if failed:
        state["status"] = "failed"
        run.write_json(FILE_NAME, state)
        raise errors.TrainingFailed(
            f"{len(failed)} of {len(todo)} fold(s) failed ({'; '.join(failed)}); the completed folds are kept in "
            f"{run.path} (train the rest with: dlrun kfold --resume {run.path})"
        )


def train_fold(payload: dict, emit) -> dict:
    """Train one fold, here or in a worker process: a fresh model seeded by the fold's index only.

    `payload`: the resolved config (plain data), the fold's plan (index, validation indices) and, in
    the main process, the pooled dataset (elsewhere it is loaded once per process). Each epoch's logs
    go out through `emit`; returns the fold's history and sizes.
    """
    from dlrun import backend, keras_callbacks, models

    config = config_module.validate(payload["config"])
    pool = payload.get("pool") or _pooled_in_this_process(config)
    fold = payload["fold"]
    inputs, targets = pool.train
    validation = np.array(fold["validation_indices"], dtype="int64")
    keep = np.ones(len(targets), dtype=bool)
    keep[validation] = False
    part = dataclasses.replace(
        pool, train=(inputs[keep], targets[keep]), validation=(inputs[validation], targets[validation]), test=None
    )
    seed = config.seed + fold["index"] - 1
    backend.seed_everything(seed)
    model = models.build(config.model, part, train_inputs=part.train[0])
    evaluation.compile_model(model, config, pool.task)
    reporter = keras_callbacks.EpochReporter(emit)
    started = time.perf_counter()
    model.fit(
        **batches.fit_arguments(part, config.train, seed, 0, config.train.epochs),
        validation_data=part.validation_data(config.train.batch_size),
        epochs=config.train.epochs,
        callbacks=[reporter],
        verbose=0,
    )
    if reporter.non_finite:
        raise errors.TrainingFailed(f"training stopped: {reporter.non_finite}")
    return {
        "history": reporter.history,
        "train_samples": int(keep.sum()),
        "validation_samples": int(len(validation)),
        "seconds": round(time.perf_counter() - started, 3),
    }


_POOLED: dict = {}  # in a worker process: the pooled dataset per data config, loaded once


def _pooled_in_this_process(config):
    import json

    from dlrun import data

    key = json.dumps([config.data.model_dump(mode="json"), config.seed], sort_keys=True)
    if key not in _POOLED:
        _POOLED[key] = pooled(data.load(config.data, config.seed))
    return _POOLED[key]


def _fold_plan(fold: dict) -> dict:
    return {"index": fold["index"], "validation_indices": fold["validation_indices"]}


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
        from dlrun import plots

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
    process would otherwise pay a TensorFlow import for it); otherwise it runs here. Either way the
    epochs come back as events, written here as they arrive.
    """
    from dlrun import trial_progress

    console.print(f"final: training on all {state['samples']} samples for {epochs} epochs", highlight=False)
    from dlrun import backend

    # On the pool unless this process has Keras loaded already (a resumed run whose folds were done).
    in_pool = placement["executor"] == "pool" and backend.loaded() is None
    if not in_pool:
        backend.import_keras()
    payload = {"config": config_module.to_data(config), "epochs": epochs, "run": str(run.path),
               "pool": None if in_pool else pool}
    live = _LiveHistory(run.file(f"final/{history.FILE_NAME}"))
    epochs_before = sum(fold["epochs"] for fold in state["folds"])
    outcome: dict = {}

    def on_event(_key, event):
        if event["type"] == "epoch":
            live.add(event["epoch"], event["logs"])
            run.heartbeat(at_most_every=LIVE_WRITE_SECONDS, epochs_completed=epochs_before + event["epoch"], fold="final")
            progress.epoch("final", "final", event["epoch"], epochs, f"loss {event['logs'].get('loss', math.nan):.4f}")
        elif event["type"] == "done":
            outcome.update(event["result"])
            live.save(outcome["history"])
            run.heartbeat(epochs_completed=epochs_before + len(outcome["history"]["epoch"]), fold="final")
        else:
            live.save()  # what the refit reached
            outcome.update(error=event["error"], traceback=event.get("traceback"))  # no traceback: a dlrun error

    with trial_progress.TrialProgress(console) as progress:
        executors.run([("final", payload)], train_final, on_event, executor="pool" if in_pool else "sequential",
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


def train_final(payload: dict, emit) -> dict:
    """The final refit, here or in a pool worker: a model seeded by the config's seed, trained on every
    pooled sample; then the test evaluation (its plots go into the run folder) and model.keras, saved
    atomically. Returns the history and the metrics payload (None without a test split)."""
    from dlrun import backend, keras_callbacks, models

    keras = backend.import_keras()
    config = config_module.validate(payload["config"])
    pool = payload.get("pool") or _pooled_in_this_process(config)
    run_path, epochs = Path(payload["run"]), payload["epochs"]
    keras.utils.set_random_seed(config.seed)
    model = models.build(config.model, pool, train_inputs=pool.train[0])
    evaluation.compile_model(model, config, pool.task)
    reporter = keras_callbacks.EpochReporter(emit)
    model.fit(**batches.fit_arguments(pool, config.train, config.seed, 0, epochs), epochs=epochs,
              callbacks=[reporter], verbose=0)
    if reporter.non_finite:
        raise errors.TrainingFailed(f"training stopped: {reporter.non_finite}")
    metrics = None
    if pool.test is not None:
        plots_dir = run_path / "plots" if config.output.plots else None
        metrics = evaluation.report(model, pool, "test", config.train.batch_size, plots_dir=plots_dir)
        metrics["epochs"] = epochs
    if config.output.save_model:
        temp = run_path / ".model.tmp.keras"
        model.save(temp)
        temp.replace(run_path / "model.keras")
    return {"history": reporter.history, "metrics": metrics}
