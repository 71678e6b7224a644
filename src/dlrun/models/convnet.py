"""The `convnet` architecture: Conv2D blocks, then Dense layers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlrun.config import architectures

from dlrun import backend, errors
from dlrun.models import head

_POOLING = {"max": "MaxPooling2D", "average": "AveragePooling2D"}
_REDUCE = {"flatten": "Flatten", "global_average": "GlobalAveragePooling2D", "global_max": "GlobalMaxPooling2D"}


def build(config: architectures.ConvnetModel, stem: list, input_shape: tuple[int, ...], task: str, num_classes: int | None) -> Any:
    """Conv2D blocks with pooling (filters list, kernel, padding), flatten or global pool, Dense head."""
    keras = backend.import_keras()

    if len(input_shape) != 3:
        raise errors.ConfigError(
            f"model.architecture: received 'convnet' for inputs of shape {list(input_shape)}; "
            "expected images of shape [height, width, channels] (or use architecture: mlp)"
        )
    penalty = head.regularizer(keras, config.l1, config.l2)
    layers = list(stem)
    for index, filters in enumerate(config.filters, start=1):
        layers.append(
            keras.layers.Conv2D(
                filters,
                config.kernel_size,
                padding=config.padding,
                activation=config.activation,
                kernel_regularizer=penalty,
                name=f"conv_{index}",
            )
        )
        is_last = index == len(config.filters)
        if config.pooling != "none" and (config.pool_last or not is_last):
            layers.append(getattr(keras.layers, _POOLING[config.pooling])(config.pool_size, name=f"pool_{index}"))
    layers.append(getattr(keras.layers, _REDUCE[config.reduce])(name="reduce"))
    if config.dropout:
        layers.append(keras.layers.Dropout(config.dropout, name="dropout"))
    for index, units in enumerate(config.dense_units, start=1):
        layers.append(keras.layers.Dense(units, activation=config.activation, kernel_regularizer=penalty, name=f"dense_{index}"))
    layers.append(head.output_layer(keras, config.head, task, num_classes))
    try:
        return keras.Sequential(layers, name="convnet")
    except ValueError as error:
        raise errors.ConfigError(
            f"model: the conv blocks do not fit inputs of shape {list(input_shape)} ({error}); "
            "expected fewer blocks, padding: same, or a smaller kernel_size/pool_size"
        ) from None
