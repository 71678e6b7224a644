"""`dlrun.training.gradients` on every backend: input gradients, Grad-CAM and filter patterns, the custom loop.

The suite runs on TensorFlow in-process (tests/conftest.py); JAX and PyTorch run in fresh processes
(a process cannot switch backends) and are skipped, with the reason printed, when not installed.
Tolerances: Grad-CAM of one saved model on two backends differs only by float32 rounding of the same
convolutions (1e-4 on maps in [0, 1]); the custom loop and the backend's own `fit` run the same ops on
the same batches, so they agree to a few float32 ulps (rtol 1e-6), as on TensorFlow (tests/test_loop.py).
"""

import importlib.util
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dlrun import backend
from dlrun.training import gradients
from tests.conftest import (
    CONFIGS,
    RESUME_SCRIPT,
    TINY_REGRESSION,
    assert_resumed_after_epoch_2,
    invoke,
    run_folders,
    subprocess_env,
)

OTHER_BACKENDS = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(
            importlib.util.find_spec(name) is None, reason=f"{name} is not installed ({backend.INSTALL[name]}); its gradient tests skipped"
        ),
    )
    for name in ("jax", "torch")
]


def _python(name: str, script: str, *arguments: str) -> dict:
    """Run `script` on backend `name` in a fresh process; return the JSON of its last line."""
    result = subprocess.run(
        [sys.executable, "-c", script, *arguments], capture_output=True, text=True, timeout=300, env=subprocess_env(KERAS_BACKEND=name)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _dlrun(name: str, *arguments) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "dlrun", *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(KERAS_BACKEND=name),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_value_and_gradient_on_tensorflow():
    keras = backend.import_keras()
    value = np.array([[1.0, -2.0], [0.5, 3.0]], dtype="float32")
    (total, aux), gradient = gradients.value_and_gradient(lambda x: (keras.ops.sum(x * x), x + 1), value, has_aux=True)
    assert float(total) == pytest.approx(14.25)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(gradient), 2 * value)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(aux), value + 1)


GRADIENT = textwrap.dedent("""\
    import json
    import numpy as np
    from dlrun import backend
    from dlrun.training import gradients
    keras = backend.import_keras()
    value = np.array([[1.0, -2.0], [0.5, 3.0]], dtype="float32")
    (total, aux), gradient = gradients.value_and_gradient(lambda x: (keras.ops.sum(x * x), x + 1), value, has_aux=True)
    print(json.dumps({"backend": keras.backend.backend(), "total": float(total),
                      "gradient": keras.ops.convert_to_numpy(gradient).tolist(), "aux": keras.ops.convert_to_numpy(aux).tolist()}))
""")


@pytest.mark.parametrize("name", OTHER_BACKENDS)
def test_value_and_gradient_on_other_backends(name):
    outcome = _python(name, GRADIENT)
    assert outcome["backend"] == name
    assert outcome["total"] == pytest.approx(14.25)
    assert outcome["gradient"] == [[2.0, -4.0], [1.0, 6.0]]
    assert outcome["aux"] == [[2.0, -1.0], [1.5, 4.0]]


@pytest.mark.slow
@pytest.mark.parametrize("name", OTHER_BACKENDS)
def test_gradcam_and_filters_on_other_backends_match_tensorflow(name, small_run, tmp_path):
    """The same saved model.keras and image: Grad-CAM maps equal TensorFlow's; filter patterns are drawn."""
    run, images = small_run
    assert invoke("visualize", "gradcam", "--run", run, "--image", images[0], "--out", tmp_path / "tensorflow").exit_code == 0
    _dlrun(name, "visualize", "gradcam", "--run", run, "--image", images[0], "--out", tmp_path / name)
    maps, classes = {}, {}
    for backend_name in ("tensorflow", name):
        (folder,) = (tmp_path / backend_name / "gradcam").iterdir()
        maps[backend_name] = np.load(folder / f"{images[0].stem}_heatmap.npy")
        classes[backend_name] = json.loads((folder / "gradcam.json").read_text())["images"][0]["class_index"]
    assert maps["tensorflow"].max() == pytest.approx(1.0)  # a real map, not all zeros
    np.testing.assert_allclose(maps[name], maps["tensorflow"], atol=1e-4)
    assert classes[name] == classes["tensorflow"]

    result = _dlrun(
        name, "visualize", "filters", "--run", run, "--layer", "conv_1", "--filters", "3", "--steps", "2", "--out", tmp_path / name
    )
    (folder,) = (tmp_path / name / "filters").iterdir()
    assert sorted(path.name for path in folder.iterdir()) == ["conv_1_filters.npy", "conv_1_filters.png"]
    assert np.load(folder / "conv_1_filters.npy").shape == (3, 24, 24, 1)
    assert "conv_1: 3 filter patterns; mean activation rose" in result.stdout


LOOP_AGAINST_FIT = textwrap.dedent("""\
    import json, sys
    import numpy as np
    from dlrun import backend
    from dlrun.training import batches
    from dlrun.training import loop
    keras = backend.import_keras()
    dropout = float(sys.argv[1])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1)  # 3 classes
    def model():
        backend.seed_everything(5)
        built = keras.Sequential([keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01)),
            keras.layers.Dropout(dropout), keras.layers.Dense(3, activation="softmax")])
        built.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return built
    outcome = {}
    for name in ("fit", "custom"):
        trained = model()
        fit = trained.fit if name == "fit" else (lambda **arguments: loop.fit(trained, seed=5, **arguments))
        history = fit(x=batches.seeded(x[:44], y[:44], 16, 5, 0, 3, shuffle=True), steps_per_epoch=3, shuffle=False,
                      batch_size=16, epochs=3, validation_data=(x[44:], y[44:]), verbose=0)
        outcome[name] = {"history": history.history, "weights": [w.tolist() for w in trained.get_weights()]}
    outcome["tensorflow_imported"] = "tensorflow" in sys.modules
    print(json.dumps(outcome))
""")


@pytest.mark.slow
@pytest.mark.parametrize("name", OTHER_BACKENDS)
def test_custom_loop_matches_the_backends_own_fit(name):
    # PyTorch's Keras dropout draws from torch's global generator, which fit's model build advances
    # before the first batch: the two loops' masks differ there, so PyTorch is compared without dropout.
    outcome = _python(name, LOOP_AGAINST_FIT, "0.3" if name == "jax" else "0.0")
    fitted, looped = outcome["fit"], outcome["custom"]
    assert sorted(looped["history"]) == sorted(fitted["history"]) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    for key, values in fitted["history"].items():
        np.testing.assert_allclose(looped["history"][key], values, rtol=1e-6, err_msg=key)
    assert fitted["history"]["loss"][0] != fitted["history"]["loss"][-1]  # it did train
    for looped_weights, fitted_weights in zip(looped["weights"], fitted["weights"]):
        np.testing.assert_allclose(looped_weights, fitted_weights, rtol=1e-6, atol=1e-7)
    assert outcome["tensorflow_imported"] is False  # NumPy batches: no tf.data


@pytest.mark.slow
@pytest.mark.parametrize("name", OTHER_BACKENDS[:1])
def test_custom_loop_cli_run_on_jax_gives_fits_history_with_callbacks(name, tmp_path):
    """Early stopping, checkpoint and the recorder see the same logs from either loop on JAX."""
    histories = {}
    for loop_name in ("fit", "custom"):
        root = tmp_path / loop_name
        _dlrun(
            name,
            "train",
            CONFIGS / "smoke" / "mlp_multiclass.yaml",
            "--backend",
            name,
            "--set",
            f"train.loop={loop_name}",
            "--set",
            "train.epochs=4",
            "--set",
            f"output.runs_root={root}",
        )
        (folder,) = run_folders(root)
        record = json.loads((folder / "run.json").read_text())
        assert record["status"] == "completed" and record["backend"]["name"] == name
        histories[loop_name] = json.loads((folder / "history.json").read_text())
    assert sorted(histories["custom"]) == sorted(histories["fit"])
    for key, values in histories["fit"].items():
        np.testing.assert_allclose(histories["custom"][key], values, rtol=1e-6, err_msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("name", OTHER_BACKENDS[:1])
def test_custom_loop_on_jax_interrupted_and_resumed_matches_a_straight_run(name, tmp_path):
    path = tmp_path / "resume.yaml"
    config = TINY_REGRESSION.format(root=json.dumps(str(tmp_path / "runs")))
    assert "train: {epochs: 3, batch_size: 16}" in config
    path.write_text(config.replace("train: {epochs: 3, batch_size: 16}", "train: {epochs: 3, batch_size: 16, loop: custom}"))
    outcome = _python(name, RESUME_SCRIPT, str(path))
    assert outcome["backend"] == name
    assert_resumed_after_epoch_2(outcome)
