"""`dlrun predict`: raw samples in (arrays, images, text), the run model's predictions out; mistakes exit 2."""

import json
import shutil

import numpy as np
import pytest

from dlrun import config, data, models
from dlrun.data import image_files as images, text_encoding
from tests.conftest import invoke


def _test_split(run_dir):
    loaded_config = config.load(run_dir / "config.yaml")
    return data.load(loaded_config.data, loaded_config.seed).test


@pytest.fixture(scope="module")
def quickstart(quickstart_run):
    inputs, labels = _test_split(quickstart_run)
    return quickstart_run, inputs, labels, models.load_model(quickstart_run / "model.keras")


def test_round_trip_on_test_inputs_equals_model_predict_and_the_run_s_accuracy(quickstart, tmp_path):
    run_dir, inputs, labels, model = quickstart
    np.save(tmp_path / "x_test.npy", inputs)
    out = tmp_path / "predictions.json"
    result = invoke("predict", run_dir, tmp_path / "x_test.npy", "--out", out)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [row["input"] for row in rows[:2]] == ["x_test.npy[0]", "x_test.npy[1]"]
    probabilities = np.array([[row["probabilities"][str(digit)] for digit in range(10)] for row in rows])
    np.testing.assert_allclose(probabilities, model.predict(inputs, verbose=0), rtol=1e-5, atol=1e-7)
    accuracy = np.mean([int(row["prediction"]) == label for row, label in zip(rows, labels)])
    recorded = json.loads((run_dir / "metrics.json").read_text())
    assert recorded["split"] == "test" and recorded["samples"] == len(labels)
    assert accuracy == pytest.approx(recorded["metrics"]["accuracy"], abs=1e-6)
    assert inputs.max() > 1  # raw pixel values 0..16: the model rescales them itself


def test_csv_rows_flattened_give_the_same_predictions_and_the_table_shows_top_k(quickstart, tmp_path):
    run_dir, inputs, _, model = quickstart
    np.savetxt(tmp_path / "x.csv", inputs[:4].reshape(4, -1), delimiter=",", header=",".join(f"p{i}" for i in range(64)), comments="")
    out = tmp_path / "predictions.csv"
    result = invoke("predict", run_dir, tmp_path / "x.csv", "--out", out, "--top", "2")
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0] == "input,prediction," + ",".join(str(digit) for digit in range(10))
    written = np.array([[float(cell) for cell in line.split(",")[2:]] for line in lines[1:]])
    np.testing.assert_allclose(written, model.predict(inputs[:4], verbose=0), rtol=1e-5, atol=1e-7)
    assert "#2" in result.stdout and "#3" not in result.stdout and "x.csv[3]" in result.stdout


def test_images_in_a_folder_are_read_raw_at_the_model_s_input_size(quickstart, tmp_path):
    run_dir, _, _, model = quickstart
    folder = tmp_path / "digits"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        from keras.utils import save_img

        save_img(folder / f"digit{index}.png", rng.integers(0, 17, size=(16, 16, 1)).astype("float32"), scale=False)
    out = tmp_path / "predictions.json"
    assert invoke("predict", run_dir, folder, "--out", out).exit_code == 0
    rows = json.loads(out.read_text())
    paths = sorted(folder.iterdir())
    assert [row["input"] for row in rows] == [str(path) for path in paths]
    expected = model.predict(images.load_batch(paths, (8, 8), 1), verbose=0)
    got = np.array([[row["probabilities"][str(digit)] for digit in range(10)] for row in rows])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: tmp / "missing.npy", "missing.npy: no such file or folder; expected an image, an .npy or .csv array"),
        (
            lambda tmp: _save(tmp / "wrong.npy", np.zeros((3, 7))),
            "wrong.npy: received an array of shape [3, 7]; expected shape [samples, 8, 8, 1] (or [samples, 64] flattened), one sample per row",
        ),
        (lambda tmp: _write(tmp / "notes.md", "hi"), "notes.md: received a .md file; expected an image"),
    ],
    ids=["missing", "wrong-shape", "unknown-kind"],
)
def test_bad_inputs_exit_2_with_a_clear_message(quickstart, tmp_path, make, message):
    run_dir = quickstart[0]
    out = tmp_path / "p.csv"
    result = invoke("predict", run_dir, make(tmp_path), "--out", out)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not out.exists()


def _save(path, array):
    np.save(path, array)
    return path


def _write(path, text):
    path.write_text(text)
    return path


def test_an_image_for_a_model_that_takes_vectors_exits_2(trained_run, tmp_path):
    from keras.utils import save_img

    save_img(tmp_path / "cat.png", np.zeros((8, 8, 3)), scale=False)
    result = invoke("predict", trained_run, tmp_path / "cat.png")
    assert result.exit_code == 2
    assert "cat.png: received an image; expected inputs of shape [6] (this model does not take images)" in result.stderr


def test_run_without_a_model_and_an_existing_out_exit_2(quickstart, tmp_path):
    run_dir, inputs, _, _ = quickstart
    bare = tmp_path / "bare_run"
    bare.mkdir()
    shutil.copy(run_dir / "run.json", bare / "run.json")
    np.save(tmp_path / "x.npy", inputs[:2])
    result = invoke("predict", bare, tmp_path / "x.npy")
    assert result.exit_code == 2
    assert f"{bare / 'model.keras'}: no such file; expected a completed run saved with output.save_model: true" in result.stderr
    existing = tmp_path / "p.json"
    existing.write_text("keep me")
    result = invoke("predict", run_dir, tmp_path / "x.npy", "--out", existing)
    assert result.exit_code == 2 and "already exists; expected a new file name (or --force to replace it)" in result.stderr
    assert existing.read_text() == "keep me"
    assert invoke("predict", run_dir, tmp_path / "x.npy", "--out", existing, "--force").exit_code == 0
    assert len(json.loads(existing.read_text())) == 2
    result = invoke("predict", run_dir, tmp_path / "x.npy", "--out", tmp_path / "p.txt")
    assert result.exit_code == 2 and "expected a .csv or .json file name" in result.stderr
    result = invoke("predict", run_dir, tmp_path / "x.npy", "--top", "0")
    assert result.exit_code == 2 and "--top: received 0; expected a number >= 1" in result.stderr
    result = invoke("predict", run_dir, tmp_path / "x.npy", "--text", "a review")
    assert result.exit_code == 2 and "expected a model trained on a text dataset" in result.stderr


# --- text: a fake run in the layout of the text datasets (word-index sequences, multi-hot inside the model) ---

WORD_INDEX = {"the": 1, "movie": 2, "was": 3, "great": 4, "awful": 5, "plot": 6, "and": 7, "acting": 8}
NUM_WORDS = 10  # tokens 0..9: ranks up to 6 survive (rank + 3 < 10), "and"/"acting" become OOV
WIDTH = 5  # the widest training sample had 5 distinct tokens


def _text_run(tmp_path, keras_seed=1):
    import keras

    keras.utils.set_random_seed(keras_seed)
    inputs = keras.Input(shape=(WIDTH,), dtype="int32", name="input")
    encoded = keras.layers.CategoryEncoding(num_tokens=NUM_WORDS, output_mode="multi_hot", name="multi_hot")(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(4, activation="relu")(encoded))
    model = keras.Model(inputs, outputs)
    run_dir = tmp_path / "text_run"
    run_dir.mkdir()
    model.save(run_dir / "model.keras")
    (run_dir / "run.json").write_text(
        json.dumps({"status": "completed", "data": {"task": "binary", "class_names": ["negative", "positive"]}})
    )
    (run_dir / "config.yaml").write_text("data: {name: synthetic, task: binary}\nmodel: mlp\n")
    (tmp_path / "word_index.json").write_text(json.dumps(WORD_INDEX))
    return run_dir, model


def test_text_encoding_follows_keras_conventions():
    assert text_encoding.words("The movie<br />was GREAT, and... the plot's!") == ["the", "movie", "was", "great", "and", "the", "plot's"]
    assert text_encoding.encode("the movie was great", WORD_INDEX) == [1, 4, 5, 6, 7]
    assert text_encoding.encode("the movie was great acting", WORD_INDEX, num_words=NUM_WORDS) == [1, 4, 5, 6, 7, 2]
    assert text_encoding.encode("unheard-of plot", WORD_INDEX, num_words=NUM_WORDS) == [1, 2, 2, 9]
    assert text_encoding.encode("the movie", WORD_INDEX, num_words=NUM_WORDS, skip_top=5) == [2, 2, 5]


def test_text_is_encoded_through_the_word_index(tmp_path):
    run_dir, model = _text_run(tmp_path)
    (tmp_path / "review.txt").write_text("The plot was awful.")
    out = tmp_path / "p.json"
    result = invoke(
        "predict",
        run_dir,
        tmp_path / "review.txt",
        "--text",
        "the movie was great",
        "--word-index",
        tmp_path / "word_index.json",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [row["input"] for row in rows] == [str(tmp_path / "review.txt"), "--text 1"]
    expected_inputs = np.array([[1, 4, 6, 8, 9], [1, 4, 5, 6, 7]], dtype="int32")  # distinct tokens, sorted
    expected = model.predict(expected_inputs, verbose=0)[:, 0]
    np.testing.assert_allclose([row["probabilities"]["positive"] for row in rows], expected, rtol=1e-6)
    np.testing.assert_allclose([row["probabilities"]["negative"] for row in rows], 1 - expected, rtol=1e-6)


def test_a_text_wider_than_the_model_input_still_predicts_exactly(tmp_path):
    import keras

    run_dir, model = _text_run(tmp_path)
    text = "the movie was great and the plot and acting awful"  # tokens 1,2,4,5,6,7,8,9: 8 distinct > WIDTH
    result = invoke("predict", run_dir, "--text", text, "--word-index", tmp_path / "word_index.json", "--out", tmp_path / "p.json")
    assert result.exit_code == 0, result.output
    got = json.loads((tmp_path / "p.json").read_text())[0]["probabilities"]["positive"]
    # The same model with a wider input: duplicates (not 0) fill it, so no padding token is set.
    wide_input = keras.Input(shape=(8,), dtype="int32")
    wide = keras.Model(wide_input, model.layers[-1](model.layers[-2](model.layers[1](wide_input))))
    expected = wide.predict(np.array([[1, 2, 4, 5, 6, 7, 8, 9]], dtype="int32"), verbose=0)[0, 0]
    assert got == pytest.approx(float(expected), rel=1e-6)


def test_the_dataset_s_word_index_is_used_without_the_option(tmp_path, monkeypatch):
    from dlrun.data import synthetic

    run_dir, model = _text_run(tmp_path)
    monkeypatch.setattr(synthetic, "word_index", lambda data_config: WORD_INDEX, raising=False)
    result = invoke("predict", run_dir, "--text", "the movie was great", "--out", tmp_path / "p.json")
    assert result.exit_code == 0, result.output
    got = json.loads((tmp_path / "p.json").read_text())[0]["probabilities"]["positive"]
    assert got == pytest.approx(float(model.predict(np.array([[1, 4, 5, 6, 7]]), verbose=0)[0, 0]), rel=1e-6)
    monkeypatch.delattr(synthetic, "word_index")
    result = invoke("predict", run_dir, "--text", "the movie")
    assert result.exit_code == 2
    assert (
        "text input: dataset 'synthetic' has no word index; expected a run trained on a text dataset, or --word-index FILE" in result.stderr
    )


def test_regression_prints_and_writes_values(tmp_path):
    import keras

    inputs = keras.Input(shape=(3,), name="input")
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    run_dir = tmp_path / "regression_run"
    run_dir.mkdir()
    model.save(run_dir / "model.keras")
    (run_dir / "run.json").write_text(json.dumps({"status": "completed", "data": {"task": "regression", "class_names": None}}))
    samples = np.arange(6, dtype="float32").reshape(2, 3)
    np.save(tmp_path / "x.npy", samples)
    result = invoke("predict", run_dir, tmp_path / "x.npy", "--out", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "input,value"
    np.testing.assert_allclose([float(line.split(",")[1]) for line in lines[1:]], model.predict(samples, verbose=0)[:, 0], rtol=1e-6)
    assert "value" in result.stdout and "x.npy[1]" in result.stdout
