"""Reading the image files a visualisation looks at: repeated `--image` options and folders of images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlrun import errors

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}


def find(paths: list[Path]) -> list[Path]:
    """The image files `paths` name: files as given, folders by their image files (sorted)."""
    if not paths:
        raise errors.DataError("--image: received nothing; expected an image file or a folder of images")
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(item for item in path.iterdir() if item.is_file() and item.suffix.lower() in SUFFIXES)
            if not inside:
                raise errors.DataError(
                    f"--image: received the folder {str(path)!r}; expected it to hold image files ({', '.join(SUFFIXES)})"
                )
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise errors.DataError(f"--image: received {str(path)!r}; expected an existing image file or folder (no such file)")
    return found


def load(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """The image as raw pixel values (0-255, float32), resized to `size` (height, width) with `channels`."""
    from dlrun import backend

    keras = backend.import_keras()
    if channels not in COLOR_MODES:
        raise errors.DataError(f"the model takes {channels} input channel(s); expected images with 1, 3 or 4 channels")
    try:
        image = keras.utils.load_img(path, color_mode=COLOR_MODES[channels], target_size=tuple(size))
    except Exception as error:  # PIL raises several types for unreadable files
        raise errors.DataError(f"--image: {path} cannot be read as an image ({type(error).__name__}: {error})") from None
    return keras.utils.img_to_array(image, dtype="float32")


def load_original(path: Path) -> np.ndarray:
    """The image at its own size as RGB uint8 pixels [height, width, 3] (for overlays)."""
    from dlrun import backend

    keras = backend.import_keras()
    try:
        image = keras.utils.load_img(path, color_mode="rgb")
    except Exception as error:
        raise errors.DataError(f"--image: {path} cannot be read as an image ({type(error).__name__}: {error})") from None
    return keras.utils.img_to_array(image, dtype="uint8")


def load_batch(paths: list[Path], size: tuple[int, int], channels: int) -> np.ndarray:
    """All images in `paths` as one float32 batch [count, height, width, channels]."""
    return np.stack([load(path, size, channels) for path in paths])
