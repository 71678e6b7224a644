"""The model a visualisation looks at: a dlrun run's `model.keras`, or a keras.applications model.

A run's model carries its own preprocessing (rescaling, normalisation: dlrun.models.inputs), so its
images are fed as raw pixel values at the model's input size. An application model (VGG16) needs its
`preprocess_input` first, and its ImageNet weights and class names come from Keras' cache
(`$KERAS_HOME/models/`, by default `~/.keras/models/`), downloaded on first use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dlrun import errors

CLASS_INDEX = ("imagenet_class_index.json", "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json")


@dataclasses.dataclass
class Application:
    """A keras.applications model and where its ImageNet weights come from."""

    constructor: str  # the keras.applications attribute, e.g. "VGG16"
    module: str  # the keras.applications sub-module with preprocess_input, e.g. "vgg16"
    size: int  # the input size of the ImageNet classifier (include_top)
    weights: dict[bool, tuple[str, str]]  # include_top (True/False) -> (file name, url)


APPLICATIONS = {
    "vgg16": Application(
        constructor="VGG16",
        module="vgg16",
        size=224,
        weights={
            True: (
                "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
            ),
            False: (
                "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            ),
        },
    ),
}


@dataclasses.dataclass
class Subject:
    """A model to look at, with what it takes to feed it and to name its classes."""

    model: Any  # a keras.Model
    label: str  # how messages name it: the run folder, or "vgg16 (imagenet)"
    output_root: Path  # default folder for outputs: RUN_DIR/visualize, or ./visualize
    class_names: list[str] | None = None
    preprocess: Callable | None = None  # raw pixels -> model inputs, when the model does not do it itself
    pixel_range: float = 255.0  # raw pixel values span [0, pixel_range] (1 for data scaled before training)
    bgr: bool = False  # the model's inputs are BGR (caffe-style preprocessing): flip to show them
    note: str | None = None  # something the user should know (e.g. class names unavailable offline)

    def input_size(self, default: int) -> tuple[int, int]:
        """(height, width) images are resized to: the model's, or `default` when the model takes any size."""
        shape = self.model.inputs[0].shape
        height, width = shape[1], shape[2]
        return (height or default, width or default)

    @property
    def channels(self) -> int:
        return int(self.model.inputs[0].shape[-1])

    def inputs(self, raw: np.ndarray) -> Any:
        """What the model is fed for raw pixels [batch, height, width, channels]."""
        return raw if self.preprocess is None else self.preprocess(np.array(raw, copy=True))


def from_run(run_dir: Path, out: Path | None = None) -> Subject:
    """The model of a dlrun run folder (its model.keras and the class names in run.json). Without `out`
    (--out), outputs go to RUN_DIR/visualize, refused before the model loads when a link is planted there."""
    from dlrun import config as config_module, runs

    run_dir = Path(run_dir)
    run = runs.Run.open(run_dir)
    if out is None:
        runs.refuse_links_in(run_dir, "visualize")
    model_file = run_dir / "model.keras"
    if not model_file.is_file():
        raise errors.RunError(
            f"--run: {run_dir} has no model.keras (status {run.record.get('status')!r}); "
            "expected a completed run trained with output.save_model: true"
        )
    from dlrun import models

    model = models.load_model(model_file)
    pixel_range = 1.0
    config_file = run_dir / runs.CONFIG_FILE
    if config_file.is_file():
        with contextlib.suppress(errors.DlrunError):  # an unreadable config only loses the pixel range
            rescale = getattr(config_module.load(config_file).data, "rescale", None)
            pixel_range = 1.0 / rescale if rescale else 1.0
    return Subject(
        model=model,
        label=str(run_dir),
        output_root=run_dir / "visualize",
        class_names=(run.record.get("data") or {}).get("class_names"),
        pixel_range=pixel_range,
    )


def from_application(name: str, weights: str, include_top: bool) -> Subject:
    """A keras.applications model (`vgg16`) with `weights`: `imagenet`, `none` or a weights file."""
    from dlrun import backend

    application = APPLICATIONS.get(name.lower())
    if application is None:
        raise errors.UsageError(f"--model: received {name!r}; expected one of {', '.join(APPLICATIONS)} (or pass --run RUN_DIR)")
    if weights == "imagenet":
        weights_file = cached_file(*application.weights[include_top], purpose=f"--model {name} --weights imagenet")
    elif weights == "none":
        weights_file = None
    else:
        weights_file = Path(weights)
        if not weights_file.is_file():
            raise errors.DataError(f"--weights: received {weights!r}; expected imagenet, none, or an existing weights file")
    keras = backend.import_keras()
    shape = (application.size, application.size, 3) if include_top else (None, None, 3)
    model = getattr(keras.applications, application.constructor)(include_top=include_top, weights=None, input_shape=shape)
    if weights_file is not None:
        try:
            model.load_weights(weights_file)
        except Exception as error:
            raise errors.DataError(
                f"--weights: {weights_file} does not fit {application.constructor} "
                f"(include_top={include_top}) ({type(error).__name__}: {error})"
            ) from None
    preprocess = getattr(keras.applications, application.module).preprocess_input
    class_names = imagenet_class_names() if include_top else None
    note = None
    if include_top and class_names is None:
        note = (
            f"ImageNet class names unavailable offline: showing class indices "
            f"(put {CLASS_INDEX[0]} from {CLASS_INDEX[1]} in {keras_cache()} to see names)"
        )
    return Subject(
        model=model,
        label=f"{name} ({weights})",
        output_root=Path("visualize"),
        class_names=class_names,
        preprocess=preprocess,
        pixel_range=255.0,
        bgr=True,
        note=note,
    )


def keras_cache() -> Path:
    """Keras' download cache for models: `$KERAS_HOME/models`, by default `~/.keras/models`."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser() / "models"


def download(file_name: str, url: str) -> str:
    """Keras' own download into its cache (tests replace this to simulate being offline)."""
    from dlrun import backend

    keras = backend.import_keras()
    return keras.utils.get_file(file_name, url, cache_subdir="models")


def cached_file(file_name: str, url: str, purpose: str) -> Path:
    """The file from Keras' cache, downloading it when absent; offline, a DataError says where to put it."""
    target = keras_cache() / file_name
    if target.is_file():
        return target
    try:
        return Path(download(file_name, url))
    except Exception as error:  # no network, proxy, HTTP errors: all mean "not reachable"
        raise errors.DataError(
            f"{purpose}: cannot download {file_name} ({type(error).__name__}: {str(error)[:200]}); "
            f"expected the file at {target}: download {url} on a machine with internet and copy it there, "
            "or pass --run RUN_DIR to use a dlrun run's model instead"
        ) from None


def imagenet_class_names() -> list[str] | None:
    """The 1,000 ImageNet class names, or None when the class index cannot be found or downloaded."""
    try:
        path = cached_file(*CLASS_INDEX, purpose="ImageNet class names")
        index = json.loads(Path(path).read_text(encoding="utf-8"))
        return [index[str(number)][1] for number in range(1000)]
    except (errors.DlrunError, OSError, ValueError, KeyError):
        return None
