"""The `hdf5` dataset on small files in the real SIGNS layout, and configs/signs.yaml end to end."""

import json

import h5py
import numpy as np
import pytest

from dlrun import config, data, errors
from tests.conftest import CONFIGS, invoke, run_folders

CLASSES = 6


def write_signs(folder, train_count=60, test_count=12, seed=0):
    """A train/test pair in the layout of train_signs.h5 / test_signs.h5 (64x64x3 uint8, labels 0-5).

    Each class has its own mean colour, so the images are learnable.
    """
    rng = np.random.default_rng(seed)
    colours = rng.integers(40, 216, size=(CLASSES, 3))
    paths = {}
    for split, count in (("train", train_count), ("test", test_count)):
        labels = np.arange(count) % CLASSES
        images = colours[labels][:, None, None, :] + rng.integers(-30, 31, size=(count, 64, 64, 3))
        path = folder / f"{split}_signs.h5"
        with h5py.File(path, "w") as handle:
            handle.create_dataset(f"{split}_set_x", data=images.clip(0, 255).astype("uint8"))
            handle.create_dataset(f"{split}_set_y", data=labels.astype("int64"))
            handle.create_dataset("list_classes", data=np.arange(CLASSES, dtype="int64"))
        paths[split] = path
    return paths["train"], paths["test"]


@pytest.fixture(scope="module")
def signs_files(tmp_path_factory):
    return write_signs(tmp_path_factory.mktemp("signs"))


def _config(train_path, test_path, **options):
    return config.validate(
        {
            "data": {"name": "hdf5", "train_path": str(train_path), "test_path": None if test_path is None else str(test_path), **options},
            "model": "mlp",
        }
    ).data


def test_loads_the_signs_layout(signs_files):
    loaded = data.load(_config(*signs_files, validation_split=0.2), seed=0)
    assert loaded.task == "multiclass" and loaded.num_classes == 6
    assert loaded.class_names == ["0", "1", "2", "3", "4", "5"]
    assert loaded.input_shape == (64, 64, 3) and loaded.train[0].dtype == np.uint8
    assert loaded.summary()["sizes"] == {"train": 48, "validation": 12, "test": 12}
    assert np.bincount(loaded.validation[1]).tolist() == [2] * 6  # stratified
    assert loaded.rescale == pytest.approx(1 / 255)
    with h5py.File(signs_files[1]) as handle:
        assert np.array_equal(loaded.test[0], handle["test_set_x"][:])


def test_byte_class_names_row_labels_and_two_classes_make_a_binary_task(tmp_path):
    """The course's cat/non-cat files: labels stored as (1, N), class names as bytes."""
    path = tmp_path / "cats.h5"
    with h5py.File(path, "w") as handle:
        handle["train_set_x"] = np.zeros((4, 8, 8, 3), "uint8")
        handle["train_set_y"] = np.array([[0, 1, 0, 1]])
        handle["list_classes"] = np.array([b"non-cat", b"cat"])
    loaded = data.load(_config(path, None, scale=False), seed=0)
    assert loaded.task == "binary" and loaded.class_names == ["non-cat", "cat"]
    assert loaded.train[1].tolist() == [0, 1, 0, 1] and loaded.test is None and loaded.rescale is None


def test_without_a_classes_key_classes_are_named_by_label(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as handle:
        handle["images"] = np.zeros((6, 4, 4, 1), "uint8")
        handle["labels"] = np.array([0, 1, 2, 0, 1, 2])
    loaded = data.load(_config(path, None, train_x_key="images", train_y_key="labels", classes_key=None), seed=0)
    assert loaded.num_classes == 3 and loaded.class_names == ["0", "1", "2"]


def _broken(tmp_path, name, **datasets):
    path = tmp_path / name
    with h5py.File(path, "w") as handle:
        for key, value in datasets.items():
            handle[key] = value
    return path


GOOD_X = np.zeros((6, 4, 4, 3), "uint8")
GOOD_Y = np.array([0, 1, 2, 0, 1, 2])
CLASS_LIST = np.arange(3)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda tmp: tmp / "absent.h5",
            r"data.train_path: received '.*absent.h5' \(no such file\); expected an HDF5 file with the keys "
            r"train_set_x, train_set_y, list_classes",
        ),
        (
            lambda tmp: (tmp / "text.h5").write_text("not hdf5") and tmp / "text.h5",
            r"data.train_path: received '.*text.h5', which is not an HDF5 file; expected an HDF5 file",
        ),
        (
            lambda tmp: _broken(tmp, "nokey.h5", images=GOOD_X, train_set_y=GOOD_Y, list_classes=CLASS_LIST),
            r"nokey.h5: received the keys images, list_classes, train_set_y; expected a dataset named 'train_set_x' "
            r"\(set its name with data.train_x_key\)",
        ),
        (
            lambda tmp: _broken(tmp, "noclasses.h5", train_set_x=GOOD_X, train_set_y=GOOD_Y),
            r"noclasses.h5: received the keys train_set_x, train_set_y; expected a dataset named 'list_classes' "
            r"\(set its name with data.classes_key\)",
        ),
        (
            lambda tmp: _broken(tmp, "short.h5", train_set_x=GOOD_X, train_set_y=GOOD_Y[:5], list_classes=CLASS_LIST),
            r"short.h5: received 6 images in 'train_set_x' but 5 labels in 'train_set_y'; expected one label per image",
        ),
        (
            lambda tmp: _broken(tmp, "one.h5", train_set_x=GOOD_X, train_set_y=np.full(6, 2), list_classes=CLASS_LIST),
            r"one.h5: received a single class \(\[2\]\) in 'train_set_y'; expected labels of at least 2 classes",
        ),
        (
            lambda tmp: _broken(tmp, "high.h5", train_set_x=GOOD_X, train_set_y=GOOD_Y + 1, list_classes=CLASS_LIST),
            r"high.h5: received label 3 in 'train_set_y'; expected labels 0 to 2",
        ),
        (
            lambda tmp: _broken(tmp, "float.h5", train_set_x=GOOD_X, train_set_y=GOOD_Y + 0.5, list_classes=CLASS_LIST),
            r"float.h5: received 'train_set_y' of shape \[6\] and type float64; expected class labels 0, 1, 2, ...",
        ),
    ],
    ids=[
        "missing",
        "not-hdf5",
        "missing-key",
        "missing-classes",
        "length-mismatch",
        "single-class",
        "label-out-of-range",
        "fractional-labels",
    ],
)
def test_bad_files_are_data_errors_through_the_cli_without_a_run_folder(tmp_path, write_config, make, message):
    path = make(tmp_path)
    runs = tmp_path / "runs"
    config_path = write_config(
        f"""
        data: {{name: hdf5, train_path: {json.dumps(str(path))}, validation_split: 0}}
        model: {{architecture: mlp, units: [4]}}
        train: {{epochs: 1}}
        output: {{runs_root: {json.dumps(str(runs))}}}
        """
    )
    result = invoke("train", config_path)
    assert result.exit_code == errors.DataError.exit_code == 2, result.output
    assert "Traceback" not in result.output
    import re

    assert re.search(message, result.output.replace("\n", "")), result.output
    assert run_folders(runs) == []


def test_a_validation_split_too_small_to_stratify_is_a_data_error(signs_files):
    with pytest.raises(
        errors.DataError,
        match=r"data.validation_split: received 0.05; expected a share that a stratified split of 60 samples in 6 classes allows \(The test_size = 3",
    ):
        data.load(_config(*signs_files, validation_split=0.05), seed=0)


def test_test_file_with_other_image_shape_is_a_data_error(tmp_path):
    train = _broken(tmp_path, "train.h5", train_set_x=GOOD_X, train_set_y=GOOD_Y, list_classes=CLASS_LIST)
    test = _broken(tmp_path, "test.h5", test_set_x=np.zeros((3, 5, 5, 3), "uint8"), test_set_y=GOOD_Y[:3], list_classes=CLASS_LIST)
    with pytest.raises(
        errors.DataError,
        match=r"test.h5: received images of shape \[5, 5, 3\] in 'test_set_x'; expected the training images' shape \[4, 4, 3\]",
    ):
        data.load(_config(train, test), seed=0)


@pytest.mark.slow
def test_signs_config_runs_end_to_end_with_the_custom_loop(signs_files, tmp_path):
    """configs/signs.yaml as shipped, on generated files of the real layout, epochs cut to 3."""
    train_path, test_path = signs_files
    result = invoke(
        "train",
        CONFIGS / "signs.yaml",
        "--set",
        f"data.train_path={train_path}",
        "--set",
        f"data.test_path={test_path}",
        "--set",
        "train.epochs=3",
        "--set",
        f"output.runs_root={tmp_path}",
    )
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path)
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "completed" and record["data"]["sizes"] == {"train": 54, "validation": 6, "test": 12}
    assert record["parameters"] == 12288 * 25 + 25 + 25 * 12 + 12 + 12 * 6 + 6
    run_history = json.loads((folder / "history.json").read_text())
    assert sorted(run_history) == ["accuracy", "epoch", "loss", "val_accuracy", "val_loss"]
    assert run_history["epoch"] == [1, 2, 3]
    assert (folder / "model.keras").exists() and (folder / "plots" / "loss.png").exists()
    assert json.loads((folder / "metrics.json").read_text())["samples"] == 12


def test_a_huge_label_without_class_names_is_refused_before_allocating(tmp_path):
    path = _broken(tmp_path, "huge.h5", images=GOOD_X, labels=np.array([0, 1, 2, 0, 1, 2_000_000_000]))
    with pytest.raises(errors.DataError, match="received label 2000000000 in 'labels'; expected at most 100000 classes"):
        data.load(_config(path, None, train_x_key="images", train_y_key="labels", classes_key=None), seed=0)
