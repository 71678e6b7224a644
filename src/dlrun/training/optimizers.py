"""The optimizer registry: config name -> Keras optimizer class name and description."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlrun import backend, registry

if TYPE_CHECKING:
    from dlrun.config import schema

OPTIMIZERS = {
    "rmsprop": "RMSprop: dlrun's default optimizer (learning_rate, rho, momentum, epsilon)",
    "adam": "Adam (learning_rate, beta_1, beta_2, epsilon, amsgrad)",
    "sgd": "SGD with optional (Nesterov) momentum (learning_rate, momentum, nesterov)",
}
_KERAS_CLASSES = {"rmsprop": "RMSprop", "adam": "Adam", "sgd": "SGD"}


def get(optimizer_config: schema.OptimizerConfig) -> Any:
    """Build the Keras optimizer a `compile.optimizer` section describes."""
    keras = backend.import_keras()

    registry.lookup(OPTIMIZERS, optimizer_config.name, "optimizer")
    params = optimizer_config.model_dump(exclude={"name"})
    return getattr(keras.optimizers, _KERAS_CLASSES[optimizer_config.name])(**params)
