"""The model's stem: the Input and the preprocessing layers a dataset asks for.

Preprocessing lives inside the model, so `model.keras` carries it: evaluation, K-fold folds and
prediction apply exactly what training applied, and normalisation statistics come from the training
inputs only (never from the split being evaluated).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from dlrun.config import datasets
    from dlrun.data import dataset


def stem(keras: Any, loaded: dataset.Dataset, train_inputs: Any = None) -> list:
    """`[Input, *preprocessing layers]` for `loaded`; `train_inputs` adapts a Normalization layer."""
    layers = [keras.Input(shape=loaded.input_shape, dtype=loaded.input_dtype, name="input")]
    if loaded.multi_hot_tokens:
        from dlrun.models import multi_hot  # a scatter, not CategoryEncoding: no (batch, length, tokens) one-hot on JAX

        layers.append(multi_hot.MultiHot(loaded.multi_hot_tokens, name="multi_hot"))
    if loaded.augmentation is not None:
        from dlrun.models import augmentation

        layers.extend(augmentation.layers(keras, cast("datasets.Augmentation", loaded.augmentation), loaded.augmentation_seed))
    if loaded.rescale is not None:
        layers.append(keras.layers.Rescaling(loaded.rescale, name="rescale"))
    if loaded.normalize:
        normalization = keras.layers.Normalization(axis=-1, name="normalize")
        # only array datasets (Boston) normalise
        normalization.adapt(cast(tuple, loaded.train)[0] if train_inputs is None else train_inputs)
        layers.append(normalization)
    return layers


def feature_shape(loaded: dataset.Dataset) -> tuple[int, ...]:
    """The shape the architecture sees, after the stem's preprocessing."""
    if loaded.multi_hot_tokens:
        return (loaded.multi_hot_tokens,)
    return loaded.input_shape
