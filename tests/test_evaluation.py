"""`dlrun eval` and the shared evaluation code: exact reproduction of a run's test metrics, analysis, errors."""

import json
import shutil

import numpy as np
import pytest

from dlrun.training import evaluation
from tests.conftest import CONFIGS, invoke, run_folders


def test_predicted_classes_threshold_or_argmax():
    assert evaluation.predicted_classes(np.array([[0.2], [0.5], [0.9]])).tolist() == [0, 1, 1]
    assert evaluation.predicted_classes(np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])).tolist() == [1, 0]
    assert evaluation.class_ids(np.array([[0, 1], [1, 0]])).tolist() == [1, 0]


def test_classification_analysis_confusion_matrix_and_per_class():
    found = evaluation.classification_analysis(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), ["a", "b", "c"])
    assert found["confusion_matrix"] == {"labels": ["a", "b", "c"], "matrix": [[1, 1, 0], [0, 2, 0], [1, 0, 0]]}
    assert found["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert found["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and found["per_class"]["b"]["recall"] == 1.0
    assert found["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_summary_line():
    payload = {
        "split": "test",
        "samples": 3,
        "metrics": {"mae": 1.5, "loss": 2.0},
        "baseline": {"mean_prediction": 0.1, "mean_predictor_mae": 3.0},
    }
    assert evaluation.summary_line(payload) == "test (3 samples): loss 2.0000  mae 1.5000   baseline: mean_predictor_mae 3.0000"


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A private copy of the shared trained run, so eval files do not leak between tests."""
    return shutil.copytree(trained_run, tmp_path / trained_run.name)


def test_eval_reproduces_the_runs_own_test_metrics_exactly(run_copy):
    result = invoke("eval", run_copy)
    assert result.exit_code == 0, result.output
    stored = json.loads((run_copy / "metrics.json").read_text())
    evaluated = json.loads((run_copy / "eval_test.json").read_text())
    assert evaluated["metrics"] == stored["metrics"]  # exact floats: same model, data, preprocessing, batches
    assert evaluated["baseline"] == stored["baseline"]
    assert evaluated["confusion_matrix"] == stored["confusion_matrix"]
    assert evaluated["model"] == "model.keras" and evaluated["samples"] == 24
    assert sum(map(sum, evaluated["confusion_matrix"]["matrix"])) == 24
    assert set(evaluated["per_class"]) == {"class_0", "class_1", "class_2"}
    assert (run_copy / "plots" / "confusion_matrix_test.png").exists()
    assert "test (24 samples): loss" in result.output and "precision" in result.output


def test_eval_best_checkpoint_on_validation(run_copy):
    result = invoke("eval", run_copy, "--checkpoint", "best", "--split", "validation")
    assert result.exit_code == 0, result.output
    evaluated = json.loads((run_copy / "eval_validation_best.json").read_text())
    assert evaluated["model"] == "checkpoints/best.keras" and evaluated["split"] == "validation"
    assert evaluated["samples"] == 20
    # the checkpoint callback kept the epoch with the best val_accuracy: eval reproduces it
    history = json.loads((run_copy / "history.json").read_text())
    assert evaluated["metrics"]["accuracy"] == pytest.approx(max(history["val_accuracy"]), abs=1e-6)


@pytest.mark.parametrize(
    "options, message",
    [
        (["--split", "dev"], "--split: received 'dev'; expected one of test, validation, train"),
        (["--checkpoint", "last"], "--checkpoint: received 'last'; expected one of final, best"),
        (
            ["--data-path", "/data/x"],
            "--data-path: received '/data/x'; expected a dataset with a `path` option (dataset 'synthetic' has none)",
        ),
    ],
    ids=["split", "checkpoint", "data-path"],
)
def test_eval_bad_options_exit_2(trained_run, options, message):
    result = invoke("eval", trained_run, *options)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_eval_missing_model_or_checkpoint_or_run(run_copy, tmp_path):
    (run_copy / "checkpoints" / "best.keras").unlink()
    result = invoke("eval", run_copy, "--checkpoint", "best")
    assert result.exit_code == 2
    assert "best.keras: no such file; expected a run trained with a `checkpoint` callback" in result.stderr
    result = invoke("eval", tmp_path / "nowhere")
    assert result.exit_code == 2 and "not a dlrun run folder (no run.json)" in result.stderr


def test_eval_of_a_split_the_dataset_lacks(tmp_path):
    root = tmp_path / "runs"
    result = invoke(
        "train",
        CONFIGS / "smoke" / "mlp_regression.yaml",
        "--set",
        f"output.runs_root={root}",
        "--set",
        "data.validation_split=0",
        "--set",
        "train.callbacks=[]",
        "--set",
        "train.epochs=1",
    )
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(root)
    result = invoke("eval", folder, "--split", "validation")
    assert result.exit_code == 2
    assert "--split: received 'validation'; expected a split this dataset has: train, test" in result.stderr
    result = invoke("eval", folder, "--split", "train")
    assert result.exit_code == 0, result.output
    evaluated = json.loads((folder / "eval_train.json").read_text())
    assert set(evaluated["residuals"]) == {"mean", "std", "max_abs"} and "mean_predictor_mae" in evaluated["baseline"]
    assert (folder / "plots" / "predicted_vs_true_train.png").exists() and (folder / "plots" / "residuals_train.png").exists()
