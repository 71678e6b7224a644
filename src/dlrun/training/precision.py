"""Numeric precision (`train.precision`): Keras' global dtype policy, set before the model is built.

`mixed_float16` and `mixed_bfloat16` make layers compute in 16 bits while their variables stay float32;
dlrun's output layer (`dlrun.models.head.output_layer`) is always float32, so the softmax or sigmoid and
the loss see float32 values. Keras itself wraps the optimizer in a `LossScaleOptimizer` when the model's
policy is `mixed_float16` (float16's narrow range would flush small gradients to zero); bfloat16 has
float32's range and needs none. Keras' policy is global to the process: `Training` sets it only while it
builds and compiles the model, so nothing built afterwards (another run's model in the same process, a
loaded model) inherits it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dlrun import backend

if TYPE_CHECKING:
    from rich.console import Console

    from dlrun.config import schema

POLICIES = {
    "float32": "float32 everywhere (the default)",
    "mixed_float16": "float16 compute, float32 variables, loss scaling: GPUs with float16 units",
    "mixed_bfloat16": "bfloat16 compute, float32 variables: TPUs, recent GPUs and CPUs with bfloat16 units",
}


@contextlib.contextmanager
def policy(config: schema.Config, console: Console | None = None) -> Iterator[None]:
    """Build the model inside this: Keras' global dtype policy is `train.precision` within, and what it was
    before afterwards (each layer keeps the policy it was built with). Warns on a machine where float16
    compute brings no speed."""
    keras = backend.import_keras()
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.train.precision)
    if config.train.precision == "mixed_float16" and console is not None and not accelerated():
        console.print(
            "[yellow]warning[/yellow]: train.precision: mixed_float16 on a machine without a GPU: CPUs have no "
            "fast float16 arithmetic, so it trains no faster than float32 and may be slower (mixed_bfloat16 or "
            "float32 suit CPUs)",
            highlight=False,
            soft_wrap=True,
        )
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def accelerated() -> bool:
    """Whether the active backend sees a GPU or TPU."""
    name = backend.loaded()
    if name == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if name == "torch":
        import torch

        return bool(torch.cuda.is_available())
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def record(model: Any) -> dict:
    """What run.json says about the compiled model's numerics: the policy, its compute and variable dtypes,
    the output layer's compute dtype and whether the loss is scaled."""
    keras = backend.import_keras()
    policy = model.dtype_policy
    output = model.layers[-1] if model.layers else model
    return {
        "policy": policy.name,
        "compute_dtype": policy.compute_dtype,
        "variable_dtype": policy.variable_dtype,
        "output_dtype": output.compute_dtype,
        "loss_scaling": isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer),
    }
