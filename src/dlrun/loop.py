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

Batches: the trainer hands both loops the same `tf.data.Dataset` of seeded per-epoch batches
(`dlrun.batches.seeded`, order a function of (seed, epoch) only) with `steps_per_epoch`; given arrays,
this loop builds that dataset itself. So on the same seed both loops see the same batches, shuffled
or not, and their losses agree to float32 rounding (tests/test_loop.py).
"""

from __future__ import annotations

import itertools

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
    initial_epoch: int = 0,
    steps_per_epoch: int | None = None,
    seed: int = 0,
):
    """Train a compiled `model` like `model.fit(...)`; return its History.

    `x`, `y`: arrays (batched by `dlrun.batches.seeded` with `seed`, reshuffled every epoch when
    `shuffle`), or `x` alone: a `tf.data.Dataset` of `(inputs, targets)` batches, read for
    `steps_per_epoch` batches per epoch from one iterator (as `fit` does), or whole every epoch.
    """
    import keras
    import tensorflow as tf

    from dlrun import batches

    if y is not None:
        steps_per_epoch = batches.steps_per_epoch(len(x), batch_size)
        x = batches.seeded(x, y, batch_size, seed, initial_epoch, epochs, shuffle=shuffle)
    elif not isinstance(x, tf.data.Dataset):
        raise errors.ConfigError(
            f"train.loop: received 'custom' with training data of type {type(x).__name__}; expected arrays "
            "or a tf.data.Dataset of (inputs, targets) batches (or train.loop: fit)"
        )
    steps = steps_per_epoch or _known_length(x)
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=verbose != 0, verbose=verbose, epochs=epochs, steps=steps, model=model
    )
    loss_tracker = _loss_tracker(model)
    train_step = _compiled(model, _train_step(model, loss_tracker))
    test_step = _compiled(model, _test_step(model, loss_tracker))
    shared_iterator = iter(x) if steps_per_epoch else None

    model.stop_training = False
    callback_list.on_train_begin()
    epoch_logs = None
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        epoch_batches = itertools.islice(shared_iterator, steps_per_epoch) if shared_iterator else iter(x)
        logs = {}
        for step, (inputs, targets) in enumerate(epoch_batches):
            callback_list.on_train_batch_begin(step)
            logs = train_step(inputs, targets)
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        epoch_logs = _floats(logs)
        if validation_data is not None:
            validation_logs = evaluate(model, validation_data, batch_size=batch_size, callback_list=callback_list, step=test_step)
            epoch_logs.update({f"val_{name}": value for name, value in validation_logs.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    if epochs > initial_epoch:
        model.optimizer.finalize_variable_values(model.trainable_weights)  # as fit does (EMA weights)
    callback_list.on_train_end(logs=epoch_logs)
    return model.history


def evaluate(model, data, batch_size: int = 32, callback_list=None, step=None) -> dict[str, float]:
    """The compiled loss and metrics of `model` in inference mode, like `model.evaluate`.

    `data`: an `(inputs, targets)` pair of arrays, cut into consecutive batches of `batch_size`, or a
    `tf.data.Dataset` of such batches.
    """
    import keras
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        data_batches = data
    else:
        inputs, targets = (tf.convert_to_tensor(array) for array in data)
        data_batches = (
            (inputs[start : start + batch_size], targets[start : start + batch_size])
            for start in range(0, int(inputs.shape[0]), batch_size)
        )
    callback_list = callback_list or keras.callbacks.CallbackList(model=model)
    step = step or _compiled(model, _test_step(model, _loss_tracker(model)))
    model.reset_metrics()
    callback_list.on_test_begin()
    logs = {}
    for index, (batch_inputs, batch_targets) in enumerate(data_batches):
        callback_list.on_test_batch_begin(index)
        logs = step(batch_inputs, batch_targets)
        callback_list.on_test_batch_end(index, logs)
    logs = _floats(logs)
    callback_list.on_test_end(logs)
    return logs


def _known_length(dataset) -> int | None:
    """Batches per pass of a finite dataset, or None when TensorFlow cannot tell."""
    length = int(dataset.cardinality())
    return length if length >= 0 else None


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
