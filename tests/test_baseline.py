import numpy as np
import pytest

from dlrun.training import baseline


def test_classification_baselines():
    train = np.array([0, 0, 0, 1])
    test = np.array([0, 1, 1, 1])
    result = baseline.classification(train, test)
    assert result["majority_class"] == 0
    assert result["majority_class_accuracy"] == 0.25
    # guessing 0 with p=0.75 and 1 with p=0.25: 0.75*0.25 + 0.25*0.75
    assert result["random_guess_accuracy"] == pytest.approx(0.375)


def test_one_hot_labels_are_understood():
    result = baseline.classification(np.eye(3)[[0, 0, 1]], np.eye(3)[[0, 2]])
    assert result["majority_class_accuracy"] == 0.5


def test_regression_baseline_uses_the_training_mean():
    result = baseline.regression(np.array([1.0, 3.0]), np.array([2.0, 4.0]))
    assert result == {"mean_prediction": 2.0, "mean_predictor_mae": 1.0, "mean_predictor_mse": 2.0}


def test_majority_is_the_most_frequent_class_not_the_first():
    result = baseline.classification(np.array([0, 1, 1]), np.array([1, 1, 0, 0]))
    assert result["majority_class"] == 1
    assert result["majority_class_accuracy"] == 0.5


def test_a_test_class_never_seen_in_training_is_never_guessed():
    # train shares {0: 2/3, 1: 1/3}; test shares {0: 1/2, 2: 1/2}: 2/3 * 1/2 + 0 * 1/2
    result = baseline.classification(np.array([0, 0, 1]), np.array([0, 2]))
    assert result["random_guess_accuracy"] == pytest.approx(1 / 3, abs=1e-15)


def test_mse_squares_the_residual():
    result = baseline.regression(np.array([0.0, 0.0]), np.array([3.0, -3.0]))
    assert result == {"mean_prediction": 0.0, "mean_predictor_mae": 3.0, "mean_predictor_mse": 9.0}


def test_two_column_one_hot_and_one_column_labels():
    two_column = baseline.classification(np.array([[1, 0], [0, 1], [0, 1]]), np.array([[0, 1], [1, 0]]))
    assert two_column["majority_class"] == 1 and two_column["majority_class_accuracy"] == 0.5
    column = baseline.classification(np.array([[2], [2], [0]]), np.array([[2], [0]]))
    assert column["majority_class"] == 2 and column["majority_class_accuracy"] == 0.5


def test_for_task_picks_the_baselines_of_the_task():
    train, test = np.array([0.0, 2.0]), np.array([1.0, 3.0])
    assert baseline.for_task("regression", train, test) == baseline.regression(train, test)
    labels = np.array([0, 1, 1])
    assert baseline.for_task("classification", labels, labels) == baseline.classification(labels, labels)
    assert "majority_class" in baseline.for_task("binary", labels, labels)


def test_regression_baseline_is_computed_in_float64_for_float32_targets():
    """Targets are often float32 arrays: the residual is taken in float64, so large targets keep their precision
    (16777215.5 is not a float32)."""
    found = baseline.regression(np.array([0.0, 1.0]), np.array([16777216.0], dtype="float32"))
    assert found["mean_predictor_mae"] == 16777215.5
