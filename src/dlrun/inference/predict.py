"""`dlrun predict`: a trained run's predictions on new samples, as a table and optionally CSV or JSON.

Samples are fed raw (dlrun.inference.input_files): the model applies the preprocessing it was trained with. Text
is encoded through the run's word index (dlrun.data.text_encoding): a text dataset's module exposes
`word_index(data_config) -> {word: rank}`, or `--word-index FILE` names Keras' JSON file.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlrun import atomic, errors, runs, terminal

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from dlrun.config import datasets

OUT_SUFFIXES = (".csv", ".json")


def predict_run(
    run_dir: str | Path,
    inputs: list[Path],
    console: Console,
    texts: Sequence[str] = (),
    out: Path | None = None,
    top: int = 3,
    checkpoint: str = "final",
    word_index_file: Path | None = None,
    force: bool = False,
) -> list[dict]:
    """Predict every sample of `inputs` (and `texts`) with a run's model; print a table; write `out`."""
    from dlrun.inference import input_files
    from dlrun.training import evaluation

    run = runs.Run.open(run_dir)
    if checkpoint not in evaluation.CHECKPOINTS:
        raise errors.UsageError(f"--checkpoint: received {checkpoint!r}; expected one of {', '.join(evaluation.CHECKPOINTS)}")
    model_path = run.path / evaluation.CHECKPOINTS[checkpoint]
    if not model_path.is_file():
        hint = (
            "a run trained with a `checkpoint` callback" if checkpoint == "best" else "a completed run saved with output.save_model: true"
        )
        raise errors.RunError(f"{model_path}: no such file; expected {hint}")
    if top < 1:
        raise errors.UsageError(f"--top: received {top}; expected a number >= 1")
    _check_out(out, force)
    if not inputs and not texts:
        raise errors.DataError(f"INPUT: received nothing; expected {input_files.KINDS}, or --text")
    found = input_files.find(inputs)
    if word_index_file is not None and not Path(word_index_file).is_file():
        raise errors.DataError(f"--word-index: received {str(word_index_file)!r}; expected an existing JSON file (no such file)")

    from dlrun import backend, models

    console.print(f"[bold]dlrun predict[/bold] {terminal.text(run.path)}: importing Keras...", highlight=False, soft_wrap=True)
    backend.import_keras()
    model = models.load_model(model_path)  # a damaged, foreign or unsafe file is a RunError naming it
    names, outputs = _predict(model, run, found, list(texts), word_index_file)
    rows = _rows(names, outputs, run.record.get("data") or {})
    console.print(_table(rows, top))
    if out is not None:
        try:  # checked writable before Keras loaded; a write can still fail (a full disk)
            atomic.write_text(out, _render(rows, out))
        except OSError as error:
            raise runs.write_failed("--out", out, error) from None
        console.print(f"wrote {terminal.text(out)}", highlight=False, soft_wrap=True)
    return rows


def _check_out(out: Path | None, force: bool) -> None:
    if out is None:
        return
    out = Path(out)
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise errors.UsageError(f"--out: received {str(out)!r}; expected a .csv or .json file name")
    if not out.parent.is_dir():
        raise errors.UsageError(f"--out: received {str(out)!r}; expected a file in an existing folder")
    if out.exists() and not force:
        raise errors.UsageError(f"--out: {out} already exists; expected a new file name (or --force to replace it)")
    runs.check_writable(out.parent, "--out", out)


def _predict(
    model: Any, run: runs.Run, found: list[tuple[str, Path]], texts: list[str], word_index_file: str | Path | None
) -> tuple[list[str], np.ndarray]:
    """(sample names, model outputs) for every input, in the order given."""
    from dlrun.inference import input_files

    input_shape = tuple(model.inputs[0].shape[1:])
    names, outputs = [], []
    image_paths = [path for kind, path in found if kind == "image"]
    text_items = [(str(path), _read_text(path)) for kind, path in found if kind == "text"]
    text_items += [(f"--text {index + 1}", text) for index, text in enumerate(texts)]
    batches = [input_files.read_array(path, input_shape) for kind, path in found if kind == "array"]
    if image_paths:
        batches.append(input_files.read_images(image_paths, input_shape))
    for batch_names, batch in batches:
        names += batch_names
        outputs.append(np.asarray(model.predict(batch.astype(model.inputs[0].dtype), verbose=0)))
    if text_items:
        names += [name for name, _ in text_items]
        outputs.append(_predict_texts(model, run, [text for _, text in text_items], word_index_file))
    return names, np.concatenate(outputs)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise errors.DataError(f"{path}: cannot be read as UTF-8 text ({error})") from None


def _predict_texts(model: Any, run: runs.Run, texts: list[str], word_index_file: str | Path | None) -> np.ndarray:
    """Encode `texts` as the run's text dataset did and predict them."""
    from dlrun import config as config_module
    from dlrun.data import text_encoding

    # the stem's text encoder: dlrun's MultiHot (or CategoryEncoding in models saved before it)
    multi_hot = next((layer for layer in model.layers if type(layer).__name__ in ("MultiHot", "CategoryEncoding")), None)
    if not str(model.inputs[0].dtype).startswith("int") or multi_hot is None:
        raise errors.DataError(
            f"text input: the model of {run.path} takes inputs of shape {list(model.inputs[0].shape[1:])} "
            f"({model.inputs[0].dtype}); expected a model trained on a text dataset (integer word sequences)"
        )
    data_config = config_module.load(run.path / runs.CONFIG_FILE).data
    word_index = _word_index(data_config, word_index_file)
    num_words = getattr(data_config, "num_words", None) or int(multi_hot.num_tokens)
    sequences = [text_encoding.encode(text, word_index, num_words, getattr(data_config, "skip_top", 0)) for text in texts]
    width = int(model.inputs[0].shape[1])
    try:
        return np.asarray(model.predict(text_encoding.distinct_padded(sequences, width), verbose=0))
    except ValueError:
        # More distinct words than any training sample had: the Input is too narrow to hold them, so feed
        # the multi-hot vectors to the layers after the encoding (no padding token: none was needed).
        from dlrun import backend

        keras = backend.import_keras()
        after = keras.Model(multi_hot.output, model.outputs)
        return np.asarray(after.predict(text_encoding.multi_hot(sequences, int(multi_hot.num_tokens)), verbose=0))


def _word_index(data_config: datasets.DataConfig, word_index_file: str | Path | None) -> dict[str, int]:
    """`{word: rank}` from --word-index, else from the run's dataset module (`word_index(data_config)`)."""
    if word_index_file is not None:
        try:
            mapping = json.loads(Path(word_index_file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise errors.DataError(f"--word-index: {word_index_file} cannot be read as JSON ({error})") from None
        if not isinstance(mapping, dict) or not all(isinstance(rank, int) for rank in mapping.values()):
            raise errors.DataError(
                f"--word-index: {word_index_file} is not a mapping of words to integer ranks; expected Keras' word index JSON"
            )
        return mapping
    from dlrun import data

    module = inspect.getmodule(data.DATASETS.get(data_config.name))
    provider = getattr(module, "word_index", None)
    if provider is None:
        raise errors.DataError(
            f"text input: dataset {data_config.name!r} has no word index; expected a run trained on a text dataset, "
            "or --word-index FILE (Keras' word index JSON)"
        )
    return provider(data_config)


def _rows(names: list[str], outputs: np.ndarray, data_record: dict) -> list[dict]:
    """One record per sample: the predicted class with every class's probability, or the predicted value(s)."""
    outputs = outputs.reshape(len(outputs), -1).astype("float64")
    task = data_record.get("task")
    if task == "regression":
        return [{"input": name, "value": [float(value) for value in row]} for name, row in zip(names, outputs)]
    if outputs.shape[1] == 1:  # one sigmoid unit: the probability of class 1
        outputs = np.concatenate([1.0 - outputs, outputs], axis=1)
    class_names = data_record.get("class_names") or [str(index) for index in range(outputs.shape[1])]
    rows = []
    for name, row in zip(names, outputs):
        probabilities = {class_name: float(value) for class_name, value in zip(class_names, row)}
        rows.append({"input": name, "prediction": class_names[int(row.argmax())], "probabilities": probabilities})
    return rows


def _table(rows: list[dict], top: int) -> Table:
    from rich import table as rich_table

    table = rich_table.Table(show_edge=False, highlight=False)
    table.add_column("input", overflow="fold")
    if rows and "value" in rows[0]:
        width = len(rows[0]["value"])
        for index in range(width):
            table.add_column("value" if width == 1 else f"value {index}", justify="right")
        for row in rows:
            table.add_row(terminal.text(row["input"]), *(f"{value:.6g}" for value in row["value"]))
        return table
    shown = min(top, len(rows[0]["probabilities"])) if rows else top
    for rank in range(shown):
        table.add_column("prediction" if rank == 0 else f"#{rank + 1}")
    for row in rows:
        ranked = sorted(row["probabilities"].items(), key=lambda item: -item[1])[:shown]
        table.add_row(terminal.text(row["input"]), *(f"{terminal.text(name)} {probability:.4f}" for name, probability in ranked))
    return table


def _render(rows: list[dict], out: Path) -> str:
    """The rows as JSON, or as CSV: input, prediction, then one column per class (or value)."""
    if Path(out).suffix.lower() == ".json":
        return json.dumps(rows, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if rows and "value" in rows[0]:
        width = len(rows[0]["value"])
        writer.writerow(["input", *(["value"] if width == 1 else [f"value_{index}" for index in range(width)])])
        writer.writerows([row["input"], *(repr(value) for value in row["value"])] for row in rows)
    elif rows:
        class_names = list(rows[0]["probabilities"])
        writer.writerow(["input", "prediction", *class_names])
        writer.writerows([row["input"], row["prediction"], *(repr(row["probabilities"][name]) for name in class_names)] for row in rows)
    return buffer.getvalue()
