"""scikit-learn's bundled handwritten digits: the embedded, offline default dataset."""

from __future__ import annotations

import numpy as np

from dlrun.data import dataset


def load(config: dataset.DataSection, seed: int) -> dataset.Dataset:
    """8x8 handwritten digits from scikit-learn (1,797 images, 10 classes), bundled and offline."""
    from sklearn import datasets

    digits = datasets.load_digits()
    # Raw pixel values 0..16; the model scales them (Rescaling 1/16), so predict takes raw digits too.
    images = digits.images.astype("float32")[..., np.newaxis]
    labels = digits.target.astype("int64")
    rest, test = dataset.hold_out(images, labels, config.test_split, seed, stratify=True)
    train, validation = dataset.hold_out(*rest, config.validation_split, seed, stratify=True)
    return dataset.Dataset(
        task="multiclass",
        train=train,
        validation=validation,
        test=test,
        num_classes=10,
        class_names=[str(digit) for digit in range(10)],
        rescale=1 / 16,
    )
