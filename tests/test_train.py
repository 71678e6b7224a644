"""`dlrun train` end to end on tiny configs, in-process (TensorFlow is imported once per session)."""

import json

import pytest

from dlrun import config
from dlrun.runs import history
from tests.conftest import CONFIGS, invoke, run_folders, tiny_config

EXPECTED_FILES = [
    ".lock",
    "checkpoints/best.keras",
    "checkpoints/last.npz",
    "checkpoints/previous.npz",
    "config.yaml",
    "history.json",
    "metrics.json",
    "model.keras",
    "plots/accuracy.png",
    "plots/confusion_matrix_test.png",
    "plots/loss.png",
    "run.json",
]


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


def test_run_json_says_where_the_fit_time_went(trained_run):
    """fit_seconds split into the time before the first epoch and each epoch's own: a slow fit shows whether
    the epochs or what lies around them took the time (issue 17's bimodal fit time hid outside the epochs)."""
    record = json.loads((trained_run / "run.json").read_text())
    before, epochs = record["fit_before_first_epoch_seconds"], record["epoch_seconds"]
    assert len(epochs) == record["epochs_completed"] == 2
    assert before >= 0 and all(seconds > 0 for seconds in epochs)
    # parts of one clock: never more than the whole (the rounding to ms aside), and most of it on a tiny fit
    assert before + sum(epochs) <= record["fit_seconds"] + 0.003
    assert before + sum(epochs) >= 0.5 * record["fit_seconds"]


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
    assert stored == config.load(CONFIGS / "smoke" / "mlp_multiclass.yaml", [f"output.runs_root={stored.output.runs_root}"], "tensorflow")
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
    (folder,) = run_folders(tmp_path / "runs")
    run_history = history.load(folder / history.FILE_NAME)
    best = history.describe_best(run_history)  # each best epoch names its quantity: the loss and the metric differ
    assert best.startswith("best val_loss at epoch ") and "; best val_accuracy at epoch " in best
    assert best in result.output
    assert "val_loss stopped improving after epoch" in result.output or "val_loss still improving at the last epoch" in result.output


def test_convnet_on_flat_inputs_is_a_config_error_without_a_run_folder(tmp_path):
    path = tiny_config(tmp_path / "c.yaml", tmp_path / "runs")
    result = invoke("train", path, "--set", "model=convnet")
    assert result.exit_code == 2
    assert "model.architecture: received 'convnet' for inputs of shape [4]" in result.stderr
    assert run_folders(tmp_path / "runs") == []


@pytest.mark.parametrize(
    "steps, poisoned, where, ends",
    [
        (1, 1, "batch 2", [1, 2]),  # one batch per call: stops in batch 2 itself
        (2, 2, "in batches 3-4 (one call of 2 steps)", [2, 4]),  # train.steps_per_execution 2: the block it ran in
    ],
)
def test_non_finite_loss_marks_the_run_failed(tmp_path, monkeypatch, steps, poisoned, where, ends):
    """A NaN loss in epoch 2 (a weight made NaN before a batch, after a good epoch 1): training stops in the
    call that ran that batch, the run is failed with "loss became nan at epoch 2, <batch or block>", epoch
    1's checkpoint stays as the last good state (finite, epoch 1), history keeps epoch 1 only, no model."""
    import numpy as np

    from dlrun.training import recorders

    batches = []  # (epoch, batch) of every batch (or block of batches) that ended, 1-based
    original_end = recorders.RunRecorder.on_train_batch_end

    def on_train_batch_begin(self, batch, logs=None):
        if (self._epoch, batch) == (1, poisoned):
            weight = self.model.trainable_variables[-1]  # the output bias: a NaN reaches the loss (ReLU would hide it)
            weight.assign(np.full(weight.shape, np.nan, dtype=weight.dtype))

    def on_train_batch_end(self, batch, logs=None):
        batches.append((self._epoch + 1, batch + 1))
        return original_end(self, batch, logs)

    monkeypatch.setattr(recorders.RunRecorder, "on_train_batch_begin", on_train_batch_begin, raising=False)
    monkeypatch.setattr(recorders.RunRecorder, "on_train_batch_end", on_train_batch_end)
    path = tiny_config(tmp_path / "c.yaml", tmp_path / "runs", task="regression", epochs=3)
    result = invoke("train", path, "--set", f"train.steps_per_execution={steps}", "--set", "train.batch_size=1")
    assert result.exit_code == 1, (batches, result.output)
    (folder,) = run_folders(tmp_path / "runs")
    message = f"loss became nan at epoch 2, {where}; the last good state is in {folder / 'checkpoints/last.npz'} (epoch 1)"
    assert f"training stopped: {message}" in " ".join(result.stderr.split())
    per_epoch = json.loads((folder / "run.json").read_text())["data"]["sizes"]["train"]  # batch size 1
    assert per_epoch > ends[-1]  # a batch after the bad one was there to train, and did not
    assert batches == [*((1, end) for end in range(steps, per_epoch + steps, steps)), *((2, end) for end in ends)]
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


@pytest.mark.slow
def test_steps_per_execution_auto_groups_batches_and_changes_no_number(tmp_path, recwarn):
    """`train.steps_per_execution: auto` (the default) runs several batches per call for a small in-memory
    model, records the choice in run.json, and gives bit for bit the history and weights of one batch per call.
    With more steps per epoch than auto's cap (batch size 1), it takes a divisor of them: a block that ran
    past the epoch's last batch would take the next epoch's first ones (and Keras warns its input ran out)."""
    import numpy as np

    from dlrun.models import saved
    from dlrun.training import batches

    folders = {}
    for steps in ("auto", "1"):
        root = tmp_path / steps
        path = tiny_config(tmp_path / f"{steps}.yaml", root, epochs=3)
        result = invoke(
            "train", path, "--set", f"train.steps_per_execution={steps}", "--set", "train.batch_size=1", "--set", "model.dropout=0.3"
        )
        assert result.exit_code == 0, result.output
        (folders[steps],) = run_folders(root)
    record = json.loads((folders["auto"] / "run.json").read_text())
    per_epoch = record["data"]["sizes"]["train"]  # batch size 1
    assert per_epoch > batches.AUTO_STEPS and per_epoch % batches.AUTO_STEPS  # so the cap alone would straddle epochs
    chosen = record["steps_per_execution"]["steps"]
    assert chosen == max(number for number in range(1, batches.AUTO_STEPS + 1) if per_epoch % number == 0) > 1
    assert record["steps_per_execution"]["reason"].startswith(f"auto: {chosen} (a divisor of {per_epoch} steps per epoch)")
    assert json.loads((folders["1"] / "run.json").read_text())["steps_per_execution"] == {"steps": 1, "reason": "set in the config"}
    assert (folders["auto"] / "history.json").read_text() == (folders["1"] / "history.json").read_text()
    weights = [saved.load_model(folders[steps] / "model.keras").get_weights() for steps in ("auto", "1")]
    assert all(np.array_equal(a, b) for a, b in zip(*weights))
    assert not [warning for warning in recwarn if "ran out of data" in str(warning.message)]


@pytest.mark.parametrize(
    "settings, expected",
    [
        (
            ["train.loop=custom", "train.steps_per_execution=4"],
            "train.steps_per_execution: received 4; expected auto or 1 with loop: custom",
        ),
        (
            ["backend=torch", "train.steps_per_execution=4"],
            "train.steps_per_execution: received 4 with backend 'torch'; expected auto or 1",
        ),
        (["train.steps_per_execution=0"], "train.steps_per_execution: received 0"),
        (
            ["train.steps_per_execution=7", "train.batch_size=4"],  # 40 training samples: 10 steps per epoch
            "train.steps_per_execution: received 7; expected auto or a divisor of the 10 steps per epoch (1, 2, 5, 10)",
        ),
    ],
)
def test_steps_per_execution_that_cannot_apply_is_a_config_error(tmp_path, settings, expected):
    path = tiny_config(tmp_path / "c.yaml", tmp_path / "runs")
    result = invoke("train", path, *(word for item in settings for word in ("--set", item)))
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.stderr.split())
    assert run_folders(tmp_path / "runs") == []
