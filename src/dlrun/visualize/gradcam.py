"""Grad-CAM: where in the image the evidence for a class lies, by gradients at a 4-D layer.

For class c and feature maps A (the chosen layer's output), each channel k is weighted by the mean of
d logit_c / d A_k over the map; the heatmap is ReLU(sum_k weight_k A_k), divided by its maximum.
Gradients are taken on the logits: the output layer's softmax/sigmoid is switched off, so a saturated
probability does not flatten the gradients. A map with no positive evidence is all zeros, never NaN.
Each image's map depends on that image only: a batch gives the same maps as one image at a time.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlrun import atomic, backend, errors
from dlrun.data import image_files as images
from dlrun.visualize import layers, output

if TYPE_CHECKING:
    from dlrun.visualize.subjects import Subject

SQUASHING = ("softmax", "sigmoid")


@dataclasses.dataclass
class Head:
    """The model's output layer, read as logits: its squashing activation and its width."""

    activation: str  # softmax | sigmoid | linear (or another activation, used as is)
    units: int

    @property
    def num_classes(self) -> int:
        """A single sigmoid unit scores two classes: 0 (negative logit) and 1 (positive logit)."""
        return 2 if self.activation == "sigmoid" and self.units == 1 else self.units

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """[batch, num_classes] scores as the model would output them (probabilities for classifiers)."""
        logits = np.asarray(logits, dtype="float64").reshape(len(logits), -1)
        if self.activation == "softmax":
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            return shifted / shifted.sum(axis=1, keepdims=True)
        if self.activation == "sigmoid":
            positive = 1.0 / (1.0 + np.exp(-logits))
            return np.concatenate([1 - positive, positive], axis=1) if self.units == 1 else positive
        return logits

    def score(self, logits: Any, classes: np.ndarray) -> Any:
        """The logit of each image's class (a tensor [batch]); for one sigmoid unit, class 0 is -logit."""
        ops = backend.import_keras().ops

        logits = ops.reshape(logits, (ops.shape(logits)[0], -1))
        if self.activation == "sigmoid" and self.units == 1:
            signs = ops.convert_to_tensor(np.where(classes == 1, 1.0, -1.0), dtype=logits.dtype)
            return logits[:, 0] * signs
        return ops.take_along_axis(logits, ops.convert_to_tensor(classes.reshape(-1, 1), dtype="int32"), axis=1)[:, 0]


def expose_logits(model: Any) -> Head:
    """Switch the output layer's softmax/sigmoid off (the model now outputs logits); describe the head."""
    keras = backend.import_keras()

    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", "linear") if activation is not None else "linear"
    if name in SQUASHING:
        last.activation = keras.activations.linear
    units = int(model.outputs[0].shape[-1])
    return Head(activation=name, units=units)


def check_class_index(head: Head, class_index: int | None, class_names: list[str] | None) -> None:
    """A DataError unless `class_index` is one of the model's classes (None means the top prediction)."""
    if class_index is None or 0 <= class_index < head.num_classes:
        return
    names = f" ({', '.join(class_names)})" if class_names and len(class_names) <= 20 else ""
    raise errors.DataError(
        f"--class-index: received {class_index}; expected 0..{head.num_classes - 1}, one of the model's {head.num_classes} classes{names}"
    )


def heatmaps(model: Any, layer: Any, inputs: Any, head: Head, class_index: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grad-CAM maps for a batch: `(maps [batch, h, w] in [0, 1], probabilities, classes)`.

    `class_index` None explains each image's top prediction; `model` must have gone through `expose_logits`.
    """
    ops = backend.import_keras().ops

    from dlrun.training import gradients

    inputs = ops.convert_to_tensor(np.asarray(inputs, dtype="float32"))
    with layers.capturing([layer]) as captured:
        logits = layers.forward(model, inputs)
    if layer.name not in captured:
        raise errors.DataError(
            f"--layer: layer {layer.name!r} is not on the model's path to its output; expected a layer before the output"
        )
    probabilities = head.probabilities(ops.convert_to_numpy(logits))
    if class_index is None:
        classes = probabilities.argmax(axis=1)
    else:
        classes = np.full(len(probabilities), class_index)

    def score(offset: Any) -> tuple[Any, Any]:
        """The classes' summed logits (images do not interact: per-image gradients) and the feature maps."""
        with layers.capturing([layer], offset=offset) as captured:
            logits = layers.forward(model, inputs)
        return ops.sum(head.score(logits, classes)), captured[layer.name]

    zero = ops.zeros(ops.shape(captured[layer.name]), dtype=captured[layer.name].dtype)
    (_, features), gradient = gradients.value_and_gradient(score, zero, has_aux=True)
    if gradient is None:
        raise errors.DataError(f"--layer: the class score does not depend on layer {layer.name!r}; expected a layer before the output")
    weights = ops.mean(gradient, axis=(1, 2))  # [batch, channels]
    maps = ops.convert_to_numpy(ops.relu(ops.einsum("bhwk,bk->bhw", features, weights))).astype("float64")
    peaks = maps.max(axis=(1, 2), keepdims=True)
    safe = np.where(peaks > 0, peaks, 1.0)
    maps = np.where(peaks > 0, maps / safe, 0.0)  # no positive evidence: zeros, not 0/0
    return maps.astype("float32"), probabilities, classes


def run(
    subject: Subject,
    image_paths: list[Path],
    layer_name: str | None,
    class_index: int | None,
    top: int,
    alpha: float,
    out_root: Path | None,
    echo: Callable[[str], None],
) -> Path:
    """Grad-CAM for each image: print the top predictions, write heatmap/overlay PNGs and .npy maps."""
    if not 0 <= alpha <= 1:
        raise errors.UsageError(f"--alpha: received {alpha}; expected a number from 0 to 1")
    if top < 1:
        raise errors.UsageError(f"--top: received {top}; expected at least 1")
    model = subject.model
    layer = layers.named(model, layer_name, "Grad-CAM") if layer_name else layers.require_four_d(model, "Grad-CAM")[-1]
    head = expose_logits(model)
    check_class_index(head, class_index, subject.class_names)
    paths = images.find(image_paths)
    raw = images.load_batch(paths, subject.input_size(224), subject.channels)
    originals = [images.load_original(path) for path in paths]
    maps, probabilities, classes = heatmaps(model, layer, subject.inputs(raw), head, class_index)
    if subject.note:
        echo(f"note: {subject.note}")
    folder = output.new_folder(out_root or subject.output_root, "gradcam")
    summary = {"model": subject.label, "layer": layer.name, "alpha": alpha, "images": []}
    for path, stem, original, heatmap, scores, chosen in zip(paths, output.unique_stems(paths), originals, maps, probabilities, classes):
        ranked = _top(scores, top, subject.class_names)
        echo(f"{path}: " + ", ".join(f"{name} {value:.4f}" for name, _, value in ranked))
        coloured = colourise(heatmap, original.shape[:2])
        output.save_image(folder / f"{stem}_heatmap.png", coloured)
        output.save_image(folder / f"{stem}_overlay.png", overlay(original, coloured, alpha))
        output.save_array(folder / f"{stem}_heatmap.npy", heatmap)
        summary["images"].append(
            {
                "image": str(path),
                "files": [f"{stem}_heatmap.png", f"{stem}_overlay.png", f"{stem}_heatmap.npy"],
                "class_index": int(chosen),
                "class_name": _name(int(chosen), subject.class_names),
                "top": [{"class_index": index, "class_name": name, "score": float(value)} for name, index, value in ranked],
                "all_zero": bool(heatmap.max() == 0),
            }
        )
        echo(
            f"  Grad-CAM for {_name(int(chosen), subject.class_names)!r} (class {int(chosen)}) at layer {layer.name}"
            + (": no positive evidence, the map is all zeros" if heatmap.max() == 0 else "")
        )
    atomic.write_text(folder / "gradcam.json", json.dumps(summary, indent=2) + "\n")
    echo(f"wrote {folder}")
    return folder


def colourise(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The heatmap as jet-coloured uint8 RGB pixels, resized (bilinear) to `size` (height, width)."""
    import matplotlib
    from PIL import Image

    colours = matplotlib.colormaps["jet"](np.clip(heatmap, 0, 1))[..., :3]
    small = Image.fromarray(np.uint8(np.round(colours * 255)))
    return np.asarray(small.resize((size[1], size[0]), Image.Resampling.BILINEAR))


def overlay(original: np.ndarray, coloured: np.ndarray, alpha: float) -> np.ndarray:
    """`alpha` of the coloured heatmap over `1 - alpha` of the image (both uint8 RGB, same size)."""
    mixed = alpha * coloured.astype("float32") + (1 - alpha) * original.astype("float32")
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8)


def upsample(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The heatmap resized (bilinear) to `size` (height, width), as floats."""
    from PIL import Image

    return np.asarray(Image.fromarray(heatmap.astype("float32")).resize((size[1], size[0]), Image.Resampling.BILINEAR))


def _top(scores: np.ndarray, count: int, class_names: list[str] | None) -> list[tuple[str, int, float]]:
    order = np.argsort(-scores, kind="stable")[:count]
    return [(_name(int(index), class_names), int(index), float(scores[index])) for index in order]


def _name(index: int, class_names: list[str] | None) -> str:
    if class_names and index < len(class_names):
        return class_names[index]
    return f"class {index}"
