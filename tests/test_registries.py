import typing

import pytest

from dlrun import data, models, registry
from dlrun.commands import listing
from dlrun.config import schema
from dlrun.training import callbacks, losses, metrics, optimizers


@pytest.mark.parametrize(
    "union, entries",
    [
        (schema.DataConfig, data.DATASETS),
        (schema.ModelConfig, models.ARCHITECTURES),
        (schema.OptimizerConfig, optimizers.OPTIMIZERS),
        (schema.CallbackConfig, callbacks.CALLBACKS),
    ],
)
def test_schema_names_equal_registry_keys(union, entries):
    assert schema.discriminator_tags(union) == list(entries)


def test_application_names_equal_registry_keys():
    from dlrun.models import pretrained

    assert list(schema.APPLICATION_NAMES) == list(pretrained.APPLICATIONS)


def test_every_application_exists_in_keras():
    import importlib

    from dlrun import backend
    from dlrun.models import pretrained

    keras = backend.import_keras()
    for name, (module_name, class_name) in pretrained.APPLICATIONS.items():
        module = importlib.import_module(f"keras.applications.{module_name}")
        assert class_name.lower() == name and callable(getattr(keras.applications, class_name)) and callable(module.preprocess_input)


def test_loss_and_metric_names_equal_registry_keys():
    assert list(typing.get_args(schema.LossName)) == list(losses.LOSSES)
    assert list(typing.get_args(schema.MetricName)) == list(metrics.METRICS)


def test_every_entry_has_a_description():
    for kind, entries in listing.registries().items():
        for name, entry in entries.items():
            assert registry.describe(entry), f"{kind}/{name} has no description"


def test_lookup_error_is_keras_style():
    with pytest.raises(ValueError, match=r"Could not interpret optimizer identifier: 'adamw'.*\(did you mean 'adam'\?\)"):
        registry.lookup(optimizers.OPTIMIZERS, "adamw", "optimizer")


def test_backend_names_equal_registry_keys():
    from dlrun import backend

    names = typing.get_args(schema.Config.model_fields["backend"].annotation)
    assert list(names) == ["auto", *backend.BACKENDS]


def test_gradient_helpers_cover_every_backend():
    from dlrun import backend
    from dlrun.training import gradients

    assert list(gradients.VALUE_AND_GRADIENT) == list(backend.BACKENDS)
    assert list(gradients.TRAINING_STEPS) == list(backend.BACKENDS)
