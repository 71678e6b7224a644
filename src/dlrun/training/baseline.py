"""Naive baselines a model must beat, computed on the same split it is evaluated on."""

from __future__ import annotations

import numpy as np


def classification(train_labels: np.ndarray, labels: np.ndarray) -> dict:
    """Majority-class accuracy, and the expected accuracy of guessing with the training label frequencies."""
    train_labels, labels = _class_ids(train_labels), _class_ids(labels)
    classes, counts = np.unique(train_labels, return_counts=True)
    train_share = dict(zip(classes.tolist(), (counts / counts.sum()).tolist()))
    majority = classes[np.argmax(counts)]
    test_share = {label: float(np.mean(labels == label)) for label in np.unique(labels).tolist()}
    return {
        "majority_class": int(majority),
        "majority_class_accuracy": float(np.mean(labels == majority)),
        "random_guess_accuracy": float(sum(train_share.get(label, 0.0) * share for label, share in test_share.items())),
    }


def regression(train_targets: np.ndarray, targets: np.ndarray) -> dict:
    """Error of always predicting the training mean."""
    mean = float(np.mean(train_targets))
    residual = np.asarray(targets, dtype="float64").ravel() - mean
    return {
        "mean_prediction": mean,
        "mean_predictor_mae": float(np.mean(np.abs(residual))),
        "mean_predictor_mse": float(np.mean(residual**2)),
    }


def for_task(task: str, train_targets: np.ndarray, targets: np.ndarray) -> dict:
    """The baselines that fit `task`."""
    if task == "regression":
        return regression(train_targets, targets)
    return classification(train_targets, targets)


def _class_ids(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:  # one-hot
        return labels.argmax(axis=1)
    return labels.reshape(len(labels)).astype("int64")
