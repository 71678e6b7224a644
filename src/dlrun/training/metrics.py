"""The metric registry: config name -> description; each name is also its key in the History."""

from __future__ import annotations

from typing import Any

from dlrun import backend, registry

METRICS = {
    "accuracy": "share of correct predictions (the default for classification)",
    "auc": "area under the ROC curve (binary)",
    "precision": "precision (binary)",
    "recall": "recall (binary)",
    "mae": "mean absolute error (the default for regression)",
    "mse": "mean squared error",
}


def get(name: str) -> Any:
    """A Keras metric for a config name, named so that the History key equals the config name."""
    keras = backend.import_keras()

    registry.lookup(METRICS, name, "metric")
    builders = {
        "auc": lambda: keras.metrics.AUC(name="auc"),
        "precision": lambda: keras.metrics.Precision(name="precision"),
        "recall": lambda: keras.metrics.Recall(name="recall"),
        "mae": lambda: keras.metrics.MeanAbsoluteError(name="mae"),
        "mse": lambda: keras.metrics.MeanSquaredError(name="mse"),
    }
    return builders[name]() if name in builders else name
