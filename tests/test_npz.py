"""The `npz` dataset: a local .npz of arrays, read without pickle; its tasks, splits and errors."""

import json

import numpy as np
import pytest

from dlrun import config, data
from tests.conftest import invoke, run_folders


def _config(path, **options):
    return config.validate({"data": {"name": "npz", "path": str(path), **options}, "model": "mlp"})


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_multiclass_with_test_split_rescale_and_names(tmp_path):
    rng = np.random.default_rng(0)
    path = _write(
        tmp_path / "d.npz",
        x_train=rng.integers(0, 256, (50, 4, 4, 1)).astype("uint8"),
        y_train=np.arange(50) % 3,
        x_test=np.zeros((6, 4, 4, 1), "uint8"),
        y_test=np.arange(6) % 3,
    )
    loaded = data.load(_config(path, validation_split=0.2, rescale=0.5, class_names=["a", "b", "c"]).data, seed=1)
    assert loaded.task == "multiclass" and loaded.num_classes == 3 and loaded.class_names == ["a", "b", "c"]
    assert len(loaded.train[0]) == 40 and len(loaded.validation[0]) == 10 and len(loaded.test[0]) == 6
    assert loaded.train[0].dtype == np.float32 and loaded.train[0].max() > 1  # raw values: the model rescales
    assert loaded.rescale == 0.5 and loaded.input_shape == (4, 4, 1)


def test_binary_default_names_and_regression(tmp_path):
    binary = _write(tmp_path / "b.npz", x_train=np.ones((10, 3)), y_train=np.arange(10) % 2)
    loaded = data.load(_config(binary, validation_split=0).data, seed=0)
    assert (loaded.task, loaded.num_classes, loaded.class_names, loaded.validation, loaded.test) == ("binary", 2, ["0", "1"], None, None)
    regression = _write(tmp_path / "r.npz", x_train=np.ones((10, 3)), y_train=np.linspace(0, 1, 10))
    assert data.load(_config(regression).data, seed=0).task == "regression"


def _train_error(tmp_path, path, extra=""):
    root = tmp_path / "runs"
    config_file = tmp_path / "c.yaml"
    config_file.write_text(
        f"data: {{name: npz, path: {json.dumps(str(path))}{extra}}}\nmodel: mlp\noutput: {{runs_root: {json.dumps(str(root))}}}\n"
    )
    result = invoke("train", config_file)
    assert result.exit_code == 2, result.output
    assert run_folders(root) == [] and "Traceback" not in result.stderr
    return result.stderr


def test_missing_file(tmp_path):
    message = _train_error(tmp_path, tmp_path / "nope.npz")
    assert f"data.path: received '{tmp_path / 'nope.npz'}'; expected an existing .npz file (no such file)" in message


def test_missing_keys_lists_the_keys_present(tmp_path):
    path = _write(tmp_path / "d.npz", images=np.ones((4, 2)), labels=np.arange(4))
    message = _train_error(tmp_path, path)
    assert "has no x_train or y_train; expected x_train and y_train" in message
    assert "the file holds: images, labels" in message


def test_length_mismatch(tmp_path):
    path = _write(tmp_path / "d.npz", x_train=np.ones((5, 2)), y_train=np.arange(4) % 2)
    assert "x_train has 5 samples but y_train has 4; expected the same number" in _train_error(tmp_path, path)


def test_pickled_arrays_are_refused(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.array([{"a": 1}] * 4, dtype=object), y_train=np.arange(4) % 2)
    assert "cannot be read without pickle" in _train_error(tmp_path, path)


def test_class_names_must_match_the_labels(tmp_path):
    path = _write(tmp_path / "d.npz", x_train=np.ones((6, 2)), y_train=np.arange(6) % 3)
    assert "data.class_names: received 2 name(s); expected 3" in _train_error(tmp_path, path, ", class_names: [a, b]")


@pytest.mark.parametrize(
    "bad, expected",
    [("path: 3", "data.path: received 3; expected a string"), ("rescale: 0", "data.rescale: received 0; expected a number > 0")],
)
def test_config_errors(write_config, bad, expected):
    result = invoke("config", "validate", write_config(f"data: {{name: npz, {bad}}}\nmodel: mlp\n"))
    assert result.exit_code == 2 and expected in result.stderr, result.stderr


def test_a_huge_label_is_refused_before_allocating(tmp_path):
    import time

    path = _write(tmp_path / "d.npz", x_train=np.ones((6, 2)), y_train=np.array([0, 1, 0, 1, 0, 2_000_000_000]))
    started = time.perf_counter()
    message = _train_error(tmp_path, path)
    assert time.perf_counter() - started < 10
    assert "a class label is 2000000000" in message and "at most 100000 classes" in message


def test_a_class_with_a_single_sample_cannot_be_split_stratified(tmp_path):
    path = _write(tmp_path / "d.npz", x_train=np.ones((9, 2)), y_train=np.array([0, 0, 0, 0, 1, 1, 1, 1, 2]))
    message = _train_error(tmp_path, path, ", validation_split: 0.2")
    assert "data.validation_split: received 0.2, but class 2 has 1 sample in y_train" in message
    assert "at least 2 samples of every class" in message and "validation_split: 0" in message


def test_test_features_of_another_shape_are_refused_before_the_run_folder(tmp_path):
    path = _write(tmp_path / "d.npz", x_train=np.ones((10, 6)), y_train=np.arange(10) % 2, x_test=np.ones((4, 7)), y_test=np.arange(4) % 2)
    message = _train_error(tmp_path, path)
    assert "x_test has samples of shape [7]; expected [6], the shape of x_train's samples" in message


def test_a_test_label_absent_from_training_is_refused(tmp_path):
    path = _write(
        tmp_path / "d.npz", x_train=np.ones((10, 6)), y_train=np.arange(10) % 2, x_test=np.ones((4, 6)), y_test=np.array([0, 1, 7, 1])
    )
    message = _train_error(tmp_path, path)
    assert "y_test holds the label 7, which y_train never holds (its labels are 0..1)" in message
