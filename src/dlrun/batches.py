"""Training batches whose order depends only on (seed, epoch).

Keras shuffles arrays with a stateful random op, so the order of epoch 4 depends on what ran before
it: a run resumed at epoch 4 would see different batches than a straight run. Here each epoch's
permutation is `stateless_shuffle(seed=(seed, epoch))`, so resuming reproduces the straight run exactly.
"""

from __future__ import annotations

import math


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Batches per epoch (the last one may be partial, as with `model.fit`)."""
    return math.ceil(count / batch_size)


def seeded(inputs, targets, batch_size: int, seed: int, first_epoch: int, epochs: int, shuffle: bool = True):
    """A `tf.data.Dataset` of (inputs, targets) batches for epochs `first_epoch` .. `epochs - 1`, in order.

    Use with `model.fit(dataset, epochs=epochs, initial_epoch=first_epoch, steps_per_epoch=...,
    shuffle=False)`.
    """
    import tensorflow as tf

    count = len(inputs)
    seed_tensor = tf.constant(seed, tf.int64)

    def epoch_order(epoch):
        order = tf.range(count, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, seed=tf.stack([seed_tensor, epoch]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    inputs_tensor, targets_tensor = tf.constant(inputs), tf.constant(targets)
    return (
        tf.data.Dataset.range(first_epoch, epochs)
        .flat_map(epoch_order)
        .map(lambda index: (tf.gather(inputs_tensor, index), tf.gather(targets_tensor, index)),
             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
