"""The in-memory result of loading a dataset: its splits and what the model head needs to know."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from dlrun import errors
from dlrun.data import pipeline

MAX_CLASSES = 100_000  # a class label at or above this is a mistake, refused before anything is sized by it

# A data section of the config (dlrun.config.datasets): config sits beside data in the layers, so data never
# imports it, not even for types.
DataSection = Any
Arrays = tuple[np.ndarray, np.ndarray]  # (inputs, targets)
Split = Arrays | pipeline.Pipeline  # arrays, or a tf.data pipeline (image folders)


@dataclasses.dataclass
class Dataset:
    """Each split (arrays or a pipeline) plus the task; `validation` and `test` may be absent."""

    task: str  # binary | multiclass | regression
    train: Split
    validation: Split | None = None
    test: Split | None = None
    num_classes: int | None = None  # classification only
    class_names: list[str] | None = None
    # Preprocessing that belongs to the model (so model.keras carries it and eval, K-fold and predict
    # apply it identically); dlrun.models.inputs turns these into layers after the Input.
    normalize: bool = False  # feature-wise Normalization, statistics adapted on the training inputs only
    multi_hot_tokens: int | None = None  # integer sequences (0 = padding) -> multi-hot vectors of this size
    rescale: float | None = None  # multiply inputs by this (1/255 for 8-bit images); pretrained bases may replace it
    augmentation: object | None = None  # a schema.Augmentation: random transforms, training only
    augmentation_seed: int = 0  # seeds the augmentation layers
    warnings: list[str] = dataclasses.field(default_factory=list)  # told to the user (e.g. skipped files)

    @property
    def input_shape(self) -> tuple[int, ...]:
        if isinstance(self.train, pipeline.Pipeline):
            return self.train.element_shape
        return tuple(self.train[0].shape[1:])

    @property
    def input_dtype(self) -> str:
        return "int32" if self.multi_hot_tokens else "float32"

    def split(self, name: str) -> Split | None:
        """Split `name` (train, validation or test): arrays or a pipeline, or None when absent."""
        return getattr(self, name)

    def fit_arguments(self, name: str, batch_size: int, shuffle: bool | None = None) -> dict | None:
        """Keyword arguments for `model.fit`/`evaluate`/`predict` on split `name` (x, y, batch_size).

        `shuffle` (for `fit` only: reshuffle every epoch) goes to `fit` for arrays; a pipeline split
        comes as `x` alone, already batched, and shuffles itself.
        """
        arrays = self.split(name)
        if arrays is None:
            return None
        if isinstance(arrays, pipeline.Pipeline):
            # fit's own shuffle is meaningless for a tf.data input (and warns when true).
            return {"x": arrays.batches(batch_size, bool(shuffle)), **({} if shuffle is None else {"shuffle": False})}
        arguments = {"x": arrays[0], "y": arrays[1], "batch_size": batch_size}
        return arguments if shuffle is None else {**arguments, "shuffle": shuffle}

    def validation_data(self, batch_size: int) -> Any:
        """What `model.fit(validation_data=...)` takes for the validation split, or None."""
        arguments = self.fit_arguments("validation", batch_size)
        if arguments is None:
            return None
        return (arguments["x"], arguments["y"]) if "y" in arguments else arguments["x"]

    def labels(self, name: str) -> np.ndarray | None:
        """The targets of split `name` as one NumPy array (for baselines and confusion matrices)."""
        arrays = self.split(name)
        if isinstance(arrays, pipeline.Pipeline):
            return arrays.targets
        return None if arrays is None else np.asarray(arrays[1])

    def size(self, name: str) -> int:
        """How many samples split `name` holds (0 when the dataset has no such split)."""
        labels = self.labels(name)
        return 0 if labels is None else len(labels)

    def pooled(self) -> Dataset:
        """This dataset with its validation split folded into train (what K-fold splits); test kept."""
        parts = [part for part in (self.train, self.validation) if part is not None]
        if len(parts) == 1:
            return dataclasses.replace(self, validation=None)
        if isinstance(parts[0], pipeline.Pipeline) and isinstance(parts[1], pipeline.Pipeline):
            return dataclasses.replace(self, train=parts[0].concatenate(parts[1]), validation=None)
        arrays = [part for part in parts if not isinstance(part, pipeline.Pipeline)]  # both, as neither is a pipeline
        inputs = np.concatenate([part[0] for part in arrays])
        targets = np.concatenate([part[1] for part in arrays])
        return dataclasses.replace(self, train=(inputs, targets), validation=None)

    def fold(self, validation_indices: np.ndarray | list[int]) -> Dataset:
        """One fold of the training split: the samples at `validation_indices` validate, the rest train;
        no test split (a fold is scored on its validation part only)."""
        validation = np.asarray(validation_indices, dtype="int64")
        train_labels = self.labels("train")  # never None: every dataset has a train split
        keep = np.ones(0 if train_labels is None else len(train_labels), dtype=bool)
        keep[validation] = False
        train: Split
        held_out: Split
        if isinstance(self.train, pipeline.Pipeline):
            held = np.zeros(len(keep), dtype=bool)
            held[validation] = True
            train, held_out = self.train.take(np.flatnonzero(keep)), self.train.take(np.flatnonzero(held))
        else:
            inputs, targets = self.train
            train, held_out = (inputs[keep], targets[keep]), (inputs[validation], targets[validation])
        return dataclasses.replace(self, train=train, validation=held_out, test=None)

    def fingerprint(self) -> str:
        """A short hash of every split (inputs held in memory, targets, shapes), so a run continued on
        other data than it started on can be refused. Image folders enter by their labels and shape."""
        import hashlib

        digest = hashlib.sha256(repr((self.task, self.input_shape, self.num_classes)).encode())
        for name in ("train", "validation", "test"):
            part = self.split(name)
            digest.update(name.encode())
            if part is None:
                continue
            digest.update(np.ascontiguousarray(self.labels(name)).tobytes())
            if not isinstance(part, pipeline.Pipeline):
                digest.update(np.ascontiguousarray(part[0]).tobytes())
        return digest.hexdigest()[:16]

    def summary(self) -> dict:
        """Sizes and shapes, for run.json and the console."""
        sizes = {name: self.size(name) for name in ("train", "validation", "test")}
        extra = {"warnings": list(self.warnings)} if self.warnings else {}
        return {
            "task": self.task,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "sizes": sizes,
            **extra,
        }


def hold_out(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, stratify: bool) -> tuple[Arrays, Arrays | None]:
    """Split off `fraction` of the samples (shuffled with `seed`, stratified by label when asked).

    Returns `((x_kept, y_kept), (x_held, y_held))`, or `((x, y), None)` when `fraction` is 0.
    """
    if fraction <= 0:
        return (x, y), None
    from sklearn import model_selection

    kept_x, held_x, kept_y, held_y = model_selection.train_test_split(
        x, y, test_size=fraction, random_state=seed, shuffle=True, stratify=y if stratify else None
    )
    return (kept_x, kept_y), (held_x, held_y)


def hold_out_first(x: np.ndarray, y: np.ndarray, count: int, option: str) -> tuple[Arrays, Arrays | None]:
    """Split off the first `count` samples: the data is already in the seeded shuffled order Keras'
    `load_data` gives it, so the first samples are a random hold-out, and the same one on every run.

    Returns `((x_rest, y_rest), (x_first, y_first))`, or `((x, y), None)` when `count` is 0.
    """
    if count <= 0:
        return (x, y), None
    if count >= len(y):
        raise errors.DataError(f"{option}: received {count}; expected fewer than the {len(y)} training samples")
    return (x[count:], y[count:]), (x[:count], y[:count])
