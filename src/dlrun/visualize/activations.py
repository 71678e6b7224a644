"""Intermediate activations: what each conv/pool layer's channels respond to in one image.

One PNG per layer per image: every channel's map in a grid (16 per row), the layer's name and output
shape in the title; a dead channel (constant, e.g. all zeros after ReLU) is drawn blank, not as noise.
The raw activations go beside each PNG as `.npy` ([height, width, channels]).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlrun import errors
from dlrun.data import image_files as images
from dlrun.visualize import layers, output

if TYPE_CHECKING:
    from dlrun.visualize.subjects import Subject

DEFAULT_LAYERS = 8  # the first 8 conv/pool layers: all four conv blocks of a small convnet like configs/cats_dogs.yaml
PER_ROW = 16


def choose(model: Any, count: int | None, names: list[str]) -> list:
    """The layers to show: the named ones (in the order given), else the first `count` conv/pool layers."""
    if names:
        return [layers.named(model, name, "activations") for name in names]
    layers.require_four_d(model, "activations")
    if count is not None and count < 1:
        raise errors.UsageError(f"--layers: received {count}; expected at least 1")
    chosen = layers.conv_and_pool(model)[: count or DEFAULT_LAYERS]
    if not chosen:
        available = ", ".join(layer.name for layer in layers.four_d(model))
        raise errors.DataError(f"the model has no convolution or pooling layer; pass --layer NAME with one of its 4-D layers: {available}")
    return chosen


def compute(model: Any, chosen: list, inputs: Any) -> dict[str, np.ndarray]:
    """{layer name: activations [batch, height, width, channels]} for a batch of model inputs."""
    with layers.capturing(chosen, stop_after=True) as captured:
        layers.forward(model, inputs)
    return {layer.name: np.asarray(captured[layer.name]) for layer in chosen}


def normalised_channels(activation: np.ndarray) -> np.ndarray:
    """[channels, height, width] maps scaled to [0, 1] each; constant (dead) channels become NaN (blank)."""
    maps = np.moveaxis(np.asarray(activation, dtype="float64"), -1, 0)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    dead = span <= 0
    scaled = (maps - low) / np.where(dead, 1.0, span)
    return np.where(dead, np.nan, scaled)


def run(
    subject: Subject, image_paths: list[Path], count: int | None, names: list[str], out_root: Path | None, echo: Callable[[str], None]
) -> Path:
    """Write `<image>/<NN>_<layer>.png` and `.npy` for each image and each chosen layer."""
    chosen = choose(subject.model, count, names)
    paths = images.find(image_paths)
    raw = images.load_batch(paths, subject.input_size(224), subject.channels)
    found = compute(subject.model, chosen, subject.inputs(raw))
    folder = output.new_folder(out_root or subject.output_root, "activations")
    for image_index, (path, stem) in enumerate(zip(paths, output.unique_stems(paths))):
        image_folder = folder / stem
        image_folder.mkdir()
        for number, layer in enumerate(chosen, start=1):
            activation = found[layer.name][image_index]
            channels = normalised_channels(activation)
            dead = int(np.isnan(channels[:, 0, 0]).sum())
            title = f"{layer.name}  {list(activation.shape)}  ({activation.shape[-1]} channels" + (f", {dead} dead)" if dead else ")")
            figure = output.mosaic_figure(channels, title, columns=min(PER_ROW, len(channels)))
            base = f"{number:02d}_{layer.name}"
            output.save_figure(figure, image_folder / f"{base}.png")
            output.save_array(image_folder / f"{base}.npy", activation)
        echo(f"{path}: {len(chosen)} layers ({', '.join(layer.name for layer in chosen)})")
    echo(f"wrote {folder}")
    return folder
