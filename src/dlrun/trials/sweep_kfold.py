"""Cross-validated sweep trials (`dlrun sweep --kfold K`, `search.kfold`) and the best trial's `--final` refit.

A cross-validated trial is a `dlrun kfold` run of the trial's config (`dlrun.trials.kfold`: the same fold
plan, fold seeds `seed + i - 1`, run folder and resume), without the refit. It is scored by the mean over
its folds of each fold's best value of the metric (`dlrun.trials.search.mean_objective`), and the pruner
judges the mean over the folds done so far after each fold (its step is the fold index), so a hopeless
trial stops between folds. The recommended epoch count of a trial is its K-fold run's (the best epoch of
the smoothed mean curve). `refit` trains the best trial's config on the whole training split for that
many epochs, through the trainer as `dlrun kfold`'s refit does, and evaluates it on test.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

from dlrun import config as config_module, errors, runs, terminal
from dlrun.config import schema, search as search_config
from dlrun.runs import history
from dlrun.training import evaluation
from dlrun.trials import executors, kfold, kfold_fits, kfold_plan, outcomes, search as search_engine

if TYPE_CHECKING:
    from rich.console import Console


def said(config: schema.Config, k: int, metric: str) -> list[str]:
    """The console lines that say, once per sweep, how a cross-validated trial trains."""
    return [
        f"each trial trains {k} folds as `dlrun kfold --k {k}` does (fold i seeded seed + i - 1), scored by the mean "
        f"over its folds of each fold's best {metric}; the pruner judges that mean after each fold",
        *kfold_fits.differences_said(config, keep_early_stopping=False, final=False),
    ]


def run_trial(payload: dict, emit: outcomes.Emit) -> dict:
    """Train one cross-validated trial (an executor's worker; `payload` as `dlrun.trials.trial.run_trial`'s).

    A trial whose K-fold run stopped part-way (`payload["run"]`) continues it: its completed folds are
    kept and a fold killed mid-way continues from its last checkpoint (`dlrun kfold --resume`). Returns
    {"state": "completed" or "pruned", "run", "history" (the mean over its completed folds), "best"
    ({"epoch": the recommended epoch count, "value": the mean fold score} or None), "pruned" ({"fold",
    "reason"}) when pruned}; a failure raises.
    """
    from rich import console as rich_console

    study = payload["study"]
    search = search_config.SearchConfig.model_validate(study["search"])
    reporter = search_engine.Reporter(study["url"], study["name"], study["trial_id"], search)
    quiet = rich_console.Console(file=io.StringIO(), width=120)  # the K-fold run folder records everything
    started: dict = {}

    def watch(run: runs.Run, state: dict, index: int | None, event: dict | None) -> None:
        if index is None or event is None:  # the K-fold run has started
            started["run"] = run
            emit({"type": "started", "run": str(run.path), "after_epoch": None})
        elif event["type"] == "resumed":
            emit({"type": "note", "text": f"continuing fold {index} after epoch {event['after_epoch']} ({run.path})"})
        elif event["type"] == "epoch":
            emit({"type": "epoch", "epoch": event["epoch"], "logs": event["logs"], "fold": index})
        elif event["type"] == "done":
            partial = search_engine.mean_objective(_fold_histories(run.path, state), search.metric, search.direction)
            if partial is not None:
                reporter.part(index, partial, "fold")  # raises TrialPruned: kfold records its run as pruned

    previous = Path(payload["run"]) if payload.get("run") else None
    try:
        if previous is not None and (previous / kfold.FILE_NAME).is_file():
            if runs.Run.open(previous).record.get("status") == "completed":
                return _result(previous, search)  # it completed; the sweep stopped before it was told
            kfold.resume(previous, quiet, command=payload["command"], placement=executors.Placement(), watch=watch)
            return _result(previous, search)
        config = config_module.validate(payload["config"])
        run = kfold.kfold(
            config,
            quiet,
            k=payload["kfold"],
            final=False,
            monitor=search.metric,
            command=payload["command"],
            placement=executors.Placement(),
            watch=watch,
        )
        return _result(run.path, search)
    except errors.Interrupted:
        raise KeyboardInterrupt from None
    except errors.TrialPruned as pruned:
        folder = started["run"].path
        state = json.loads((folder / kfold.FILE_NAME).read_text(encoding="utf-8"))
        mean = kfold_plan.mean_history(_fold_histories(folder, state))
        partial = search_engine.mean_objective(_fold_histories(folder, state), search.metric, search.direction)
        best = {"epoch": kfold_plan.recommend(mean, search.metric, state["smoothing"])["recommended_epochs"], "value": partial}
        return {"state": "pruned", "run": str(folder), "history": mean, "best": best, "pruned": pruned.record()}


def _fold_histories(folder: Path, state: dict) -> list[dict]:
    """The histories of the K-fold run's completed folds, in fold order."""
    return [
        history.load(folder / "folds" / str(fold["index"]) / history.FILE_NAME) for fold in state["folds"] if fold["status"] == "completed"
    ]


def _result(folder: Path, search: search_config.SearchConfig) -> dict:
    state = json.loads((folder / kfold.FILE_NAME).read_text(encoding="utf-8"))
    score = search_engine.mean_objective(_fold_histories(folder, state), search.metric, search.direction)
    return {
        "state": "completed",
        "run": str(folder),
        "history": history.load(folder / history.FILE_NAME),
        "best": None if score is None else {"epoch": state["recommended_epochs"], "value": score},
    }


def refit(trial_run: str | Path, console: Console) -> dict:
    """Refit a cross-validated trial on the whole training split for its recommended epochs and evaluate on
    test, in its K-fold run folder (`final/`, `metrics.json`, `model.keras`, as `dlrun kfold`'s refit
    writes them); print the test metrics next to the baseline's. Returns {"run", "epochs", "metrics", "baseline"}."""
    from dlrun import backend
    from dlrun.trials import progress as trial_progress

    run = runs.Run.open(trial_run)
    state = json.loads((run.path / kfold.FILE_NAME).read_text(encoding="utf-8"))
    config = config_module.load(run.path / runs.CONFIG_FILE)
    epochs = state["recommended_epochs"]
    console.print(
        f"final: refitting {terminal.text(run.path.name)} on all {state['samples']} samples for {epochs} epochs "
        "(its recommended epoch count), then evaluating on test",
        highlight=False,
        soft_wrap=True,
    )
    backend.activate(config)
    task = kfold_fits.FitTask(
        config=config_module.to_data(kfold_fits.refit_config(config)),
        folder=str(run.path / "final"),
        epochs=epochs,
        run=str(run.path),
        data_seed=config.seed,
    )

    def on_epoch(event: dict) -> None:
        if event["type"] == "epoch":
            progress.epoch("final", "final", event["epoch"], epochs, f"loss {event['logs'].get('loss', float('nan')):.4f}")

    with trial_progress.TrialProgress(console) as progress:
        result = kfold_fits.train_part(task, on_epoch)
        progress.finish("final", f"final: trained {len(result['history']['epoch'])} epochs")
    history.save(run.file(f"final/{history.FILE_NAME}"), result["history"])
    metrics = result.get("metrics")
    if metrics is None:
        raise errors.DataError(f"--final: data {config.data.name!r} has no test split; expected one to evaluate the refit on")
    run.write_json("metrics.json", metrics)
    state.update(final=True, final_epochs=epochs, final_test={"metrics": metrics["metrics"], "baseline": metrics["baseline"]})
    run.write_json(kfold.FILE_NAME, state)
    run.update(final_epochs=epochs, test_metrics=metrics["metrics"])
    console.print(evaluation.summary_line(metrics), highlight=False, soft_wrap=True)
    return {"run": str(run.path), "epochs": epochs, "metrics": metrics["metrics"], "baseline": metrics["baseline"]}
