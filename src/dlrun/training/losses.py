"""The loss registry: config name -> description; Keras resolves the names itself."""

from __future__ import annotations

from dlrun import registry

LOSSES = {
    "binary_crossentropy": "two classes, one sigmoid output",
    "categorical_crossentropy": "many classes, one-hot targets",
    "sparse_categorical_crossentropy": "many classes, integer targets (the default for multiclass)",
    "mse": "mean squared error (the default for regression)",
    "mae": "mean absolute error",
    "huber": "Huber loss: squared near zero, absolute far from it",
}
AUTO_LOSSES = {
    "binary": "binary_crossentropy",
    "multiclass": "sparse_categorical_crossentropy",
    "regression": "mse",
}


def resolve(name: str, task: str) -> str:
    """The loss to compile with: the configured name, or the task's default for `auto`."""
    if name == "auto":
        return AUTO_LOSSES[task]
    registry.lookup(LOSSES, name, "loss")
    return name
