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
from pathlib import Path

import numpy as np

from dlrun import atomic

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


def batches(arguments: dict):
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

    def __init__(self, cache_root: str | Path, identity: dict):
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

    def extract(self, extractor, split: str, arguments: dict) -> tuple[tuple[np.ndarray, np.ndarray], float]:
        """Run `extractor` over a split once, store the result; return ((features, labels), seconds)."""
        started = time.perf_counter()
        features, labels = [], []
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
