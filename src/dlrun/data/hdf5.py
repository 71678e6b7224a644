"""Images and labels in an HDF5 train file and test file: the layout of the SIGNS hand-sign images.

`train_signs.h5` holds `train_set_x` (1080, 64, 64, 3) uint8, `train_set_y` (1080,) and
`list_classes` [0..5] (hands showing the digits 0-5); `test_signs.h5` holds `test_set_x`,
`test_set_y` and `list_classes`. The cat/non-cat files `train_catvnoncat.h5` / `test_catvnoncat.h5`
use the same layout (two classes: binary).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlrun import errors
from dlrun.data import dataset


def load(config: dataset.DataSection, seed: int) -> dataset.Dataset:
    """Images and integer labels from an HDF5 train file (and test file), e.g. the SIGNS hand signs."""
    train_x, train_y, class_names = _read(config, "train", config.train_path, config.train_x_key, config.train_y_key)
    test = None
    if config.test_path is not None:
        test_x, test_y, test_class_names = _read(config, "test", config.test_path, config.test_x_key, config.test_y_key)
        if test_x.shape[1:] != train_x.shape[1:]:
            raise errors.DataError(
                f"{config.test_path}: received images of shape {list(test_x.shape[1:])} in '{config.test_x_key}'; "
                f"expected the training images' shape {list(train_x.shape[1:])}"
            )
        if class_names is not None and test_class_names is not None and test_class_names != class_names:
            raise errors.DataError(
                f"{config.test_path}: received classes {test_class_names} in '{config.classes_key}'; "
                f"expected the training file's classes {class_names}"
            )
        test = (test_x, test_y)
    present = np.unique(train_y)
    if len(present) < 2:
        raise errors.DataError(
            f"{config.train_path}: received a single class ({present.tolist()}) in '{config.train_y_key}'; "
            "expected labels of at least 2 classes"
        )
    if class_names is None:
        highest = max(int(train_y.max()), int(test[1].max()) if test is not None and len(test[1]) else 0)
        if highest >= dataset.MAX_CLASSES:
            key = config.train_y_key if highest == int(train_y.max()) else config.test_y_key
            raise errors.DataError(
                f"{config.train_path if key == config.train_y_key else config.test_path}: received label {highest} in "
                f"'{key}'; expected at most {dataset.MAX_CLASSES} classes (labels 0, 1, ..., K-1)"
            )
        class_names = [str(label) for label in range(highest + 1)]
    num_classes = len(class_names)
    for split, labels, path, key in (
        ("train", train_y, config.train_path, config.train_y_key),
        ("test", test[1] if test else None, config.test_path, config.test_y_key),
    ):
        if labels is not None and len(labels) and labels.max() >= num_classes:
            raise errors.DataError(
                f"{path}: received label {int(labels.max())} in '{key}'; expected labels 0 to {num_classes - 1} "
                f"(one per entry of '{config.classes_key}')"
            )
    try:
        train, validation = dataset.hold_out(train_x, train_y, config.validation_split, seed, stratify=True)
    except ValueError as error:  # scikit-learn cannot stratify: too few samples of a class, or of the split
        raise errors.DataError(
            f"data.validation_split: received {config.validation_split}; expected a share that a stratified "
            f"split of {len(train_y)} samples in {len(present)} classes allows ({error})"
        ) from None
    return dataset.Dataset(
        task="binary" if num_classes == 2 else "multiclass",
        train=train,
        validation=validation,
        test=test,
        num_classes=num_classes,
        class_names=class_names,
        rescale=1 / 255 if config.scale else None,
    )


def _read(config: dataset.DataSection, split: str, path: str, x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """(images, labels as int64 of shape (N,), class names or None) from one file, checked."""
    import h5py

    file_path = Path(path)
    setting = f"data.{split}_path"
    if not file_path.is_file():
        raise errors.DataError(
            f"{setting}: received {path!r} (no such file); expected an HDF5 file with the keys "
            f"{x_key}, {y_key}"
            + (f", {config.classes_key}" if config.classes_key else "")
            + " (for SIGNS: put train_signs.h5 and test_signs.h5 there, or pass "
            "--set data.train_path=... --set data.test_path=...)"
        )
    if not h5py.is_hdf5(file_path):
        raise errors.DataError(f"{setting}: received {path!r}, which is not an HDF5 file; expected an HDF5 file")
    try:
        with h5py.File(file_path, "r") as handle:
            keys = sorted(handle.keys())
            wanted = [x_key, y_key] + ([config.classes_key] if config.classes_key else [])
            for key in wanted:
                if key not in handle or not isinstance(handle[key], h5py.Dataset):
                    raise errors.DataError(
                        f"{path}: received the keys {', '.join(keys) or '(none)'}; expected a dataset named "
                        f"{key!r} (set its name with data.{_key_setting(config, split, key)})"
                    )
            images = np.asarray(handle[x_key])
            labels = np.asarray(handle[y_key])
            classes = np.asarray(handle[config.classes_key]) if config.classes_key else None
    except OSError as error:
        raise errors.DataError(f"{setting}: received {path!r}, which could not be read ({error}); expected a readable HDF5 file") from None
    if images.ndim < 2 or not np.issubdtype(images.dtype, np.number):
        raise errors.DataError(
            f"{path}: received '{x_key}' of shape {list(images.shape)} and type {images.dtype}; "
            "expected numeric images with a sample axis first, e.g. (N, 64, 64, 3)"
        )
    labels = _labels(path, y_key, labels)
    if len(labels) != len(images):
        raise errors.DataError(
            f"{path}: received {len(images)} images in '{x_key}' but {len(labels)} labels in '{y_key}'; expected one label per image"
        )
    return images, labels, (None if classes is None else [_class_name(value) for value in classes.reshape(-1)])


def _labels(path: str, key: str, labels: np.ndarray) -> np.ndarray:
    """Labels as int64 (N,): (1, N) and (N, 1) are flattened; values must be whole numbers >= 0."""
    if labels.ndim == 2 and 1 in labels.shape:
        labels = labels.reshape(-1)
    whole = np.issubdtype(labels.dtype, np.integer) or (
        np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels))
    )
    if labels.ndim != 1 or not whole or (labels.size and labels.min() < 0):
        raise errors.DataError(
            f"{path}: received '{key}' of shape {list(labels.shape)} and type {labels.dtype}; "
            "expected class labels 0, 1, 2, ... of shape (N,)"
        )
    return labels.astype("int64")


def _class_name(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _key_setting(config: dataset.DataSection, split: str, key: str) -> str:
    if key == config.classes_key:
        return "classes_key"
    return f"{split}_x_key" if key == getattr(config, f"{split}_x_key") else f"{split}_y_key"
