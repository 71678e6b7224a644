"""Models: the architecture registry (`model.architecture` -> builder, built in or a plug-in's:
`dlrun.plugins`) and `build`; `load_model` reads a saved model.keras (`dlrun.models.saved`). Builders
import Keras lazily. Models only build: planning how to train them (phases, the feature cache) lives in
`dlrun.training.plan`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlrun.data import dataset

from dlrun import plugins, registry
from dlrun.models import convnet, inputs, mlp, pretrained
from dlrun.models.saved import load_model  # noqa: F401  (re-exported: models.load_model)

ARCHITECTURES: dict[str, Callable[..., Any]] = {
    "mlp": mlp.build,
    "convnet": convnet.build,
    "pretrained": pretrained.build,
}


def build(model_config: Any, loaded_dataset: dataset.Dataset, train_inputs: Any = None) -> Any:
    """The Keras model a `model` section describes, shaped for `loaded_dataset`.

    `train_inputs` (default: the dataset's training inputs) is what input normalisation is adapted
    on; K-fold passes each fold's training part.
    """
    from dlrun import backend

    name = model_config.architecture
    if name not in ARCHITECTURES and name in plugins.available("architectures"):
        builder = plugins.load("architectures", name, ARCHITECTURES).worker
    else:
        builder = registry.lookup(ARCHITECTURES, name, "architecture")
    keras = backend.import_keras()
    layers = inputs.stem(keras, loaded_dataset, train_inputs)
    return builder(model_config, layers, inputs.feature_shape(loaded_dataset), loaded_dataset.task, loaded_dataset.num_classes)
