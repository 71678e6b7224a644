"""Planning K-fold's folds and summarising their curves: the (stratified) split, per-fold results,
the mean curve over folds, its smoothing, and the recommended epoch count. Pure NumPy and scikit-learn."""

from __future__ import annotations

import numpy as np

from dlrun import errors
from dlrun.runs import history
from dlrun.training import evaluation

FILE_NAME = "kfold.json"
FORMAT = 2  # kfold.json's layout; 1: before folds trained through the one training function
LIVE_WRITE_SECONDS = 1.0  # how often run.json's heartbeat is rewritten from the folds' epochs, at most


def check_options(k: int, repeats: int, shuffle: bool, smoothing: float) -> None:
    """Refuse impossible options before anything is loaded or written."""
    if k < 2:
        raise errors.UsageError(f"--k: received {k}; expected a number of folds >= 2")
    if repeats < 1:
        raise errors.UsageError(f"--repeats: received {repeats}; expected a number >= 1")
    if repeats > 1 and not shuffle:
        raise errors.UsageError(
            f"--repeats: received {repeats} with --no-shuffle; expected --shuffle (without it every repeat has the same folds)"
        )
    if not 0 <= smoothing < 1:
        raise errors.UsageError(f"--smoothing: received {smoothing}; expected a factor in [0, 1)")


def plan_folds(targets: np.ndarray, task: str, k: int, repeats: int, shuffle: bool, seed: int) -> list[dict]:
    """P x K folds (scikit-learn's StratifiedKFold for classification, KFold for regression).

    Repeat r shuffles with seed + r, so each repeat splits differently and the plan is reproducible.
    """
    from sklearn import model_selection

    count = len(targets)
    if k > count:
        raise errors.UsageError(f"--k: received {k}; expected at most the number of samples ({count})")
    stratified = task != "regression"
    labels = evaluation.class_ids(targets) if stratified else np.zeros(count)
    if stratified and k > int(np.bincount(labels).max()):
        raise errors.UsageError(
            f"--k: received {k}; expected at most {int(np.bincount(labels).max())} "
            "(stratified folds need that many samples in at least one class)"
        )
    plan: list[dict] = []
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
    mean: dict[str, list] = {"epoch": list(range(1, epochs + 1))}
    for key in keys:
        columns = np.array(
            [[np.nan if value is None else value for value in other[key][:epochs]] for other in fold_histories], dtype="float64"
        )
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
