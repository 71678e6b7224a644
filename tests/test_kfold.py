"""`dlrun kfold`: fold planning, smoothing, per-fold normalisation, interruption and resume, bad options."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from dlrun import errors
from dlrun.runs import history
from dlrun.trials import kfold_fits, kfold_plan
from tests.conftest import invoke, record_trained_epochs, run_folders, write_kfold_config

# --- planning and curves (no training) ---------------------------------------------------------


def test_folds_partition_the_samples_and_repeats_shuffle_differently():
    targets = np.arange(20, dtype="float32")
    plan = kfold_plan.plan_folds(targets, "regression", k=4, repeats=2, shuffle=True, seed=1)
    assert [(fold["repeat"], fold["fold"]) for fold in plan] == [(r, f) for r in (1, 2) for f in (1, 2, 3, 4)]
    for repeat in (1, 2):
        indices = sorted(i for fold in plan if fold["repeat"] == repeat for i in fold["validation_indices"])
        assert indices == list(range(20))  # every sample is validated exactly once per repeat
    first = [fold["validation_indices"] for fold in plan[:4]]
    second = [fold["validation_indices"] for fold in plan[4:]]
    assert first != second
    assert kfold_plan.plan_folds(targets, "regression", 4, 2, True, 1) == plan  # seeded


def test_classification_folds_are_stratified():
    labels = np.array([0] * 30 + [1] * 10)
    for fold in kfold_plan.plan_folds(labels, "binary", k=5, repeats=1, shuffle=True, seed=0):
        assert np.bincount(labels[fold["validation_indices"]]).tolist() == [6, 2]


def test_unshuffled_folds_are_contiguous():
    plan = kfold_plan.plan_folds(np.zeros(6), "regression", k=3, repeats=1, shuffle=False, seed=0)
    assert [fold["validation_indices"] for fold in plan] == [[0, 1], [2, 3], [4, 5]]


def test_smoothing_is_the_books_exponential_moving_average():
    assert kfold_plan.smooth([10.0, 0.0, 0.0], 0.9) == pytest.approx([10.0, 9.0, 8.1])
    assert kfold_plan.smooth([None, 2.0, 4.0], 0.5) == [None, 2.0, 3.0]


def test_mean_history_and_recommendation():
    folds = [
        {"epoch": [1, 2, 3], "val_mae": [4.0, 2.0, 3.0], "loss": [1.0, 1.0, 1.0]},
        {"epoch": [1, 2, 3], "val_mae": [6.0, 4.0, 1.0], "loss": [3.0, 3.0, 3.0]},
    ]
    mean = kfold_plan.mean_history(folds)
    assert mean == {"epoch": [1, 2, 3], "val_mae": [5.0, 3.0, 2.0], "loss": [2.0, 2.0, 2.0]}
    found = kfold_plan.recommend(mean, "val_mae", 0.5)
    assert found["smoothed"] == [5.0, 4.0, 3.0]
    assert found["recommended_epochs"] == 3 and found["mean_best"] == {"epoch": 3, "value": 2.0}
    accuracy = kfold_plan.recommend({"epoch": [1, 2, 3], "val_accuracy": [0.5, 0.9, 0.1]}, "val_accuracy", 0.0)
    assert accuracy["recommended_epochs"] == 2  # higher is better for accuracy


# --- bad options: exit 2, a clear message, no run folder ----------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        (["--k", "1"], "--k: received 1; expected a number of folds >= 2"),
        (["--k", "49"], "--k: received 49; expected at most the number of samples (48)"),
        (["--repeats", "0"], "--repeats: received 0; expected a number >= 1"),
        (["--repeats", "2", "--no-shuffle"], "--repeats: received 2 with --no-shuffle"),
        (["--monitor", "val_acc"], "--monitor: received 'val_acc'; expected one of val_loss, val_mae"),
        (["--smoothing", "1"], "--smoothing: received 1.0; expected a factor in [0, 1)"),
    ],
    ids=["k<2", "k>samples", "repeats<1", "repeats-without-shuffle", "monitor", "smoothing"],
)
def test_bad_options_exit_2_without_a_run_folder(tmp_path, options, message):
    result = invoke("kfold", write_kfold_config(tmp_path), *options)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert run_folders(tmp_path / "runs") == []


def test_resume_of_a_folder_that_is_not_a_kfold_run(tmp_path):
    (tmp_path / "run.json").write_text('{"status": "interrupted"}')
    result = invoke("kfold", "--resume", tmp_path)
    assert result.exit_code == 2
    assert "kfold.json: missing or unreadable; expected a run made by `dlrun kfold`" in result.stderr


# --- end to end --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("kfold")
    result = invoke("kfold", write_kfold_config(tmp_path), "--k", "3", "--repeats", "2")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    return folder, result.output


def test_recommended_epochs_is_the_best_epoch_of_the_smoothed_mean_curve():
    """A curve whose raw best (epoch 2), smoothed best (epoch 6) and last epoch (8) all differ."""
    mean = {"epoch": list(range(1, 9)), "val_mae": [1.0, 0.3, 0.9, 0.35, 0.4, 0.45, 2.0, 3.0]}
    smoothed = kfold_plan.smooth(mean["val_mae"], 0.5)
    assert smoothed[:6] == pytest.approx([1.0, 0.65, 0.775, 0.5625, 0.48125, 0.465625])
    found = kfold_plan.recommend(mean, "val_mae", 0.5)
    assert found["recommended_epochs"] == 1 + int(np.argmin(smoothed)) == 6
    assert found["smoothed_best"] == {"epoch": 6, "value": pytest.approx(0.465625)}
    assert found["mean_best"] == {"epoch": 2, "value": 0.3}


@pytest.mark.slow
def test_kfold_run_folder(regression_run):
    folder, output = regression_run
    state = json.loads((folder / "kfold.json").read_text())
    assert state["status"] == "completed" and state["k"] == 3 and state["repeats"] == 2
    assert state["samples"] == 48 and state["pooled_splits"] == ["train", "validation"]
    assert [fold["status"] for fold in state["folds"]] == ["completed"] * 6
    for fold in state["folds"]:
        fold_history = history.load(folder / "folds" / str(fold["index"]) / "history.json")
        assert fold_history["epoch"] == [1, 2, 3]
        assert fold["last"]["val_mae"] == fold_history["val_mae"][-1]
        assert fold["train_samples"] + fold["validation_samples"] == 48
    maes = [fold["last"]["val_mae"] for fold in state["folds"]]
    assert state["summary"]["val_mae"]["last_mean"] == pytest.approx(np.mean(maes))
    assert state["summary"]["val_mae"]["last_std"] == pytest.approx(np.std(maes))
    mean = history.load(folder / "history.json")
    assert mean["val_mae"][-1] == pytest.approx(np.mean(maes))
    assert state["monitor"] == "val_mae" and state["smoothing"] == 0.9
    smoothed = kfold_plan.smooth(mean["val_mae"], 0.9)
    assert state["smoothed"] == pytest.approx(smoothed)
    # the recommendation is the best (lowest) epoch of the smoothed mean curve, 1-based
    assert state["recommended_epochs"] == 1 + int(np.argmin(smoothed))
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "completed" and record["kind"] == "kfold"
    assert record["recommended_epochs"] == state["recommended_epochs"]
    # `backend: auto` (the config's default) is stored resolved, as dlrun train stores it
    assert record["backend"]["name"] == "tensorflow" and "backend: tensorflow\n" in (folder / "config.yaml").read_text()
    assert "repeat 2/2 fold 3/3: val_mae last" in output and f"recommended epochs: {state['recommended_epochs']}" in output


@pytest.mark.slow
def test_final_refit_reports_test_metrics_next_to_the_baseline(regression_run):
    folder, output = regression_run
    state = json.loads((folder / "kfold.json").read_text())
    payload = json.loads((folder / "metrics.json").read_text())
    assert payload["split"] == "test" and payload["samples"] == 12 and payload["epochs"] == state["recommended_epochs"]
    assert set(payload["metrics"]) == {"loss", "mae"} and "mean_predictor_mae" in payload["baseline"]
    assert history.load(folder / "final" / "history.json")["epoch"] == list(range(1, state["recommended_epochs"] + 1))
    for name in ("kfold_val_mae.png", "kfold_val_loss.png", "mae.png", "predicted_vs_true_test.png", "residuals_test.png"):
        assert (folder / "plots" / name).exists(), name
    assert (folder / "model.keras").exists()
    assert "test (12 samples): loss" in output and "baseline: mean_predictor_mae" in output


def test_each_fold_normalises_with_its_own_training_part_only(tmp_path, monkeypatch):
    """A fold's Normalization statistics equal its training part's, not the whole training split's."""
    from dlrun import data, models

    original_load, original_build = data.load, models.build
    built = []
    monkeypatch.setattr(data, "load", lambda *args: dataclasses.replace(original_load(*args), normalize=True))
    monkeypatch.setattr(models, "build", lambda *args, **kwargs: built.append(original_build(*args, **kwargs)) or built[-1])
    result = invoke("kfold", write_kfold_config(tmp_path), "--k", "3", "--no-final", "--set", "train.epochs=1")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    state = json.loads((folder / "kfold.json").read_text())
    inputs = original_load(*_data_args(folder)).pooled().train[0]
    assert len(built) == 3
    for fold, model in zip(state["folds"], built):
        keep = np.ones(len(inputs), dtype=bool)
        keep[fold["validation_indices"]] = False
        mean = np.asarray(model.get_layer("normalize").mean).ravel()
        np.testing.assert_allclose(mean, inputs[keep].mean(axis=0), rtol=1e-5, atol=1e-6)
        assert not np.allclose(mean, inputs.mean(axis=0), rtol=1e-5, atol=1e-6)


def _data_args(folder):
    from dlrun import config

    stored = config.load(folder / "config.yaml")
    return stored.data, stored.seed


@pytest.mark.slow
def test_classification_kfold_is_stratified_end_to_end(tmp_path):
    result = invoke("kfold", write_kfold_config(tmp_path, "multiclass"), "--k", "3", "--no-final", "--set", "train.epochs=1")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(tmp_path / "runs")
    state = json.loads((folder / "kfold.json").read_text())
    assert state["stratified"] is True and state["monitor"] == "val_accuracy"
    assert not (folder / "metrics.json").exists() and not (folder / "model.keras").exists()


@pytest.mark.slow
def test_interrupt_keeps_completed_folds_and_resume_finishes_with_the_same_numbers(tmp_path, monkeypatch):
    from dlrun.training import recorders

    config_path = write_kfold_config(tmp_path)
    original = recorders.RunRecorder.on_epoch_end
    epochs_seen = []

    def interrupt_in_fold_2(self, epoch, logs=None):
        original(self, epoch, logs)  # history and checkpoint written
        epochs_seen.append((self.folder.name, epoch + 1))
        if len(epochs_seen) == 5:  # fold 1's three epochs, then fold 2's second
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(recorders.RunRecorder, "on_epoch_end", interrupt_in_fold_2)
        result = invoke("kfold", config_path, "--k", "3")
    assert result.exit_code == 130
    assert "interrupted after 1 completed fold(s)" in result.stderr
    (folder,) = run_folders(tmp_path / "runs")
    record = json.loads((folder / "run.json").read_text())
    state = json.loads((folder / "kfold.json").read_text())
    assert record["status"] == "interrupted" and record["folds_completed"] == 1
    assert [fold["status"] for fold in state["folds"]] == ["completed", "pending", "pending"]
    assert history.load(folder / "folds" / "1" / "history.json")["epoch"] == [1, 2, 3]
    assert not (folder / "metrics.json").exists()

    with monkeypatch.context() as patch:
        epochs_seen = record_trained_epochs(patch)
        result = invoke("kfold", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "1 of 3 folds already completed" in result.output
    assert "resuming fold 2 after epoch 2" in result.output
    assert "fold 1/3:" not in result.output and "fold 2/3:" in result.output
    # fold 2 continued from its checkpoint: only its third epoch trained again; fold 3 and the refit in full
    final_epochs = json.loads((folder / "kfold.json").read_text())["recommended_epochs"]
    assert epochs_seen == [("2", 3), ("3", 1), ("3", 2), ("3", 3), *(("final", epoch) for epoch in range(1, final_epochs + 1))]
    assert history.load(folder / "folds" / "2" / "history.json")["epoch"] == [1, 2, 3]
    assert json.loads((folder / "run.json").read_text())["status"] == "completed"
    resumed = json.loads((folder / "kfold.json").read_text())

    result = invoke("kfold", config_path, "--k", "3", "--set", f"output.runs_root={json.dumps(str(tmp_path / 'again'))}")
    assert result.exit_code == 0, result.output
    (again,) = run_folders(tmp_path / "again")
    uninterrupted = json.loads((again / "kfold.json").read_text())
    for key in ("summary", "smoothed", "recommended_epochs", "final_test"):
        assert resumed[key] == uninterrupted[key], key
    assert invoke("kfold", "--resume", folder).exit_code == 2  # a completed run is not resumed again


@pytest.mark.slow
@pytest.mark.parametrize(
    ("error", "message"),
    [
        (errors.TrainingFailed("training stopped: loss became nan at epoch 2"), "final: training stopped: loss became nan at epoch 2"),
        (RuntimeError("out of memory"), "final: RuntimeError: out of memory"),
    ],
)
def test_a_failing_final_refit_fails_the_run_and_keeps_the_folds(tmp_path, monkeypatch, error, message):
    original = kfold_fits.train_part

    def refit_fails(task, emit):
        if task.run is None:  # a fold
            return original(task, emit)

        def refit_fails_after_epoch_1(event):  # the refit's first epoch is recorded, then it fails
            emit(event)
            if event["type"] == "epoch":
                raise error

        return original(task, refit_fails_after_epoch_1)

    monkeypatch.setattr(kfold_fits, "train_part", refit_fails)
    result = invoke("kfold", write_kfold_config(tmp_path), "--k", "3", "--set", "train.epochs=2")
    assert result.exit_code == 1
    assert message in result.stderr
    (folder,) = run_folders(tmp_path / "runs")
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "failed" and record["error"] == message
    # an unexpected error keeps its traceback in run.json; a dlrun error is its own explanation
    assert ("refit_fails" in record.get("traceback", "")) == isinstance(error, RuntimeError)
    state = json.loads((folder / "kfold.json").read_text())
    assert state["status"] == "folds_completed" and [fold["status"] for fold in state["folds"]] == ["completed"] * 3
    assert history.load(folder / "final" / "history.json")["epoch"] == [1]  # what the refit reached is kept
    assert not (folder / "model.keras").exists() and not (folder / "metrics.json").exists()


KILLED = """\
name: kf-killed
seed: 7
data: {{name: synthetic, task: regression, num_samples: 6000, input_shape: [5], noise: 1.0}}
model: {{architecture: mlp, units: [8], dropout: 0.3}}
train: {{epochs: 8, batch_size: 16}}
output: {{runs_root: {root}, plots: false}}
"""


@pytest.mark.slow
def test_sigkill_in_fold_3_then_resume_continues_it_from_its_checkpoint(tmp_path, monkeypatch):
    """A real kill -9 in fold 3 of 4: --resume continues fold 3 after the epoch its checkpoint holds, trains
    only the epochs after it, and ends with the numbers of a run that was never killed."""
    from tests.conftest import checkpoint_epochs, sigkill_when

    epochs = 8  # about 0.2 s each: the kill lands a few epochs before fold 3 ends
    config_path = tmp_path / "killed.yaml"
    config_path.write_text(KILLED.format(root=json.dumps(str(tmp_path / "runs"))))

    def fold_3_has_epoch_5():
        folders = run_folders(tmp_path / "runs")
        return bool(folders) and (checkpoint_epochs(folders[0] / "folds" / "3") or 0) >= 5

    sigkill_when(["kfold", config_path, "--k", "4"], fold_3_has_epoch_5)
    (folder,) = run_folders(tmp_path / "runs")
    killed_after = checkpoint_epochs(folder / "folds" / "3")
    assert 5 <= killed_after < epochs, f"the kill landed after fold 3's epoch {killed_after}, not inside the fold"
    assert json.loads((folder / "run.json").read_text())["status"] == "running"  # nothing ran after the kill
    state = json.loads((folder / "kfold.json").read_text())
    assert [fold["status"] for fold in state["folds"]] == ["completed", "completed", "pending", "pending"]
    listing = invoke("runs", tmp_path / "runs")
    assert listing.exit_code == 0 and "crashed" in listing.output

    with monkeypatch.context() as patch:
        epochs_seen = record_trained_epochs(patch)
        result = invoke("kfold", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert "2 of 4 folds already completed" in result.output
    assert f"resuming fold 3 after epoch {killed_after} (fold 3/4; state from 3/checkpoints/last.npz)" in result.output
    resumed = json.loads((folder / "kfold.json").read_text())
    # fold 3 went on from its checkpoint: only the epochs after it trained; fold 4 and the refit in full
    assert epochs_seen == [
        *(("3", epoch) for epoch in range(killed_after + 1, epochs + 1)),
        *(("4", epoch) for epoch in range(1, epochs + 1)),
        *(("final", epoch) for epoch in range(1, resumed["recommended_epochs"] + 1)),
    ]
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "completed" and record["folds_completed"] == 4
    (entry,) = record["resumes"]
    assert entry["previous"]["status"] == "running" and entry["after_epoch"] == 2 * epochs  # folds 1 and 2

    result = invoke("kfold", config_path, "--k", "4", "--set", f"output.runs_root={json.dumps(str(tmp_path / 'straight'))}")
    assert result.exit_code == 0, result.output
    (straight,) = run_folders(tmp_path / "straight")
    uninterrupted = json.loads((straight / "kfold.json").read_text())
    for key in ("summary", "smoothed", "recommended_epochs", "final_test"):
        assert resumed[key] == uninterrupted[key], key
    assert [fold["status"] for fold in resumed["folds"]] == ["completed"] * 4
    for index in range(1, 5):
        fold_history = history.load(folder / "folds" / str(index) / "history.json")
        assert fold_history["epoch"] == list(range(1, epochs + 1)), index
        assert fold_history == history.load(straight / "folds" / str(index) / "history.json"), index
    assert history.load(folder / "final" / "history.json") == history.load(straight / "final" / "history.json")


def _fit_task(tmp_path, epochs: int, stream: bool) -> kfold_fits.FitTask:
    """Fold 1 (the first 10 samples validate) of a tiny synthetic regression, as K-fold hands it to a worker."""
    from dlrun import config as config_module

    data = {
        "name": "streamed",
        "seed": 3,
        "data": {"name": "synthetic", "task": "regression", "num_samples": 40, "input_shape": [3]},
        "model": {"architecture": "mlp", "units": [4]},
        "train": {"epochs": epochs, "batch_size": 8},
    }
    folder = tmp_path / ("streamed" if stream else "direct") / "folds" / "1"
    task = kfold_fits.FitTask(
        config=config_module.to_data(kfold_fits.fold_config(config_module.validate(data), 1)),
        folder=str(folder),
        validation_indices=list(range(10)),
        data_seed=3,
    )
    return kfold_fits.streamed_task(task) if stream else task


def test_a_streamed_fold_writes_nothing_itself_and_continues_from_the_state_sent_back(tmp_path):
    """For workers that share no file system with the run folder (Ray on a cluster): the fold trains in a
    scratch folder, each epoch's history and checkpoint travel in its event, the driver writes them, and a
    resumed fold continues from what the driver sends, with a straight fold's numbers."""
    events = []
    task = _fit_task(tmp_path, epochs=2, stream=True)
    kfold_fits.train_part(task, events.append)
    folder = Path(task.folder)
    assert not folder.exists()  # the worker wrote nothing there
    epochs = [event for event in events if event["type"] == "epoch"]
    assert [event["epoch"] for event in epochs] == [1, 2] and all(event["checkpoint"] for event in epochs)
    for event in epochs:
        kfold_fits.write_streamed(folder, event)
    assert history.load(folder / "history.json")["epoch"] == [1, 2]

    events.clear()
    longer = _fit_task(tmp_path, epochs=4, stream=True)  # the same fold, asked for 4 epochs: continues after 2
    assert longer.resume_checkpoint is not None and longer.resume_history["epoch"] == [1, 2]
    result = kfold_fits.train_part(longer, events.append)
    assert events[0] == {"type": "resumed", "after_epoch": 2, "source": "1/checkpoints/last.npz"}
    assert [event["epoch"] for event in events if event["type"] == "epoch"] == [3, 4]
    straight = kfold_fits.train_part(_fit_task(tmp_path, epochs=4, stream=False), lambda event: None)
    assert result["history"] == straight["history"]
