"""Generated images where one object decides the class: a square (class 0) or a disk (class 1).

Each image also holds a distractor (a cross) that both classes share, at another random position, so
a model must find the deciding object to classify; Grad-CAM's tests and docs/visualize.md's
`dlrun visualize` example train on these through the `npz` dataset (`write_npz`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlrun import atomic

CLASS_NAMES = ["square", "disk"]
OBJECT_SIZE = 10  # the square's side; the disk's diameter is one pixel more (similar areas)


def generate(count: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(images, labels, boxes)`: uint8 images [count, size, size, 1], labels 0/1 (balanced),
    and each deciding object's box [top, left, bottom, right) in pixels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    rng.shuffle(labels)
    images = rng.integers(0, 40, size=(count, size, size), dtype=np.int64)  # a dim, noisy background
    boxes = np.zeros((count, 4), dtype=np.int64)
    span = OBJECT_SIZE + 1
    rows, cols = np.mgrid[0:span, 0:span]
    centre = (span - 1) / 2
    disk = (rows - centre) ** 2 + (cols - centre) ** 2 <= (span / 2) ** 2
    square = np.zeros((span, span), bool)
    square[:OBJECT_SIZE, :OBJECT_SIZE] = True
    cross = np.zeros((span, span), bool)
    cross[span // 2 - 1 : span // 2 + 2, :] = True
    cross[:, span // 2 - 1 : span // 2 + 2] = True
    for index, label in enumerate(labels):
        first, second = _two_places(rng, size, span)
        shape = disk if label else square
        for mask, (top, left) in ((shape, first), (cross, second)):
            brightness = rng.integers(180, 256)
            patch = images[index, top : top + span, left : left + span]
            patch[mask] = brightness
        filled = np.argwhere(shape)
        boxes[index] = [
            first[0] + filled[:, 0].min(),
            first[1] + filled[:, 1].min(),
            first[0] + filled[:, 0].max() + 1,
            first[1] + filled[:, 1].max() + 1,
        ]
    return images.astype(np.uint8)[..., np.newaxis], labels.astype(np.int64), boxes


def _two_places(rng: np.random.Generator, size: int, span: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Top-left corners for two span x span patches that do not touch."""
    while True:
        first, second = rng.integers(0, size - span + 1, size=(2, 2))
        if abs(first[0] - second[0]) > span or abs(first[1] - second[1]) > span:
            return (int(first[0]), int(first[1])), (int(second[0]), int(second[1]))


def write_npz(path: str | Path, train: int = 1000, test: int = 200, size: int = 32, seed: int = 0) -> Path:
    """Write an `npz` dataset file (x_train, y_train, x_test, y_test) of generated shape images."""
    import io

    x_train, y_train, _ = generate(train, size, seed)
    x_test, y_test, _ = generate(test, size, seed + 1)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return atomic.write_bytes(path, buffer.getvalue())


def write_images(folder: str | Path, count: int = 4, size: int = 32, seed: int = 100) -> list[Path]:
    """Write `count` generated images as PNG files named `<index>_<class>.png`; return their paths."""
    import io

    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images, labels, _ = generate(count, size, seed)
    written = []
    for index, (image, label) in enumerate(zip(images, labels)):
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0]).save(buffer, format="PNG")
        written.append(atomic.write_bytes(folder / f"{index}_{CLASS_NAMES[label]}.png", buffer.getvalue()))
    return written
