"""`dlrun kfold`: K-fold and iterated K-fold validation, the recommended epoch count, and the final refit.

The folds cover every labelled sample outside the test split (train + validation, when the dataset
holds a validation split out), arrays or image files alike. Each fold is one run of the one training
function (`dlrun.training.trainer.Training`) on that fold's split, so every config key means in a fold what it
means in `dlrun train`: the same phases, feature cache, loop, callbacks, NaN stop and per-epoch
checkpoints. K-fold changes exactly what `fold_config` and `refit_config` say, and says so on the
console. The mean validation curve over folds is smoothed with an exponential moving average; its
best epoch is the recommended epoch count, and `final` retrains on all the folds' data for that many
epochs and evaluates on the test split.

The run folder: `kfold.json` (the plan with each fold's validation indices, per-fold results, mean
and std, the recommendation), `folds/<i>/` (each fold's history.json and checkpoints), `history.json`
(the mean over folds per epoch), `plots/`, and with `final`: `final/` (the refit's history and
checkpoints), `metrics.json`, `model.keras`. Folds are seeded by their index, so a fold's numbers do
not depend on which folds ran before it, nor on the executor (`dlrun.trials.executors`) that ran it
(`vectorized`, the folds as one JAX program, the same numbers: `dlrun.trials.vectorized`). A fold
or refit that stops continues from its last checkpoint on `--resume`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dlrun import config as config_module, errors, runs, terminal
from dlrun.runs import history
from dlrun.training import evaluation
from dlrun.trials import executors, kfold_conclusion, kfold_fits, kfold_plan, outcomes

if TYPE_CHECKING:
    from rich.console import Console

    from dlrun import backend
    from dlrun.config import schema
    from dlrun.data import dataset

FILE_NAME = kfold_plan.FILE_NAME
FORMAT = kfold_plan.FORMAT
Watch = Callable[..., None] | None  # watch(run, state, fold index or None, event): a sweep following its K-fold trial
LIVE_WRITE_SECONDS = kfold_plan.LIVE_WRITE_SECONDS


def kfold(
    config: schema.Config,
    console: Console,
    k: int = 4,
    repeats: int = 1,
    shuffle: bool = True,
    final: bool = True,
    monitor: str | None = None,
    smoothing: float = 0.9,
    command: list[str] | None = None,
    placement: executors.Placement = executors.Placement(),
    keep_early_stopping: bool = False,
    watch: Watch = None,
) -> runs.Run:
    """Run K-fold validation as configured; return the completed run (see the module docstring).

    `placement` (`executors.Placement.resolve`) says where the folds run. `watch` (see `Watch`) sees every fold
    event once recorded; a sweep's K-fold trial reports through it, and may stop the run (`errors.TrialPruned`).
    """
    kfold_plan.check_options(k, repeats, shuffle, smoothing)
    from dlrun.training import calibration

    # Decide the backend before any worker starts, as dlrun train decides it (`backend: auto` calibrated):
    # workers inherit $KERAS_BACKEND, so every fold runs on the backend this process uses (and the numbers
    # equal a sequential run's).
    choice = calibration.choose(config, console)
    os.environ["KERAS_BACKEND"] = choice.name
    options = {
        "k": k,
        "repeats": repeats,
        "shuffle": shuffle,
        "final": final,
        "smoothing": smoothing,
        "keep_early_stopping": keep_early_stopping,
    }
    return _with_workers(placement, lambda placement: _start(config, console, options, monitor, command, placement, choice, watch))


def _with_workers(placement: executors.Placement, body: Callable[[executors.Placement], runs.Run]) -> runs.Run:
    """Call `body(placement)`; for the pool executor, its workers start first (importing TensorFlow
    while this process does the same) and are closed, or stopped on an error, afterwards."""
    if placement.executor != "pool":
        return body(placement)
    pool = executors.Pool(placement.workers)
    try:
        outcome = body(placement.with_pool(pool))
    except BaseException:
        pool.stop()
        raise
    pool.close()
    return outcome


def _start(
    config: schema.Config,
    console: Console,
    options: dict,
    monitor: str | None,
    command: list[str] | None,
    placement: executors.Placement,
    choice: backend.Choice,
    watch: Watch = None,
) -> runs.Run:
    in_process = placement.executor in executors.IN_PROCESS  # the folds train in this process
    starting = "importing Keras..." if in_process else f"starting the {placement.executor} executor..."
    console.print(f"[bold]dlrun kfold[/bold] {terminal.text(config.name)}: {starting}", highlight=False)
    from dlrun import backend
    from dlrun.training import trainer

    if config.train.distribute != "none":
        raise errors.ConfigError(
            f"train.distribute: received {config.train.distribute!r} with dlrun kfold; expected "
            "'none' (folds are independent trials: spread them over processes, not replicas)"
        )
    if in_process:
        choice = backend.activate(config, choice)
    # else the folds train in worker processes: this one needs Keras only for the final refit, so it
    # does not spend a core importing it while the workers import theirs.
    console.print(backend.said(choice, config.backend), highlight=False, soft_wrap=True)  # as dlrun train says
    config = config.model_copy(update={"backend": choice.name})  # stored resolved, as dlrun train stores it
    loaded = trainer.load(config, console, validating=True)  # every fold validates
    monitor = _monitor(config, loaded.task, monitor)
    pool = loaded.pooled()
    k, repeats = options["k"], options["repeats"]
    plan = kfold_plan.plan_folds(evaluation.split_labels(pool, "train"), loaded.task, k, repeats, options["shuffle"], config.seed)

    run = runs.create(config.output.runs_root, config.name)  # marked interrupted by a Ctrl-C from here on
    run.write_text(runs.CONFIG_FILE, config_module.to_yaml(config))
    state = {
        "format": FORMAT,
        **options,
        "stratified": loaded.task != "regression",
        "monitor": monitor,
        "samples": pool.size("train"),
        "pooled_splits": [name for name in ("train", "validation") if loaded.split(name) is not None],
        "folds": plan,
    }
    run.write_json(FILE_NAME, state)
    run.start(
        command,
        config.seed,
        runs.versions(),
        extra={
            "kind": "kfold",
            "data": loaded.summary(),
            "data_fingerprint": pool.fingerprint(),
            "metrics": config_module.metric_names(config, loaded.task),
            "backend": choice.record(),
        },
    )
    stratified = "stratified " if state["stratified"] else ""
    console.print(
        f"run folder: [bold]{terminal.text(run.path)}[/bold]\n"
        f"data: {state['samples']} samples ({' + '.join(state['pooled_splits'])}) in {k} {stratified}folds"
        f"{f' x {repeats} repeats' if repeats > 1 else ''}; "
        f"{loaded.size('test')} test samples; "
        f"each fold trains {config.train.epochs} epochs as `dlrun train` would",
        highlight=False,
        soft_wrap=True,
    )
    for line in kfold_fits.differences_said(config, options["keep_early_stopping"], options["final"]):
        console.print(f"note: {line}", highlight=False, soft_wrap=True)
    return _execute(run, state, config, pool, console, placement, watch)


def resume(
    run_dir: str | Path,
    console: Console,
    command: list[str] | None = None,
    placement: executors.Placement = executors.Placement(),
    backend_name: str | None = None,
    watch: Watch = None,
) -> runs.Run:
    """Continue an interrupted K-fold run in its own folder: completed folds are kept, a fold (or the
    final refit) that stopped part-way continues from its last checkpoint, the others start.

    Folds are seeded by their index and the plan (every fold's indices) is read back from kfold.json,
    so the resumed run ends with the numbers an uninterrupted run would have had: on the backend the run
    used, unless `backend_name` (`--backend NAME`) asks for another.
    """
    run = runs.Run.open_to_continue(run_dir)
    try:
        state = json.loads((run.path / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise errors.RunError(f"{run.path / FILE_NAME}: missing or unreadable; expected a run made by `dlrun kfold`") from None
    if state.get("status") == "completed" or run.record.get("status") == "completed":
        raise errors.RunError(f"{run.path}: received a completed K-fold run; expected an interrupted or crashed one")
    config = config_module.load(run.path / runs.CONFIG_FILE)
    console.print(f"[bold]dlrun kfold --resume[/bold] {terminal.text(run.path)}: importing Keras...", highlight=False, soft_wrap=True)
    from dlrun import backend
    from dlrun.training import resume as run_resume, trainer

    config = run_resume.on_run_backend(run, config, backend_name, f"dlrun kfold --resume {run.path}")
    choice = backend.activate(config)
    if choice.name != (run.record.get("backend") or {}).get("name"):  # asked for: recorded, as dlrun train does
        config = config.model_copy(update={"backend": choice.name})
        run.write_text(runs.CONFIG_FILE, config_module.to_yaml(config))
        run.update(backend={**choice.record(), "switched_from": (run.record.get("backend") or {}).get("name")})
    pool = trainer.load(config, console, validating=True).pooled()
    _check_same_data(run, state, pool)
    done = sum(fold["status"] == "completed" for fold in state["folds"])
    run.resume(command, epochs_completed=sum(fold.get("epochs", 0) for fold in state["folds"] if fold["status"] == "completed"))
    console.print(
        f"run folder: [bold]{terminal.text(run.path)}[/bold]; {done} of {len(state['folds'])} folds already completed",
        highlight=False,
        soft_wrap=True,
    )
    return _with_workers(placement, lambda placement: _execute(run, state, config, pool, console, placement, watch))


def _check_same_data(run: runs.Run, state: dict, pool: dataset.Dataset) -> None:
    """Refuse to continue a K-fold run on other data than it was planned on (its folds' indices would be wrong)."""
    samples = pool.size("train")
    if samples != state["samples"]:
        raise errors.DataError(f"data: received {samples} samples; expected the {state['samples']} this K-fold run was planned on")
    run.check_same_data(pool.fingerprint())


def _monitor(config: schema.Config, task: str, monitor: str | None) -> str:
    names = ["loss", *config_module.metric_names(config, task)]
    allowed = [f"val_{name}" for name in names]
    if monitor is None:
        return allowed[1] if len(allowed) > 1 else allowed[0]
    if monitor not in allowed:
        raise errors.UsageError(f"--monitor: received {monitor!r}; expected one of {', '.join(allowed)}")
    return monitor


def _execute(
    run: runs.Run,
    state: dict,
    config: schema.Config,
    pool: dataset.Dataset,
    console: Console,
    placement: executors.Placement,
    watch: Watch = None,
) -> runs.Run:
    """Run every fold still pending, then the summary, plots and the final refit; record the outcome."""

    def stopped() -> tuple[str, dict]:
        done = outcomes.mark_interrupted(run, FILE_NAME, state, "folds")
        return f"after {done} completed fold(s)", {"folds_completed": done}

    with runs.recorded(run, "K-fold", f"dlrun kfold --resume {run.path}", stopped):
        if watch is not None:
            watch(run, state, None, {"type": "started"})
        _run_folds(run, state, config, pool, console, placement, watch)
        outcome = kfold_conclusion.conclude(run, state, config, pool, console, placement)
    run.finish("completed", **outcome)
    if not config.output.keep_checkpoints:  # every fold's and the refit's, once `completed` is written
        from dlrun.training import cleanup

        cleanup.remove_resume_checkpoints(run.path)
    console.print(f"[green]completed[/green]: {terminal.text(run.path)}", highlight=False, soft_wrap=True)
    return run


def _run_folds(
    run: runs.Run,
    state: dict,
    config: schema.Config,
    pool: dataset.Dataset,
    console: Console,
    placement: executors.Placement,
    watch: Watch = None,
) -> None:
    """Train every fold not completed yet on the chosen executor; record each fold as its events arrive.

    A fold that fails is recorded (`status: failed`, its error) while the others go on; then the run fails.
    """
    from dlrun.trials import progress as trial_progress

    folds = {fold["index"]: fold for fold in state["folds"]}
    todo = [fold for fold in state["folds"] if fold["status"] != "completed"]
    if not todo:
        return
    state["executor"] = placement.record()
    if placement.executor not in ("sequential", "auto"):  # auto says what it chose, once it knows
        console.print(f"executor: {placement.describe()}", highlight=False, soft_wrap=True)
    local = placement.executor in executors.IN_PROCESS  # in this process the pooled data is handed over as it is
    keep = state.get("keep_early_stopping", False)
    tasks = [
        (
            fold["index"],
            kfold_fits.FitTask(
                config=config_module.to_data(kfold_fits.fold_config(config, fold["index"], keep)),
                folder=str(run.path / "folds" / str(fold["index"])),
                data_seed=config.seed,
                validation_indices=fold["validation_indices"],
                dataset=pool if local else None,
            ),
        )
        for fold in todo
    ]
    if placement.executor == "ray":  # workers may share no file system with this one: files travel in events
        tasks = [(index, kfold_fits.streamed_task(task)) for index, task in tasks]
    monitor, total = state["monitor"], len(state["folds"])
    epochs_done = sum(fold.get("epochs", 0) for fold in state["folds"] if fold["status"] == "completed")
    failed: list[str] = []

    def on_event(index: int, event: outcomes.Event) -> None:
        nonlocal epochs_done
        fold, label = folds[index], _label(folds[index], state)
        if event["type"] == "resumed":
            progress.say(f"resuming fold {index} after epoch {event['after_epoch']} ({label}; state from {event['source']})")
        elif event["type"] == "epoch":
            kfold_fits.write_streamed(run.path / "folds" / str(index), event)
            epochs_done += 1
            run.heartbeat(at_most_every=LIVE_WRITE_SECONDS, epochs_completed=epochs_done, fold=index, folds=total)
            value = event["logs"].get(monitor)
            progress.epoch(index, label, event["epoch"], config.train.epochs, f"{monitor} {value:.4f}" if value is not None else "")
        elif event["type"] == "done":
            result = event["result"]
            # The worker wrote it as it went; written here too for workers that share no file system with this one.
            history.save(run.file(f"folds/{index}/{history.FILE_NAME}"), result["history"])
            fold.update(
                status="completed",
                train_samples=result["train_samples"],
                validation_samples=result["validation_samples"],
                seconds=result["seconds"],
                **kfold_plan.fold_results(result["history"]),
                **{key: result[key] for key in ("feature_cache",) if key in result},
            )
            fold.pop("error", None)
            fold.pop("traceback", None)
            run.write_json(FILE_NAME, state)
            run.heartbeat(epochs_completed=epochs_done, fold=index, folds=total)  # exact at every fold's end
            best = fold["best"].get(monitor)
            progress.finish(
                index,
                f"{label}: {monitor} last {fold['last'][monitor]:.4f}"
                + (f", best {best['value']:.4f} at epoch {best['epoch']}" if best else "")
                + f"  [dim]{fold['seconds']:.1f}s[/dim]",
            )
        elif event["type"] == "failed":
            fold.update(status="failed", error=event["error"], **({"traceback": event["traceback"]} if "traceback" in event else {}))
            run.write_json(FILE_NAME, state)
            run.heartbeat(epochs_completed=epochs_done, fold=index, folds=total)
            failed.append(f"{label}: {event['error']}")
            progress.finish(index, f"[red]{label} failed[/red]: {event['error']}")
        if watch is not None:
            watch(run, state, index, event)

    with trial_progress.TrialProgress(console) as progress:
        if placement.executor in ("vectorized", "auto"):
            from dlrun.trials import vectorized

            auto = placement.executor == "auto"
            vectorized.run(tasks, on_event, progress.say, auto=auto, record=state["executor"], fallback=placement.fallback())
        else:
            executors.run(tasks, kfold_fits.train_part, on_event, placement)
    if failed:
        state["status"] = "failed"
        run.write_json(FILE_NAME, state)
        raise errors.TrainingFailed(
            f"{len(failed)} of {len(todo)} fold(s) failed ({'; '.join(failed)}); the completed folds are kept in "
            f"{run.path} (train the rest with: dlrun kfold --resume {run.path})"
        )


def _label(fold: dict, state: dict) -> str:
    prefix = f"repeat {fold['repeat']}/{state['repeats']} " if state["repeats"] > 1 else ""
    return f"{prefix}fold {fold['fold']}/{state['k']}"
