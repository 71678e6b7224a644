"""`dlrun export`: each format reloads and predicts what the run's model predicts; nothing is replaced."""

import importlib.util
import shutil

import numpy as np
import pytest

from dlrun import config, data, models
from dlrun.inference import export
from tests.conftest import invoke


@pytest.fixture(scope="module")
def quickstart(quickstart_run):
    loaded_config = config.load(quickstart_run / "config.yaml")
    inputs = data.load(loaded_config.data, loaded_config.seed).test[0][:16]
    expected = models.load_model(quickstart_run / "model.keras").predict(inputs, verbose=0)
    return quickstart_run, inputs, expected


def test_keras_export_reloads_with_the_same_predictions(quickstart, tmp_path):
    import keras

    run_dir, inputs, expected = quickstart
    target = tmp_path / "exported.keras"
    result = invoke("export", run_dir, "--format", "keras", "--out", target)
    assert result.exit_code == 0, result.output
    reloaded = keras.saving.load_model(target, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), expected, rtol=1e-5, atol=1e-7)
    again = invoke("export", run_dir, "--format", "keras", "--out", target)
    assert again.exit_code == 2
    assert f"--out: {target} already exists; expected a new path" in again.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["exported.keras"]  # no temporary left behind


@pytest.mark.slow
def test_saved_model_export_serves_the_same_predictions(quickstart):
    import tensorflow as tf

    run_dir, inputs, expected = quickstart
    result = invoke("export", run_dir, "--format", "saved_model")
    assert result.exit_code == 0, result.output
    target = run_dir / "export" / "saved_model"
    loaded = tf.saved_model.load(str(target))  # kept: the serving function needs its variables alive
    served = loaded.serve(tf.constant(inputs))
    np.testing.assert_allclose(served.numpy(), expected, rtol=1e-5, atol=1e-6)
    again = invoke("export", run_dir, "--format", "saved_model")
    assert again.exit_code == 2 and "already exists" in again.stderr


@pytest.mark.slow
@pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("tf2onnx", "onnx", "onnxruntime")),
    reason="needs the onnx extra and onnxruntime: pip install 'dlrun[onnx]'",
)
def test_onnx_export_runs_in_onnxruntime_with_the_same_predictions(quickstart, tmp_path):
    import onnxruntime

    run_dir, inputs, expected = quickstart
    target = tmp_path / "model.onnx"
    result = invoke("export", run_dir, "--format", "onnx", "--out", target)
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: inputs})
    np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-6)


def test_onnx_without_its_packages_exits_2_with_the_install_command(quickstart, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    hidden = {"tf2onnx", "onnx"}
    monkeypatch.setattr(export.importlib.util, "find_spec", lambda name, *rest: None if name in hidden else real(name, *rest))
    result = invoke("export", quickstart[0], "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert result.exit_code == 2
    assert "needs tf2onnx and onnx (not installed); expected them installed: pip install 'dlrun[onnx]'" in result.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_bad_format_missing_model_and_bad_out_exit_2(quickstart, tmp_path):
    run_dir = quickstart[0]
    result = invoke("export", run_dir, "--format", "savedmodel")
    assert result.exit_code == 2 and "did you mean 'saved_model'" in result.stderr
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run_dir / "run.json", bare / "run.json")
    result = invoke("export", bare, "--format", "keras")
    assert result.exit_code == 2 and "model.keras: no such file" in result.stderr
    assert not (bare / "export").exists()
    result = invoke("export", run_dir, "--format", "keras", "--out", tmp_path / "model.h5")
    assert result.exit_code == 2 and "expected a file name ending in .keras" in result.stderr
    result = invoke("export", run_dir, "--format", "keras", "--out", tmp_path / "no" / "m.keras")
    assert result.exit_code == 2 and "expected a path in an existing folder" in result.stderr
