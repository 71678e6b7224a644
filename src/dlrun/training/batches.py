"""Training batches whose order depends only on (seed, epoch).

Keras shuffles arrays with a stateful random op, so the order of epoch 4 depends on what ran before
it: a run resumed at epoch 4 would see different batches than a straight run. Here each epoch's
permutation is `stateless_shuffle(seed=(seed, epoch))`, so resuming reproduces the straight run exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dlrun import errors

if TYPE_CHECKING:
    from dlrun.config import schema
    from dlrun.data import dataset
    from dlrun.training import distribution


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Batches per epoch (the last one may be partial, as with `model.fit`)."""
    return math.ceil(count / batch_size)


AUTO_STEPS = 32  # train.steps_per_execution: auto groups up to this many batches per call ...
AUTO_PARAMETERS = 1_000_000  # ... for models under this size, whose steps are short enough for dispatch to matter


def steps_per_execution(train: schema.TrainConfig, dataset: dataset.Dataset, parameters: int, backend_name: str | None) -> tuple[int, str]:
    """Batches per call of the compiled train step (`train.steps_per_execution`), and why.

    Keras runs `steps_per_execution` batches in one compiled call: a small model's step is short, so
    the per-call dispatch is much of its time. The numbers do not change (the same batches, the same
    updates, in the same order: tests/test_train.py compares histories bit for bit), only how often
    per-batch callbacks run: the NaN stop then names the block of batches it saw. Array data comes as one
    stream of every epoch's batches (`seeded`), so a block must never reach into the next epoch: the
    number divides the steps per epoch. `auto` takes the largest such divisor up to AUTO_STEPS for
    in-memory data, `loop: fit`, no distribution strategy and models under AUTO_PARAMETERS parameters on
    TensorFlow or JAX (Keras on PyTorch runs one step per call); 1 otherwise.
    """
    requested = train.steps_per_execution
    if backend_name == "torch" and requested != "auto" and requested > 1:
        raise errors.ConfigError(
            f"train.steps_per_execution: received {requested} on the torch backend; "
            "expected auto or 1 (Keras on PyTorch runs one step per call)"
        )
    arrays = dataset.split("train")
    steps = steps_per_epoch(len(arrays[0]), train.batch_size) if isinstance(arrays, tuple) else None
    if requested != "auto":
        if steps is not None and steps % requested:
            divisors = [number for number in range(1, steps + 1) if steps % number == 0]
            raise errors.ConfigError(
                f"train.steps_per_execution: received {requested}; expected auto or a divisor of the {steps} steps per "
                f"epoch ({', '.join(map(str, divisors))}), so that no call runs into the next epoch's batches"
            )
        return requested, "set in the config"
    reasons = [
        (backend_name == "torch", "the torch backend"),
        (train.loop != "fit", f"loop: {train.loop}"),
        (train.distribute != "none", f"train.distribute: {train.distribute}"),
        (steps is None, "a streamed (tf.data) training split"),
        (parameters >= AUTO_PARAMETERS, f"a model of {parameters:,} parameters (>= {AUTO_PARAMETERS:,})"),
    ]
    for applies, reason in reasons:
        if applies:
            return 1, f"auto: 1 for {reason}"
    if steps is None:  # never here (a reason above applied): it narrows the type
        return 1, "auto: 1 for a streamed (tf.data) training split"
    chosen = max(number for number in range(1, min(AUTO_STEPS, steps) + 1) if steps % number == 0)
    return (
        chosen,
        f"auto: {chosen} (a divisor of {steps} steps per epoch) for a model under {AUTO_PARAMETERS:,} parameters on in-memory data",
    )


def fit_arguments(
    dataset: dataset.Dataset, train: schema.TrainConfig, seed: int, first_epoch: int, epochs: int, share: distribution.Share | None = None
) -> dict:
    """`model.fit` arguments for `dataset`'s training split (`train`: the config's train section).

    Arrays go through seeded per-epoch batches (`seeded`), so a resumed fit sees exactly the batches a
    straight one would have, and one pipeline serves every epoch (Keras' own `fit(x, y)` rebuilds its
    shuffled iterator each epoch, which dominates short epochs). A pipeline split shuffles itself.
    `share`: this process's slice of each global batch, in a data-parallel run of several processes.
    """
    import numpy as np

    arguments = dataset.fit_arguments("train", train.batch_size, shuffle=train.shuffle)
    if arguments is None:  # no dataset lacks a train split
        raise ValueError("Received a dataset without a train split; expected one.")
    if isinstance(arguments.get("x"), np.ndarray) and isinstance(arguments.get("y"), np.ndarray):
        inputs, targets = arguments["x"], arguments["y"]
        return {
            "x": seeded(inputs, targets, train.batch_size, seed, first_epoch, epochs, shuffle=train.shuffle, share=share),
            "steps_per_epoch": steps_per_epoch(len(inputs), train.batch_size),
            "shuffle": False,
        }
    return arguments  # a pipeline shuffles itself (seeded) and says shuffle=False


def seeded(
    inputs: Any,
    targets: Any,
    batch_size: int,
    seed: int,
    first_epoch: int,
    epochs: int,
    shuffle: bool = True,
    share: distribution.Share | None = None,
) -> Any:
    """(inputs, targets) batches for epochs `first_epoch` .. `epochs - 1`, in order: a `tf.data.Dataset`
    on the TensorFlow backend, a generator of NumPy batches on the others (faster there: their `fit`
    would only convert tf.data batches back to NumPy one by one, and plain NumPy needs no TensorFlow
    import). The orders differ between the two, but each is a function of (seed, epoch) only.

    Use with `model.fit(batches, epochs=epochs, initial_epoch=first_epoch, steps_per_epoch=...,
    shuffle=False)`. `share` (NumPy batches only): each process of a data-parallel run yields its slice
    of every global batch, all drawn from the same (seed, epoch) order.
    """
    from dlrun import backend

    if not backend.feeds_tf_data():
        return _numpy_batches(inputs, targets, batch_size, seed, first_epoch, epochs, shuffle, share)
    import tensorflow as tf

    count = len(inputs)
    seed_tensor = tf.constant(seed, tf.int64)

    def epoch_order(epoch: Any) -> Any:
        order = tf.range(count, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, seed=tf.stack([seed_tensor, epoch]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    inputs_tensor, targets_tensor = tf.constant(inputs), tf.constant(targets)
    pipeline = (
        tf.data.Dataset.range(first_epoch, epochs)
        .flat_map(epoch_order)
        .map(
            lambda index: (tf.gather(inputs_tensor, index), tf.gather(targets_tensor, index)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        .prefetch(tf.data.AUTOTUNE)
    )
    # No model-based autotuning thread: deleting an iterator waits for that thread, which took 10-20 s at the
    # end of about half of the 5-epoch Fashion-MNIST fits measured (issue 17's bimodal fit time: py-spy showed
    # fit's return blocked in RootDataset::Iterator::~Iterator on the thread pool). AUTOTUNE above then means
    # tf.data's fixed defaults (parallel calls up to the cores, a self-sizing prefetch buffer).
    options = tf.data.Options()
    options.autotune.enabled = False
    return pipeline.with_options(options)


def _numpy_batches(
    inputs: Any, targets: Any, batch_size: int, seed: int, first_epoch: int, epochs: int, shuffle: bool, share: distribution.Share | None
) -> Iterator[tuple[Any, Any]]:
    import numpy as np

    count = len(inputs)
    for epoch in range(first_epoch, epochs):
        order = np.random.default_rng([seed, epoch]).permutation(count) if shuffle else np.arange(count)
        for start in range(0, count, batch_size):
            index = order[start : start + batch_size]
            if share is not None:
                index = index[share.rows(len(index))]
            yield inputs[index], targets[index]
