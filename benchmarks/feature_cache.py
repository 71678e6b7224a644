"""Benchmark: one training epoch on cached features vs one end-to-end epoch with the frozen base.

Both train the same head (Flatten, Dense 256, Dropout 0.5, Dense 1) on the same images with a frozen
VGG16 base (random weights: `weights: null`, nothing to download). Features mode pays the base's
forward pass once (reported as `extraction_s`); end_to_end pays it every epoch.

    PYTHONPATH=src python benchmarks/feature_cache.py [--samples 512] [--size 64] [--epochs 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np


def _epoch_seconds(model, x, y, batch_size: int, epochs: int) -> list[float]:
    """Seconds per epoch over `epochs` timed epochs, after one untimed warm-up epoch (tracing)."""
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--size", type=int, default=64, help="image height and width")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per mode (after a warm-up epoch)")
    parser.add_argument("--quick", action="store_true", help="128 samples of 32x32, 2 timed epochs")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.size, args.epochs = 128, 32, 2

    from dlrun import backend, config
    from dlrun.data import dataset
    from dlrun.models import inputs, pretrained
    from dlrun.training import optimizers

    keras = backend.import_keras()
    backend.seed_everything(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.samples, args.size, args.size, 3)).astype("float32")
    labels = rng.integers(0, 2, size=args.samples)
    loaded = dataset.Dataset(task="binary", train=(images, labels), num_classes=2, rescale=1 / 255)
    section = {"architecture": "pretrained", "base": "vgg16", "weights": None, "dense_units": [256], "dropout": 0.5}
    model_config = config.validate({"data": "digits", "model": section}).model
    parts = pretrained.parts(model_config, inputs.stem(keras, loaded), loaded.input_shape, "binary", 2)

    def compiled(model):
        model.compile(
            optimizer=optimizers.get(config.schema.RMSpropOptimizer(name="rmsprop", learning_rate=2e-5)),
            loss="binary_crossentropy",
            metrics=["accuracy"],
        )
        return model

    started = time.perf_counter()
    features = parts.extractor.predict(images, batch_size=args.batch_size, verbose=0)
    extraction = time.perf_counter() - started
    cached = _epoch_seconds(compiled(parts.head), features, labels, args.batch_size, args.epochs)
    end_to_end = _epoch_seconds(compiled(parts.model), images, labels, args.batch_size, args.epochs)
    result = {
        "samples": args.samples,
        "image_size": args.size,
        "batch_size": args.batch_size,
        "feature_shape": list(features.shape[1:]),
        "extraction_s": round(extraction, 3),
        "cached_epoch_s": round(statistics.median(cached), 4),
        "end_to_end_epoch_s": round(statistics.median(end_to_end), 4),
        "ratio": round(statistics.median(end_to_end) / statistics.median(cached), 1),
        "versions": {"python": platform.python_version(), "keras": keras.version(), "numpy": np.__version__},
    }
    import tensorflow as tf

    result["versions"]["tensorflow"] = tf.__version__
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
