"""Throughput of the image_directory input pipeline, and whether training on it is input-bound.

Generates a folder of JPEGs in the Kaggle dogs-vs-cats layout (photo-sized, 300-500 px), then measures:
the file check (every file decoded once before training), the first pass (decode + resize, filling the
cache), later passes (from the in-memory cache), the augmentation layers alone, and one training epoch
of the cats_dogs convnet fed from the directory pipeline versus from the same images as NumPy arrays.

    PYTHONPATH=src python benchmarks/image_pipeline.py [--images 400] [--image-size 150] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def generate(root: Path, count: int, seed: int = 0) -> None:
    """`count` JPEGs split evenly over train/cats and train/dogs: smooth gradients plus noise, like photos."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for index in range(count):
        name = ("cats", "dogs")[index % 2]
        height, width = rng.integers(300, 500, size=2)
        y, x = np.mgrid[0:height, 0:width]
        base = (x[..., None] * rng.random(3) + y[..., None] * rng.random(3)) / 4
        pixels = np.clip(base + rng.normal(0, 12, (height, width, 3)), 0, 255).astype("uint8")
        folder = root / "train" / name
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{name[:-1]}.{index}.jpg", quality=90)


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from dlrun import backend, config, data, models
    from dlrun.data import image_directory

    keras = backend.import_keras()
    import tensorflow as tf

    backend.seed_everything(0)
    results: dict = {"images": args.images, "image_size": args.image_size, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        generate(root, args.images)
        results["folder_mb"] = round(sum(path.stat().st_size for path in root.rglob("*.jpg")) / 2**20, 1)
        settings = {"name": "image_directory", "path": str(root), "image_size": [args.image_size] * 2}
        cats_dogs = config.load(Path(__file__).parents[1] / "configs" / "cats_dogs_augmented.yaml")
        section = config.validate({"data": settings, "model": "convnet"}).data

        paths = [str(path) for path in sorted(root.rglob("*.jpg"))]
        results["check_images_per_s"] = round(args.images / timed(lambda: image_directory._undecodable(paths, 3)), 1)

        started = time.perf_counter()
        loaded = data.load(section, 0)  # includes the file check
        results["load_s"] = round(time.perf_counter() - started, 2)
        passes = [timed(lambda: [None for _ in loaded.fit_arguments("train", args.batch_size, shuffle=True)["x"]]) for _ in range(3)]
        results["first_pass_images_per_s"] = round(args.images / passes[0], 1)  # decode + resize + cache fill
        results["cached_pass_images_per_s"] = round(args.images / min(passes[1:]), 1)  # cache + shuffle + batch

        from dlrun.models import augmentation

        layers = augmentation.layers(keras, cats_dogs.data.augmentation, seed=0)
        augment = tf.function(lambda batch: keras.Sequential(layers)(batch, training=True))
        batches = list(loaded.fit_arguments("train", args.batch_size)["x"])
        augment(batches[0][0])  # trace once
        results["augment_images_per_s"] = round(args.images / timed(lambda: [augment(images) for images, _ in batches]), 1)

        arrays = (np.concatenate([images.numpy() for images, _ in batches]), loaded.labels("train"))
        epochs = {}
        for source in ("directory", "arrays"):
            loaded_here = data.load(section, 0) if source == "directory" else None
            if source == "arrays":
                loaded_here = data.dataset.Dataset(task="binary", train=arrays, num_classes=2, rescale=1 / 255)
            loaded_here.augmentation, loaded_here.augmentation_seed = cats_dogs.data.augmentation, 0
            model = models.build(cats_dogs.model, loaded_here)
            model.compile(optimizer=keras.optimizers.RMSprop(1e-4), loss="binary_crossentropy", metrics=["accuracy"])
            arguments = loaded_here.fit_arguments("train", args.batch_size, shuffle=True)
            times = []
            for _ in range(3):
                times.append(timed(lambda: model.fit(**arguments, epochs=1, verbose=0)))
            epochs[source] = times
        results["epoch_s_directory"] = [round(value, 2) for value in epochs["directory"]]
        results["epoch_s_arrays"] = [round(value, 2) for value in epochs["arrays"]]
        # Epoch 1 includes tracing (both) and decoding (directory); compare the steady state.
        results["steady_epoch_ratio_directory_over_arrays"] = round(min(epochs["directory"][1:]) / min(epochs["arrays"][1:]), 3)
        results["first_epoch_ratio_directory_over_arrays"] = round(epochs["directory"][0] / epochs["arrays"][0], 3)
        results["training_images_per_s_arrays"] = round(args.images / min(epochs["arrays"][1:]), 1)
    results["versions"] = {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
