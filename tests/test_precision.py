"""`train.precision`: Keras' dtype policy applied while the model is built (and only then), a float32
output layer, loss scaling for mixed_float16, and the policy and Keras' resolved `jit_compile` recorded
in run.json.

In-process tests run on the suite's TensorFlow backend (the dtype policy is global to a process: a
fixture puts float32 back should a test fail midway); mixed_bfloat16 training on JAX runs in a fresh process.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from rich.console import Console

from dlrun import config as config_module
from dlrun.training import trainer
from tests.conftest import TINY_REGRESSION, invoke, run_folders, train_in_fresh_process
from tests.test_backends import needs_jax


@pytest.fixture
def keras_policy(keras):
    """Keras, with the global dtype policy put back to float32 after the test."""
    yield keras
    keras.config.set_dtype_policy("float32")


def _training(precision: str, console: Console) -> trainer.Training:
    config = config_module.validate(
        {
            "data": {"name": "synthetic", "num_samples": 40, "input_shape": [4]},
            "model": {"architecture": "mlp", "units": [4]},
            "backend": "tensorflow",
            "train": {"precision": precision},
        }
    )
    return trainer.Training(config, trainer.load(config, console), console)


def test_mixed_float16_computes_in_float16_keeps_a_float32_output_and_scales_the_loss(keras_policy):
    from dlrun.training import precision

    console = Console(file=io.StringIO(), width=400)
    training = _training("mixed_float16", console)
    assert precision.record(training.model) == {
        "policy": "mixed_float16",
        "compute_dtype": "float16",
        "variable_dtype": "float32",
        "output_dtype": "float32",
        "loss_scaling": True,
    }
    hidden = training.model.layers[-2]
    assert hidden.compute_dtype == "float16" and hidden.kernel.dtype == "float32"
    if not precision.accelerated():  # this machine: a CPU only
        assert "warning: train.precision: mixed_float16 on a machine without a GPU" in console.file.getvalue()
    # Keras' policy is global to the process: it is mixed only while the model is built, then what it was.
    assert keras_policy.config.dtype_policy().name == "float32"
    assert keras_policy.layers.Dense(2).compute_dtype == "float32"
    after = _training("float32", Console(file=io.StringIO()))
    assert precision.record(after.model)["policy"] == "float32"
    assert {layer.compute_dtype for layer in after.model.layers} == {"float32"}


def test_mixed_bfloat16_needs_no_loss_scaling(keras_policy):
    from dlrun.training import precision

    console = Console(file=io.StringIO())
    record = precision.record(_training("mixed_bfloat16", console).model)
    assert record["compute_dtype"] == "bfloat16" and record["output_dtype"] == "float32"
    assert record["loss_scaling"] is False
    assert "warning" not in console.file.getvalue()


@pytest.mark.slow
def test_a_mixed_float16_run_records_its_policy_and_keras_jit_choice(tmp_path, keras_policy):
    root = tmp_path / "runs"
    path = tmp_path / "tiny.yaml"
    path.write_text(
        TINY_REGRESSION.format(root=json.dumps(str(root))).replace("batch_size: 16}", "batch_size: 16, precision: mixed_float16}")
    )
    result = invoke("train", path, "--backend", "tensorflow")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(root)
    record = json.loads((folder / "run.json").read_text())
    assert record["precision"]["policy"] == "mixed_float16" and record["precision"]["loss_scaling"] is True
    assert record["jit_compile"] is False  # Keras keeps XLA off for TensorFlow on a CPU; dlrun leaves it to Keras
    assert all(np.isfinite(json.loads((folder / "history.json").read_text())["loss"]))


@needs_jax
@pytest.mark.slow
def test_mixed_bfloat16_trains_on_jax_and_is_recorded(tmp_path):
    record = train_in_fresh_process(tmp_path, "bfloat16", "--backend", "jax", "--set", "train.precision=mixed_bfloat16")
    assert record["status"] == "completed" and record["backend"]["name"] == "jax"
    assert record["precision"] == {
        "policy": "mixed_bfloat16",
        "compute_dtype": "bfloat16",
        "variable_dtype": "float32",
        "output_dtype": "float32",
        "loss_scaling": False,
    }
    assert record["jit_compile"] is True  # Keras compiles with XLA on JAX
    losses = record["history"]["loss"]
    assert len(losses) == 3 and all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_vectorized_folds_fall_back_for_a_mixed_policy(monkeypatch):
    from dlrun import backend
    from dlrun.trials import vectorized

    monkeypatch.setattr(backend, "loaded", lambda: "jax")
    config = {"data": {"name": "synthetic", "num_samples": 40}, "model": "mlp", "train": {"precision": "mixed_bfloat16"}}
    assert vectorized.config_reason([config]) == "train.precision: mixed_bfloat16"
    assert vectorized.config_reason([{**config, "train": {}}]) is None
