"""The `pretrained` architecture: features mode and its cache, end-to-end fine-tuning, run-model bases,
input scaling, and the errors a user can meet. Tiny VGG16s (32x32 inputs, random weights) keep it fast."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest

from dlrun import config, errors, models
from dlrun.config import yaml_strict
from dlrun.data import dataset
from dlrun.models import pretrained
from dlrun.runs import history
from dlrun.training import feature_cache, plan as training_plan
from tests.conftest import CONFIGS, VGG16_MODEL, invoke, run_folders, write_pretrained_config

# --- config ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, expected",
    [
        ({"base": "vgg61"}, 'model.base: received "vgg61"; expected a keras.applications name (convnextbase,'),
        ({"base": "VGG16"}, 'model.base: received "VGG16"; expected'),
        ({"base": "VGG16"}, "(did you mean 'vgg16'?)"),
        (
            {"fine_tune": {"unfreeze": ["block5"]}},
            "model.fine_tune: received a mapping; expected null in features mode (the base is not trained there); set mode: end_to_end",
        ),
        ({"mode": "end_to_end", "fine_tune": {}}, "model.fine_tune.top_layers: received 0; expected a number >= 1 when unfreeze is empty"),
    ],
)
def test_config_mistakes_name_the_key(model, expected):
    with pytest.raises(errors.ConfigError) as caught:
        config.validate({"data": "digits", "model": {"architecture": "pretrained", **model}})
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("name", ["vgg16_features.yaml", "vgg16_finetune.yaml"])
def test_vgg16_configs_model_sections_validate(name):
    """Their data section waits for image_directory; everything else validates now."""
    data = yaml_strict.loads((CONFIGS / name).read_text(encoding="utf-8"))
    data["data"] = {"name": "synthetic", "task": "binary", "input_shape": [150, 150, 3]}
    loaded = config.validate(data)
    assert loaded.model.base == "vgg16" and loaded.model.weights == "imagenet" and loaded.model.dense_units == [256]
    assert loaded.compile.optimizer.name == "rmsprop" and loaded.train.batch_size == 20


# --- input scaling -----------------------------------------------------------------------------------


def _model_config(**changes):
    section = {"architecture": "pretrained", "base": "vgg16", "weights": None, "dense_units": [4], **changes}
    return config.validate({"data": "digits", "model": section}).model


def _parts(keras, loaded, **changes):
    from dlrun.models import inputs

    stem = inputs.stem(keras, loaded)
    return pretrained.parts(_model_config(**changes), stem, loaded.input_shape, loaded.task, loaded.num_classes)


def test_preprocessing_is_the_applications_own(keras):
    from dlrun.models import application_input

    images = np.random.default_rng(0).uniform(0, 255, size=(3, 32, 32, 3)).astype("float32")
    vgg = application_input.ApplicationInput("vgg16", 1.0)
    expected = keras.applications.vgg16.preprocess_input(images.copy())  # RGB->BGR, ImageNet means
    np.testing.assert_allclose(np.asarray(vgg(images)), expected, rtol=1e-6, atol=1e-4)
    mobilenet = application_input.ApplicationInput("mobilenetv2", 255.0)
    np.testing.assert_allclose(np.asarray(mobilenet(images / 255.0)), images / 127.5 - 1.0, atol=1e-5)


def test_rescaled_0_255_images_and_0_1_images_give_the_same_features(keras):
    """With Dataset.rescale = 1/255 the stem's Rescaling gives way to preprocess_input on 0..255."""
    images = np.random.default_rng(1).integers(0, 256, size=(4, 32, 32, 3)).astype("float32")
    labels = np.array([0, 1, 0, 1])
    raw = dataset.Dataset(task="binary", train=(images, labels), num_classes=2, rescale=1 / 255)
    unit = dataset.Dataset(task="binary", train=(images / 255.0, labels), num_classes=2)
    from_raw, from_unit = _parts(keras, raw), _parts(keras, unit)
    from_unit.base.set_weights(from_raw.base.get_weights())
    assert [layer.name for layer in from_raw.extractor.layers] == ["input", "application_input", "vgg16"]
    assert from_raw.extractor.get_layer("application_input").scale == 1.0
    assert from_unit.extractor.get_layer("application_input").scale == 255.0
    expected_inputs = keras.applications.vgg16.preprocess_input(images.copy())
    np.testing.assert_allclose(
        np.asarray(from_raw.base(expected_inputs)), from_raw.extractor.predict(images, verbose=0), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        from_raw.extractor.predict(images, verbose=0), from_unit.extractor.predict(images / 255.0, verbose=0), rtol=1e-4, atol=1e-4
    )


# --- errors through the CLI: exit 2, a clear message, no run folder --------------------------------------


def test_offline_imagenet_download_says_which_file_goes_where(tmp_path, monkeypatch, keras):
    from keras.src.utils import file_utils

    url = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"

    def offline(*args, **kwargs):
        raise Exception(f"URL fetch failure on {url}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(file_utils, "get_file", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    path = write_pretrained_config(tmp_path / "c.yaml", tmp_path / "runs", "{architecture: pretrained, base: vgg16, weights: imagenet}")
    result = invoke("train", path)
    assert result.exit_code == 2, result.output
    expected_file = tmp_path / "keras_home" / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert "model.weights: received 'imagenet', but the vgg16 ImageNet weights could not be downloaded (" in result.stderr
    assert f"expected vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 in Keras' cache at {expected_file}" in result.stderr
    assert "or weights: <path to a local .h5/.weights.h5 file>" in result.stderr
    assert "Traceback" not in result.output
    assert run_folders(tmp_path / "runs") == []


@pytest.mark.parametrize(
    "model, expected",
    [
        (
            "{architecture: pretrained, base: vgg16, weights: absent.weights.h5}",
            "model.weights: received 'absent.weights.h5'; expected imagenet, null or an existing .h5/.weights.h5 file (no such file)",
        ),
        (
            VGG16_MODEL + ", mode: end_to_end, fine_tune: {unfreeze: [block9]}}",
            "model.fine_tune.unfreeze: received 'block9'; expected the start of a layer name of the base (block1_conv1,",
        ),
        (
            "{architecture: pretrained, base: runs/absent/model.keras}",
            "model.base: received 'runs/absent/model.keras'; expected a keras.applications name or an existing run's model.keras (no such file)",
        ),
        ("{architecture: pretrained, base: vgg16, weights: null}", "model.base: received 'vgg16' (include_top false"),
    ],
)
def test_bad_pretrained_settings_are_config_errors(tmp_path, model, expected):
    shape = "[16, 16, 3]" if "include_top false" in expected else "[32, 32, 3]"  # VGG16 needs >= 32x32
    result = invoke("train", write_pretrained_config(tmp_path / "c.yaml", tmp_path / "runs", model, shape=shape))
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert run_folders(tmp_path / "runs") == []


# --- features mode -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_features_mode_caches_the_base_outputs_and_reuses_them(tmp_path, monkeypatch):
    path = write_pretrained_config(tmp_path / "c.yaml", tmp_path / "runs", VGG16_MODEL + "}")
    first = invoke("train", path)
    assert first.exit_code == 0, first.output
    assert "features: ran the base once over the train split (32 samples)" in first.output
    (entry,) = (tmp_path / "feature_cache").iterdir()  # feature_cache/ beside the runs root
    assert sorted(item.name for item in entry.iterdir()) == ["identity.json", "test.npz", "train.npz", "validation.npz"]
    with np.load(entry / "train.npz") as stored:
        assert stored["features"].shape == (32, 1, 1, 512)  # VGG16's output for 32x32 images

    def base_must_not_run(*args, **kwargs):
        raise AssertionError("the base ran although its features were cached")

    monkeypatch.setattr(feature_cache.FeatureCache, "extract", base_must_not_run)
    second = invoke("train", path)
    assert second.exit_code == 0, second.output
    assert f"features: read from the cache {entry} (32 train, 8 validation, 10 test); the base was not run" in second.output
    first_run, second_run = run_folders(tmp_path / "runs")
    assert history.load(first_run / "history.json") == history.load(second_run / "history.json")

    # model.keras is the whole model (base + head): it takes images and scores what the head scored.
    loaded_config = config.load(path)
    from dlrun import data

    test_images, test_labels = data.load(loaded_config.data, loaded_config.seed).test
    with warnings.catch_warnings(record=True) as caught:  # the optimizer saved with base + head loads whole
        warnings.simplefilter("always")
        saved = models.load_model(second_run / "model.keras")
    assert not [warning for warning in caught if "Skipping variable loading" in str(warning.message)]
    assert saved.input_shape == (None, 32, 32, 3)
    recorded = json.loads((second_run / "metrics.json").read_text())["metrics"]
    on_images = saved.evaluate(test_images, test_labels, verbose=0, return_dict=True)
    assert on_images["accuracy"] == pytest.approx(recorded["accuracy"])
    assert on_images["loss"] == pytest.approx(recorded["loss"], rel=1e-4)


@pytest.mark.slow
def test_a_changed_seed_with_random_weights_is_a_new_cache_entry(tmp_path):
    path = write_pretrained_config(tmp_path / "c.yaml", tmp_path / "runs", VGG16_MODEL + "}", epochs=1)
    assert invoke("train", path).exit_code == 0
    assert invoke("train", path, "--set", "seed=6").exit_code == 0
    assert len(list((tmp_path / "feature_cache").iterdir())) == 2
    # each run names its entry, so `dlrun runs clean` keeps both; once a run is gone, its entry goes
    first, second = run_folders(tmp_path / "runs")
    named = [json.loads((run / "run.json").read_text())["feature_cache"] for run in (first, second)]
    assert sorted(named) == sorted(str(entry.resolve()) for entry in (tmp_path / "feature_cache").iterdir())
    assert "feature-cache entry" not in invoke("runs", "clean", tmp_path / "runs").output
    shutil.rmtree(first)
    cleaned = invoke("runs", "clean", tmp_path / "runs", "--yes")
    assert cleaned.exit_code == 0, cleaned.output
    assert [str(entry.resolve()) for entry in (tmp_path / "feature_cache").iterdir()] == [named[1]]


# --- end to end and fine-tuning ----------------------------------------------------------------------


@pytest.mark.slow
def test_fine_tuning_trains_exactly_the_unfrozen_block(keras):
    import io

    from rich import console as rich_console

    from dlrun.training import optimizers

    section = {
        "architecture": "pretrained",
        "base": "vgg16",
        "weights": None,
        "dense_units": [4],
        "mode": "end_to_end",
        "fine_tune": {"unfreeze": ["block5"], "epochs": 1, "learning_rate": 1e-3},
    }
    loaded_config = config.validate(
        {
            "data": {"name": "synthetic", "task": "binary", "input_shape": [32, 32, 3], "num_samples": 24},
            "model": section,
            "compile": {"optimizer": {"name": "sgd", "learning_rate": 0.1}},
            "train": {"epochs": 1},
        }
    )
    images = np.random.default_rng(2).uniform(0, 1, size=(16, 32, 32, 3)).astype("float32")
    loaded = dataset.Dataset(task="binary", train=(images, np.arange(16) % 2), num_classes=2)
    plan = training_plan.plan(loaded_config, loaded, rich_console.Console(file=io.StringIO()))
    assert [(phase.name, phase.epochs, phase.optimizer.learning_rate) for phase in plan.phases] == [
        ("frozen", 1, 0.1),
        ("fine_tune", 1, 1e-3),
    ]
    base = plan.model.get_layer("vgg16")

    def fit(phase):
        plan.model.compile(optimizer=optimizers.get(phase.optimizer), loss="binary_crossentropy")
        plan.model.fit(images, loaded.train[1], batch_size=8, epochs=1, verbose=0)

    def weights(prefix):
        return [np.array(w.numpy()) for layer in base.layers if layer.name.startswith(prefix) for w in layer.weights]

    before = {prefix: weights(prefix) for prefix in ("block4", "block5")}
    fit(plan.phases[0])
    assert all(np.array_equal(a, b) for prefix in before for a, b in zip(before[prefix], weights(prefix)))
    note = plan.phases[1].prepare()
    assert note == "unfroze 4 base layer(s): block5_conv1, block5_conv2, block5_conv3, block5_pool"
    assert [layer.name for layer in base.layers if layer.trainable and layer.weights] == ["block5_conv1", "block5_conv2", "block5_conv3"]
    fit(plan.phases[1])
    assert all(np.array_equal(a, b) for a, b in zip(before["block4"], weights("block4")))
    assert not any(np.array_equal(a, b) for a, b in zip(before["block5"], weights("block5")))


@pytest.mark.slow
def test_end_to_end_with_fine_tuning_records_both_phases(tmp_path):
    model = VGG16_MODEL + ", mode: end_to_end, fine_tune: {top_layers: 2, epochs: 2}}"
    result = invoke("train", write_pretrained_config(tmp_path / "c.yaml", tmp_path / "runs", model, epochs=2))
    assert result.exit_code == 0, result.output
    assert "phase 1/2 frozen: epochs 1-2, learning rate 0.001" in result.output
    assert "phase 2/2 fine_tune: epochs 3-4, learning rate 1e-05; unfroze 2 base layer(s): block5_conv3, block5_pool" in result.output
    assert "epoch 4/4" in result.output
    (run,) = run_folders(tmp_path / "runs")
    recorded = history.load(run / "history.json")
    assert recorded["epoch"] == [1, 2, 3, 4]
    assert recorded["phase"] == ["frozen", "frozen", "fine_tune", "fine_tune"]
    assert len(recorded["val_loss"]) == 4 and "phase" not in history.metric_names(recorded)
    assert not (tmp_path / "feature_cache").exists()  # end_to_end never caches


# --- a previous run's model as the base ------------------------------------------------------------------


@pytest.mark.slow
def test_a_previous_runs_model_is_a_base(tmp_path):
    convnet = "{architecture: convnet, filters: [4], dense_units: [6]}"
    first = invoke("train", write_pretrained_config(tmp_path / "a.yaml", tmp_path / "runs", convnet, epochs=1, shape="[12, 12, 3]"))
    assert first.exit_code == 0, first.output
    (previous,) = run_folders(tmp_path / "runs")
    model = f"{{architecture: pretrained, base: {previous / 'model.keras'}, dense_units: [3], base_layer: reduce}}"
    second = invoke("train", write_pretrained_config(tmp_path / "b.yaml", tmp_path / "runs2", model, epochs=1, shape="[12, 12, 3]"))
    assert second.exit_code == 0, second.output
    (run,) = run_folders(tmp_path / "runs2")
    saved = models.load_model(run / "model.keras", compile=False)  # its layers only (compiled, Keras restores an optimizer it warns about)
    assert saved.get_layer("base").output.shape == (None, 5 * 5 * 4)  # the previous convnet's flattened conv output
    assert saved.get_layer("head").get_layer("dense_1").units == 3
    bad = invoke(
        "train", write_pretrained_config(tmp_path / "c.yaml", tmp_path / "runs3", model.replace("reduce", "nope"), shape="[12, 12, 3]")
    )
    assert bad.exit_code == 2
    assert "model.base_layer: received 'nope'; expected a layer of" in bad.stderr
    wrong_shape = invoke("train", write_pretrained_config(tmp_path / "d.yaml", tmp_path / "runs3", model, shape="[16, 16, 3]"))
    assert wrong_shape.exit_code == 2
    assert (
        "model.base: received a model for inputs of shape [12, 12, 3]; expected one for this data's inputs of shape [16, 16, 3]"
        in wrong_shape.stderr
    )
    assert run_folders(tmp_path / "runs3") == []


@pytest.mark.slow
def test_kfold_in_features_mode_trains_the_folds_on_cached_features(tmp_path, monkeypatch):
    """Each fold runs the base once over its split and trains the head on the features (not the base on
    every batch); a second K-fold run reads every fold's features from the cache and repeats the numbers."""
    path = write_pretrained_config(tmp_path / "c.yaml", tmp_path / "runs", VGG16_MODEL + "}")
    extracted = []
    original = feature_cache.FeatureCache.extract

    def counted(self, extractor, split, arguments):
        extracted.append(split)
        return original(self, extractor, split, arguments)

    monkeypatch.setattr(feature_cache.FeatureCache, "extract", counted)
    first = invoke("kfold", path, "--k", "2")
    assert first.exit_code == 0, first.output
    # two folds (train + validation each) and the refit (train, and test for its evaluation)
    assert sorted(extracted) == sorted(["train", "validation"] * 2 + ["train", "test"])
    assert len(list((tmp_path / "feature_cache").iterdir())) == 3
    assert "feature-cache entry" not in invoke("runs", "clean", tmp_path / "runs").output  # kfold.json names them all

    def base_must_not_run(*args, **kwargs):
        raise AssertionError("the base ran although its features were cached")

    monkeypatch.setattr(feature_cache.FeatureCache, "extract", base_must_not_run)
    second = invoke("kfold", path, "--k", "2")
    assert second.exit_code == 0, second.output
    one, two = run_folders(tmp_path / "runs")
    for index in (1, 2):
        assert history.load(one / "folds" / str(index) / "history.json") == history.load(two / "folds" / str(index) / "history.json")
    assert json.loads((one / "metrics.json").read_text())["metrics"] == json.loads((two / "metrics.json").read_text())["metrics"]


# --- a weights file that is not the base's weights: exit 2 naming model.weights and the file ------------


def _bad_weights_file(kind: str, folder):
    """A file given as `model.weights` that is not VGG16 weights: empty, garbage, HDF5 of something else,
    another model's weights, a text file."""
    import h5py

    path = folder / ("weights.txt" if kind == "text" else "weights.h5")
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)  # an HDF5 signature, then noise
    elif kind == "text":
        path.write_text("these are not weights\n")
    elif kind.startswith("foreign"):
        path = folder / ("foreign.weights.h5" if kind == "foreign .weights.h5" else "foreign.h5")
        with h5py.File(path, "w") as handle:
            handle.create_dataset("images", data=np.zeros((2, 3)))
    else:  # another model's weights, in Keras' legacy .h5 layout
        from dlrun import backend

        keras = backend.import_keras()
        other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="only")])
        other.save_weights(folder / "other.weights.h5")
        path = folder / "other.weights.h5"
    return path


@pytest.mark.parametrize("kind", ["empty", "garbage", "text", "foreign hdf5", "foreign .weights.h5", "another model's weights"])
def test_a_weights_file_that_is_not_the_base_s_weights_exits_2_naming_it(tmp_path, kind):
    weights = _bad_weights_file(kind, tmp_path)
    content = weights.read_bytes()
    model = f"{{architecture: pretrained, base: vgg16, weights: {json.dumps(str(weights))}, dense_units: [8]}}"
    result = invoke("train", write_pretrained_config(tmp_path / "c.yaml", tmp_path / "runs", model))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"model.weights: received {str(weights)!r}, which cannot be loaded as vgg16 weights (" in result.stderr
    assert "expected imagenet, null or the vgg16 weights in Keras' .h5/.weights.h5 format (include_top false)" in result.stderr
    assert run_folders(tmp_path / "runs") == []
    assert weights.read_bytes() == content  # the file is only read
