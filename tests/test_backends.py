"""The Keras backend (`backend:`, `--backend`), the memory-safe multi-hot stem, and `train.distribute`.

In-process tests run on TensorFlow (tests/conftest.py pins KERAS_BACKEND=tensorflow: Keras cannot
switch backend inside one process). JAX runs happen in subprocesses and are skipped, with the reason
printed, when JAX is not installed (`pip install 'dlrun[jax]'`).
"""

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dlrun import backend, config as config_module, errors
from dlrun.config import schema
from dlrun.training import distribution
from tests.conftest import (
    RESUME_SCRIPT,
    ROOT,
    TINY_REGRESSION,
    assert_resumed_after_epoch_2,
    invoke,
    review_tokens,
    run_folders,
    subprocess_env,
    train_in_fresh_process,
)

HAS_JAX = importlib.util.find_spec("jax") is not None
needs_jax = pytest.mark.skipif(not HAS_JAX, reason="JAX is not installed (pip install 'dlrun[jax]'); JAX-backend tests skipped")


def _config(**changes) -> schema.Config:
    data = {
        "data": {"name": "synthetic", "task": "regression", "num_samples": 60, "input_shape": [4]},
        "model": {"architecture": "mlp", "units": [4]},
        **changes,
    }
    return config_module.validate(data)


# --- choosing -----------------------------------------------------------------------------------


def test_auto_is_the_visible_default():
    assert schema.Config.model_fields["backend"].default == "auto"
    assert "backend: auto" in config_module.to_yaml(_config())


def test_auto_picks_jax_for_a_dense_model_when_installed():
    choice = backend.choose(_config(), available=["tensorflow", "jax"], already=None, environment=None)
    assert choice.name == "jax"
    assert "dense (mlp)" in choice.reason


def test_auto_falls_back_to_tensorflow_without_jax_and_says_why():
    choice = backend.choose(_config(), available=["tensorflow"], already=None, environment=None)
    assert choice == backend.Choice("tensorflow", choice.reason)
    assert "JAX" in choice.reason and "not installed" in choice.reason


@pytest.mark.parametrize("path", ["quickstart.yaml", "cats_dogs.yaml", "signs.yaml", "vgg16_finetune.yaml"])
def test_auto_keeps_convnets_and_the_custom_loop_on_tensorflow(path):
    loaded = config_module.load(ROOT / "configs" / path)
    choice = backend.choose(loaded, available=["tensorflow", "jax", "torch"], already=None, environment=None)
    assert choice.name == "tensorflow", (path, choice)


def test_auto_keeps_mirrored_and_the_custom_loop_on_tensorflow():
    choice = backend.choose(_config(train={"distribute": "mirrored"}), available=["tensorflow", "jax"], already=None, environment=None)
    assert choice.name == "tensorflow" and "needs TensorFlow" in choice.reason
    custom = backend.choose(_config(train={"loop": "custom"}), available=["tensorflow", "jax"], already=None, environment=None)
    assert custom.name == "tensorflow" and "no faster on JAX" in custom.reason  # it runs there, measured no faster
    assert backend.choose(_config(train={"loop": "custom"}), available=["jax"], already=None, environment=None).name == "jax"


def test_auto_uses_the_backend_keras_was_already_imported_with():
    choice = backend.choose(_config(), available=["tensorflow", "jax"], already="tensorflow", environment="")
    assert choice.name == "tensorflow"
    assert choice.reason == ("auto: Keras was already imported in this process with the tensorflow backend (a new process would use jax)")
    with pytest.raises(errors.ConfigError) as caught:
        backend.choose(_config(train={"distribute": "mirrored"}), available=["tensorflow", "jax"], already="jax")
    assert "train.distribute: received 'mirrored', which needs TensorFlow; Keras was already imported" in str(caught.value)


def test_auto_follows_keras_backend_in_the_environment_unless_tensorflow_is_needed():
    choice = backend.choose(_config(), available=["tensorflow", "jax", "torch"], already=None, environment="torch")
    assert choice == backend.Choice("torch", "auto: KERAS_BACKEND=torch is set in the environment")
    mirrored = backend.choose(
        _config(train={"distribute": "mirrored"}), available=["tensorflow", "torch"], already=None, environment="torch"
    )
    assert mirrored.name == "tensorflow"


def test_an_explicit_backend_cannot_switch_a_loaded_keras():
    with pytest.raises(errors.ConfigError) as caught:
        backend.choose(_config(backend="jax"), available=["tensorflow", "jax"], already="tensorflow")
    assert "backend: received 'jax'; Keras was already imported in this process with the 'tensorflow' backend" in str(caught.value)


def test_an_explicit_backend_that_is_not_installed_names_the_install_command():
    with pytest.raises(errors.ConfigError) as caught:
        backend.choose(_config(backend="torch"), available=["tensorflow"], already=None)
    assert (
        "backend: received 'torch', which is not installed; expected one of tensorflow (or install it: pip install 'dlrun[torch]'"
        in str(caught.value)
    )


def test_tf_distribute_code_is_refused_off_tensorflow(monkeypatch):
    monkeypatch.setattr(backend, "loaded", lambda: "jax")
    with pytest.raises(errors.ConfigError) as caught:
        distribution.require_tensorflow("train.distribute: mirrored")
    assert "backend: received 'jax'; expected tensorflow for train.distribute: mirrored (only TensorFlow runs it)" in str(caught.value)


def test_the_custom_loop_is_accepted_on_every_backend():
    for name in backend.BACKENDS:
        assert backend.problems(_config(backend=name, train={"loop": "custom"})) == []


def test_list_backends():
    result = invoke("list", "backends")
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()[1:]] == list(backend.BACKENDS)


# --- through the CLI: bad combinations exit 2 and leave no run folder ------------------------------


@pytest.mark.parametrize(
    "items, message",
    [
        (
            ["--backend", "jax", "--set", "train.distribute=mirrored"],
            "train.distribute: received 'mirrored' with backend 'jax'; expected backend: tensorflow (or auto)",
        ),
        (
            ["--set", "train.loop=custom", "--set", "train.distribute=mirrored"],
            "train.loop: received 'custom' with train.distribute: mirrored; expected train.loop: fit",
        ),
        (["--set", "train.devices=[/cpu:0]"], 'train.devices: received ["/cpu:0"]; expected [] when distribute is none'),
        (["--backend", "theano"], 'backend: received "theano"; expected one of auto, tensorflow, jax, torch'),
        (
            ["--backend", "torch", "--set", "train.distribute=data_parallel"],
            "train.distribute: received 'data_parallel' with backend 'torch'; expected backend: jax (or auto), since only JAX runs",
        ),
        (
            ["--set", "train.distribute=data_parallel", "--set", "train.devices=[/gpu:0]"],
            'train.devices: received ["/gpu:0"]; expected [] when distribute is data_parallel',
        ),
        (
            ["--set", "train.distribute=data_parallel", "--set", "train.loop=custom"],
            "train.loop: received 'custom' with train.distribute: data_parallel; expected train.loop: fit",
        ),
    ],
)
def test_bad_backend_settings_exit_2_without_a_run_folder(tmp_path, items, message):
    root = tmp_path / "runs"
    path = tmp_path / "config.yaml"
    path.write_text(f"data: {{name: synthetic, num_samples: 40}}\nmodel: mlp\noutput: {{runs_root: {json.dumps(str(root))}}}\n")
    result = invoke("train", path, *items)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not root.exists()


def test_kfold_refuses_distribute(tmp_path):
    root = tmp_path / "runs"
    path = tmp_path / "config.yaml"
    path.write_text(
        f"data: {{name: synthetic, num_samples: 40}}\nmodel: mlp\ntrain: {{distribute: mirrored}}\n"
        f"output: {{runs_root: {json.dumps(str(root))}}}\n"
    )
    result = invoke("kfold", path, "--k", "2")
    assert result.exit_code == 2
    assert "train.distribute: received 'mirrored' with dlrun kfold; expected 'none'" in result.stderr
    assert not root.exists()


# --- whole runs in fresh processes ------------------------------------------------------------------

HIDE_JAX = "import sys\nsys.modules['jax'] = None\nsys.argv[0] = 'dlrun'\nfrom dlrun import cli\ncli.main()\n"


@pytest.mark.slow
def test_without_jax_auto_runs_on_tensorflow_and_records_why(tmp_path):
    record = train_in_fresh_process(tmp_path, "hidden", probe=HIDE_JAX)
    assert record["status"] == "completed"
    assert record["backend"]["name"] == "tensorflow"
    assert "not installed" in record["backend"]["reason"]


@needs_jax
@pytest.mark.slow
def test_jax_backend_is_picked_by_auto_and_repeats_exactly(tmp_path):
    first = train_in_fresh_process(tmp_path, "first")
    second = train_in_fresh_process(tmp_path, "second", "--backend", "jax")
    assert first["backend"]["name"] == "jax" and first["backend"]["reason"].startswith("auto:")
    assert second["backend"]["reason"] == "backend: jax was asked for in the config"
    assert "jax" in first["versions"] and "tensorflow" not in first["versions"]  # not imported: arrays need no tf.data
    assert first["history"] == second["history"]
    assert first["test_metrics"] == second["test_metrics"]
    assert np.isfinite(first["test_metrics"]["loss"])


@needs_jax
@pytest.mark.slow
def test_jax_compilation_cache_is_filled_reused_and_changes_no_number(tmp_path):
    cache = tmp_path / "jax-cache"
    cold = train_in_fresh_process(tmp_path, "cold", "--backend", "jax", env={"DLRUN_JAX_CACHE": str(cache)})
    entries = {path.name for path in cache.iterdir()}
    warm = train_in_fresh_process(tmp_path, "warm", "--backend", "jax", env={"DLRUN_JAX_CACHE": str(cache)})
    off = train_in_fresh_process(tmp_path, "off", "--backend", "jax", env={"DLRUN_JAX_CACHE": "off"})
    assert cold["backend"]["compilation_cache"] == warm["backend"]["compilation_cache"] == str(cache)
    assert "compilation_cache" not in off["backend"]
    assert entries, "the first run wrote no compiled program to the cache"
    assert {path.name for path in cache.iterdir()} == entries  # the same model: every program was reused
    assert cold["history"] == warm["history"] == off["history"]
    assert cold["test_metrics"] == warm["test_metrics"] == off["test_metrics"]


@needs_jax
@pytest.mark.slow
def test_tensorboard_on_jax_imports_tensorflow_quietly(tmp_path):
    # TensorBoard writes through TensorFlow on every backend; its import must not print native log lines.
    path = tmp_path / "tiny.yaml"
    path.write_text(
        TINY_REGRESSION.format(root=json.dumps(str(tmp_path / "runs"))) + "train: {epochs: 1, batch_size: 16, tensorboard: true}\n"
    )
    path.write_text(path.read_text().replace("train: {epochs: 3, batch_size: 16}\n", ""))
    result = subprocess.run(
        [sys.executable, "-m", "dlrun", "train", str(path), "--backend", "jax"],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    (folder,) = run_folders(tmp_path / "runs")
    assert list((folder / "tensorboard").rglob("events.out.tfevents.*"))


@needs_jax
@pytest.mark.slow
def test_resume_on_jax_matches_a_straight_run(tmp_path):
    path = tmp_path / "resume.yaml"
    path.write_text(TINY_REGRESSION.format(root=json.dumps(str(tmp_path / "runs"))))
    result = subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT, str(path)], capture_output=True, text=True, timeout=300, env=subprocess_env()
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["backend"] == "jax"
    assert_resumed_after_epoch_2(outcome)


JAX_TF_DATA = textwrap.dedent("""\
    import json, os
    os.environ["KERAS_BACKEND"] = "jax"
    from dlrun import backend
    keras = backend.import_keras()
    import sys
    before = "tensorflow" in sys.modules
    import numpy as np, tensorflow as tf
    from dlrun.data import pipeline
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)).astype("float32"), rng.integers(2, size=40)
    split = pipeline.Pipeline(tf.data.Dataset.from_tensor_slices((x, y)), y, (5,), seed=1)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    history = model.fit(split.batches(8, shuffle=True), epochs=2, verbose=0)
    print(json.dumps({"before": before, "backend": keras.backend.backend(), "losses": history.history["loss"]}))
""")


@needs_jax
def test_tf_data_pipelines_feed_keras_on_jax(tmp_path):
    """Image folders stay tf.data pipelines on JAX; TensorFlow is imported only when one is used."""
    result = subprocess.run([sys.executable, "-c", JAX_TF_DATA], capture_output=True, text=True, timeout=120, env=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["before"] is False and outcome["backend"] == "jax"
    assert len(outcome["losses"]) == 2 and all(np.isfinite(outcome["losses"]))


# --- multi-hot without the one-hot blow-up ------------------------------------------------------------


def test_multi_hot_gives_category_encodings_vectors_on_tensorflow():
    keras = backend.import_keras()
    from dlrun.models import multi_hot

    tokens = review_tokens()
    expected = np.array(keras.layers.CategoryEncoding(10_000, output_mode="multi_hot")(tokens))
    expected[:, 0] = 0  # the padding column: MultiHot leaves it empty, as the book's encoding does
    received = np.asarray(multi_hot.MultiHot(10_000)(tokens))
    assert received.shape == (48, 10_000)
    np.testing.assert_array_equal(received, expected)


def test_multi_hot_layer_survives_saving(tmp_path):
    keras = backend.import_keras()
    from dlrun import models
    from dlrun.models import multi_hot

    model = keras.Sequential([keras.Input((400,), dtype="int32"), multi_hot.MultiHot(10_000, name="multi_hot"), keras.layers.Dense(1)])
    model.save(tmp_path / "model.keras")
    tokens = review_tokens()
    np.testing.assert_allclose(models.load_model(tmp_path / "model.keras").predict(tokens, verbose=0), model.predict(tokens, verbose=0))


JAX_MULTI_HOT = textwrap.dedent("""\
    import os, sys
    os.environ["KERAS_BACKEND"] = "jax"
    import jax, numpy as np
    from dlrun.models import multi_hot
    tokens = np.load(sys.argv[1])
    np.save(sys.argv[2], np.asarray(multi_hot.MultiHot(10000)(tokens)))
    compiled = jax.jit(lambda batch: multi_hot.MultiHot(10000)(batch)).lower(np.zeros((512, 2500), "int32")).compile()
    print(compiled.memory_analysis().temp_size_in_bytes)
""")


@needs_jax
def test_multi_hot_on_jax_matches_and_stays_small_at_imdb_scale(tmp_path):
    keras = backend.import_keras()
    tokens = review_tokens()
    np.save(tmp_path / "tokens.npy", tokens)
    result = subprocess.run(
        [sys.executable, "-c", JAX_MULTI_HOT, str(tmp_path / "tokens.npy"), str(tmp_path / "out.npy")],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = np.array(keras.layers.CategoryEncoding(10_000, output_mode="multi_hot")(tokens))
    expected[:, 0] = 0  # the padding column
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    # batch 512 x 2,500 tokens x 10,000 words: the one-hot route asked for 51 GB; a scatter needs tens of MB.
    assert int(result.stdout.strip().splitlines()[-1]) < 200 * 2**20


# --- one model across devices ------------------------------------------------------------------------

MIRRORED = textwrap.dedent("""\
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from dlrun import backend, config, models
    from dlrun.training import distribution, trainer
    from rich.console import Console
    loaded = config.load(sys.argv[1])
    backend.activate(loaded)
    from dlrun import data
    with distribution.scope(loaded) as strategy:
        model = models.build(loaded.model, data.load(loaded.data, loaded.seed))
    kinds = sorted({type(weight.value).__name__ for weight in model.weights})
    run = trainer.train(loaded, Console(file=open("/dev/null", "w")))
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "kinds": kinds, "run": str(run.path)}))
""")


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    root = tmp_path / "runs"
    path = tmp_path / "mirrored.yaml"
    # 100 samples: 64 train, 16 validation, 20 test; every split's first batch halves evenly (see dlrun.backend).
    mirrored = "train: {epochs: 2, batch_size: 16, distribute: mirrored, devices: ['/cpu:0', '/cpu:1']}"
    text = TINY_REGRESSION.format(root=json.dumps(str(root))).replace("train: {epochs: 3, batch_size: 16}", mirrored)
    path.write_text(text.replace("num_samples: 80", "num_samples: 100"))
    result = subprocess.run([sys.executable, "-c", MIRRORED, str(path)], capture_output=True, text=True, timeout=300, env=subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["replicas"] == 2
    assert outcome["kinds"] == ["MirroredVariable"]
    record = json.loads((Path(outcome["run"]) / "run.json").read_text())
    assert record["status"] == "completed"
    assert record["backend"]["name"] == "tensorflow" and "train.distribute: mirrored" in record["backend"]["reason"]
    assert len(json.loads((Path(outcome["run"]) / "history.json").read_text())["epoch"]) == 2
