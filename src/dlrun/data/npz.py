"""A local `.npz` file of arrays: `x_train`, `y_train` and optionally `x_validation`, `y_validation`
(your own validation split, used instead of `validation_split`) and `x_test`, `y_test`.

The generic way to train on your own arrays (images, features, targets) without writing a loader.
Integer labels mean classification (two classes: binary, more: multiclass); float targets mean
regression. The file is read with `allow_pickle=False`: an `.npz` cannot run code when loaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlrun import errors
from dlrun.data import dataset

REQUIRED_KEYS = ("x_train", "y_train")
OPTIONAL_KEYS = ("x_validation", "y_validation", "x_test", "y_test")


def load(config: dataset.DataSection, seed: int) -> dataset.Dataset:
    """A local .npz file (x_train, y_train, optional x_test, y_test); integer labels classify, floats regress."""
    arrays = _read(Path(config.path))
    x_train, y_train = _pair(arrays, "train", config.path)
    test = _pair(arrays, "test", config.path) if "x_test" in arrays or "y_test" in arrays else None
    given = _pair(arrays, "validation", config.path) if "x_validation" in arrays or "y_validation" in arrays else None
    for split, pair in (("validation", given), ("test", test)):
        if pair is not None and pair[0].shape[1:] != x_train.shape[1:]:
            raise errors.DataError(
                f"data.path: {config.path}: x_{split} has samples of shape {list(pair[0].shape[1:])}; "
                f"expected {list(x_train.shape[1:])}, the shape of x_train's samples"
            )
    task, num_classes = _task(y_train, test[1] if test else None, config.path)
    if num_classes is not None:
        for split, pair in (("validation", given), ("test", test)):
            if pair is not None and int(pair[1].max()) > int(y_train.max()):
                raise errors.DataError(
                    f"data.path: {config.path}: y_{split} holds the label {int(pair[1].max())}, which y_train never "
                    f"holds (its labels are 0..{int(y_train.max())}); expected {split} labels among the training classes"
                )
    class_names = _class_names(config.class_names, num_classes)
    if given is not None:
        if "validation_split" in config.model_fields_set and config.validation_split > 0:
            raise errors.DataError(
                f"data.validation_split: received {config.validation_split} but {config.path} holds x_validation "
                "and y_validation; expected 0 or no validation_split (the file's validation arrays are the split)"
            )
        train: dataset.Arrays = (x_train, y_train)
        validation: dataset.Arrays | None = given
    else:
        train, validation = _hold_out(x_train, y_train, config, seed, stratify=num_classes is not None)
    return dataset.Dataset(
        task=task,
        train=train,
        validation=validation,
        test=test,
        num_classes=num_classes,
        class_names=class_names,
        rescale=config.rescale,
    )


def _hold_out(
    x_train: np.ndarray, y_train: np.ndarray, config: dataset.DataSection, seed: int, stratify: bool
) -> tuple[dataset.Arrays, dataset.Arrays | None]:
    fraction = config.validation_split
    if stratify and fraction > 0:
        labels, counts = np.unique(y_train, return_counts=True)
        if counts.min() < 2:
            raise errors.DataError(
                f"data.validation_split: received {fraction}, but class {labels[counts.argmin()]} has "
                f"{counts.min()} sample in y_train of {config.path}; a stratified split needs at least 2 samples of "
                "every class; expected more samples of it, or validation_split: 0 (with x_validation, y_validation)"
            )
    try:
        return dataset.hold_out(x_train, y_train, fraction, seed, stratify=stratify)
    except ValueError as error:  # scikit-learn cannot stratify: fewer held-out samples than classes
        raise errors.DataError(
            f"data.validation_split: received {fraction}; expected a share that a stratified split of "
            f"{len(y_train)} samples allows ({error})"
        ) from None


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise errors.DataError(f"data.path: received {str(path)!r}; expected an existing .npz file (no such file)")
    if not path.is_file():
        raise errors.DataError(f"data.path: received {str(path)!r}; expected an .npz file, not a folder")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as error:  # object arrays need pickle: refused
        raise errors.DataError(f"data.path: {path} cannot be read without pickle ({error}); expected plain numeric arrays") from None
    except (OSError, EOFError) as error:
        raise errors.DataError(f"data.path: {path} is not a readable .npz file ({error})") from None


def _pair(arrays: dict, split: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    keys = (f"x_{split}", f"y_{split}")
    missing = [key for key in keys if key not in arrays]
    if missing:
        present = ", ".join(sorted(arrays)) or "none"
        raise errors.DataError(
            f"data.path: {path} has no {' or '.join(missing)}; expected x_train and y_train "
            f"(and optionally x_validation with y_validation, x_test with y_test); the file holds: {present}"
        )
    inputs, targets = arrays[keys[0]], arrays[keys[1]]
    if inputs.ndim < 2 or not np.issubdtype(inputs.dtype, np.number):
        raise errors.DataError(
            f"data.path: {path}: {keys[0]} has shape {list(inputs.shape)} and dtype {inputs.dtype}; "
            "expected a numeric array of samples, shape [samples, ...]"
        )
    if targets.ndim != 1 or not (np.issubdtype(targets.dtype, np.number) or targets.dtype == bool):
        raise errors.DataError(
            f"data.path: {path}: {keys[1]} has shape {list(targets.shape)} and dtype {targets.dtype}; "
            "expected one number per sample, shape [samples]"
        )
    if len(inputs) != len(targets):
        raise errors.DataError(
            f"data.path: {path}: {keys[0]} has {len(inputs)} samples but {keys[1]} has {len(targets)}; expected the same number"
        )
    if len(inputs) == 0:
        raise errors.DataError(f"data.path: {path}: {keys[0]} is empty; expected at least one sample")
    return inputs.astype("float32"), targets


def _task(y_train: np.ndarray, y_test: np.ndarray | None, path: Path) -> tuple[str, int | None]:
    """Integer (or boolean) labels 0..K-1 classify; float targets regress."""
    labels = [y_train] if y_test is None else [y_train, y_test]
    if all(np.issubdtype(y.dtype, np.floating) for y in labels):
        return "regression", None
    if not all(np.issubdtype(y.dtype, np.integer) or y.dtype == bool for y in labels):
        raise errors.DataError(
            f"data.path: {path}: y_train has dtype {y_train.dtype}"
            + ("" if y_test is None else f" and y_test {y_test.dtype}")
            + "; expected integer class labels (classification) or floats (regression) in both"
        )
    low = min(int(y.min()) for y in labels)
    if low < 0:
        raise errors.DataError(f"data.path: {path}: a class label is {low}; expected labels 0, 1, ..., K-1")
    high = max(int(y.max()) for y in labels)
    if high >= dataset.MAX_CLASSES:
        raise errors.DataError(
            f"data.path: {path}: a class label is {high}; expected labels 0, 1, ..., K-1 with at most {dataset.MAX_CLASSES} classes"
        )
    num_classes = high + 1
    if num_classes < 2:
        raise errors.DataError(f"data.path: {path}: every label is 0; expected at least two classes")
    return ("binary" if num_classes == 2 else "multiclass"), num_classes


def _class_names(names: list[str] | None, num_classes: int | None) -> list[str] | None:
    if num_classes is None:
        if names:
            raise errors.DataError("data.class_names: received names for a regression target; expected none")
        return None
    if names is None:
        return [str(index) for index in range(num_classes)]
    if len(names) != num_classes:
        raise errors.DataError(
            f"data.class_names: received {len(names)} name(s); expected {num_classes}, one per class label 0..{num_classes - 1}"
        )
    return list(names)
