"""The architecture registry: `model.architecture` -> builder. Builders import Keras lazily."""

from __future__ import annotations

from dlrun import registry
from dlrun.models import convnet, mlp

ARCHITECTURES = {
    "mlp": mlp.build,
    "convnet": convnet.build,
}


def build(model_config, loaded_dataset):
    """The Keras model a `model` section describes, shaped for `loaded_dataset`."""
    builder = registry.lookup(ARCHITECTURES, model_config.architecture, "architecture")
    return builder(model_config, loaded_dataset.input_shape, loaded_dataset.task, loaded_dataset.num_classes)
