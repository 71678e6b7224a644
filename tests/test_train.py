"""`dlrun train` end to end on tiny configs, in-process (TensorFlow is imported once per session)."""

import json

import pytest

from dlrun import config
from dlrun.runs import history
from tests.conftest import CONFIGS, invoke, run_folders, tiny_config

EXPECTED_FILES = [".lock", "checkpoints/best.keras", "checkpoints/last.npz", "checkpoints/previous.npz", "config.yaml", "history.json", "metrics.json", "model.keras",
                  "plots/accuracy.png", "plots/confusion_matrix_test.png", "plots/loss.png", "run.json"]


def test_run_folder_holds_every_file(trained_run):
    found = sorted(str(path.relative_to(trained_run)) for path in trained_run.rglob("*") if path.is_file())
    assert found == EXPECTED_FILES


def test_run_json_records_the_run(trained_run):
    record = json.loads((trained_run / "run.json").read_text())
    assert record["status"] == "completed"
    assert record["seed"] == 7
    assert record["command"][1:3] == ["train", str(CONFIGS / "smoke" / "mlp_multiclass.yaml")]
    assert {"python", "tensorflow", "keras", "dlrun"} <= set(record["versions"])
    assert record["ended_at"] >= record["started_at"] and record["duration_s"] > 0
    assert record["epochs_completed"] == 2 and "host" in record


def test_history_has_train_and_validation_per_epoch(trained_run):
    run_history = history.load(trained_run / "history.json")
    assert run_history["epoch"] == [1, 2]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(run_history[key]) == 2 and all(isinstance(value, float) for value in run_history[key])


def test_metrics_json_has_test_metrics_next_to_the_baseline(trained_run):
    payload = json.loads((trained_run / "metrics.json").read_text())
    assert payload["split"] == "test" and payload["samples"] == 24
    assert set(payload["metrics"]) == {"loss", "accuracy"}
    # the baseline, recomputed from the labels: the most frequent training class, its share of the test labels
    import numpy as np

    from dlrun import data

    stored = config.load(trained_run / "config.yaml")
    loaded = data.load(stored.data, stored.seed)
    train_labels, test_labels = np.asarray(loaded.labels("train")), np.asarray(loaded.labels("test"))
    assert len(test_labels) == 24
    majority = int(np.bincount(train_labels).argmax())
    train_share, test_share = np.bincount(train_labels, minlength=3) / len(train_labels), np.bincount(test_labels, minlength=3) / 24
    assert payload["baseline"]["majority_class"] == majority
    assert payload["baseline"]["majority_class_accuracy"] == pytest.approx(np.mean(test_labels == majority), abs=1e-12)
    assert payload["baseline"]["random_guess_accuracy"] == pytest.approx(float(train_share @ test_share), abs=1e-12)
    assert 0 < payload["baseline"]["majority_class_accuracy"] < 1  # the data is not one class: the check can fail


def test_stored_config_repeats_the_run_exactly(trained_run, tmp_path):
    """The resolved config a run stores can be fed back to `dlrun train`, and the same seed gives the same numbers."""
    stored = config.load(trained_run / "config.yaml")
    # the source config, with `backend: auto` (its default) resolved to the backend the run used
    assert stored == config.load(CONFIGS / "smoke" / "mlp_multiclass.yaml", [f"output.runs_root={stored.output.runs_root}"],
                                 "tensorflow")
    result = invoke("train", trained_run / "config.yaml", "--set", f"output.runs_root={tmp_path}")
    assert result.exit_code == 0, result.output
    (repeat,) = run_folders(tmp_path)
    assert history.load(repeat / "history.json") == history.load(trained_run / "history.json")


def test_regression_run_reports_mae_and_mean_predictor(tmp_path):
    result = invoke("train", CONFIGS / "smoke" / "mlp_regression.yaml", "--set", f"output.runs_root={tmp_path}")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path)
    payload = json.loads((folder / "metrics.json").read_text())
    assert set(payload["metrics"]) == {"loss", "mae", "mse"}
    assert "mean_predictor_mae" in payload["baseline"]
    assert (folder / "plots" / "mae.png").exists()


def test_convnet_on_images(tmp_path):
    result = invoke("train", CONFIGS / "smoke" / "convnet_binary.yaml", "--set", f"output.runs_root={tmp_path}")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path)
    assert set(json.loads((folder / "metrics.json").read_text())["metrics"]) == {"loss", "accuracy", "auc"}


def test_progress_output_shows_epochs_and_the_run_folder(tmp_path):
    result = invoke("train", tiny_config(tmp_path / "c.yaml", tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    assert "epoch 1/2  loss " in result.output and "epoch 2/2" in result.output
    assert "run folder:" in result.output and "completed" in result.output
    assert "test (12 samples)" in result.output and "baseline:" in result.output


def test_convnet_on_flat_inputs_is_a_config_error_without_a_run_folder(tmp_path):
    path = tiny_config(tmp_path / "c.yaml", tmp_path / "runs")
    result = invoke("train", path, "--set", "model=convnet")
    assert result.exit_code == 2
    assert "model.architecture: received 'convnet' for inputs of shape [4]" in result.stderr
    assert run_folders(tmp_path / "runs") == []


def test_non_finite_loss_marks_the_run_failed(tmp_path, monkeypatch):
    """A NaN loss in batch 2 of epoch 2 (a weight made NaN before that batch, after a good epoch 1): training
    stops in that batch, the run is failed with "loss became nan at epoch 2, batch 2", epoch 1's checkpoint
    stays as the last good state (finite, epoch 1), history keeps epoch 1 only, and no model is written."""
    import numpy as np

    from dlrun.training import recorders

    batches = []  # (epoch, batch) of every batch that ended, both 1-based
    original_end = recorders.RunRecorder.on_train_batch_end

    def on_train_batch_begin(self, batch, logs=None):
        if (self._epoch, batch) == (1, 1):
            weight = self.model.trainable_variables[-1]  # the output bias: a NaN reaches the loss (ReLU would hide it)
            weight.assign(np.full(weight.shape, np.nan, dtype=weight.dtype))

    def on_train_batch_end(self, batch, logs=None):
        batches.append((self._epoch + 1, batch + 1))
        return original_end(self, batch, logs)

    monkeypatch.setattr(recorders.RunRecorder, "on_train_batch_begin", on_train_batch_begin, raising=False)
    monkeypatch.setattr(recorders.RunRecorder, "on_train_batch_end", on_train_batch_end)
    path = tiny_config(tmp_path / "c.yaml", tmp_path / "runs", task="regression", epochs=3)
    result = invoke("train", path)
    assert result.exit_code == 1, (batches, result.output)
    (folder,) = run_folders(tmp_path / "runs")
    message = f"loss became nan at epoch 2, batch 2; the last good state is in {folder / 'checkpoints/last.npz'} (epoch 1)"
    assert f"training stopped: {message}" in " ".join(result.stderr.split())
    per_epoch = max(batch for epoch, batch in batches if epoch == 1)
    assert per_epoch >= 3  # a batch after the bad one was there to train, and did not
    assert batches == [*((1, batch) for batch in range(1, per_epoch + 1)), (2, 1), (2, 2)]
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "failed" and record["error"] == f"training stopped: {message}"
    assert json.loads((folder / "history.json").read_text())["epoch"] == [1]
    with np.load(folder / "checkpoints" / "last.npz", allow_pickle=False) as stored:
        assert int(stored["epochs_completed"]) == 1
        assert all(np.isfinite(stored[key]).all() for key in stored.files)
    assert not (folder / "checkpoints" / "previous.npz").exists()
    assert not (folder / "model.keras").exists()


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_head_and_loss_follow_the_task(task, tmp_path):
    result = invoke("train", tiny_config(tmp_path / "c.yaml", tmp_path / "runs", task=task, epochs=1))
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    record = json.loads((folder / "run.json").read_text())
    expected = {"binary": "binary_crossentropy", "multiclass": "sparse_categorical_crossentropy", "regression": "mse"}
    assert record["loss"] == expected[task]
