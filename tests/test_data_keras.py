"""The Keras-hosted datasets (imdb, reuters, boston_housing, mnist, fashion_mnist) on tiny files in Keras' real formats."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

from dlrun import config, data, errors
from dlrun.data import keras_files, sequences, word_index
from tests.conftest import CONFIGS, invoke, run_folders

FASHION = Path("/usr/share/datasets/fashion-mnist")


# --- tiny files in Keras' formats ------------------------------------------------------------------


def object_array(lists) -> np.ndarray:
    """A 1-D object array of Python lists, as Keras' imdb.npz and reuters.npz store their sequences."""
    array = np.empty(len(lists), dtype=object)
    for index, items in enumerate(lists):
        array[index] = list(items)
    return array


def random_reviews(rng, count, vocabulary=60, longest=12):
    return [rng.integers(1, vocabulary, size=rng.integers(1, longest)).tolist() for _ in range(count)]


def write_imdb(path: Path, train_count=40, test_count=30, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        x_train=object_array(random_reviews(rng, train_count)),
        y_train=rng.integers(0, 2, train_count),
        x_test=object_array(random_reviews(rng, test_count)),
        y_test=rng.integers(0, 2, test_count),
    )
    return path


def write_reuters(path: Path, count=60, seed=1) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, x=object_array(random_reviews(rng, count)), y=rng.integers(0, 46, count))
    return path


def write_boston(path: Path, count=30, seed=2) -> Path:
    rng = np.random.default_rng(seed)
    features = rng.normal(loc=np.arange(13) * 10.0, scale=np.arange(1, 14), size=(count, 13))
    np.savez(path, x=features, y=rng.uniform(5, 50, count))
    return path


def write_mnist(path: Path, train_count=40, test_count=20, seed=3) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (train_count, 28, 28), dtype=np.uint8),
        y_train=np.arange(train_count, dtype=np.uint8) % 10,
        x_test=rng.integers(0, 256, (test_count, 28, 28), dtype=np.uint8),
        y_test=np.arange(test_count, dtype=np.uint8) % 10,
    )
    return path


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    magic = magic if magic is not None else 2048 + array.ndim
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())
    return path


def write_fashion(folder: Path, train_count=40, test_count=20, seed=4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, count in (("train", train_count), ("t10k", test_count)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(count) % 10)
    return folder


def data_config(**section):
    return config.validate({"data": section, "model": "mlp"}).data


def keras_load_data(monkeypatch, module_name: str, path: Path, **options):
    """Keras' own `load_data` run on our tiny file (its download step pointed at the file)."""
    import importlib

    from dlrun import backend

    backend.import_keras()
    module = importlib.import_module(f"keras.src.datasets.{module_name}")
    monkeypatch.setattr(module, "get_file", lambda *args, **kwargs: str(path))
    return module.load_data(**options)


# --- imdb and reuters: the same data as keras.datasets ---------------------------------------------


@pytest.mark.parametrize("options", [{}, {"num_words": 20, "skip_top": 4}, {"num_words": 30, "maxlen": 8}, {"num_words": None}])
def test_imdb_matches_keras_load_data(tmp_path, monkeypatch, options):
    path = write_imdb(tmp_path / "imdb.npz")
    loaded = data.load(data_config(name="imdb", path=str(path), trusted=True, validation_count=10, **options), seed=0)
    keras_options = {"num_words": 10000, **options}  # our default num_words; Keras' default is None
    (keras_x, keras_y), (keras_test_x, keras_test_y) = keras_load_data(monkeypatch, "imdb", path, **keras_options)
    with np.load(path, allow_pickle=True) as raw:  # Keras' num_words=None: the largest index in the data
        largest = max(max(x) for x in [*raw["x_train"], *raw["x_test"]]) + sequences.INDEX_FROM
    num_words = keras_options["num_words"] or largest

    assert loaded.task == "binary" and loaded.multi_hot_tokens == num_words
    assert loaded.train[0].dtype == (np.int16 if num_words < 32768 else np.int32)
    rows = np.concatenate([loaded.validation[0], loaded.train[0]])
    for ours, theirs in ((rows, keras_x), (loaded.test[0], keras_test_x)):
        assert len(ours) == len(theirs)
        for row, sequence in zip(ours, theirs):
            assert sorted(set(row[row > 0].tolist())) == sorted(set(sequence))  # what multi-hot sees
    np.testing.assert_array_equal(np.concatenate([loaded.validation[1], loaded.train[1]]), keras_y)
    np.testing.assert_array_equal(loaded.test[1], keras_test_y)
    assert len(loaded.validation[1]) == 10


def test_reuters_matches_keras_load_data(tmp_path, monkeypatch):
    path = write_reuters(tmp_path / "reuters.npz")
    loaded = data.load(data_config(name="reuters", path=str(path), trusted=True, num_words=25, skip_top=3, validation_count=5), seed=0)
    (keras_x, keras_y), (keras_test_x, keras_test_y) = keras_load_data(monkeypatch, "reuters", path, num_words=25, skip_top=3)

    assert loaded.task == "multiclass" and loaded.num_classes == 46 and loaded.class_names[3] == "earn"
    rows = np.concatenate([loaded.validation[0], loaded.train[0]])
    assert [sorted(set(row[row > 0].tolist())) for row in rows] == [sorted(set(x)) for x in keras_x]
    assert [sorted(set(row[row > 0].tolist())) for row in loaded.test[0]] == [sorted(set(x)) for x in keras_test_x]
    np.testing.assert_array_equal(np.concatenate([loaded.validation[1], loaded.train[1]]), keras_y)
    np.testing.assert_array_equal(loaded.test[1], keras_test_y)


def test_padded_rows_hold_each_distinct_word_once():
    ragged = sequences.Ragged(np.array([5, 5, 3, 9, 9, 9, 4], dtype=np.int32), np.array([3, 3, 1]))
    (padded,) = sequences.unique_padded([ragged], 10, chunk_rows=2)
    np.testing.assert_array_equal(padded, [[3, 5], [9, 0], [4, 0]])
    other = sequences.Ragged(np.array([1, 2, 3], dtype=np.int32), np.array([3]))
    np.testing.assert_array_equal(sequences.unique_padded([ragged, other], 10)[1], [[1, 2, 3]])  # one common width


def test_reorder_moves_whole_sequences():
    ragged = sequences.Ragged(np.array([1, 2, 3, 4, 5, 6], dtype=np.int32), np.array([1, 2, 3]))
    moved = ragged.reorder(np.array([2, 0, 1]))
    assert [moved.sequence(index).tolist() for index in range(3)] == [[4, 5, 6], [1], [2, 3]]


def test_multi_hot_inside_the_model_equals_the_books_vectorize_sequences(tmp_path):
    from dlrun import backend

    backend.import_keras()  # Keras on the suite's backend before the model is built
    loaded = data.load(
        data_config(name="imdb", path=str(write_imdb(tmp_path / "imdb.npz")), trusted=True, num_words=40, validation_count=0), 0
    )
    from dlrun.models import multi_hot

    encoded = multi_hot.MultiHot(40)(loaded.train[0].astype("int32"))  # the stem's layer, as the int32 Input casts
    book = np.zeros((len(loaded.train[0]), 40))
    for row, words in enumerate(loaded.train[0]):
        book[row, words[words > 0]] = 1.0  # the book's vectorize_sequences: padding (0) is not a word
    np.testing.assert_array_equal(np.asarray(encoded), book)


def test_maxlen_that_drops_everything_is_a_data_error(tmp_path):
    path = write_imdb(tmp_path / "imdb.npz")
    with pytest.raises(errors.DataError, match=r"data.maxlen: received 1, which drops every sequence"):
        data.load(data_config(name="imdb", path=str(path), trusted=True, maxlen=1), 0)


def test_validation_count_larger_than_train_is_a_data_error(tmp_path):
    path = write_imdb(tmp_path / "imdb.npz")
    with pytest.raises(errors.DataError, match=r"data.validation_count: received 10000; expected fewer than the 40 training samples"):
        data.load(data_config(name="imdb", path=str(path), trusted=True), 0)


# --- pickle safety -----------------------------------------------------------------------------------


class _Payload:
    """Unpickling this creates a marker folder: proof that a pickle ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)  # not open(): a file object left open is a ResourceWarning in the test run


def write_malicious_imdb(path: Path, marker: Path) -> Path:
    payload = np.empty(2, dtype=object)
    payload[0], payload[1] = _Payload(marker), [1, 2]
    np.savez(path, x_train=payload, y_train=np.array([0, 1]), x_test=payload, y_test=np.array([0, 1]))
    return path


def test_untrusted_pickle_is_not_executed_and_the_error_explains_both_options(tmp_path):
    marker = tmp_path / "pwned"
    path = write_malicious_imdb(tmp_path / "imdb.npz", marker)
    with pytest.raises(errors.DataError) as caught:
        data.load(data_config(name="imdb", path=str(path)), 0)
    assert not marker.exists()
    message = str(caught.value)
    assert f"data.path: received {path} (SHA-256 {keras_files.sha256(path)}), which holds pickled object arrays" in message
    assert "expected Keras' own imdb.npz (SHA-256 69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f)" in message
    assert "`--set data.trusted=true`" in message


def test_the_payload_is_live_when_trusted(tmp_path):
    """The control for the test above: trusting the file does unpickle it (so that test can fail)."""
    marker = tmp_path / "pwned"
    path = write_malicious_imdb(tmp_path / "imdb.npz", marker)
    with pytest.raises(Exception):
        data.load(data_config(name="imdb", path=str(path), trusted=True), 0)
    assert marker.exists()


def test_pickle_is_allowed_for_the_file_keras_publishes(tmp_path, monkeypatch):
    path = write_imdb(tmp_path / "imdb.npz")
    from dlrun.data import imdb

    monkeypatch.setattr(imdb, "FILE", keras_files.KerasFile("imdb.npz", file_hash=keras_files.sha256(path)))
    loaded = data.load(data_config(name="imdb", path=str(path), validation_count=0), 0)  # trusted stays false
    assert len(loaded.train[1]) == 40


def test_untrusted_pickle_through_the_cli(tmp_path):
    marker = tmp_path / "pwned"
    path = write_malicious_imdb(tmp_path / "imdb.npz", marker)
    root = tmp_path / "runs"
    result = invoke("train", CONFIGS / "imdb.yaml", "--set", f"data.path={path}", "--set", f"output.runs_root={root}")
    assert result.exit_code == 2
    assert "which holds pickled object arrays" in result.output and "data.trusted=true" in result.output
    assert "Traceback" not in result.output
    assert not marker.exists() and run_folders(root) == []


# --- finding the files -------------------------------------------------------------------------------


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty Keras cache and a download origin that refuses connections."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(keras_files, "ORIGIN", "http://127.0.0.1:9/")
    return tmp_path / "keras_home" / "datasets"


@pytest.mark.parametrize(
    "config_file, file_name, path_hint",
    [("imdb.yaml", "imdb.npz", "/path/to/imdb.npz"), ("boston.yaml", "boston_housing.npz", "/path/to/boston_housing.npz")],
)
def test_offline_without_a_local_file_says_which_file_to_put_where(offline, tmp_path, config_file, file_name, path_hint):
    root = tmp_path / "runs"
    result = invoke("train", CONFIGS / config_file, "--set", f"output.runs_root={root}")
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert f"Keras' {file_name} is not in its cache and could not be downloaded from http://127.0.0.1:9/{file_name}" in message
    assert f"at {offline / file_name}" in message
    assert f"`--set data.path={path_hint}`" in message
    assert run_folders(root) == []


def test_offline_fashion_mnist_names_the_folder(offline):
    with pytest.raises(errors.DataError) as caught:
        data.load(data_config(name="fashion_mnist"), 0)
    assert f"at {offline / 'fashion-mnist' / 'train-images-idx3-ubyte.gz'}" in str(caught.value)
    hint = str(FASHION) if FASHION.is_dir() else "/path/to/fashion-mnist"
    assert f"`--set data.path={hint}`" in str(caught.value)


@pytest.mark.parametrize(
    "section, expected",
    [
        (
            {"name": "mnist", "path": "{tmp}/absent.npz"},
            "data.path: received {tmp}/absent.npz, which does not exist; expected a copy of Keras' mnist.npz",
        ),
        ({"name": "mnist", "path": "{tmp}/empty"}, "data.path: received the folder {tmp}/empty, which has no mnist.npz"),
        (
            {"name": "fashion_mnist", "path": "{tmp}/x.gz"},
            "data.path: received {tmp}/x.gz, which is not a folder; expected a folder holding train-images-idx3-ubyte.gz",
        ),
        (
            {"name": "boston_housing", "path": "{tmp}/not_npz.npz"},
            "data.path: received {tmp}/not_npz.npz, which is not a readable .npz file",
        ),
        (
            {"name": "boston_housing", "path": "{tmp}/mnist.npz"},
            "which holds the arrays x_train, y_train, x_test, y_test; expected Keras' boston_housing.npz with the arrays x, y",
        ),
    ],
)
def test_bad_local_paths(tmp_path, section, expected):
    (tmp_path / "not_npz.npz").write_text("hello")
    (tmp_path / "empty").mkdir()
    write_mnist(tmp_path / "mnist.npz")
    tmp = str(tmp_path)
    section = {key: value.replace("{tmp}", tmp) for key, value in section.items()}
    with pytest.raises(errors.DataError) as caught:
        data.load(data_config(**section), 0)
    assert expected.replace("{tmp}", tmp) in str(caught.value)


def test_a_folder_holding_the_file_works(tmp_path):
    write_mnist(tmp_path / "mnist.npz")
    assert len(data.load(data_config(name="mnist", path=str(tmp_path)), 0).train[1]) == 40


# --- boston_housing ------------------------------------------------------------------------------------


def test_boston_matches_keras_split(tmp_path, monkeypatch):
    path = write_boston(tmp_path / "boston_housing.npz")
    loaded = data.load(data_config(name="boston_housing", path=str(path)), 0)
    (keras_x, keras_y), (keras_test_x, keras_test_y) = keras_load_data(monkeypatch, "boston_housing", path)
    np.testing.assert_allclose(loaded.train[0], keras_x, rtol=1e-6)
    np.testing.assert_allclose(loaded.train[1], keras_y, rtol=1e-6)
    np.testing.assert_allclose(loaded.test[0], keras_test_x, rtol=1e-6)
    assert (len(loaded.train[1]), len(loaded.test[1])) == (24, 6) and loaded.validation is None
    assert loaded.task == "regression" and loaded.normalize


def test_boston_is_normalised_with_training_statistics_only(tmp_path):
    """Test features drawn far from the training ones: statistics from test (or all) data would differ."""
    rng = np.random.default_rng(5)
    features = rng.normal(loc=50.0, size=(50, 13))
    (order,) = sequences.keras_orders([50])
    features[order[40:]] += 100.0  # exactly the districts Keras' seed-113 shuffle puts in the test split
    np.savez(tmp_path / "boston_housing.npz", x=features, y=rng.uniform(5, 50, 50))
    loaded = data.load(data_config(name="boston_housing", path=str(tmp_path / "boston_housing.npz")), 0)
    from dlrun import models

    model = models.build(config.validate({"data": "digits", "model": "mlp"}).model, loaded)
    layer = model.get_layer("normalize")
    train_mean = loaded.train[0].mean(axis=0)
    assert not np.allclose(train_mean, loaded.test[0].mean(axis=0), atol=1.0)
    np.testing.assert_allclose(np.asarray(layer.mean).ravel(), train_mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(layer.variance).ravel(), loaded.train[0].var(axis=0), rtol=1e-3)
    assert abs(float(loaded.train[0].mean())) > 1.0  # the loader itself left the features raw


# --- mnist and fashion_mnist ---------------------------------------------------------------------------


def test_mnist_images_with_channel_axis_rescaled_by_the_model(tmp_path):
    loaded = data.load(data_config(name="mnist", path=str(write_mnist(tmp_path / "mnist.npz")), validation_split=0.25), 0)
    assert loaded.train[0].shape == (30, 28, 28, 1) and loaded.validation[0].shape == (10, 28, 28, 1)
    assert loaded.test[0].shape == (20, 28, 28, 1) and loaded.train[0].dtype == np.uint8
    assert loaded.rescale == pytest.approx(1 / 255) and loaded.class_names == [str(digit) for digit in range(10)]
    from dlrun import models

    model = models.build(config.validate({"data": "digits", "model": "mlp"}).model, loaded)
    scaled = np.asarray(model.get_layer("rescale")(loaded.test[0].astype("float32")))
    assert scaled.min() >= 0.0 and scaled.max() <= 1.0 and scaled.max() > 0.9


def test_fashion_mnist_from_idx_files(tmp_path):
    loaded = data.load(data_config(name="fashion_mnist", path=str(write_fashion(tmp_path / "fashion"))), 0)
    assert loaded.train[0].shape == (40, 28, 28, 1) and loaded.test[0].shape == (20, 28, 28, 1)
    assert loaded.class_names[0] == "T-shirt/top" and loaded.class_names[9] == "Ankle boot"
    np.testing.assert_array_equal(loaded.test[1], np.arange(20) % 10)


@pytest.mark.parametrize(
    "corrupt, expected",
    [
        (
            lambda folder: write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(40) % 10, magic=2051),
            "train-labels-idx1-ubyte.gz starts with the magic number 2051; expected 2049 (an IDX file of labels)",
        ),
        (
            lambda folder: (folder / "t10k-images-idx3-ubyte.gz").write_bytes(
                gzip.compress(b"\x00\x00\x08\x03" + (20).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\x00" * 100)
            ),
            "t10k-images-idx3-ubyte.gz declares shape (20, 28, 28) but holds 100 values",
        ),
        (
            lambda folder: (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip"),
            "t10k-labels-idx1-ubyte.gz is not a readable gzip file",
        ),
        (
            lambda folder: write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(19) % 10),
            "with test images uint8 (20, 28, 28) and 19 labels",
        ),
        (lambda folder: write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(20, 10)), "test labels from 10 to 10; expected 0 to 9"),
    ],
)
def test_corrupt_idx_files(tmp_path, corrupt, expected):
    folder = write_fashion(tmp_path / "fashion")
    corrupt(folder)
    with pytest.raises(errors.DataError) as caught:
        data.load(data_config(name="fashion_mnist", path=str(folder)), 0)
    assert expected in str(caught.value)


@pytest.mark.skipif(not FASHION.is_dir(), reason=f"real Fashion-MNIST not installed at {FASHION} (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist():
    loaded = data.load(data_config(name="fashion_mnist", path=str(FASHION), validation_split=0.1), 0)
    assert loaded.train[0].shape == (54000, 28, 28, 1) and loaded.validation[0].shape == (6000, 28, 28, 1)
    assert loaded.test[0].shape == (10000, 28, 28, 1) and loaded.train[0].dtype == np.uint8
    assert loaded.train[0].min() == 0 and loaded.train[0].max() == 255
    np.testing.assert_array_equal(np.bincount(loaded.test[1]), [1000] * 10)
    np.testing.assert_array_equal(np.bincount(np.concatenate([loaded.train[1], loaded.validation[1]])), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(loaded.validation[1]), [600] * 10)  # stratified


# --- word indices ------------------------------------------------------------------------------------


def test_decode_with_a_word_index(tmp_path):
    (tmp_path / "imdb_word_index.json").write_text(json.dumps({"the": 1, "movie": 2, "great": 3}))
    index = word_index.load("imdb", tmp_path)
    assert word_index.decode([1, 4, 5, 2, 6, 0, 0], index) == "[START] the movie [OOV] great"
    assert word_index.decode(np.array([1, 99]), index) == "[START] [OOV]"


def test_bad_word_index_file(tmp_path):
    (tmp_path / "reuters_word_index.json").write_text("[1, 2]")
    with pytest.raises(errors.DataError, match="is not a mapping of words to integer ranks; expected Keras' reuters_word_index.json"):
        word_index.load("reuters", tmp_path / "reuters_word_index.json")


# --- the shipped configs end to end on tiny files ------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras_files")
    return {
        "imdb.yaml": [f"data.path={write_imdb(folder / 'imdb.npz')}", "data.trusted=true", "data.validation_count=8"],
        "reuters.yaml": [f"data.path={write_reuters(folder / 'reuters.npz')}", "data.trusted=true", "data.validation_count=8"],
        "boston.yaml": [f"data.path={write_boston(folder / 'boston_housing.npz')}"],
        "mnist.yaml": [f"data.path={write_mnist(folder / 'mnist.npz')}"],
        "fashion_mnist.yaml": [f"data.path={write_fashion(folder / 'fashion')}", "data.validation_split=0.25"],
    }


@pytest.mark.slow
@pytest.mark.parametrize("config_file", ["imdb.yaml", "reuters.yaml", "boston.yaml", "mnist.yaml", "fashion_mnist.yaml"])
def test_shipped_config_trains_end_to_end_on_tiny_files(tmp_path, tiny_files, config_file):
    root = tmp_path / "runs"
    sets = [*tiny_files[config_file], "train.epochs=1", f"output.runs_root={root}", "output.plots=false"]
    result = invoke("train", CONFIGS / config_file, *[item for setting in sets for item in ("--set", setting)])
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(root)
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "completed"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["split"] == "test" and all(np.isfinite(value) for value in metrics["metrics"].values())
    assert (folder / "model.keras").is_file()


@pytest.mark.slow
def test_predict_on_text_through_the_imdb_word_index_beside_the_data(tmp_path, tiny_files):
    """A trained imdb run predicts raw text: tokens mapped through Keras' word index next to imdb.npz."""
    root = tmp_path / "runs"
    imdb_path = Path(tiny_files["imdb.yaml"][0].split("=", 1)[1])
    words = {f"word{rank}": rank for rank in range(1, 70)}
    (imdb_path.parent / "imdb_word_index.json").write_text(json.dumps(words))
    sets = [*tiny_files["imdb.yaml"], "train.epochs=1", f"output.runs_root={root}", "output.plots=false"]
    assert invoke("train", CONFIGS / "imdb.yaml", *[item for setting in sets for item in ("--set", setting)]).exit_code == 0
    (folder,) = run_folders(root)
    out = tmp_path / "predictions.json"
    result = invoke("predict", folder, "--text", "word1 word5 word7 unknownword", "--out", out)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(out.read_text())
    from dlrun import models
    from dlrun.data import text_encoding

    model = models.load_model(folder / "model.keras")
    encoded = text_encoding.encode("word1 word5 word7 unknownword", words, num_words=10000)
    assert encoded == [1, 4, 8, 10, 2]  # start, ranks + 3, out-of-vocabulary
    width = model.inputs[0].shape[1]
    expected = float(model.predict(text_encoding.distinct_padded([encoded], width), verbose=0)[0, 0])
    negative, positive = json.loads((folder / "run.json").read_text())["data"]["class_names"]
    assert row["probabilities"][positive] == pytest.approx(expected, rel=1e-5)
    assert row["prediction"] == (positive if expected >= 0.5 else negative)
