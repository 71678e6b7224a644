"""Data augmentation as Keras 3 layers in the model's stem: random transforms in training only.

Each option keeps the unit of Keras 2's `ImageDataGenerator` (the API most published Keras augmentation
recipes use, so their values carry over unchanged), converted here to the Keras 3 layer's own unit;
docs/images.md has the table. Keras 2 drew one affine transform per image; here each transform is its own
layer, applied in Keras 2's order (rotation, shift, shear, zoom, then flips). At inference (evaluate,
predict) every layer passes images through unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlrun.config import datasets

import math


def layers(keras: Any, config: datasets.Augmentation, seed: int) -> list:
    """The augmentation layers for a `data.augmentation` section, each seeded from `seed`."""
    fill = {"fill_mode": config.fill_mode, "fill_value": config.fill_value}
    result = []
    if config.rotation_range:
        # Keras 2 takes degrees; RandomRotation takes a fraction of a full turn.
        result.append(keras.layers.RandomRotation(config.rotation_range / 360, seed=seed, name="augment_rotation", **fill))
    if config.width_shift_range or config.height_shift_range:
        result.append(
            keras.layers.RandomTranslation(config.height_shift_range, config.width_shift_range, seed=seed + 1, name="augment_shift", **fill)
        )
    if config.shear_range:
        # Keras 2's shear is an angle in degrees along x (x' = x - sin(angle) * y); RandomShear's factor
        # is that horizontal displacement per unit of height. RandomShear flips the sign at random, so
        # (0, f) draws from [-f, f]; a plain f would too, but Keras 3.15 then stores (-f, f), which its
        # own loader rejects, so model.keras could not be read back.
        factor = math.sin(math.radians(config.shear_range))
        result.append(keras.layers.RandomShear(x_factor=(0.0, factor), y_factor=(0.0, 0.0), seed=seed + 2, name="augment_shear", **fill))
    if config.zoom_range:
        # Keras 2 zooms each axis independently by a factor in [1 - z, 1 + z].
        zoom = (-config.zoom_range, config.zoom_range)
        result.append(keras.layers.RandomZoom(zoom, zoom, seed=seed + 3, name="augment_zoom", **fill))
    flips = [name for name, wanted in (("horizontal", config.horizontal_flip), ("vertical", config.vertical_flip)) if wanted]
    if flips:
        result.append(keras.layers.RandomFlip("_and_".join(flips), seed=seed + 4, name="augment_flip"))
    return result
