"""Finding a model's layers (nested base models included) and capturing their outputs in a forward pass.

Outputs are captured by wrapping each chosen layer's `call` for the length of one forward pass, so a
convolution inside a nested model (VGG16 inside a transfer-learning model) is reached the same way as
a top-level one, without rebuilding the graph. Gradients with respect to a captured output, on any
backend, go through a zero `offset` added to it (`dlrun.training.gradients.value_and_gradient` of the offset).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from dlrun import errors

PATTERN_TYPES = ("Conv", "Pooling")  # class-name parts of the layers `activations` shows by default


def flat(model: Any) -> list:
    """Every layer in forward order, with nested models replaced by their own layers."""
    found = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            found.extend(flat(layer))
        elif type(layer).__name__ != "InputLayer":
            found.append(layer)
    return found


def output_rank(layer: Any) -> int | None:
    """The rank of the layer's output (4 for image feature maps), or None when it has no single output."""
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError, TypeError):
        return None


def four_d(model: Any) -> list:
    """The layers whose output is 4-D (batch, height, width, channels), in forward order."""
    return [layer for layer in flat(model) if output_rank(layer) == 4]


def conv_and_pool(model: Any) -> list:
    """The 4-D convolution and pooling layers, in forward order."""
    return [layer for layer in four_d(model) if any(part in type(layer).__name__ for part in PATTERN_TYPES)]


def require_four_d(model: Any, purpose: str) -> list:
    """`four_d(model)`, or a DataError when the model has no 4-D layer."""
    candidates = four_d(model)
    if not candidates:
        names = ", ".join(layer.name for layer in flat(model)) or "none"
        raise errors.DataError(
            f"model {model.name!r} has no layer with a 4-D output (batch, height, width, channels); "
            f"{purpose} needs a convolutional model (its layers: {names})"
        )
    return candidates


def named(model: Any, name: str, purpose: str) -> Any:
    """The 4-D layer called `name` (searched inside nested models too); a DataError lists the valid names."""
    candidates = require_four_d(model, purpose)
    for layer in candidates:
        if layer.name == name:
            return layer
    import difflib

    names = [layer.name for layer in candidates]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    other = [layer.name for layer in flat(model) if layer.name == name]
    why = f" ({name!r} exists but its output is not 4-D)" if other else ""
    raise errors.DataError(f"--layer: received {name!r}{why}; expected one of the model's 4-D layers: {', '.join(names)}{hint}")


class _StopForward(Exception):
    """Raised inside a forward pass once every wanted output is captured (saves the rest of the pass)."""


@contextlib.contextmanager
def capturing(chosen: list, offset: Any = None, stop_after: bool = False) -> Iterator[dict]:
    """While active, calling the model fills the yielded dict {layer name: output tensor}.

    With `offset` (one chosen layer; a tensor shaped like its output), the layer outputs, and the
    dict holds, `output + offset`: the gradient with respect to a zero offset is the gradient with
    respect to the output. With `stop_after`, the forward pass ends (call it through `forward`) once
    all are captured.
    """
    captured: dict = {}

    def wrap(layer: Any) -> Callable[..., Any]:
        original = layer.call

        def call(*args: Any, **kwargs: Any) -> Any:
            output = original(*args, **kwargs)
            if offset is not None:
                output = output + offset
            captured[layer.name] = output
            if stop_after and len(captured) == len(chosen):
                raise _StopForward("captured")
            return output

        return call

    for layer in chosen:
        layer.call = wrap(layer)
    try:
        yield captured
    finally:
        for layer in chosen:
            del layer.call  # the class's own `call` shows through again


def forward(model: Any, inputs: Any) -> Any:
    """`model(inputs)` in inference mode; None when a `capturing(stop_after=True)` ended it early."""
    try:
        return model(inputs, training=False)
    except _StopForward:
        return None
