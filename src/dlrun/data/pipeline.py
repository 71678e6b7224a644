"""A split held as a `tf.data` pipeline instead of arrays: images read from files, decoded once, cached."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from dlrun import backend


@dataclasses.dataclass
class Pipeline:
    """Unbatched (input, target) pairs from a cached `tf.data.Dataset`, with the targets known up front.

    The elements come in the order of `targets` (so predictions line up with `labels`); batching and
    the per-epoch shuffle are added per use, so `train.batch_size` and `train.shuffle` decide them.
    """

    elements: Any  # a tf.data.Dataset of unbatched (input, target) pairs, cached
    targets: np.ndarray  # one per element, in element order (read from the file list, not decoded)
    element_shape: tuple[int, ...]  # one input's shape, e.g. (150, 150, 3)
    seed: int = 0  # seeds the per-epoch shuffle

    def __len__(self) -> int:
        return len(self.targets)

    def batches(self, batch_size: int, shuffle: bool = False) -> Any:
        """The elements in batches of `batch_size`, reshuffled every epoch when `shuffle`, prefetched."""
        tf = backend.import_tensorflow()

        elements = self.elements
        if shuffle:
            # A full-size buffer over the cached elements: a true shuffle, repeatable from the seed.
            elements = elements.shuffle(len(self), seed=self.seed, reshuffle_each_iteration=True)
        return elements.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def take(self, chosen: np.ndarray) -> Pipeline:
        """The elements at indices `chosen`, in their original order (a filter over the cached elements,
        so nothing is decoded again)."""
        tf = backend.import_tensorflow()

        mask = np.zeros(len(self), dtype=bool)
        mask[np.asarray(chosen, dtype="int64")] = True
        numbered = tf.data.Dataset.zip(self.elements, tf.data.Dataset.from_tensor_slices(mask))
        elements = numbered.filter(lambda element, keep: keep).map(lambda element, keep: element)
        elements = elements.apply(tf.data.experimental.assert_cardinality(int(mask.sum())))
        return Pipeline(elements, self.targets[mask], self.element_shape, self.seed)

    def concatenate(self, other: Pipeline) -> Pipeline:
        """This pipeline's elements followed by `other`'s (K-fold pools train and validation this way)."""
        tf = backend.import_tensorflow()

        elements = self.elements.concatenate(other.elements)
        elements = elements.apply(tf.data.experimental.assert_cardinality(len(self) + len(other)))
        return Pipeline(elements, np.concatenate([self.targets, other.targets]), self.element_shape, self.seed)
