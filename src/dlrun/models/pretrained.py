"""The `pretrained` architecture: transfer learning from a keras.applications base or a previous run's model.

The base is frozen under a new head (reduce, Dense layers with dropout, the task's output layer).
Two modes (planned by `dlrun.training.plan`): `features` runs the base once over every split, caches
its outputs (`dlrun.training.feature_cache`) and trains only the head on them; `end_to_end` trains
base + head on the images (so the stem's augmentation applies), optionally followed by a fine-tuning
phase with the top of the base unfrozen. This module only builds the parts.

Input scaling: application bases get the application's own `preprocess_input` on 0..255 images in
place of the stem's `rescale` layer. With `Dataset.rescale` set, the inputs arrive as 0..1/rescale
(0..255 for 1/255) and are scaled by 255 * rescale (1: left as they are); without it the inputs are
taken to be images in [0, 1] and are multiplied by 255. A run-model base already holds its own
preprocessing, so the stem's rescale, normalisation and multi-hot layers are left out before it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlrun.config import architectures

import dataclasses
import os
import re
from pathlib import Path

from dlrun import backend, errors
from dlrun.models import head
from dlrun.models.applications import APPLICATIONS

_REDUCE = {"flatten": "Flatten", "global_average": "GlobalAveragePooling2D", "global_max": "GlobalMaxPooling2D"}
_OWN_PREPROCESSING = ("multi_hot", "rescale", "normalize")  # stem layers a run-model base already holds


@dataclasses.dataclass
class Parts:
    """The pieces of a pretrained model; `model` (images -> prediction) shares its layers with the others."""

    base: Any  # the frozen base (a Keras model)
    extractor: Any  # images -> base output (stem, preprocessing, base): what features mode runs once
    head: Any  # base output -> prediction: what features mode trains
    model: Any  # the whole model: what end_to_end trains and every run saves


def build(config: architectures.PretrainedModel, stem: list, input_shape: tuple[int, ...], task: str, num_classes: int | None) -> Any:
    """A frozen keras.applications base (or a run's model) under a new Dense head, images in, prediction out."""
    return parts(config, stem, input_shape, task, num_classes).model


def parts(config: architectures.PretrainedModel, stem: list, input_shape: tuple[int, ...], task: str, num_classes: int | None) -> Parts:
    """Build base, extractor, head and whole model for the `model` section `config`."""
    keras = backend.import_keras()

    inputs, *layers = stem
    if is_run_model(config.base):
        kept = [layer for layer in layers if layer.name not in _OWN_PREPROCESSING]
        preprocessing = []
        base = _run_base(keras, config, input_shape)
    else:
        from dlrun.models import application_input

        rescale = next((layer for layer in layers if layer.name == "rescale"), None)
        kept = [layer for layer in layers if layer is not rescale]
        scale = input_scale(None if rescale is None else float(rescale.scale))
        preprocessing = [application_input.ApplicationInput(config.base, scale, name="application_input")]
        base = _application_base(keras, config, input_shape)
    base.trainable = False
    tensor = inputs
    for layer in [*kept, *preprocessing]:
        tensor = layer(tensor)
    features = base(tensor, training=False)  # inference mode even when unfrozen (batch norm keeps its statistics)
    head_model = _head(keras, config, tuple(features.shape[1:]), task, num_classes)
    return Parts(
        base=base,
        extractor=keras.Model(inputs, features, name="extractor"),
        head=head_model,
        model=keras.Model(inputs, head_model(features), name="pretrained"),
    )


def input_scale(rescale: float | None) -> float:
    """What maps the inputs to the 0..255 range preprocess_input expects (see the module docstring)."""
    scale = 255.0 * (1.0 if rescale is None else rescale)
    return 1.0 if abs(scale - 1.0) < 1e-6 else scale


def is_run_model(base: str) -> bool:
    return base.endswith(".keras")


def layers_to_unfreeze(base: Any, fine_tune: architectures.FineTune) -> list:
    """The base layers fine-tuning trains: the last `top_layers`, and those named by `unfreeze` prefixes."""
    layers = [layer for layer in base.layers if type(layer).__name__ != "InputLayer"]
    names = [layer.name for layer in layers]
    if fine_tune.top_layers > len(layers):
        raise errors.ConfigError(
            f"model.fine_tune.top_layers: received {fine_tune.top_layers}; expected at most {len(layers)} "
            f"(the base has {len(layers)} layers)"
        )
    chosen = layers[len(layers) - fine_tune.top_layers :] if fine_tune.top_layers else []
    for prefix in fine_tune.unfreeze:
        matched = [layer for layer in layers if layer.name.startswith(prefix)]
        if not matched:
            raise errors.ConfigError(
                f"model.fine_tune.unfreeze: received {prefix!r}; expected the start of a layer name of the base ({', '.join(names)})"
            )
        chosen.extend(matched)
    unique = {id(layer): layer for layer in chosen}
    return [layer for layer in layers if id(layer) in unique]


def unfreeze(base: Any, chosen: list) -> str:
    """Make exactly the `chosen` layers of `base` trainable; return a note for the console."""
    wanted = {id(layer) for layer in chosen}
    base.trainable = True
    for layer in base.layers:
        layer.trainable = id(layer) in wanted
    names = [layer.name for layer in chosen]
    shown = ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:3])}, ..., {', '.join(names[-2:])}"
    return f"unfroze {len(names)} base layer(s): {shown}"


def _application_base(keras: Any, config: architectures.PretrainedModel, input_shape: tuple[int, ...]) -> Any:
    module_name, class_name = APPLICATIONS[config.base]
    constructor = getattr(keras.applications, class_name)
    weights = config.weights
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise errors.ConfigError(
            f"model.weights: received {weights!r}; expected imagenet, null or an existing .h5/.weights.h5 file (no such file)"
        )
    local_file = weights not in (None, "imagenet")
    # a local file is loaded after the base is built (what keras.applications does itself), so that a file
    # that is not this base's weights is reported as such, not as a problem with the base's settings
    arguments = {"include_top": config.include_top, "weights": None if local_file else weights, "input_shape": tuple(input_shape)}
    try:
        base = constructor(**arguments, **config.base_options)
    except Exception as error:  # Keras raises plain Exception for a failed download
        raise _explained(error, config, class_name) from None
    if local_file:
        import warnings

        # Keras warns about every part of a foreign file it skips before it gives up: when it does give up, the
        # one error below says it all; when the file loads, its warnings are passed on as they were
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                base.load_weights(weights)
            except Exception as error:  # empty, garbage, not HDF5, another model's weights: h5py/Keras raise anything
                raise errors.ConfigError(
                    f"model.weights: received {weights!r}, which cannot be loaded as {config.base} weights "
                    f"({type(error).__name__}: {_first_line(error)}); expected imagenet, null or the {config.base} weights "
                    f"in Keras' .h5/.weights.h5 format (include_top {str(config.include_top).lower()})"
                ) from None
        for warning in caught:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return base


def _first_line(error: Exception, limit: int = 200) -> str:
    text = (str(error).strip().splitlines() or [""])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _explained(error: Exception, config: architectures.PretrainedModel, class_name: str) -> errors.DlrunError | Exception:
    text = str(error)
    if "URL fetch failure" in text or "HTTP Error" in text:
        url = re.search(r"https?://\S+?\.h5", text)
        file_name = url.group(0).rsplit("/", 1)[-1] if url else f"the {class_name} weights file"
        reason = text.rsplit(" -- ", 1)[-1] if " -- " in text else text
        target = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models" / file_name
        source = f" from {url.group(0)}" if url else ""
        return errors.DataError(
            f"model.weights: received 'imagenet', but the {config.base} ImageNet weights could not be downloaded "
            f"({reason}); expected {file_name} in Keras' cache at {target} (fetch it{source} on a machine "
            f"with internet), or weights: <path to a local .h5/.weights.h5 file>"
        )
    if isinstance(error, (ValueError, TypeError)):
        return errors.ConfigError(
            f"model.base: received {config.base!r} (include_top {str(config.include_top).lower()}, weights "
            f"{config.weights}, options {config.base_options}); expected settings keras.applications.{class_name} "
            f"accepts for these inputs ({error})"
        )
    return error


def _run_base(keras: Any, config: architectures.PretrainedModel, input_shape: tuple[int, ...]) -> Any:
    path = Path(config.base)
    if not path.is_file():
        raise errors.ConfigError(
            f"model.base: received {config.base!r}; expected a keras.applications name or an existing run's model.keras (no such file)"
        )
    from dlrun.models import saved

    try:
        # compile=False: a base needs the layers and weights, not the previous run's optimizer (whose state Keras
        # would otherwise try to restore into an unbuilt optimizer, warning that it skips its variables)
        previous = saved.load_model(path, compile=False)
    except Exception as error:  # any unreadable or unsafe file
        raise errors.ConfigError(
            f"model.base: received {config.base!r}; expected a Keras model file ({type(error).__name__}: {error})"
        ) from None
    expected = tuple(previous.input_shape[1:])
    if expected != tuple(input_shape):
        raise errors.ConfigError(
            f"model.base: received a model for inputs of shape {list(expected)}; expected one for this "
            f"data's inputs of shape {list(input_shape)}"
        )
    if config.include_top:
        return previous
    names = [layer.name for layer in previous.layers]
    if config.base_layer is None:
        if len(names) < 2:
            raise errors.ConfigError(f"model.base: received a model with {len(names)} layer(s); expected at least 2")
        layer = previous.layers[-2]
    elif config.base_layer in names:
        layer = previous.get_layer(config.base_layer)
    else:
        raise errors.ConfigError(f"model.base_layer: received {config.base_layer!r}; expected a layer of {path} ({', '.join(names)})")
    return keras.Model(previous.inputs, layer.output, name="base")


def _head(keras: Any, config: architectures.PretrainedModel, feature_shape: tuple[int, ...], task: str, num_classes: int | None) -> Any:
    layers = [keras.Input(shape=feature_shape, name="features")]
    if len(feature_shape) > 1:
        if config.reduce != "flatten" and len(feature_shape) != 3:
            raise errors.ConfigError(
                f"model.reduce: received {config.reduce!r} for base outputs of shape {list(feature_shape)}; "
                "expected flatten (global pooling needs [height, width, channels])"
            )
        layers.append(getattr(keras.layers, _REDUCE[config.reduce])(name="reduce"))
    for index, units in enumerate(config.dense_units, start=1):
        layers.append(keras.layers.Dense(units, activation=config.activation, name=f"dense_{index}"))
        if config.dropout:
            layers.append(keras.layers.Dropout(config.dropout, name=f"dropout_{index}"))
    layers.append(head.output_layer(keras, config.head, task, num_classes))
    return keras.Sequential(layers, name="head")
