"""The `image_directory` dataset on generated folders of small JPEGs and PNGs in the Kaggle layout."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dlrun import config, data, errors
from tests.conftest import CONFIGS, invoke, run_folders

Image = pytest.importorskip("PIL.Image", reason="PIL (installed with matplotlib) writes the test images")

SIZES = {"train": 6, "validation": 3, "test": 3}


def write_image(path: Path, value: int, size=(20, 24), mode="RGB") -> None:
    """A small image whose pixels are mostly `value` (so classes are learnable), saved by its suffix."""
    rng = np.random.default_rng(value + size[0])
    pixels = np.clip(value + rng.integers(-20, 20, (size[1], size[0], 3)), 0, 255).astype("uint8")
    image = Image.fromarray(pixels, "RGB").convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def make_folder(root: Path, splits=SIZES, classes=("cats", "dogs")) -> Path:
    """train/validation/test, each with one folder per class, of JPEGs of mixed sizes and modes."""
    for split, count in splits.items():
        for index, name in enumerate(classes):
            for number in range(count):
                write_image(root / split / name / f"{name}.{number}.jpg", 60 + 120 * index, size=(20 + number * 3, 24))
    # Other sizes, modes and formats in train: a grayscale JPEG, an RGBA PNG and a palette PNG.
    write_image(root / "train" / classes[0] / "gray.jpg", 60, size=(31, 17), mode="L")
    write_image(root / "train" / classes[1] / "alpha.png", 180, size=(16, 40), mode="RGBA")
    write_image(root / "train" / classes[1] / "palette.png", 180, mode="P")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("images") / "cats_and_dogs_small")


def section(path, **options):
    return config.validate(
        {"data": {"name": "image_directory", "path": str(path), "image_size": [16, 16], **options}, "model": "convnet"}
    ).data


def load(path, seed=1, **options):
    return data.load(section(path, **options), seed)


def test_loads_splits_labels_and_class_names(keras, folder):
    loaded = load(folder)
    assert loaded.task == "binary" and loaded.num_classes == 2 and loaded.class_names == ["cats", "dogs"]
    assert loaded.summary()["sizes"] == {"train": 15, "validation": 6, "test": 6}
    assert loaded.input_shape == (16, 16, 3) and loaded.rescale == pytest.approx(1 / 255)
    assert loaded.labels("train").tolist() == [0] * 7 + [1] * 8
    assert loaded.labels("test").tolist() == [0, 0, 0, 1, 1, 1]
    assert loaded.augmentation is None  # nothing asked for


def test_elements_are_float_images_0_to_255_in_label_order(keras, folder):
    loaded = load(folder)
    batches = list(loaded.fit_arguments("train", 4)["x"])
    assert [len(labels) for _, labels in batches] == [4, 4, 4, 3]  # train.batch_size decides the batches
    images = np.concatenate([images.numpy() for images, _ in batches])
    labels = np.concatenate([labels.numpy() for _, labels in batches])
    assert images.shape == (15, 16, 16, 3) and images.dtype == np.float32
    assert 1 < images.max() <= 255 and images.min() >= 0  # not rescaled: the model's stem does that
    assert labels.tolist() == loaded.labels("train").tolist()
    # Grayscale, RGBA and palette images came out as 16x16 RGB; class 0 images are dark, class 1 bright.
    assert images[labels == 0].mean() < 100 < images[labels == 1].mean()


def test_training_split_is_reshuffled_each_epoch_repeatably(keras, folder):
    def epochs(seed):
        loaded = load(folder, seed=seed)
        batches = loaded.fit_arguments("train", 15, shuffle=True)["x"]
        return [next(iter(batches))[1].numpy().tolist() for _ in range(2)]

    first, second = epochs(5)
    assert first != second and sorted(first) == sorted(second)
    assert epochs(5) == [first, second]


def test_one_folder_with_validation_split_is_stratified_and_decoded_once(keras, folder, tmp_path):
    one = tmp_path / "one"
    shutil.copytree(folder / "train", one)
    loaded = load(one, validation_split=0.4)
    assert loaded.summary()["sizes"] == {"train": 9, "validation": 6, "test": 0}
    assert sorted(loaded.labels("validation").tolist()) == [0, 0, 0, 1, 1, 1]
    list(loaded.fit_arguments("train", 8, shuffle=True)["x"])  # the first pass fills the shared cache
    shutil.rmtree(one)  # so the validation part can only come from the cache
    labels = np.concatenate([labels.numpy() for _, labels in loaded.fit_arguments("validation", 4)["x"]])
    assert labels.tolist() == loaded.labels("validation").tolist()


def test_disk_cache_is_written_and_reused(keras, folder, tmp_path):
    loaded = load(folder, cache="disk", cache_dir=str(tmp_path / "cache"))
    first = np.concatenate([images.numpy() for images, _ in loaded.fit_arguments("test", 8)["x"]])
    written = sorted(path.name for path in (tmp_path / "cache").iterdir())
    assert any(name.startswith("test-") for name in written)
    again = load(folder, cache="disk", cache_dir=str(tmp_path / "cache"))
    np.testing.assert_array_equal(np.concatenate([images.numpy() for images, _ in again.fit_arguments("test", 8)["x"]]), first)
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == written


def test_grayscale_color_mode(keras, folder):
    loaded = load(folder, color_mode="grayscale")
    images, _ = next(iter(loaded.fit_arguments("validation", 6)["x"]))
    assert loaded.input_shape == (16, 16, 1) and images.shape == (6, 16, 16, 1)


def test_three_classes_are_multiclass(keras, tmp_path):
    root = make_folder(tmp_path / "three", splits={"train": 2}, classes=("a", "b", "c"))
    loaded = load(root)
    assert loaded.task == "multiclass" and loaded.num_classes == 3 and loaded.summary()["sizes"]["train"] == 9  # 6 + 3 odd ones


def test_skip_corrupt_skips_and_warns(keras, folder, tmp_path):
    root = tmp_path / "dirty"
    shutil.copytree(folder, root)
    (root / "train" / "cats" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "validation" / "dogs" / "notes.txt").write_text("not an image")
    loaded = load(root, skip_corrupt=True)
    assert loaded.summary()["sizes"] == {"train": 15, "validation": 6, "test": 6}
    assert any("broken.jpg" in warning and warning.startswith("train:") for warning in loaded.warnings)
    assert any("notes.txt" in warning for warning in loaded.warnings)
    labels = np.concatenate([labels.numpy() for _, labels in loaded.fit_arguments("train", 32)["x"]])
    assert labels.tolist() == loaded.labels("train").tolist()


# --- mistakes: a clear message, exit code 2, and no run folder ----------------------------------


def _damage(kind: str, root: Path) -> str:
    """Damage a copy of the generated folder; return the text the error must contain."""
    if kind == "missing":
        shutil.rmtree(root)
        return "which is not a folder; expected a folder with train/"
    if kind == "empty":
        shutil.rmtree(root)
        root.mkdir()
        (root / "train").mkdir()
        return "received none as class folder(s); expected at least 2 sub-folders"
    if kind == "single_class":
        for split in SIZES:
            shutil.rmtree(root / split / "dogs")
        return "received only 'cats' as class folder(s)"
    if kind == "empty_class":
        shutil.rmtree(root / "test" / "dogs")
        (root / "test" / "dogs").mkdir()
        return f"{root / 'test' / 'dogs'}: received a class folder with no images"
    if kind == "classes_differ":
        (root / "validation" / "birds").mkdir()
        write_image(root / "validation" / "birds" / "b.jpg", 10)
        return "received class folders ['birds', 'cats', 'dogs']; expected the same class folders in every split"
    if kind == "no_train":
        shutil.rmtree(root / "train")
        return "validation/, test/ but no train/; expected a train/ folder"
    if kind == "corrupt":
        (root / "test" / "cats" / "cat.9.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
        return f"received 1 file(s) that cannot be decoded as images; expected readable JPEG, PNG, BMP or GIF images (or set data.skip_corrupt: true to skip them with a warning):\n  {root / 'test' / 'cats' / 'cat.9.jpg'}"
    if kind == "not_an_image":
        (root / "train" / "dogs" / "readme.txt").write_text("hello")
        return "1 file(s) that is not an image file; expected only files ending in .bmp, .gif, .jpeg, .jpg, .png (or set data.skip_corrupt: true"
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind", ["missing", "empty", "single_class", "empty_class", "classes_differ", "no_train", "corrupt", "not_an_image"]
)
def test_bad_folders_are_data_errors_through_the_cli(keras, folder, tmp_path, write_config, kind):
    root = tmp_path / "copy"
    shutil.copytree(folder, root)
    expected = _damage(kind, root)
    path = write_config(
        f"""
        data: {{name: image_directory, path: {json.dumps(str(root))}, image_size: [16, 16]}}
        model: {{architecture: convnet, filters: [4]}}
        train: {{epochs: 1}}
        output: {{runs_root: {json.dumps(str(tmp_path / "runs"))}}}
        """
    )
    result = invoke("train", path)
    assert result.exit_code == 2, result.output
    assert "error: data.path: " in result.stderr and expected in result.stderr
    assert "Traceback" not in result.output
    assert run_folders(tmp_path / "runs") == []


def test_validation_split_next_to_a_validation_folder_is_an_error(keras, folder):
    with pytest.raises(errors.DataError, match=r"data.validation_split: received 0.2 but .*validation exists; expected 0"):
        load(folder, validation_split=0.2)


def test_disk_cache_needs_a_folder(keras, folder):
    with pytest.raises(errors.DataError, match="data.cache_dir: received nothing; expected a folder"):
        load(folder, cache="disk")


# --- the cats_dogs configs end to end on tiny generated images -----------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cats_dogs", "cats_dogs_augmented"])
def test_cats_dogs_configs_train_end_to_end(keras, folder, tmp_path, name):
    # 48x48 is about the smallest input the four valid 3x3 conv + 2x2 pool blocks accept.
    result = invoke(
        "train",
        CONFIGS / f"{name}.yaml",
        "--set",
        f"data.path={folder}",
        "--set",
        "data.image_size=[48, 48]",
        "--set",
        "train.epochs=2",
        "--set",
        f"output.runs_root={tmp_path}",
    )
    assert result.exit_code == 0, result.output
    (run,) = run_folders(tmp_path)
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["data"]["sizes"] == {"train": 15, "validation": 6, "test": 6}
    assert record["data"]["class_names"] == ["cats", "dogs"]
    history = json.loads((run / "history.json").read_text())
    assert len(history["val_accuracy"]) == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["samples"] == 6
    matrix = metrics["confusion_matrix"]["matrix"]  # from the model's own predictions on the test split
    assert sum(map(sum, matrix)) == 6
    assert metrics["metrics"]["accuracy"] == pytest.approx((matrix[0][0] + matrix[1][1]) / 6, rel=1e-6)
    evaluated = invoke("eval", run)  # rescaling (and augmentation) are in the model: eval gives the same numbers
    assert evaluated.exit_code == 0, evaluated.output
    recomputed = json.loads((run / "eval_test.json").read_text())
    assert recomputed["metrics"] == metrics["metrics"] and recomputed["confusion_matrix"] == metrics["confusion_matrix"]
    model = keras.saving.load_model(run / "model.keras")
    names = [layer.name for layer in model.layers]
    augmented = [name for name in names if name.startswith("augment_")]
    assert augmented == (
        ["augment_rotation", "augment_shift", "augment_shear", "augment_zoom", "augment_flip"] if name == "cats_dogs_augmented" else []
    )
    assert ("dropout" in names) == (name == "cats_dogs_augmented")


def test_cats_dogs_model_has_the_books_parameter_count(keras, folder):
    from dlrun import models

    loaded = load(folder)
    loaded.train.element_shape = (150, 150, 3)  # the config's size, without decoding at 150x150
    model = models.build(config.load(CONFIGS / "cats_dogs.yaml").model, loaded)
    assert model.count_params() == 3_453_121  # "Deep Learning with Python", listing 5.5


@pytest.mark.slow
def test_kfold_on_an_image_folder_splits_the_file_list_stratified_end_to_end(keras, folder, tmp_path):
    """`dlrun kfold configs/cats_dogs.yaml --k 3`: train/ and validation/ pooled (21 files), each fold
    reading its files through the pipeline `dlrun train` uses; the refit scored on test/."""
    result = invoke(
        "kfold",
        CONFIGS / "cats_dogs.yaml",
        "--k",
        "3",
        "--set",
        f"data.path={folder}",
        "--set",
        "data.image_size=[48, 48]",
        "--set",
        "train.epochs=2",
        "--set",
        f"output.runs_root={tmp_path}",
    )
    assert result.exit_code == 0, result.output
    assert "21 samples (train + validation) in 3 stratified folds; 6 test samples" in result.output
    (run,) = run_folders(tmp_path)
    state = json.loads((run / "kfold.json").read_text())
    pooled = load(folder, image_size=[48, 48]).pooled()
    labels = pooled.labels("train")
    assert len(labels) == 21
    seen = sorted(index for fold in state["folds"] for index in fold["validation_indices"])
    assert seen == list(range(21))  # every pooled file validates exactly once
    for fold in state["folds"]:
        validation = labels[fold["validation_indices"]]
        per_class = np.bincount(validation, minlength=2)
        assert np.all(np.abs(per_class - np.bincount(labels) / 3) < 1), per_class  # stratified: 10 cats, 11 dogs
        assert fold["status"] == "completed" and fold["train_samples"] == 21 - len(validation)
        assert len(json.loads((run / "folds" / str(fold["index"]) / "history.json").read_text())["val_accuracy"]) == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["samples"] == 6
    assert (run / "model.keras").exists()


def test_a_pooled_pipeline_holds_train_then_validation_and_a_fold_takes_its_files(keras, folder):
    loaded = load(folder)
    pooled = loaded.pooled()
    images = np.concatenate([batch for batch, _ in pooled.train.batches(64)])
    expected = np.concatenate([batch for split in (loaded.train, loaded.validation) for batch, _ in split.batches(64)])
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(pooled.labels("train"), np.concatenate([loaded.labels("train"), loaded.labels("validation")]))
    fold = pooled.fold([0, 5, 20])
    held = np.concatenate([batch for batch, _ in fold.validation.batches(64)])
    np.testing.assert_array_equal(held, images[[0, 5, 20]])
    kept = np.concatenate([batch for batch, _ in fold.train.batches(64)])
    np.testing.assert_array_equal(kept, np.delete(images, [0, 5, 20], axis=0))
    assert fold.test is None and len(fold.labels("train")) == 18
