"""Reuters newswires (Keras' reuters.npz): 11,228 newswires, 46 topics, 80/20 train/test as Keras splits."""

from __future__ import annotations

import numpy as np

from dlrun import errors
from dlrun.data import dataset, keras_files, sequences, word_index as words

FILE = keras_files.KerasFile("reuters.npz", file_hash="d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916")
# keras.datasets.reuters.get_label_names(), copied so older Keras 3 releases give the same names.
CLASS_NAMES = [
    "cocoa",
    "grain",
    "veg-oil",
    "earn",
    "acq",
    "wheat",
    "copper",
    "housing",
    "money-supply",
    "coffee",
    "sugar",
    "trade",
    "reserves",
    "ship",
    "cotton",
    "carcass",
    "crude",
    "nat-gas",
    "cpi",
    "money-fx",
    "interest",
    "gnp",
    "meal-feed",
    "alum",
    "oilseed",
    "gold",
    "tin",
    "strategic-metal",
    "livestock",
    "retail",
    "ipi",
    "iron-steel",
    "rubber",
    "heat",
    "jobs",
    "lei",
    "bop",
    "zinc",
    "orange",
    "pet-chem",
    "dlr",
    "gas",
    "silver",
    "wpi",
    "hog",
    "lead",
]


def load(config: dataset.DataSection, seed: int) -> dataset.Dataset:
    """Reuters newswire topics (Keras' reuters.npz), 46 classes, word indices multi-hot encoded inside the model."""
    (path,) = keras_files.locate([FILE], config.path)
    arrays = keras_files.load_npz(path, FILE, config.trusted, ("x", "y"), _compact)
    (order,) = sequences.keras_orders([len(arrays["y"])])
    labels = np.asarray(arrays["y"], dtype="int64")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        raise errors.DataError(
            f"data.path: received {path} with topic labels from {labels.min()} to {labels.max()}; "
            f"expected Keras' reuters.npz, whose labels are 0 to {len(CLASS_NAMES) - 1}"
        )
    ((words, labels),), num_words = sequences.prepare(
        [(arrays.pop("x").reorder(order), labels[order])], config.num_words, config.skip_top, config.maxlen
    )
    (inputs,) = sequences.unique_padded([words], num_words)
    split = int(len(labels) * (1 - config.test_split))  # Keras' own split: the first 80% train
    train, validation = dataset.hold_out_first(inputs[:split], labels[:split], config.validation_count, "data.validation_count")
    return dataset.Dataset(
        task="multiclass",
        train=train,
        validation=validation,
        test=(inputs[split:], labels[split:]) if split < len(labels) else None,
        num_classes=len(CLASS_NAMES),
        class_names=CLASS_NAMES,
        multi_hot_tokens=num_words,
    )


def _compact(key: str, array: np.ndarray) -> np.ndarray | sequences.Ragged:
    return sequences.from_objects(array) if key == "x" else array


def word_index(config: dataset.DataSection) -> dict[str, int]:
    """Keras' reuters word index (beside data.path, or in Keras' cache), for `dlrun predict` on text."""
    from pathlib import Path

    folder = None if config.path is None else (Path(config.path).parent if Path(config.path).is_file() else Path(config.path))
    return words.load("reuters", folder)
