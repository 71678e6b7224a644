"""MNIST handwritten digits (Keras' mnist.npz): 60,000 train and 10,000 test 28x28 grayscale images."""

from __future__ import annotations

import numpy as np

from dlrun import errors
from dlrun.data import dataset, keras_files

FILE = keras_files.KerasFile("mnist.npz", file_hash="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1")
CLASS_NAMES = [str(digit) for digit in range(10)]


def load(config: dataset.DataSection, seed: int) -> dataset.Dataset:
    """MNIST handwritten digits (Keras' mnist.npz), 28x28x1, scaled to [0, 1] inside the model."""
    (path,) = keras_files.locate([FILE], config.path)
    arrays = keras_files.load_npz(path, FILE, trusted=False, keys=("x_train", "y_train", "x_test", "y_test"))
    return images(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], config, seed, CLASS_NAMES, str(path))


def images(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    config: dataset.DataSection,
    seed: int,
    class_names: list[str],
    source: str,
) -> dataset.Dataset:
    """A Dataset of 8-bit grayscale images (MNIST layout), kept as uint8 and rescaled by the model.

    Scaling in the model (Rescaling 1/255) instead of here keeps the arrays at a quarter of the float32
    size, and model.keras then takes raw 0-255 images, so prediction needs no separate preprocessing.
    """
    for name, pixels, labels in (("train", train_images, train_labels), ("test", test_images, test_labels)):
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or len(pixels) != len(labels):
            raise errors.DataError(
                f"data.path: received {source} with {name} images {pixels.dtype} {pixels.shape} and {len(labels)} labels; "
                "expected uint8 images of shape (count, height, width) and one label per image"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise errors.DataError(
                f"data.path: received {source} with {name} labels from {labels.min()} to {labels.max()}; "
                f"expected 0 to {len(class_names) - 1}"
            )
    rest = (train_images[..., np.newaxis], np.asarray(train_labels, dtype="int64"))
    train, validation = dataset.hold_out(*rest, config.validation_split, seed, stratify=True)
    return dataset.Dataset(
        task="multiclass",
        train=train,
        validation=validation,
        test=(test_images[..., np.newaxis], np.asarray(test_labels, dtype="int64")),
        num_classes=len(class_names),
        class_names=list(class_names),
        rescale=1 / 255,
    )
