"""An explicit training loop (`train.loop: custom`): mini-batches, gradients, the optimizer.

It is the classic hand-written training loop, the one `model.fit` hides: for every epoch, shuffle and
cut the training data into mini-batches; for every batch, run the model forward (`training=True`, so
dropout is active), compute the loss, take its gradients and let the optimizer apply them. The step
itself is the backend's (`dlrun.training.gradients.training_steps`): a `tf.GradientTape` on TensorFlow, the
stateless `jax.value_and_grad` pattern on JAX. It is called like `model.fit` and does what `fit` does
around that core, so the rest of dlrun cannot tell the two apart:

- the loss is the compiled loss plus `model.losses` (L1/L2 penalties), via `model.compute_loss`, as
  in Keras' `train_step`; the reported `loss` is the model's own loss tracker (a batch-size weighted
  mean over the epoch), and the compiled metrics come from `model.compute_metrics`;
- every callback is driven through `keras.callbacks.CallbackList` with the same hooks, order and
  logs (`val_` prefixed validation results), and `model.stop_training` ends the run after the batch
  or epoch that set it: early stopping, checkpoints, reduce-LR, dlrun's recorder and progress work.
  On JAX the weights reach the model's variables at the end of every epoch (before validation and
  `on_epoch_end`), as with Keras' own JAX `fit`.

Batches: the trainer hands both loops the same seeded per-epoch batches (`dlrun.training.batches.seeded`,
order a function of (seed, epoch) only: a `tf.data.Dataset` on TensorFlow, a generator of NumPy
batches on the other backends) with `steps_per_epoch`; given arrays, this loop builds them itself.
So on the same seed both loops see the same batches, shuffled or not, and their losses agree to
float32 rounding (tests/test_loop.py, tests/test_loop_backends.py).
"""

from __future__ import annotations

import itertools
import sys
from typing import TYPE_CHECKING, Any

from dlrun import backend, errors

if TYPE_CHECKING:
    from dlrun.training import gradients


def fit(
    model: Any,
    x: Any,
    y: Any = None,
    batch_size: int = 32,
    epochs: int = 1,
    validation_data: Any = None,
    shuffle: bool = True,
    callbacks: list[Any] | None = None,
    verbose: int = 0,
    initial_epoch: int = 0,
    steps_per_epoch: int | None = None,
    seed: int = 0,
) -> Any:
    """Train a compiled `model` like `model.fit(...)`; return its History.

    `x`, `y`: arrays (batched by `dlrun.training.batches.seeded` with `seed`, reshuffled every epoch when
    `shuffle`), or `x` alone: a `tf.data.Dataset` of `(inputs, targets)` batches, or an iterator of
    them (a generator) with `steps_per_epoch`, read for `steps_per_epoch` batches per epoch from one
    iterator (as `fit` does), or (a dataset without `steps_per_epoch`) whole every epoch.
    """
    keras = backend.import_keras()

    from dlrun.training import batches, gradients

    if y is not None:
        steps_per_epoch = batches.steps_per_epoch(len(x), batch_size)
        x = batches.seeded(x, y, batch_size, seed, initial_epoch, epochs, shuffle=shuffle)
    elif not (_is_dataset(x) or (steps_per_epoch and hasattr(x, "__next__"))):
        raise errors.ConfigError(
            f"train.loop: received 'custom' with training data of type {type(x).__name__}; expected arrays "
            "or a tf.data.Dataset of (inputs, targets) batches, or an iterator of them with steps_per_epoch "
            "(or train.loop: fit)"
        )
    steps = steps_per_epoch or _known_length(x)
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=verbose != 0, verbose=verbose, epochs=epochs, steps=steps, model=model
    )
    training = gradients.training_steps(model)
    shared_iterator = iter(x) if steps_per_epoch else None

    model.stop_training = False
    callback_list.on_train_begin()
    epoch_logs = None
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        epoch_batches = itertools.islice(shared_iterator, steps_per_epoch) if shared_iterator else iter(x)
        logs = {}
        training.begin_epoch()
        for step, (inputs, targets) in enumerate(epoch_batches):
            callback_list.on_train_batch_begin(step)
            logs = training.train(inputs, targets)
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        training.end_epoch()
        epoch_logs = _floats(logs)
        if validation_data is not None:
            validation_logs = evaluate(model, validation_data, batch_size=batch_size, callback_list=callback_list, steps=training)
            epoch_logs.update({f"val_{name}": value for name, value in validation_logs.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    if epochs > initial_epoch:
        model.optimizer.finalize_variable_values(model.trainable_weights)  # as fit does (EMA weights)
    callback_list.on_train_end(logs=epoch_logs)
    return model.history


def evaluate(
    model: Any,
    data: Any,
    batch_size: int = 32,
    callback_list: Any = None,
    steps: gradients.TensorFlowSteps | gradients.JaxSteps | gradients.TorchSteps | None = None,
) -> dict[str, float]:
    """The compiled loss and metrics of `model` in inference mode, like `model.evaluate`.

    `data`: an `(inputs, targets)` pair of arrays, cut into consecutive batches of `batch_size`, or a
    `tf.data.Dataset` of such batches. `steps`: the `dlrun.training.gradients.training_steps` to use (a new
    one by default).
    """
    keras = backend.import_keras()

    from dlrun.training import gradients

    if _is_dataset(data):
        data_batches = data
    else:
        inputs, targets = data
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            inputs, targets = tf.convert_to_tensor(inputs), tf.convert_to_tensor(targets)
        data_batches = (
            (inputs[start : start + batch_size], targets[start : start + batch_size])
            for start in range(0, int(inputs.shape[0]), batch_size)
        )
    callback_list = callback_list or keras.callbacks.CallbackList(model=model)
    steps = steps or gradients.training_steps(model)
    model.reset_metrics()
    callback_list.on_test_begin()
    logs = {}
    steps.begin_epoch()
    for index, (batch_inputs, batch_targets) in enumerate(data_batches):
        callback_list.on_test_batch_begin(index)
        logs = steps.test(batch_inputs, batch_targets)
        callback_list.on_test_batch_end(index, logs)
    steps.end_epoch()
    logs = _floats(logs)
    callback_list.on_test_end(logs)
    return logs


def _is_dataset(data: Any) -> bool:
    """Whether `data` is a `tf.data.Dataset` (without importing TensorFlow when nothing else has)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)


def _known_length(dataset: Any) -> int | None:
    """Batches per pass of a finite dataset, or None when TensorFlow cannot tell."""
    length = int(dataset.cardinality())
    return length if length >= 0 else None


def _floats(logs: dict) -> dict[str, float]:
    return {name: float(value) for name, value in dict(logs).items()}
