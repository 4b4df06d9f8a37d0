"""Metrics: hand-computed values, agreement with scikit-learn, and JSON-safe output (None, never NaN)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from livetrain.errors import ValidationError
from livetrain.training.metrics import (
    DIRECTIONS,
    classification_metrics,
    factorization_rate,
    higher_is_better,
    regression_metrics,
)


def assert_json_safe(values: dict) -> None:
    json.dumps(values, allow_nan=False)
    for value in values.values():
        assert value is None or type(value) in (int, float, list)


def test_a_tiny_three_class_example_by_hand():
    out = classification_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], n_classes=3)
    assert out["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert out["accuracy"] == pytest.approx(4 / 6)
    # per class: precision 1/2, 2/3, 1/1; recall 1/2, 2/2, 1/2; f1 2/4, 4/5, 2/3
    assert out["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert out["recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert out["f1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert out["n"] == 6
    assert "log_loss" not in out and "roc_auc" not in out
    assert_json_safe(out)


def test_log_loss_and_roc_auc_by_hand():
    out = classification_metrics([0, 1, 1], [0, 1, 0], proba=[[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], n_classes=2)
    assert out["log_loss"] == pytest.approx(-(math.log(0.8) + math.log(0.7) + math.log(0.4)) / 3)
    # positives score 0.7 and 0.4, the negative 0.2: both pairs ranked correctly
    assert out["roc_auc"] == 1.0
    assert_json_safe(out)


def test_a_perfect_log_loss_is_zero_not_minus_zero():
    out = classification_metrics([0, 1], [0, 1], proba=[[1.0, 0.0], [0.0, 1.0]], n_classes=2)
    assert out["log_loss"] == 0.0 and math.copysign(1, out["log_loss"]) == 1


def test_classification_agrees_with_scikit_learn():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 4, 300)
    proba = rng.dirichlet(np.ones(4), 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, proba.argmax(axis=1))
    out = classification_metrics(y_true, y_pred, proba, n_classes=4)
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        assert out[name] == pytest.approx(fn(y_true, y_pred, average="macro", zero_division=0))
    assert out["log_loss"] == pytest.approx(skm.log_loss(y_true, proba, labels=range(4)))
    assert out["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=range(4)).tolist()
    assert "roc_auc" not in out  # binary only

    binary_true = (y_true > 1).astype(int)
    binary_proba = np.column_stack([1 - proba[:, 0], proba[:, 0]])
    binary = classification_metrics(binary_true, binary_proba.argmax(axis=1), binary_proba, n_classes=2)
    assert binary["roc_auc"] == pytest.approx(skm.roc_auc_score(binary_true, binary_proba[:, 1]))


def test_classes_that_never_occur_stay_in_the_matrix_but_not_in_macro_averages():
    out = classification_metrics([0, 1, 1], [0, 1, 0], n_classes=4)
    assert out["confusion_matrix"] == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert out["recall"] == pytest.approx((1 + 1 / 2) / 2)
    assert out["f1"] == pytest.approx(skm.f1_score([0, 1, 1], [0, 1, 0], average="macro"))


def test_undefined_values_are_none():
    single_class = classification_metrics([1, 1], [1, 0], proba=[[0.1, 0.9], [0.6, 0.4]], n_classes=2)
    assert single_class["roc_auc"] is None
    empty = classification_metrics([], [], n_classes=2)
    assert empty["accuracy"] is None and empty["n"] == 0 and empty["confusion_matrix"] == [[0, 0], [0, 0]]
    broken = classification_metrics([0, 1], [0, 1], proba=[[np.nan, np.nan], [0.5, 0.5]], n_classes=2)
    assert broken["log_loss"] is None and broken["roc_auc"] is None
    assert_json_safe(broken)


def test_regression_by_hand():
    out = regression_metrics([1, 2, 3, 4], [1, 2, 3, 6])
    assert out["mae"] == pytest.approx(0.5)
    assert out["rmse"] == pytest.approx(1.0)
    assert out["r2"] == pytest.approx(1 - 4 / 5)  # mean 2.5: total sum of squares 5, residual 4
    assert out["n"] == 4
    assert_json_safe(out)


def test_multi_output_regression_averages_outputs_uniformly():
    rng = np.random.default_rng(1)
    y_true = rng.normal(size=(50, 3)) * [1, 10, 100]
    y_pred = y_true + rng.normal(size=(50, 3))
    out = regression_metrics(y_true, y_pred)
    assert out["r2"] == pytest.approx(skm.r2_score(y_true, y_pred))
    assert out["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred))
    assert out["rmse"] == pytest.approx(skm.root_mean_squared_error(y_true, y_pred))


def test_regression_edge_cases():
    assert regression_metrics([3.0], [2.0]) == {"r2": None, "mae": 1.0, "rmse": 1.0, "n": 1}
    assert regression_metrics([2.0, 2.0], [2.0, 2.0])["r2"] == 1.0
    assert regression_metrics([2.0, 2.0], [1.0, 2.0])["r2"] == 0.0
    assert regression_metrics([], []) == {"r2": None, "mae": None, "rmse": None, "n": 0}
    diverged = regression_metrics([1.0, 2.0], [np.inf, 0.0])
    assert diverged["mae"] is None and diverged["rmse"] is None
    assert_json_safe(diverged)


@pytest.mark.parametrize("metric, better", [
    ("accuracy", True), ("precision", True), ("recall", True), ("f1", True), ("roc_auc", True), ("r2", True),
    ("log_loss", False), ("mae", False), ("rmse", False), ("loss", False),
])
def test_directions(metric, better):
    assert higher_is_better(metric) is better
    assert DIRECTIONS[metric] == ("max" if better else "min")


def test_an_unknown_metric_is_a_validation_error_listing_the_known_ones():
    with pytest.raises(ValidationError, match="accuracy, precision") as info:
        higher_is_better("speed")
    assert info.value.code == "unknown_metric"
    assert set(DIRECTIONS) == {"accuracy", "precision", "recall", "f1", "roc_auc", "r2", "log_loss", "mae",
                               "rmse", "loss", "factorized"}


def test_factorization_rate_counts_rows_whose_rounded_factors_multiply_back():
    digits = np.array([[2, 0, 2, 1], [0, 0, 1, 5], [0, 0, 0, 6]])  # 2021 = 43*47, 15 = 3*5, 6 = 2*3
    predicted = np.array([[42.6, 47.2], [3.0, 4.6], [1.0, 6.0]])  # 43*47 and 3*5 count; 1*6 does not
    assert factorization_rate(digits, predicted) == pytest.approx(2 / 3)
