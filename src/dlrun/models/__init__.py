"""The architecture registry: `model.architecture` -> builder. Builders import Keras lazily."""

from __future__ import annotations

from dlrun import registry
from dlrun.models import convnet, inputs, mlp, pretrained

ARCHITECTURES = {
    "mlp": mlp.build,
    "convnet": convnet.build,
    "pretrained": pretrained.build,
}

# Architectures whose training is more than one fit of the built model on the loaded data.
PLANNERS = {
    "pretrained": pretrained.plan,
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


def plan(config, loaded_dataset, console):
    """The trainer's plan for `config` (dlrun.training_plan): what to fit, on what, in which phases."""
    from dlrun.training import plan as training_plan

    planner = PLANNERS.get(config.model.architecture)
    if planner is not None:
        return planner(config, loaded_dataset, console)
    return training_plan.single(build(config.model, loaded_dataset), loaded_dataset, config)


def load_model(path, compile: bool = True):
    """Load a model.keras that dlrun wrote, with dlrun's layers registered.

    Always in Keras' safe mode: a file holding a `Lambda` layer or any object that is not a registered
    Keras/dlrun class is refused (RunError, exit 2), never executed.
    """
    from dlrun import backend, errors

    keras = backend.import_keras()
    from dlrun.models import application_input, multi_hot  # noqa: F401  (registers ApplicationInput, MultiHot

    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # a damaged, foreign or unsafe file: say which, without a traceback
        text = str(error)
        if "Lambda" in text or "safe_mode" in text:
            reason = "it contains code (a Lambda layer), which dlrun never runs from a file"
        elif "Could not locate" in text or "Unknown" in text:
            reason = f"it needs a class this installation does not know ({text.splitlines()[0][:200]})"
        else:
            reason = f"{type(error).__name__}: {text.splitlines()[0][:300] if text else ''}"
        raise errors.RunError(f"{path}: refused to load: {reason}") from None
