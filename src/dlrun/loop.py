"""An explicit training loop (`train.loop: custom`): mini-batches, `tf.GradientTape`, the optimizer.

It is the loop of the notes' TensorFlow-basics section written out: for every epoch, shuffle and cut
the training data into mini-batches; for every batch, run the model forward (`training=True`, so
dropout is active), compute the loss, take its gradients with a `tf.GradientTape` and let the
optimizer apply them. It is called like `model.fit` and does what `fit` does around that core, so the
rest of dlrun cannot tell the two apart:

- the loss is the compiled loss plus `model.losses` (L1/L2 penalties), via `model.compute_loss`, as
  in Keras' `train_step`; the reported `loss` is the model's own loss tracker (a batch-size weighted
  mean over the epoch), and the compiled metrics come from `model.compute_metrics`;
- every callback is driven through `keras.callbacks.CallbackList` with the same hooks, order and
  logs (`val_` prefixed validation results), and `model.stop_training` ends the run after the batch
  or epoch that set it: early stopping, checkpoints, reduce-LR, dlrun's recorder and progress work.

One difference is deliberate: `fit` shuffles with `tf.random.shuffle` inside its `tf.data` pipeline,
whose draws depend on TensorFlow's op-seed counter; this loop draws each epoch's order from a NumPy
generator seeded with the run's seed, which is reproducible by itself. With `shuffle=False` both
see the same batches and their losses agree to float32 rounding (tests/test_loop.py).
"""

from __future__ import annotations

import numpy as np

from dlrun import errors


def fit(
    model,
    x,
    y=None,
    batch_size: int = 32,
    epochs: int = 1,
    validation_data=None,
    shuffle: bool = True,
    callbacks=None,
    verbose: int = 0,
    seed: int | None = None,
):
    """Train a compiled `model` on arrays `x`, `y` like `model.fit(...)`; return its History."""
    import keras
    import tensorflow as tf

    if y is None:  # a tf.data pipeline or generator: its batching is not ours to seed and shuffle
        raise errors.ConfigError(
            "train.loop: received 'custom' for a dataset that streams its batches; "
            "expected 'fit' (the custom loop trains on in-memory arrays)"
        )
    inputs = tf.convert_to_tensor(x)
    targets = tf.convert_to_tensor(y)
    count = int(inputs.shape[0])
    steps = -(-count // batch_size)
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=verbose != 0, verbose=verbose, epochs=epochs, steps=steps, model=model
    )
    loss_tracker = _loss_tracker(model)
    train_step = _compiled(model, _train_step(model, loss_tracker))
    test_step = _compiled(model, _test_step(model, loss_tracker))
    generator = np.random.default_rng(seed)

    model.stop_training = False
    callback_list.on_train_begin()
    epoch_logs = None
    for epoch in range(epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        logs = {}
        for step, indices in enumerate(batches(count, batch_size, shuffle, generator)):
            callback_list.on_train_batch_begin(step)
            indices = tf.constant(indices)
            logs = train_step(tf.gather(inputs, indices), tf.gather(targets, indices))
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        epoch_logs = _floats(logs)
        if validation_data is not None:
            validation_logs = evaluate(model, *validation_data, batch_size=batch_size, callback_list=callback_list, step=test_step)
            epoch_logs.update({f"val_{name}": value for name, value in validation_logs.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    if epochs > 0:
        model.optimizer.finalize_variable_values(model.trainable_weights)  # as fit does (EMA weights)
    callback_list.on_train_end(logs=epoch_logs)
    return model.history


def evaluate(model, x, y, batch_size: int = 32, callback_list=None, step=None) -> dict[str, float]:
    """The compiled loss and metrics of `model` on `x`, `y` (inference mode), like `model.evaluate`."""
    import keras
    import tensorflow as tf

    callback_list = callback_list or keras.callbacks.CallbackList(model=model)
    step = step or _compiled(model, _test_step(model, _loss_tracker(model)))
    inputs = tf.convert_to_tensor(x)
    targets = tf.convert_to_tensor(y)
    model.reset_metrics()
    callback_list.on_test_begin()
    logs = {}
    for index, start in enumerate(range(0, int(inputs.shape[0]), batch_size)):
        callback_list.on_test_batch_begin(index)
        logs = step(inputs[start : start + batch_size], targets[start : start + batch_size])
        callback_list.on_test_batch_end(index, logs)
    logs = _floats(logs)
    callback_list.on_test_end(logs)
    return logs


def batches(count: int, batch_size: int, shuffle: bool, generator: np.random.Generator):
    """Index arrays of one epoch's mini-batches: a fresh permutation when shuffling, the last one partial."""
    order = generator.permutation(count) if shuffle else np.arange(count)
    for start in range(0, count, batch_size):
        yield order[start : start + batch_size]


def _train_step(model, loss_tracker):
    import tensorflow as tf

    def step(inputs, targets):
        with tf.GradientTape() as tape:
            predictions = model(inputs, training=True)
            loss = model.compute_loss(x=inputs, y=targets, y_pred=predictions, training=True)
        gradients = tape.gradient(loss, model.trainable_weights)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_weights))
        loss_tracker.update_state(loss, sample_weight=tf.shape(inputs)[0])
        return model.compute_metrics(inputs, targets, predictions)

    return step


def _test_step(model, loss_tracker):
    import tensorflow as tf

    def step(inputs, targets):
        predictions = model(inputs, training=False)
        loss = model.compute_loss(x=inputs, y=targets, y_pred=predictions, training=False)
        loss_tracker.update_state(loss, sample_weight=tf.shape(inputs)[0])
        return model.compute_metrics(inputs, targets, predictions)

    return step


def _compiled(model, step):
    """`step` as a TensorFlow graph function, unless the model was compiled to run eagerly (debugging)."""
    import tensorflow as tf

    if model.run_eagerly:
        return step
    return tf.function(step, reduce_retracing=True, jit_compile=bool(model.jit_compile))


def _loss_tracker(model):
    """The model's `loss` metric (a weighted Mean that compile creates), which fit reports as `loss`."""
    for metric in model.metrics:
        if metric.name == "loss":
            return metric
    raise ValueError("Received a model without a `loss` metric; expected a model compiled with a loss.")


def _floats(logs) -> dict[str, float]:
    return {name: float(value) for name, value in dict(logs).items()}
