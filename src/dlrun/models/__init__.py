"""The architecture registry: `model.architecture` -> builder. Builders import Keras lazily."""

from __future__ import annotations

from dlrun import registry
from dlrun.models import convnet, inputs, mlp

ARCHITECTURES = {
    "mlp": mlp.build,
    "convnet": convnet.build,
}


def build(model_config, loaded_dataset, train_inputs=None):
    """The Keras model a `model` section describes, shaped for `loaded_dataset`.

    `train_inputs` (default: the dataset's training inputs) is what input normalisation is adapted
    on; K-fold passes each fold's training part.
    """
    from dlrun import backend

    builder = registry.lookup(ARCHITECTURES, model_config.architecture, "architecture")
    keras = backend.import_keras()
    layers = inputs.stem(keras, loaded_dataset, train_inputs)
    return builder(model_config, layers, inputs.feature_shape(loaded_dataset), loaded_dataset.task, loaded_dataset.num_classes)
