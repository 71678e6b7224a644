"""IMDB movie reviews (Keras' imdb.npz): 25,000 train and 25,000 test reviews, positive or negative."""

from __future__ import annotations

import numpy as np

from dlrun import errors
from dlrun.data import dataset, keras_files, sequences, word_index as words

FILE = keras_files.KerasFile("imdb.npz", file_hash="69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f")
CLASS_NAMES = ["negative", "positive"]


def load(config: dataset.DataSection, seed: int) -> dataset.Dataset:
    """IMDB movie-review sentiment (Keras' imdb.npz), word indices multi-hot encoded inside the model."""
    (path,) = keras_files.locate([FILE], config.path)
    arrays = keras_files.load_npz(path, FILE, config.trusted, ("x_train", "y_train", "x_test", "y_test"), _compact)
    for key in ("y_train", "y_test"):
        if not np.isin(arrays[key], (0, 1)).all():
            raise errors.DataError(f"data.path: received {path} whose {key} holds values other than 0 and 1; expected Keras' imdb.npz")
    train_order, test_order = sequences.keras_orders([len(arrays["y_train"]), len(arrays["y_test"])])
    parts, num_words = sequences.prepare(
        [
            (arrays.pop("x_train").reorder(train_order), np.asarray(arrays["y_train"], dtype="int64")[train_order]),
            (arrays.pop("x_test").reorder(test_order), np.asarray(arrays["y_test"], dtype="int64")[test_order]),
        ],
        config.num_words,
        config.skip_top,
        config.maxlen,
    )
    (train_words, train_labels), (test_words, test_labels) = parts
    del parts
    train_inputs, test_inputs = sequences.unique_padded([train_words, test_words], num_words)
    del train_words, test_words
    train, validation = dataset.hold_out_first(train_inputs, train_labels, config.validation_count, "data.validation_count")
    return dataset.Dataset(
        task="binary",
        train=train,
        validation=validation,
        test=(test_inputs, test_labels),
        num_classes=2,
        class_names=CLASS_NAMES,
        multi_hot_tokens=num_words,
    )


def _compact(key: str, array: np.ndarray) -> np.ndarray | sequences.Ragged:
    return sequences.from_objects(array) if key.startswith("x_") else array


def word_index(config: dataset.DataSection) -> dict[str, int]:
    """Keras' imdb word index (beside data.path, or in Keras' cache), for `dlrun predict` on text."""
    from pathlib import Path

    folder = None if config.path is None else (Path(config.path).parent if Path(config.path).is_file() else Path(config.path))
    return words.load("imdb", folder)
