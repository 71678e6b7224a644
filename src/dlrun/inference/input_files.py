"""The samples `dlrun predict` is given, read in the form the model was trained on.

A run's model carries its own preprocessing (rescaling, normalisation, multi-hot: dlrun.models.inputs),
so samples are fed raw, exactly as the dataset loader delivered them in training: images as pixel
values at the model's input size and channels (read as dlrun.visualize.images reads them), arrays
as stored, one sample per row. Text is encoded by dlrun.inference.predict (it needs the run's word index).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from dlrun import errors
from dlrun.data import image_files as images

ARRAY_SUFFIXES = (".npy", ".csv")
TEXT_SUFFIXES = (".txt",)
KINDS = "an image, an .npy or .csv array (one sample per row), a .txt file or a folder of them"


def find(paths: list[Path]) -> list[tuple[str, Path]]:
    """Each input as `(kind, path)`: kind is image, array or text; folders give their files (sorted)."""
    found: list[tuple[str, Path]] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(item for item in path.iterdir() if item.is_file() and _kind(item))
            if not inside:
                raise errors.DataError(f"{path}: received a folder without inputs; expected {KINDS}")
            found.extend((kind, item) for item in inside if (kind := _kind(item)) is not None)
        elif path.is_file():
            kind = _kind(path)
            if kind is None:
                raise errors.DataError(f"{path}: received a {path.suffix or 'suffix-less'} file; expected {KINDS}")
            found.append((kind, path))
        else:
            raise errors.DataError(f"{path}: no such file or folder; expected {KINDS}")
    return found


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in images.SUFFIXES:
        return "image"
    if suffix in ARRAY_SUFFIXES:
        return "array"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return None


def read_array(path: Path, input_shape: tuple) -> tuple[list[str], np.ndarray]:
    """The rows of an .npy or .csv file as samples of `input_shape` (rows of the flattened size are reshaped)."""
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise errors.DataError(f"{path}: cannot be read as a plain numeric .npy array ({error})") from None
    else:
        array = _read_csv(path)
    if array.dtype.kind not in "biuf":
        raise errors.DataError(f"{path}: received an array of dtype {array.dtype}; expected numbers")
    shape = tuple(input_shape)
    expected = f"[samples, {', '.join(str(size) for size in shape)}]"
    flat = math.prod(shape) if None not in shape else None
    if array.ndim == len(shape) + 1 and all(want in (None, have) for want, have in zip(shape, array.shape[1:])):
        pass
    elif array.ndim == 2 and len(shape) > 1 and flat is not None and array.shape[1] == flat:
        array = array.reshape((len(array), *shape))
    else:
        also = f" (or [samples, {flat}] flattened)" if len(shape) > 1 and flat else ""
        raise errors.DataError(
            f"{path}: received an array of shape {list(array.shape)}; expected shape {expected}{also}, one sample per row"
        )
    if len(array) == 0:
        raise errors.DataError(f"{path}: received no rows; expected at least one sample")
    return [f"{path.name}[{row}]" for row in range(len(array))], array


def _read_csv(path: Path) -> np.ndarray:
    """A CSV of numbers; a first row that is not all numbers is taken as a header and skipped."""
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            rows = [row for row in csv.reader(stream) if row]
    except (OSError, UnicodeDecodeError) as error:
        raise errors.DataError(f"{path}: cannot be read as CSV ({error})") from None
    if rows and not all(_is_number(cell) for cell in rows[0]):
        rows = rows[1:]
    try:
        return np.array([[float(cell) for cell in row] for row in rows], dtype="float32")
    except ValueError as error:
        raise errors.DataError(f"{path}: received a cell that is not a number ({error}); expected a CSV of numbers") from None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def read_images(paths: list[Path], input_shape: tuple) -> tuple[list[str], np.ndarray]:
    """Image files as raw pixel values at the model's input size and channels."""
    if len(input_shape) != 3:
        raise errors.DataError(
            f"{paths[0]}: received an image; expected inputs of shape {list(input_shape)} (this model does not take "
            "images): pass an .npy or .csv array, one sample per row"
        )
    height, width, channels = input_shape
    return [str(path) for path in paths], images.load_batch(paths, (height, width), channels)
