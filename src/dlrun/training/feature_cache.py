"""The feature cache: a frozen base's outputs for every split, computed once and kept on disk.

A cache entry is a folder `<cache root>/<key>/` holding `<split>.npz` (features and labels) and
`identity.json` (what the key was computed from, written last: an entry without it is incomplete).
The key hashes the feature extractor's identity (base, weights or their file's SHA-256, the seed when
the weights are random, image size, preprocessing) and the content of every split, hashed per sample
and order-independently, so a shuffled input pipeline still finds its entry.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlrun import atomic, backend
from dlrun.config import architectures
from dlrun.data import dataset
from dlrun.models import pretrained

if TYPE_CHECKING:
    from rich.console import Console

    from dlrun.config import schema

IDENTITY_FILE = "identity.json"
SPLITS = ("train", "validation", "test")


def root(cache_dir: str | None, runs_root: str) -> Path:
    """The cache root: `cache_dir`, or `feature_cache/` beside the runs root."""
    return Path(cache_dir) if cache_dir else Path(runs_root).resolve().parent / "feature_cache"


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file (weights files and run models enter the key by content, not by name)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def batches(arguments: dict) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(inputs, labels) NumPy batches of a split, from `Dataset.fit_arguments`: arrays or a tf.data pipeline."""
    if "y" in arguments:
        inputs, labels, size = arguments["x"], arguments["y"], arguments.get("batch_size") or 32
        for start in range(0, len(inputs), size):
            yield np.asarray(inputs[start : start + size]), np.asarray(labels[start : start + size])
        return
    for inputs, labels in arguments["x"]:
        yield np.asarray(inputs), np.asarray(labels)


def data_digest(arguments: dict) -> str:
    """A hash of a split's samples and labels that does not depend on their order."""
    samples = []
    shapes = set()
    for inputs, labels in batches(arguments):
        shapes.add((inputs.shape[1:], str(inputs.dtype), labels.shape[1:], str(labels.dtype)))
        for sample, label in zip(inputs, labels):
            samples.append(hashlib.blake2b(sample.tobytes() + np.asarray(label).tobytes(), digest_size=16).digest())
    combined = hashlib.sha256(repr(sorted(shapes)).encode())
    for sample in sorted(samples):
        combined.update(sample)
    return combined.hexdigest()


class FeatureCache:
    """One cache entry: the features of each split for one extractor and one dataset."""

    def __init__(self, cache_root: str | Path, identity: dict) -> None:
        self.identity = identity
        text = json.dumps(identity, sort_keys=True, default=str)
        self.key = hashlib.sha256(text.encode()).hexdigest()[:24]
        self.path = Path(cache_root) / self.key

    def complete(self) -> bool:
        """Whether every split of this entry is on disk."""
        return (self.path / IDENTITY_FILE).is_file()

    def load(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        with np.load(self.path / f"{split}.npz", allow_pickle=False) as stored:
            return stored["features"], stored["labels"]

    def extract(self, extractor: Any, split: str, arguments: dict) -> tuple[tuple[np.ndarray, np.ndarray], float]:
        """Run `extractor` over a split once, store the result; return ((features, labels), seconds)."""
        started = time.perf_counter()
        features: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        for inputs, batch_labels in batches(arguments):
            features.append(np.asarray(extractor.predict_on_batch(inputs)))
            labels.append(batch_labels)
        arrays = (np.concatenate(features), np.concatenate(labels))
        self.path.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, features=arrays[0], labels=arrays[1])
        atomic.write_bytes(self.path / f"{split}.npz", buffer.getvalue())
        return arrays, time.perf_counter() - started

    def seal(self) -> None:
        """Mark the entry complete (after every split is written)."""
        atomic.write_json(self.path / IDENTITY_FILE, self.identity)


def is_augmentation(layer: Any) -> bool:
    """Random* layers (Keras' augmentation layers), or a block made only of them."""
    if type(layer).__name__.startswith("Random"):
        return True
    inner: Any = getattr(layer, "layers", None)
    return bool(inner) and all(is_augmentation(item) for item in inner)


def features(config: schema.Config, loaded: dataset.Dataset, built: pretrained.Parts, console: Console) -> tuple[dataset.Dataset, Path]:
    """A Dataset of the base's outputs (`built`: `models.pretrained.Parts`) for every split of `loaded`,
    from the cache or computed once and cached, and the cache entry's folder (runs record it, so that
    `dlrun runs clean` keeps the entries a run uses)."""
    keras = backend.import_keras()

    model_config = _pretrained_config(config)
    optional = {name: loaded.fit_arguments(name, config.train.batch_size) for name in SPLITS}
    arguments = {name: value for name, value in optional.items() if value is not None}
    identity = {
        "format": 1,
        "keras": keras.version(),
        "extractor": _extractor_identity(config, loaded, built),
        "data": {name: data_digest(value) for name, value in arguments.items()},
    }
    cache = FeatureCache(root(model_config.cache_dir, config.output.runs_root), identity)
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if cache.complete():
        for name in arguments:
            splits[name] = cache.load(name)
        sizes = ", ".join(f"{len(splits[name][1])} {name}" for name in splits)
        console.print(f"features: read from the cache {cache.path} ({sizes}); the base was not run", highlight=False, soft_wrap=True)
    else:
        for name, value in arguments.items():
            splits[name], seconds = cache.extract(built.extractor, name, value)
            console.print(
                f"features: ran the base once over the {name} split ({len(splits[name][1])} samples) in {seconds:.1f}s",
                highlight=False,
                soft_wrap=True,
            )
        cache.seal()
        console.print(f"features: cached in {cache.path}", highlight=False, soft_wrap=True)
    return dataset.Dataset(
        task=loaded.task,
        train=splits["train"],
        validation=splits.get("validation"),
        test=splits.get("test"),
        num_classes=loaded.num_classes,
        class_names=loaded.class_names,
    ), cache.path


def _pretrained_config(config: schema.Config) -> architectures.PretrainedModel:
    if not isinstance(config.model, architectures.PretrainedModel):
        raise ValueError(f"Received model.architecture {config.model.architecture!r}; expected pretrained (features mode)")
    return config.model


def _extractor_identity(config: schema.Config, loaded: dataset.Dataset, built: pretrained.Parts) -> dict:
    """What the features depend on besides the data: base, weights, seed (random weights), preprocessing."""
    model_config = _pretrained_config(config)
    run_base = pretrained.is_run_model(model_config.base)
    configured = None if run_base else model_config.weights
    weights: str | dict | None = configured
    if configured is not None and configured != "imagenet":
        weights = {"sha256": file_digest(configured)}
    layers = []
    for layer in built.extractor.layers:
        if is_augmentation(layer) or type(layer).__name__ == "InputLayer":
            continue  # augmentation is off in inference, so it never changes the features
        if hasattr(layer, "layers"):
            layers.append({"class": type(layer).__name__, "layers": len(layer.layers)})
        else:
            layer_config = {key: value for key, value in layer.get_config().items() if key != "name"}
            layers.append({"class": type(layer).__name__, "config": layer_config})
    return {
        "base": {"run_model_sha256": file_digest(model_config.base)} if run_base else model_config.base,
        "base_layer": model_config.base_layer if run_base else None,
        "weights": weights,
        "seed": config.seed if (not run_base and model_config.weights is None) else None,
        "include_top": model_config.include_top,
        "base_options": model_config.base_options,
        "input_shape": list(loaded.input_shape),
        "layers": layers,
    }
