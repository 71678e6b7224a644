"""The `mlp` architecture: a stack of Dense layers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlrun.config import architectures

from dlrun import backend
from dlrun.models import head


def build(config: architectures.MLPModel, stem: list, input_shape: tuple[int, ...], task: str, num_classes: int | None) -> Any:
    """Dense layers (units list, activation, dropout, L1/L2, initializers), inputs flattened first."""
    keras = backend.import_keras()

    penalty = head.regularizer(keras, config.l1, config.l2)
    layers = list(stem)
    if len(input_shape) > 1:
        layers.append(keras.layers.Flatten(name="flatten"))
    for index, units in enumerate(config.units, start=1):
        layers.append(
            keras.layers.Dense(
                units,
                activation=config.activation,
                kernel_regularizer=penalty,
                kernel_initializer=config.kernel_initializer,
                bias_initializer=config.bias_initializer,
                name=f"dense_{index}",
            )
        )
        if config.dropout:
            layers.append(keras.layers.Dropout(config.dropout, name=f"dropout_{index}"))
    layers.append(
        head.output_layer(
            keras,
            config.head,
            task,
            num_classes,
            kernel_initializer=config.kernel_initializer,
            bias_initializer=config.bias_initializer,
        )
    )
    return keras.Sequential(layers, name="mlp")
