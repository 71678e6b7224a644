"""The in-memory result of loading a dataset: its splits and what the model head needs to know."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Dataset:
    """Arrays for each split plus the task; `validation` and `test` may be absent."""

    task: str  # binary | multiclass | regression
    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray] | None = None
    test: tuple[np.ndarray, np.ndarray] | None = None
    num_classes: int | None = None  # classification only
    class_names: list[str] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train[0].shape[1:])

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The arrays of split `name` (train, validation or test), or None when absent."""
        return getattr(self, name)

    def summary(self) -> dict:
        """Sizes and shapes, for run.json and the console."""
        sizes = {name: (len(self.split(name)[1]) if self.split(name) is not None else 0) for name in ("train", "validation", "test")}
        return {
            "task": self.task,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "sizes": sizes,
        }


def hold_out(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, stratify: bool):
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
