"""A folder of image files, one sub-folder per class: read with `keras.utils.image_dataset_from_directory`.

Layouts: `<path>/train/<class>/...` with optional `validation/` and `test/` beside it (as in the
dogs-vs-cats subset that configs/cats_dogs.yaml describes), or `<path>/<class>/...` alone with
`validation_split`. Every file is checked (decoded once by TensorFlow's own decoder) before training,
so a corrupt file is an error naming it instead of a crash mid-epoch; with `skip_corrupt: true` it is
skipped with a warning. Images come as float32 0..255 at `image_size`; the model's stem rescales them
(`Dataset.rescale`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from dlrun import backend, errors
from dlrun.data import dataset, pipeline

SPLITS = ("train", "validation", "test")
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what image_dataset_from_directory reads
CHANNELS = {"rgb": 3, "grayscale": 1, "rgba": 4}
_LISTED = 10  # problem files named in one message before "and N more"


def load(config: dataset.DataSection, seed: int) -> dataset.Dataset:
    """Images in class folders (train/ validation/ test/, or one folder plus validation_split), cached."""
    root = Path(config.path).expanduser()
    if not root.is_dir():
        raise errors.DataError(
            f"data.path: received {config.path!r}, which is not a folder; expected a folder with train/, "
            "validation/ and test/ (any of them), each holding one sub-folder of images per class "
            "(set it with --set data.path=FOLDER)"
        )
    if config.cache == "disk" and not config.cache_dir:
        raise errors.DataError("data.cache_dir: received nothing; expected a folder for the cache files when data.cache is disk")
    folders = {name: root / name for name in SPLITS if (root / name).is_dir()}
    if folders and "train" not in folders:
        raise errors.DataError(
            f"data.path: received {config.path!r} with {', '.join(f'{name}/' for name in folders)} but no train/; expected a train/ folder"
        )
    if folders and "validation" in folders and config.validation_split:
        raise errors.DataError(
            f"data.validation_split: received {config.validation_split} but {root / 'validation'} exists; "
            "expected 0 (the validation/ folder is the validation split)"
        )
    class_names = _check_layout(folders or {"train": root}, config)
    warnings: list[str] = []
    splits = {}
    for name, folder in (folders or {"train": root}).items():
        splits[name] = _read(folder, name, class_names, config, seed, warnings)
    if config.validation_split:
        splits["train"], splits["validation"] = _hold_out(splits["train"], config, seed)
    return dataset.Dataset(
        task="binary" if len(class_names) == 2 else "multiclass",
        train=splits["train"],
        validation=splits.get("validation"),
        test=splits.get("test"),
        num_classes=len(class_names),
        class_names=class_names,
        rescale=1 / 255,
        augmentation=config.augmentation if config.augmentation.active else None,
        augmentation_seed=seed,
        warnings=warnings,
    )


def _check_layout(folders: dict[str, Path], config: dataset.DataSection) -> list[str]:
    """The class names, after checking every split has the same class folders, each with images."""
    found = {name: _class_folders(folder) for name, folder in folders.items()}
    class_names = found["train"]
    where = folders["train"]
    if len(class_names) < 2:
        have = f"only {class_names[0]!r}" if class_names else "none"
        raise errors.DataError(
            f"data.path: {where}: received {have} as class folder(s); expected at least 2 sub-folders, "
            "one per class, each holding that class's images"
        )
    for name, names in found.items():
        if names != class_names:
            raise errors.DataError(
                f"data.path: {folders[name]}: received class folders {names}; expected the same class folders "
                f"in every split as {where} has: {class_names}"
            )
    not_images = []
    for name, folder in folders.items():
        for class_name in class_names:
            images, others = _files(folder / class_name)
            not_images += others
            if not images:
                raise errors.DataError(
                    f"data.path: {folder / class_name}: received a class folder with no images; expected "
                    f"files ending in {', '.join(IMAGE_SUFFIXES)} (sub-folders are searched too)"
                )
    if not_images and not config.skip_corrupt:
        raise errors.DataError(_problem("is not an image file", not_images, "expected only files ending in " + ", ".join(IMAGE_SUFFIXES)))
    return class_names


def _class_folders(folder: Path) -> list[str]:
    # The same rule as Keras' index_directory: sorted sub-folders, hidden ones left out.
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))


def _files(class_folder: Path) -> tuple[list[str], list[str]]:
    """(image files, other non-hidden files) under one class folder, searched recursively like Keras."""
    images, others = [], []
    for folder, _, names in sorted(os.walk(class_folder), key=lambda item: item[0]):
        for file_name in sorted(names):
            path = os.path.join(folder, file_name)
            if file_name.lower().endswith(IMAGE_SUFFIXES):
                images.append(path)
            elif not file_name.startswith("."):  # .DS_Store and friends are not mistakes
                others.append(path)
    return images, others


def _problem(what: str, paths: list[str], expected: str) -> str:
    listed = "\n".join(f"  {path}" for path in paths[:_LISTED])
    more = f"\n  ... and {len(paths) - _LISTED} more" if len(paths) > _LISTED else ""
    return (
        f"data.path: received {len(paths)} file(s) that {what}; {expected} "
        f"(or set data.skip_corrupt: true to skip them with a warning):\n{listed}{more}"
    )


def _read(
    folder: Path, split: str, class_names: list[str], config: dataset.DataSection, seed: int, warnings: list[str]
) -> pipeline.Pipeline:
    """One split folder as a cached pipeline of (image 0..255, class index), after checking every file."""
    tf = backend.import_tensorflow()
    keras = backend.import_keras()

    try:
        elements = keras.utils.image_dataset_from_directory(
            str(folder),
            labels="inferred",
            label_mode="int",
            class_names=class_names,
            color_mode=config.color_mode,
            batch_size=None,
            image_size=tuple(config.image_size),
            shuffle=False,  # file order, so targets line up; the training split is reshuffled per epoch after the cache
            interpolation=config.interpolation,
            crop_to_aspect_ratio=config.crop_to_aspect_ratio,
            verbose=False,
        )
    except ValueError as error:
        raise errors.DataError(f"data.path: {folder}: {error}") from None
    paths = list(elements.file_paths)
    _, others = zip(*(_files(folder / name) for name in class_names))
    skipped = [path for group in others for path in group]
    bad = _undecodable(paths, CHANNELS[config.color_mode])
    if bad and not config.skip_corrupt:
        raise errors.DataError(_problem("cannot be decoded as images", bad, "expected readable JPEG, PNG, BMP or GIF images"))
    if bad:
        # The same decoder fails on the same files, so ignore_errors drops exactly these.
        elements = elements.ignore_errors()
        bad_set = set(bad)
        paths = [path for path in paths if path not in bad_set]
        skipped += bad
    if skipped:
        warnings.append(
            f"{split}: skipped {len(skipped)} unreadable or non-image file(s): {', '.join(skipped[:_LISTED])}"
            + (f" and {len(skipped) - _LISTED} more" if len(skipped) > _LISTED else "")
        )
    targets = np.array([class_names.index(Path(path).relative_to(folder).parts[0]) for path in paths], dtype="int64")
    for name in class_names:
        if not np.any(targets == class_names.index(name)):
            raise errors.DataError(f"data.path: {folder / name}: received a class folder with no readable images; expected at least one")
    elements = elements.apply(tf.data.experimental.assert_cardinality(len(paths)))
    elements = _cached(elements, config, split, paths)
    shape = (*config.image_size, CHANNELS[config.color_mode])
    return pipeline.Pipeline(elements=elements, targets=targets, element_shape=shape, seed=seed)


def _undecodable(paths: list[str], channels: int) -> list[str]:
    """The files TensorFlow's decoder (the one image_dataset_from_directory uses) cannot read."""
    tf = backend.import_tensorflow()

    def probe(path: Any) -> tuple[Any, Any]:
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        return path, tf.shape(image)  # returning the shape keeps the decode from being pruned

    readable = tf.data.Dataset.from_tensor_slices(paths).map(probe, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    good = {path.decode() for path, _ in readable.as_numpy_iterator()}
    return [path for path in paths if path not in good]


def _cached(elements: Any, config: dataset.DataSection, split: str, paths: list[str]) -> Any:
    """`elements.cache(...)` in memory, in a file keyed by the files and settings, or not at all."""
    if config.cache == "none":
        return elements
    if config.cache == "memory":
        return elements.cache()
    key = hashlib.sha256()
    for path in paths:
        status = os.stat(path)
        key.update(f"{path}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    key.update(repr((config.image_size, config.color_mode, config.interpolation, config.crop_to_aspect_ratio)).encode())
    cache_dir = Path(config.cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    return elements.cache(str(cache_dir / f"{split}-{key.hexdigest()[:16]}"))


def _hold_out(train: pipeline.Pipeline, config: dataset.DataSection, seed: int) -> tuple[pipeline.Pipeline, pipeline.Pipeline]:
    """Split a cached pipeline into training and validation parts (stratified, seeded), decoding once."""
    indices = np.arange(len(train))
    kept, held = dataset.hold_out(indices, train.targets, config.validation_split, seed, stratify=True)
    if held is None:
        raise ValueError(f"Received validation_split {config.validation_split}; expected a fraction > 0 to hold out")
    return train.take(kept[0]), train.take(held[0])
