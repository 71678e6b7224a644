"""The output layer a task needs, unless the config says otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlrun.config import architectures

AUTO_ACTIVATIONS = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}


def resolve(head_config: architectures.Head, task: str, num_classes: int | None) -> tuple[int, str]:
    """(units, activation) of the output layer: configured values win, the task fills the rest."""
    default_units = num_classes if task == "multiclass" else 1
    units = head_config.units or default_units
    if units is None:
        raise ValueError("Received num_classes None for a multiclass head; expected the class count (or head.units)")
    activation = head_config.activation or AUTO_ACTIVATIONS[task]
    return units, activation


def output_layer(keras: Any, head_config: architectures.Head, task: str, num_classes: int | None, **initializers: Any) -> Any:
    """The Dense output layer, named `output`; `initializers`: kernel_/bias_initializer (Keras' defaults).

    Always float32, whatever `train.precision` (the Keras mixed-precision guide's advice): the activation
    and the loss then see float32 values, where float16 would round probabilities and overflow logits.
    """
    units, activation = resolve(head_config, task, num_classes)
    return keras.layers.Dense(units, activation=activation, name="output", dtype="float32", **initializers)


def regularizer(keras: Any, l1: float, l2: float) -> Any:
    """An L1/L2 kernel penalty, or None when both are zero."""
    return keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
