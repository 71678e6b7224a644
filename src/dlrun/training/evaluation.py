"""Compiling a model for a config, and evaluating it on one split next to the naive baseline.

Shared by `dlrun train` (the test split at the end), `dlrun eval` (any split of a stored run) and
`dlrun kfold` (each fold's model and the final model), so all three report the same things the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlrun import config as config_module, terminal
from dlrun.training import baseline, batches, losses, metrics, optimizers

if TYPE_CHECKING:
    from rich.console import Console

    from dlrun.config import schema
    from dlrun.data import dataset


def compile_model(model: Any, config: schema.Config, task: str, optimizer_config: Any = None, steps_per_execution: int = 1) -> dict:
    """Compile `model` with the config's optimizer (or `optimizer_config`, e.g. a fine-tuning phase's), loss
    and metrics, running `steps_per_execution` batches per call (dlrun.training.batches); return `{"loss",
    "metrics"}` as resolved."""
    loss = losses.resolve(config.compile.loss, task)
    metric_names = config_module.metric_names(config, task)
    model.compile(
        optimizer=optimizers.get(optimizer_config or config.compile.optimizer),
        loss=loss,
        metrics=[metrics.get(name) for name in metric_names],
        steps_per_execution=steps_per_execution,
    )
    return {"loss": loss, "metrics": metric_names}


def report(
    model: Any,
    loaded: dataset.Dataset,
    split: str,
    batch_size: int,
    plots_dir: str | Path | None = None,
    tag: str | None = None,
    evaluated: tuple[dict, np.ndarray] | None = None,
) -> dict:
    """Evaluate on `split`: metrics, the baseline on the same split, and the prediction analysis.

    Classification adds the confusion matrix and per-class precision/recall/F1; regression adds
    residual statistics. With `plots_dir`, also writes `confusion_matrix_<tag>.png` or
    `predicted_vs_true_<tag>.png` and `residuals_<tag>.png` there (`tag` defaults to the split).
    `evaluated`: the model's (metrics, outputs) on the split, computed already (a vectorized sweep's
    trials, `dlrun.trials.stacked.evaluate_together`), instead of `model.evaluate` and `model.predict`.
    """
    tag = tag or split
    if evaluated is None:
        values = model.evaluate(**_batches(loaded, split, batch_size), verbose=0, return_dict=True)
        outputs = np.asarray(model.predict(**_batches(loaded, split, batch_size), verbose=0))
    else:
        values, outputs = evaluated
    targets = split_labels(loaded, split)
    payload: dict[str, Any] = {
        "split": split,
        "samples": int(len(targets)),
        "metrics": {key: float(value) for key, value in values.items()},
        "baseline": baseline.for_task(loaded.task, split_labels(loaded, "train"), targets),
    }
    if loaded.task == "regression":
        predicted = outputs.reshape(len(outputs), -1)[:, 0].astype("float64")
        true = np.asarray(targets, dtype="float64").reshape(len(targets))
        residuals = predicted - true
        payload["residuals"] = {
            "mean": float(residuals.mean()),
            "std": float(residuals.std()),
            "max_abs": float(np.abs(residuals).max()),
        }
        if plots_dir is not None:
            from dlrun.runs import plots

            plots.predicted_vs_true(true, predicted, Path(plots_dir) / f"predicted_vs_true_{tag}.png", split)
            plots.residuals(true, predicted, Path(plots_dir) / f"residuals_{tag}.png", split)
        return payload
    payload.update(classification_analysis(class_ids(targets), predicted_classes(outputs), _class_names(loaded)))
    if plots_dir is not None:
        from dlrun.runs import plots

        plots.confusion_matrix(
            payload["confusion_matrix"]["matrix"],
            payload["confusion_matrix"]["labels"],
            Path(plots_dir) / f"confusion_matrix_{tag}.png",
            split,
        )
    return payload


def _batches(loaded: dataset.Dataset, split: str, batch_size: int) -> dict:
    """`evaluate`/`predict` arguments for a split, in order. Arrays are fed batch by batch (dlrun.training.batches,
    unshuffled) rather than whole: Keras would convert the whole split to a tensor on every call, which
    on IMDB-sized text pushed the run past 1 GiB."""
    arguments = loaded.fit_arguments(split, batch_size)
    if arguments is None:
        raise ValueError(f"Received a dataset without a {split} split; expected one to evaluate on.")
    inputs, targets = arguments.get("x"), arguments.get("y")
    if isinstance(inputs, np.ndarray) and isinstance(targets, np.ndarray):
        return {
            "x": batches.seeded(inputs, targets, batch_size, seed=0, first_epoch=0, epochs=1, shuffle=False),
            "steps": batches.steps_per_epoch(len(inputs), batch_size),
        }
    return {"x": inputs}


def predicted_classes(outputs: np.ndarray) -> np.ndarray:
    """Class ids from model outputs: a single sigmoid unit is thresholded at 0.5, several take the argmax."""
    outputs = np.asarray(outputs)
    if outputs.ndim == 1 or outputs.shape[-1] == 1:
        return (outputs.reshape(len(outputs)) >= 0.5).astype("int64")
    return outputs.argmax(axis=-1).astype("int64")


def class_ids(labels: np.ndarray) -> np.ndarray:
    """Integer class ids from integer or one-hot labels."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        return labels.argmax(axis=1).astype("int64")
    return labels.reshape(len(labels)).astype("int64")


def classification_analysis(true: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> dict:
    """Confusion matrix (rows: true class, columns: predicted class) and per-class precision/recall/F1."""
    from sklearn import metrics as sklearn_metrics

    labels = list(range(len(class_names)))
    matrix = sklearn_metrics.confusion_matrix(true, predicted, labels=labels)
    precision, recall, f1, support = sklearn_metrics.precision_recall_fscore_support(true, predicted, labels=labels, zero_division=0)
    per_class = {
        name: {"precision": float(precision[index]), "recall": float(recall[index]), "f1": float(f1[index]), "support": int(support[index])}
        for index, name in enumerate(class_names)
    }
    return {"confusion_matrix": {"labels": list(class_names), "matrix": matrix.tolist()}, "per_class": per_class}


def summary_line(payload: dict) -> str:
    """`test (N samples): loss ... accuracy ...   baseline: ...` for the console."""
    reference = {key: value for key, value in payload["baseline"].items() if key.endswith(("accuracy", "mae", "mse"))}
    return f"{payload['split']} ({payload['samples']} samples): {_format(payload['metrics'])}   baseline: {_format(reference)}"


def split_labels(loaded: dataset.Dataset, split: str) -> np.ndarray:
    """The targets of `split`, which `loaded` must hold (ValueError otherwise)."""
    labels = loaded.labels(split)
    if labels is None:
        raise ValueError(f"Received a dataset without a {split} split; expected one to evaluate on.")
    return labels


def _class_names(loaded: dataset.Dataset) -> list[str]:
    if loaded.class_names:
        return list(loaded.class_names)
    count = loaded.num_classes or (2 if loaded.task == "binary" else int(class_ids(split_labels(loaded, "train")).max()) + 1)
    return [str(index) for index in range(count)]


def _format(values: dict) -> str:
    keys = sorted(values, key=lambda key: key != "loss")
    return "  ".join(f"{key} {values[key]:.4f}" for key in keys)


CHECKPOINTS = {"final": "model.keras", "best": "checkpoints/best.keras"}


def evaluate_run(
    run_dir: str | Path,
    split: str,
    checkpoint: str,
    data_path: str | None,
    console: Console,
    command: list[str] | None = None,
    backend_name: str | None = None,
) -> dict:
    """`dlrun eval`: evaluate a stored run's model on one split; write `eval_<split>[_best].json` into the run.

    The data is rebuilt from the stored config and seed (the same splits as training); the model carries
    its own preprocessing, so nothing is re-fitted on the evaluated split. It runs on the backend the run
    trained on, unless `backend_name` (`--backend NAME`) asks for another (`resume.on_run_backend`).
    """
    import json

    from dlrun import errors, runs

    run = runs.Run.open(run_dir)
    if checkpoint not in CHECKPOINTS:
        raise errors.UsageError(f"--checkpoint: received {checkpoint!r}; expected one of {', '.join(CHECKPOINTS)}")
    model_path = run.path / CHECKPOINTS[checkpoint]
    if not model_path.is_file():
        hint = (
            "a run trained with a `checkpoint` callback" if checkpoint == "best" else "a completed run saved with output.save_model: true"
        )
        raise errors.RunError(f"{model_path}: no such file; expected {hint}")
    config_path = run.path / runs.CONFIG_FILE
    stored = config_module.load(config_path)
    set_items = []
    if data_path is not None:
        if "path" not in type(stored.data).model_fields:
            raise errors.UsageError(
                f"--data-path: received {str(data_path)!r}; expected a dataset with a `path` option (dataset {stored.data.name!r} has none)"
            )
        set_items.append(f"data.path={json.dumps(str(data_path))}")
    config = config_module.load(config_path, set_items) if set_items else stored
    tag = split if checkpoint == "final" else f"{split}_best"
    plots_dir = run.path / "plots" if config.output.plots else None
    # refused before Keras loads and the evaluation runs, not after: a run folder this user cannot write
    expected = f"a run folder this user can write (dlrun eval writes eval_{tag}.json there)"
    runs.check_writable(run.path, "RUN_DIR", run.path, expected)
    if plots_dir is not None and plots_dir.is_dir():
        runs.check_writable(plots_dir, "RUN_DIR", run.path, expected)

    from dlrun import backend
    from dlrun.training import resume

    config = resume.on_run_backend(run, config, backend_name, f"dlrun eval {run.path}")
    console.print(f"[bold]dlrun eval[/bold] {terminal.text(run.path)}: importing Keras...", highlight=False, soft_wrap=True)
    choice = backend.activate(config)
    console.print(f"backend: {choice.name}", highlight=False, soft_wrap=True)
    from dlrun import data

    loaded = data.load(config.data, config.seed)
    available = [name for name in ("train", "validation", "test") if loaded.split(name) is not None]
    if split not in available:
        raise errors.DataError(f"--split: received {split!r}; expected a split this dataset has: {', '.join(available)}")
    from dlrun import models

    model = models.load_model(model_path, compile=False)
    compile_model(model, config, loaded.task)
    target = run.path / f"eval_{tag}.json"
    try:  # the check above came first, but a write can still fail (a full disk): said the same way
        payload = report(model, loaded, split, config.train.batch_size, plots_dir=plots_dir, tag=tag)
        payload = {"model": CHECKPOINTS[checkpoint], "command": command, "backend": choice.name, **payload}
        if data_path is not None:
            payload["data_path"] = str(data_path)
        run.write_json(target.name, payload)
    except OSError as error:
        raise runs.write_failed("RUN_DIR", error.filename or target, error) from None
    console.print(summary_line(payload), highlight=False, soft_wrap=True)
    if "per_class" in payload and len(payload["per_class"]) <= 50:
        console.print(per_class_table(payload["per_class"]))
    console.print(f"wrote {terminal.text(target)}", highlight=False, soft_wrap=True)
    return payload


def per_class_table(per_class: dict) -> Any:
    """A Rich table of per-class precision, recall, F1 and support."""
    from rich import table as rich_table

    table = rich_table.Table("class", "precision", "recall", "f1", "support")
    for name, values in per_class.items():
        table.add_row(
            terminal.text(name), f"{values['precision']:.4f}", f"{values['recall']:.4f}", f"{values['f1']:.4f}", str(values["support"])
        )
    return table
