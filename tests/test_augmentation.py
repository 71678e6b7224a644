"""Augmentation layers: the Keras 2 options mapped to Keras 3 layers, random in training, identity otherwise."""

import math

import numpy as np
import pytest

from dlrun import config, models
from dlrun.data import dataset
from dlrun.models import augmentation

NOTES = {
    "rotation_range": 40,
    "width_shift_range": 0.2,
    "height_shift_range": 0.2,
    "shear_range": 0.2,
    "zoom_range": 0.2,
    "horizontal_flip": True,
    "fill_mode": "nearest",
}


def section(**options):
    data = {"name": "image_directory", "path": "unused", "augmentation": options}
    return config.validate({"data": data, "model": "convnet"}).data.augmentation


def images():
    rng = np.random.default_rng(0)
    return (rng.random((4, 24, 24, 3)) * 255).astype("float32")


def apply(layers, inputs, training):
    for layer in layers:
        inputs = layer(inputs, training=training)
    return np.asarray(inputs)


def test_notes_options_map_to_keras_3_layers(keras):
    layers = {layer.name: layer for layer in augmentation.layers(keras, section(**NOTES), seed=1)}
    assert list(layers) == ["augment_rotation", "augment_shift", "augment_shear", "augment_zoom", "augment_flip"]
    assert layers["augment_rotation"].factor == pytest.approx((-40 / 360, 40 / 360))  # degrees -> turns
    assert (layers["augment_shift"].height_factor, layers["augment_shift"].width_factor) == (0.2, 0.2)
    assert layers["augment_shear"].x_factor == pytest.approx((0, math.sin(math.radians(0.2))))  # degrees -> slope
    assert layers["augment_zoom"].height_factor == (-0.2, 0.2) and layers["augment_zoom"].width_factor == (-0.2, 0.2)
    assert layers["augment_flip"].mode == "horizontal"
    assert {layer.fill_mode for name, layer in layers.items() if name != "augment_flip"} == {"nearest"}


def test_no_options_no_layers(keras):
    assert not section().active
    assert augmentation.layers(keras, section(), seed=1) == []
    assert [layer.mode for layer in augmentation.layers(keras, section(horizontal_flip=True, vertical_flip=True), 1)] == [
        "horizontal_and_vertical"
    ]


def test_changes_images_in_training_and_is_the_identity_at_inference(keras):
    inputs = images()
    layers = augmentation.layers(keras, section(**NOTES), seed=1)
    assert not np.allclose(apply(layers, inputs, training=True), inputs)
    np.testing.assert_array_equal(apply(layers, inputs, training=False), inputs)


def test_same_seed_same_transforms(keras):
    inputs = images()
    first = apply(augmentation.layers(keras, section(**NOTES), seed=7), inputs, training=True)
    again = apply(augmentation.layers(keras, section(**NOTES), seed=7), inputs, training=True)
    other = apply(augmentation.layers(keras, section(**NOTES), seed=8), inputs, training=True)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_layers_sit_in_the_stem_before_rescaling(keras):
    loaded = dataset.Dataset(
        task="binary",
        train=(np.zeros((2, 24, 24, 3), "float32"), np.zeros(2)),
        num_classes=2,
        rescale=1 / 255,
        augmentation=section(rotation_range=10, horizontal_flip=True),
        augmentation_seed=3,
    )
    model = models.build(config.validate({"data": "digits", "model": {"architecture": "convnet", "filters": [4]}}).model, loaded)
    assert [layer.name for layer in model.layers][:3] == ["augment_rotation", "augment_flip", "rescale"]
    inputs = images()
    np.testing.assert_allclose(model(inputs, training=False), model(inputs, training=False))
    assert not np.allclose(model(inputs, training=True), model(inputs, training=False))
