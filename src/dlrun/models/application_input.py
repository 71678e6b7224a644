"""The input layer of a keras.applications base: scale images to 0..255, then the application's own
`preprocess_input` (VGG16: RGB->BGR and ImageNet mean subtraction; MobileNet: -1..1; ...).

A registered Keras layer (not a Lambda), so `model.keras` loads with `safe_mode=True`. Imports Keras
at module level: import it lazily (dlrun.models.load does before loading a saved model).
"""

from __future__ import annotations

import importlib
from typing import Any

from dlrun import backend
from dlrun.models import applications

keras: Any = backend.import_keras()  # quietly, on the chosen backend, whoever imports this module first


@keras.saving.register_keras_serializable(package="dlrun")
class ApplicationInput(keras.layers.Layer):
    """`preprocess_input(inputs * scale)` of the keras.applications model named `application`."""

    def __init__(self, application: str, scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.application = application
        self.scale = float(scale)
        module_name, _ = applications.APPLICATIONS[application]
        self._preprocess = importlib.import_module(f"keras.applications.{module_name}").preprocess_input

    def call(self, inputs: Any) -> Any:
        inputs = keras.ops.cast(inputs, "float32")
        if self.scale != 1.0:
            inputs = inputs * self.scale
        return self._preprocess(inputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "application": self.application, "scale": self.scale}
