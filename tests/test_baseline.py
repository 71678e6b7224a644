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
