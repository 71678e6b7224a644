"""Architectures build the layers their configs describe."""

import numpy as np
import pytest

from dlrun import config, models
from dlrun.data import dataset


def fake(shape, task="multiclass", num_classes=10):
    return dataset.Dataset(task=task, train=(np.zeros((2, *shape), "float32"), np.zeros(2)), num_classes=num_classes)


def build(model_section, shape, **kwargs):
    loaded = config.validate({"data": "digits", "model": model_section})
    return models.build(loaded.model, fake(shape, **kwargs))


def test_mlp_layers_regularisation_and_head(keras):
    model = build({"architecture": "mlp", "units": [16, 8], "dropout": 0.5, "l2": 0.01}, (8, 8, 1))
    names = [layer.name for layer in model.layers]
    assert names == ["flatten", "dense_1", "dropout_1", "dense_2", "dropout_2", "output"]
    assert model.get_layer("dense_1").kernel_regularizer.l2 == pytest.approx(0.01)
    assert model.output_shape == (None, 10)
    assert model.get_layer("output").activation.__name__ == "softmax"


def test_books_mnist_convnet_shape(keras):
    """Conv32-Pool-Conv64-Pool-Conv64-Flatten-Dense64-Dense10 on 28x28x1, as in the notes."""
    model = build({"architecture": "convnet", "filters": [32, 64, 64], "pool_last": False, "dense_units": [64]}, (28, 28, 1))
    assert [layer.name for layer in model.layers] == ["conv_1", "pool_1", "conv_2", "pool_2", "conv_3", "reduce", "dense_1", "output"]
    assert model.get_layer("reduce").output.shape[1] == 3 * 3 * 64
    assert model.count_params() == 93322  # the book's figure for this network


@pytest.mark.parametrize("task, units, activation", [("binary", 1, "sigmoid"), ("regression", 1, "linear")])
def test_head_follows_the_task(keras, task, units, activation):
    model = build({"architecture": "mlp", "units": [4]}, (3,), task=task, num_classes=None)
    assert model.output_shape == (None, units)
    assert model.get_layer("output").activation.__name__ == activation


def test_explicit_head_wins(keras):
    model = build({"architecture": "mlp", "head": {"units": 46, "activation": "sigmoid"}}, (3,))
    assert model.output_shape == (None, 46)


def test_too_many_pooling_blocks_is_a_config_error(keras):
    from dlrun import errors

    with pytest.raises(errors.ConfigError, match="do not fit inputs of shape"):
        build({"architecture": "convnet", "filters": [8, 8, 8, 8]}, (8, 8, 1))


def test_normalization_is_adapted_on_the_given_training_inputs_only(keras):
    loaded = dataset.Dataset(
        task="regression",
        train=(np.array([[0.0], [2.0]], "float32"), np.zeros(2)),
        test=(np.array([[100.0]], "float32"), np.zeros(1)),
        normalize=True,
    )
    section = config.validate({"data": "digits", "model": {"architecture": "mlp", "units": [2]}}).model
    model = models.build(section, loaded)
    layer = model.get_layer("normalize")
    assert float(np.ravel(layer.mean)[0]) == pytest.approx(1.0)
    fold_model = models.build(section, loaded, train_inputs=np.array([[10.0], [12.0]], "float32"))
    assert float(np.ravel(fold_model.get_layer("normalize").mean)[0]) == pytest.approx(11.0)


def test_multi_hot_stem_encodes_integer_sequences(keras):
    sequences = np.array([[1, 3, 3, 0], [2, 0, 0, 0]], "int32")
    loaded = dataset.Dataset(task="binary", train=(sequences, np.zeros(2)), multi_hot_tokens=5)
    section = config.validate({"data": "digits", "model": {"architecture": "mlp", "units": [2]}}).model
    model = models.build(section, loaded)
    encoder = keras.Model(model.inputs, model.get_layer("multi_hot").output)
    np.testing.assert_array_equal(encoder.predict(sequences, verbose=0), [[0, 1, 0, 1, 0], [0, 0, 1, 0, 0]])


def test_mlp_initializers_reach_every_dense_layer_the_head_included(keras):
    """The notes' signs net: Glorot (Xavier) kernels and zero biases are the defaults; others are honoured."""
    model = build({"architecture": "mlp", "units": [25, 12]}, (4, 4, 3), num_classes=6)
    for name in ("dense_1", "dense_2", "output"):
        layer = model.get_layer(name)
        assert type(layer.kernel_initializer).__name__ == "GlorotUniform"
        assert not np.any(layer.bias.numpy())
    model = build({"architecture": "mlp", "units": [4], "kernel_initializer": "zeros", "bias_initializer": "ones"}, (3,))
    for name in ("dense_1", "output"):
        assert not np.any(model.get_layer(name).kernel.numpy()) and np.all(model.get_layer(name).bias.numpy() == 1)
