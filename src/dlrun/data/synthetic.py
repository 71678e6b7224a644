"""Generated data of any shape: learnable, seeded, instant; for smoke tests and benchmarks."""

from __future__ import annotations

import math

import numpy as np

from dlrun.data import dataset


def load(config: dataset.DataSection, seed: int) -> dataset.Dataset:
    """Generated Gaussian clusters (classification) or a noisy linear target (regression)."""
    rng = np.random.default_rng(seed)
    shape = tuple(config.input_shape)
    count = config.num_samples
    if config.task == "regression":
        inputs = rng.normal(size=(count, *shape)).astype("float32")
        weights = rng.normal(size=math.prod(shape))
        targets = inputs.reshape(count, -1) @ weights / math.sqrt(math.prod(shape))
        targets = (targets + config.noise * rng.normal(size=count)).astype("float32")
        num_classes = None
    else:
        num_classes = 2 if config.task == "binary" else config.num_classes
        centres = rng.normal(scale=1.5, size=(num_classes, *shape))
        targets = rng.integers(num_classes, size=count)
        inputs = (centres[targets] + config.noise * rng.normal(size=(count, *shape))).astype("float32")
    rest, test = dataset.hold_out(inputs, targets, config.test_split, seed, stratify=False)
    train, validation = dataset.hold_out(*rest, config.validation_split, seed, stratify=False)
    return dataset.Dataset(
        task=config.task,
        train=train,
        validation=validation,
        test=test,
        num_classes=num_classes,
        class_names=[f"class_{index}" for index in range(num_classes)] if num_classes is not None else None,
    )
