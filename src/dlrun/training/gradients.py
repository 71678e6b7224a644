"""Gradients on whichever backend Keras runs: of a scalar with respect to a tensor, and training steps.

Keras 3 has no backend-neutral `GradientTape`, so each backend gets its own small helper, registered
by backend name (the keys of `dlrun.backend.BACKENDS`):

- `value_and_gradient(function, value)`: `function(value)` and the gradient of its scalar with
  respect to `value` (Grad-CAM's class score with respect to a layer's feature maps, through a zero
  offset added to them; filter patterns' activation with respect to the input image). TensorFlow:
  `tf.GradientTape`; JAX: `jax.value_and_grad`; PyTorch: `torch.autograd.grad`.
- `training_steps(model)`: the custom loop's (`dlrun.training.loop`) train and test steps. TensorFlow: the
  model's variables updated in place under a `tf.GradientTape`, as graph functions; JAX: the
  stateless pattern of the Keras guide "Writing a training loop from scratch in JAX" (the model
  called in a `keras.StatelessScope`, as `model.stateless_call` does; `optimizer.stateless_apply`;
  `jax.value_and_grad(has_aux=True)`; jitted),
  the state threaded from step to step and written back to the variables by `end_epoch`; PyTorch:
  `loss.backward()` and `optimizer.apply` under `torch.no_grad()`, as Keras' own torch `train_step`.

Imports nothing heavy at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlrun import backend

Logs = dict[str, Any]  # metric name -> its value (a backend scalar), as a step returns them


def value_and_gradient(function: Callable[..., Any], value: Any, has_aux: bool = False) -> tuple[Any, Any]:
    """`(function(value), gradient)` on the running backend, as backend tensors.

    `function` maps a backend tensor to a scalar tensor (with `has_aux`: to `(scalar, aux)`, and the
    whole pair comes back). The gradient has `value`'s shape; it is None on TensorFlow and PyTorch
    when the scalar does not depend on `value` (JAX gives zeros).
    """
    keras = backend.import_keras()

    return VALUE_AND_GRADIENT[keras.backend.backend()](function, value, has_aux)


def _tensorflow_value_and_gradient(function: Callable[..., Any], value: Any, has_aux: bool) -> tuple[Any, Any]:
    import tensorflow as tf

    value = tf.convert_to_tensor(value)
    with tf.GradientTape() as tape:
        tape.watch(value)
        result = function(value)
    return result, tape.gradient(result[0] if has_aux else result, value)


def _jax_value_and_gradient(function: Callable[..., Any], value: Any, has_aux: bool) -> tuple[Any, Any]:
    import jax
    import jax.numpy as jnp

    return jax.value_and_grad(function, has_aux=has_aux)(jnp.asarray(value))


def _torch_value_and_gradient(function: Callable[..., Any], value: Any, has_aux: bool) -> tuple[Any, Any]:
    keras = backend.import_keras()
    import torch

    value = keras.ops.convert_to_tensor(value).detach().requires_grad_(True)
    with torch.enable_grad():
        result = function(value)
        scalar = result[0] if has_aux else result
        (gradient,) = torch.autograd.grad(scalar, value, allow_unused=True)
    detached = keras.tree.map_structure(lambda tensor: tensor.detach() if torch.is_tensor(tensor) else tensor, result)
    return detached, gradient


# The registry: backend name -> value_and_gradient for it (keys equal dlrun.backend.BACKENDS's).
VALUE_AND_GRADIENT = {
    "tensorflow": _tensorflow_value_and_gradient,
    "jax": _jax_value_and_gradient,
    "torch": _torch_value_and_gradient,
}


def training_steps(model: Any) -> TensorFlowSteps | JaxSteps | TorchSteps:
    """The custom loop's steps for the compiled `model` on the running backend (see `TensorFlowSteps`)."""
    keras = backend.import_keras()

    return TRAINING_STEPS[keras.backend.backend()](model)


class _InPlaceSteps:
    """Steps that update the model's variables in place (TensorFlow, PyTorch): `begin_epoch` and
    `end_epoch`, which bracket each epoch or evaluation, have nothing to sync."""

    def begin_epoch(self) -> None:
        pass

    def end_epoch(self) -> None:
        pass


class TensorFlowSteps(_InPlaceSteps):
    """Train and test steps that update the model's variables in place (graph functions unless
    `run_eagerly`). `train(inputs, targets)` and `test(...)` return the step's logs (the model's
    metrics so far, loss included); `begin_epoch`/`end_epoch` bracket each epoch or evaluation (on
    TensorFlow there is nothing to do: the variables are always current)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.loss_tracker = loss_tracker(model)
        self.train = self._compiled(self._train_step)
        self.test = self._compiled(self._test_step)

    def _train_step(self, inputs: Any, targets: Any) -> Logs:
        import tensorflow as tf

        model = self.model
        with tf.GradientTape() as tape:
            predictions = model(inputs, training=True)
            loss = model.compute_loss(x=inputs, y=targets, y_pred=predictions, training=True)
        gradients = tape.gradient(loss, model.trainable_weights)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_weights))
        self.loss_tracker.update_state(loss, sample_weight=tf.shape(inputs)[0])
        return model.compute_metrics(inputs, targets, predictions)

    def _test_step(self, inputs: Any, targets: Any) -> Logs:
        import tensorflow as tf

        model = self.model
        predictions = model(inputs, training=False)
        loss = model.compute_loss(x=inputs, y=targets, y_pred=predictions, training=False)
        self.loss_tracker.update_state(loss, sample_weight=tf.shape(inputs)[0])
        return model.compute_metrics(inputs, targets, predictions)

    def _compiled(self, step: Callable[[Any, Any], Logs]) -> Callable[[Any, Any], Logs]:
        """`step` as a TensorFlow graph function, unless the model was compiled to run eagerly (debugging)."""
        import tensorflow as tf

        if self.model.run_eagerly:
            return step
        return tf.function(step, reduce_retracing=True, jit_compile=bool(self.model.jit_compile))


class JaxSteps:
    """Pure train and test steps over the model's state (trainable, non-trainable, optimizer and metrics
    values), jitted unless `run_eagerly`. The state is read from the variables at the first step after
    `begin_epoch` (so what callbacks changed between epochs, a learning rate or restored weights, is
    picked up) and written back by `end_epoch` (so checkpoints, early stopping and evaluation see it).
    Loss and metrics as in Keras' own JAX `fit`: the compiled loss plus `model.losses`, the loss
    tracker weighted by batch size, the compiled metrics via `compute_metrics` in a stateless scope."""

    def __init__(self, model: Any) -> None:
        import jax

        self.model = model
        self.loss_tracker = loss_tracker(model)
        self.state: tuple[list[Any], ...] | None = None  # (trainable, non-trainable, optimizer, metrics) values
        self._train_step = self._pure_train_step if model.run_eagerly else jax.jit(self._pure_train_step)
        self._test_step = self._pure_test_step if model.run_eagerly else jax.jit(self._pure_test_step)

    def begin_epoch(self) -> None:
        self.state = None

    def end_epoch(self) -> None:
        if self.state is None:
            return
        for variables, values in zip(self._variables(), self.state):
            for variable, value in zip(variables, values):
                variable.assign(value)

    def train(self, inputs: Any, targets: Any) -> Logs:
        inputs, targets, state = self._ready(inputs, targets)
        logs, self.state = self._train_step(state, inputs, targets)
        return logs

    def test(self, inputs: Any, targets: Any) -> Logs:
        inputs, targets, state = self._ready(inputs, targets)
        trainable, non_trainable, optimizer_values, metrics_values = state
        logs, metrics_values = self._test_step((trainable, non_trainable, metrics_values), inputs, targets)
        self.state = (trainable, non_trainable, optimizer_values, metrics_values)
        return logs

    def _ready(self, inputs: Any, targets: Any) -> tuple[Any, Any, tuple[list[Any], ...]]:
        """The batch as NumPy arrays (a tf.data batch comes as TensorFlow tensors); the state, read once."""
        keras = backend.import_keras()
        import numpy as np

        inputs, targets = keras.tree.map_structure(np.asarray, (inputs, targets))
        if self.state is None:
            _build(self.model, inputs, targets)
            self.state = tuple([variable.value for variable in variables] for variables in self._variables())
        return inputs, targets, self.state

    def _variables(self) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        model = self.model
        return (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables, model.metrics_variables)

    def _loss_and_updates(
        self, trainable: list[Any], non_trainable: list[Any], metrics_values: list[Any], inputs: Any, targets: Any, training: bool
    ) -> tuple[Any, tuple[Any, list[Any], list[Any]]]:
        """The loss (compiled loss + `model.losses`) and, as aux, the predictions and updated states.

        `model.stateless_call` and `model.stateless_compute_loss` in one stateless scope: the forward
        pass's own losses (activity regularisers) and the weight penalties (read from `trainable`)
        are both in `model.losses` there, as in Keras' JAX `fit` (which overrides `model.losses`).
        """
        keras = backend.import_keras()

        model = self.model
        mapping = [
            *zip(model.trainable_variables, trainable),
            *zip(model.non_trainable_variables, non_trainable),
            *zip(model.metrics_variables, metrics_values),
        ]
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
            predictions = model(inputs, training=training)
            loss = model.compute_loss(x=inputs, y=targets, y_pred=predictions, training=training)
        non_trainable = [scope.get_current_value(variable) for variable in model.non_trainable_variables]
        metrics_values = [scope.get_current_value(variable) for variable in model.metrics_variables]
        return loss, (predictions, non_trainable, metrics_values)

    def _pure_train_step(self, state: tuple[list[Any], ...], inputs: Any, targets: Any) -> tuple[Logs, tuple[list[Any], ...]]:
        import jax

        trainable, non_trainable, optimizer_values, metrics_values = state
        gradient_function = jax.value_and_grad(self._loss_and_updates, has_aux=True)
        (loss, (predictions, non_trainable, metrics_values)), gradients = gradient_function(
            trainable, non_trainable, metrics_values, inputs, targets, True
        )
        trainable, optimizer_values = self.model.optimizer.stateless_apply(optimizer_values, gradients, trainable)
        logs, metrics_values = self._metrics(metrics_values, loss, inputs, targets, predictions)
        return logs, (trainable, non_trainable, optimizer_values, metrics_values)

    def _pure_test_step(self, state: tuple[list[Any], ...], inputs: Any, targets: Any) -> tuple[Logs, list[Any]]:
        trainable, non_trainable, metrics_values = state
        loss, (predictions, non_trainable, metrics_values) = self._loss_and_updates(
            trainable, non_trainable, metrics_values, inputs, targets, False
        )
        return self._metrics(metrics_values, loss, inputs, targets, predictions)

    def _metrics(self, metrics_values: list[Any], loss: Any, inputs: Any, targets: Any, predictions: Any) -> tuple[Logs, list[Any]]:
        """Update the loss tracker and compiled metrics statelessly; return (logs, new metrics values)."""
        keras = backend.import_keras()

        model = self.model
        with keras.StatelessScope(state_mapping=list(zip(model.metrics_variables, metrics_values))) as scope:
            self.loss_tracker.update_state(loss, sample_weight=keras.ops.shape(inputs)[0])
            logs = model.compute_metrics(inputs, targets, predictions)
        return logs, [scope.get_current_value(variable) for variable in model.metrics_variables]


class TorchSteps(_InPlaceSteps):
    """Train and test steps on PyTorch, as Keras' own torch `train_step` (and the Keras guide "Writing
    a training loop from scratch in PyTorch"): `loss.backward()` fills each weight's `.grad`, the
    optimizer applies them under `torch.no_grad()`. Stateful, like TensorFlow's: nothing to sync."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.loss_tracker = loss_tracker(model)

    def train(self, inputs: Any, targets: Any) -> Logs:
        keras = backend.import_keras()
        import torch

        model = self.model
        model.zero_grad()
        predictions = model(inputs, training=True)
        loss = model.compute_loss(x=inputs, y=targets, y_pred=predictions, training=True)
        loss.backward()
        weights = model.trainable_weights
        with torch.no_grad():
            model.optimizer.apply([weight.value.grad for weight in weights], weights)
        self.loss_tracker.update_state(loss.detach(), sample_weight=keras.ops.shape(inputs)[0])
        return model.compute_metrics(inputs, targets, predictions.detach())

    def test(self, inputs: Any, targets: Any) -> Logs:
        keras = backend.import_keras()
        import torch

        model = self.model
        with torch.no_grad():
            predictions = model(inputs, training=False)
            loss = model.compute_loss(x=inputs, y=targets, y_pred=predictions, training=False)
            self.loss_tracker.update_state(loss, sample_weight=keras.ops.shape(inputs)[0])
            return model.compute_metrics(inputs, targets, predictions)


def _build(model: Any, inputs: Any, targets: Any) -> None:
    """Create the optimizer's and the compiled loss's and metrics' variables, which a pure step cannot
    (Keras' fit builds them from the first batch too); leaves the metrics reset."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    predictions = model(inputs, training=False)  # inference mode: no dropout mask drawn
    model.compute_loss(x=inputs, y=targets, y_pred=predictions, training=False)
    model.compute_metrics(inputs, targets, predictions)
    model.reset_metrics()


# The registry: backend name -> the custom loop's steps on it (keys equal dlrun.backend.BACKENDS's).
TRAINING_STEPS: dict[str, type[TensorFlowSteps | JaxSteps | TorchSteps]] = {
    "tensorflow": TensorFlowSteps,
    "jax": JaxSteps,
    "torch": TorchSteps,
}


def loss_tracker(model: Any) -> Any:
    """The model's `loss` metric (a weighted Mean that compile creates), which fit reports as `loss`."""
    for metric in model.metrics:
        if metric.name == "loss":
            return metric
    raise ValueError("Received a model without a `loss` metric; expected a model compiled with a loss.")
