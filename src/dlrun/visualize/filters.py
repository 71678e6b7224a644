"""Filter patterns: the input that maximally activates each filter of a layer, by gradient ascent.

Starting from a faint, noisy grey image, each step moves the input along the gradient of the filter's
mean activation, normalised to unit root-mean-square so the step size does not depend on the layer's
scale; after a fixed number of steps the border (where padding distorts the pattern) is cropped and
each pattern is contrast-stretched for display. All filters of a layer ascend together as one batch:
image i maximises filter i, and images in a batch do not interact.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlrun import backend, errors
from dlrun.visualize import layers, output

if TYPE_CHECKING:
    from dlrun.visualize.subjects import Subject

DEFAULT_FILTERS = 64
DEFAULT_STEPS = 30
STEP_SIZE = 0.02  # per step, as a share of the raw pixel range
DEFAULT_SIZE = 150  # the pattern size for models that take any input size (150 x 150, as in the dogs-vs-cats configs)


def ascend(
    model: Any,
    layer: Any,
    filter_indices: list[int],
    shape: tuple[int, int, int],
    steps: int,
    pixel_range: float,
    seed: int = 0,
    preprocess: Callable[[Any], Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient ascent for each filter: `(patterns [count, h, w, c], mean activation before, after)`.

    Patterns are in the model's input space (after `preprocess`, which maps the starting raw image).
    """
    ops = backend.import_keras().ops

    from dlrun.training import gradients

    rng = np.random.default_rng(seed)
    start = pixel_range * (0.5 + 0.2 * rng.uniform(-1, 1, size=(len(filter_indices), *shape)))
    start = start.astype("float32") if preprocess is None else np.asarray(preprocess(start.astype("float32")), dtype="float32")
    image = ops.convert_to_tensor(start)
    step = STEP_SIZE * pixel_range
    selector = ops.convert_to_tensor(np.eye(_channels(layer), dtype="float32")[filter_indices])  # [count, channels]

    def objective(image: Any) -> Any:
        with layers.capturing([layer], stop_after=True) as captured:
            layers.forward(model, image)
        activation = captured[layer.name]  # [count, h, w, channels]
        return ops.mean(activation, axis=(1, 2)) * selector  # each image's own filter only

    before = ops.convert_to_numpy(ops.sum(objective(image), axis=1))
    for _ in range(steps):
        _, gradient = gradients.value_and_gradient(lambda image: ops.sum(objective(image)), image)
        rms = ops.sqrt(ops.mean(ops.square(gradient), axis=(1, 2, 3), keepdims=True))
        image = image + step * gradient / (rms + 1e-8)
    after = ops.convert_to_numpy(ops.sum(objective(image), axis=1))
    return ops.convert_to_numpy(image), before, after


def _channels(layer: Any) -> int:
    return int(layer.output.shape[-1])


def displayable(patterns: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Patterns with the border cropped, centred and contrast-stretched into [0, 1] for showing."""
    height, width = patterns.shape[1:3]
    border = int(round(0.1 * min(height, width))) if min(height, width) >= 20 else 0
    cropped = patterns[:, border : height - border or None, border : width - border or None, :]
    centred = cropped - cropped.mean(axis=(1, 2, 3), keepdims=True)
    spread = centred.std(axis=(1, 2, 3), keepdims=True)
    shown = np.clip(0.5 + 0.15 * centred / np.where(spread > 0, spread, 1.0), 0, 1)
    if bgr:
        shown = shown[..., ::-1]
    return shown[..., 0] if shown.shape[-1] == 1 else shown[..., :3]


def run(subject: Subject, layer_name: str, count: int, steps: int, out_root: Path | None, echo: Callable[[str], None]) -> Path:
    """Write `<layer>_filters.png` (a grid of patterns) and `<layer>_filters.npy` (the raw patterns)."""
    if count < 1:
        raise errors.UsageError(f"--filters: received {count}; expected at least 1")
    if steps < 1:
        raise errors.UsageError(f"--steps: received {steps}; expected at least 1")
    layer = layers.named(subject.model, layer_name, "filter patterns")
    available = _channels(layer)
    indices = list(range(min(count, available)))
    height, width = subject.input_size(DEFAULT_SIZE)
    patterns, before, after = ascend(
        subject.model,
        layer,
        indices,
        (height, width, subject.channels),
        steps,
        subject.pixel_range,
        preprocess=subject.preprocess,
    )
    folder = output.new_folder(out_root or subject.output_root, "filters")
    shown = displayable(patterns, subject.bgr)
    title = f"{layer.name}: filters 0-{indices[-1]} of {available}, {steps} ascent steps"
    output.save_figure(output.mosaic_figure(shown, title, columns=min(8, len(indices)), cmap="gray"), folder / f"{layer.name}_filters.png")
    output.save_array(folder / f"{layer.name}_filters.npy", patterns)
    silent = int(np.sum(before <= 0))
    echo(
        f"{layer.name}: {len(indices)} filter patterns; mean activation rose from "
        f"{float(np.mean(before)):.4g} to {float(np.mean(after)):.4g} on average"
        + (f"; {silent} filter(s) never fired on the start image (no gradient: their patterns stay noise)" if silent else "")
    )
    echo(f"wrote {folder}")
    return folder
