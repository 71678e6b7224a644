import math

from dlrun.runs import history


def test_append_and_save_round_trip(tmp_path):
    run_history = history.empty()
    history.append(run_history, 1, {"loss": 1.0, "val_loss": 2.0})
    history.append(run_history, 2, {"loss": 0.5, "val_loss": math.nan, "learning_rate": 0.1})
    assert run_history == {"epoch": [1, 2], "loss": [1.0, 0.5], "val_loss": [2.0, None], "learning_rate": [None, 0.1]}
    history.save(tmp_path / "h.json", run_history)
    assert history.load(tmp_path / "h.json") == run_history


def test_best_epoch_direction_depends_on_the_metric():
    run_history = {"epoch": [1, 2, 3], "val_loss": [0.5, 0.3, 0.4], "val_accuracy": [0.7, 0.9, 0.8], "val_mae": [3, 2, 1]}
    assert history.best_epoch(run_history, "val_loss") == (2, 0.3)
    assert history.best_epoch(run_history, "val_accuracy") == (2, 0.9)
    assert history.best_epoch(run_history, "val_mae") == (3, 1)
    assert history.best_epoch(run_history, "val_auc") is None


def test_metric_names_put_loss_first():
    assert history.metric_names({"epoch": [], "accuracy": [], "loss": [], "val_loss": [], "val_accuracy": []}) == [
        "loss",
        "accuracy",
    ]


def test_best_epochs_name_each_validation_quantity_loss_first():
    run_history = {"epoch": [1, 2, 3], "loss": [1.0, 0.5, 0.4], "val_loss": [0.9, 0.6, 0.7],
                   "accuracy": [0.5, 0.8, 0.9], "val_accuracy": [0.6, 0.8, 0.85]}
    assert history.best_epochs(run_history) == [("val_loss", 2, 0.6), ("val_accuracy", 3, 0.85)]
    assert history.describe_best(run_history) == "best val_loss at epoch 2 (0.6000); best val_accuracy at epoch 3 (0.8500)"
    assert history.describe_best({"epoch": [1], "loss": [1.0]}) == ""  # no validation values: nothing to name
