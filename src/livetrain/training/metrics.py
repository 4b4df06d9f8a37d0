"""Classification and regression metrics as plain JSON-able numbers.

Every value is a Python int or float, or None where the metric is undefined (r2 of a single
row, ROC AUC when the truth has one class): never NaN, which JSON cannot carry. Regression
metrics are meant to be computed in the target's own units; callers unscale first.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from livetrain.errors import ValidationError

DIRECTIONS: dict[str, str] = {
    "accuracy": "max",
    "precision": "max",
    "recall": "max",
    "f1": "max",
    "roc_auc": "max",
    "r2": "max",
    "log_loss": "min",
    "mae": "min",
    "rmse": "min",
    "loss": "min",
    "factorized": "max",  # factorization data: share of numbers whose predicted factors multiply back to n
}


def factorization_rate(digits: np.ndarray, predicted: np.ndarray) -> float:
    """Share of rows whose two predicted factors, rounded, are both above 1 and multiply to the row's number."""
    digits = np.asarray(digits, dtype=np.int64)
    n = digits @ (10 ** np.arange(digits.shape[1] - 1, -1, -1, dtype=np.int64))
    factors = np.rint(np.asarray(predicted, dtype=np.float64)).astype(np.int64)
    exact = (factors[:, 0] * factors[:, 1] == n) & (factors.min(axis=1) > 1)
    return float(exact.mean()) if len(n) else 0.0


def higher_is_better(metric: str) -> bool:
    """True when a larger value of `metric` is better; unknown_metric for a name not in DIRECTIONS."""
    direction = DIRECTIONS.get(metric) if isinstance(metric, str) else None
    if direction is None:
        raise ValidationError(f"unknown metric {metric!r}; expected one of {', '.join(DIRECTIONS)}",
                              code="unknown_metric", detail={"field": "metric"})
    return direction == "max"


def _finite(value: Any) -> float | None:
    """A plain float, or None for NaN and infinities."""
    value = float(value)
    return value if math.isfinite(value) else None


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts [true class, predicted class] for classes 0..n_classes-1."""
    pairs = y_true.astype(np.int64) * n_classes + y_pred.astype(np.int64)
    return np.bincount(pairs, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def classification_metrics(y_true, y_pred, proba=None, n_classes: int | None = None) -> dict[str, Any]:
    """accuracy, macro precision / recall / f1, log_loss and roc_auc (with `proba`), confusion_matrix and n.

    Macro averages run over the classes that occur in the truth or the predictions (as
    scikit-learn does by default); a class never predicted has precision 0, not NaN. The
    confusion matrix and log loss use every class 0..n_classes-1. roc_auc is reported for
    two-class problems only.
    """
    y_true = np.asarray(y_true).ravel().astype(np.int64)
    y_pred = np.asarray(y_pred).ravel().astype(np.int64)
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if proba is not None:
        proba = np.asarray(proba)
    if n_classes is None:
        seen = max(int(y_true.max(initial=-1)), int(y_pred.max(initial=-1))) + 1
        n_classes = max(seen, proba.shape[1] if proba is not None else 0)
    n = len(y_true)
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    out: dict[str, Any] = {"accuracy": None, "precision": None, "recall": None, "f1": None}
    if n:
        true_count, pred_count, hits = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
        present = (true_count + pred_count) > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(pred_count > 0, hits / pred_count, 0.0)
            recall = np.where(true_count > 0, hits / true_count, 0.0)
            f1 = np.where(true_count + pred_count > 0, 2 * hits / (true_count + pred_count), 0.0)
        out.update(accuracy=_finite(hits.sum() / n), precision=_finite(precision[present].mean()),
                   recall=_finite(recall[present].mean()), f1=_finite(f1[present].mean()))
    if proba is not None:
        out["log_loss"] = _log_loss(y_true, proba) if n else None
        if n_classes == 2:
            out["roc_auc"] = _roc_auc(y_true, proba[:, 1]) if n else None
    out["confusion_matrix"] = matrix.tolist()
    out["n"] = n
    return out


def _log_loss(y_true: np.ndarray, proba: np.ndarray) -> float | None:
    """Mean negative log probability of the true class, clipped like scikit-learn (machine epsilon)."""
    dtype = proba.dtype if np.issubdtype(proba.dtype, np.floating) else np.float64
    eps = np.finfo(dtype).eps
    picked = np.clip(proba[np.arange(len(y_true)), y_true].astype(np.float64), eps, 1.0)
    return _finite(-np.log(picked).mean() + 0.0)  # + 0.0: a perfect score is 0.0, not -0.0


def _roc_auc(y_true: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve of a binary problem; None when the truth holds only one class."""
    if len(np.unique(y_true)) < 2 or not np.all(np.isfinite(score)):
        return None
    from sklearn.metrics import roc_auc_score

    return _finite(roc_auc_score(y_true, score))


def regression_metrics(y_true, y_pred) -> dict[str, Any]:
    """r2, mae and rmse (each averaged uniformly over outputs for 2-D targets) and n.

    r2 is None for fewer than two rows; for a constant truth it is 1.0 when the predictions
    are exact and 0.0 otherwise, as scikit-learn reports it.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim == 1:
        y_true = y_true[:, None]
    if y_pred.ndim == 1:
        y_pred = y_pred[:, None]
    if y_true.shape != y_pred.shape:
        raise ValueError(f"truth has shape {y_true.shape} but predictions {y_pred.shape}")
    n = len(y_true)
    if n == 0:
        return {"r2": None, "mae": None, "rmse": None, "n": 0}
    error = y_true - y_pred
    mae = np.abs(error).mean(axis=0)
    rmse = np.sqrt((error ** 2).mean(axis=0))
    r2: float | None = None
    if n >= 2:
        residual = (error ** 2).sum(axis=0)
        total = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_output = np.where(total > 0, 1.0 - residual / total, np.where(residual == 0, 1.0, 0.0))
        r2 = _finite(per_output.mean())
    return {"r2": r2, "mae": _finite(mae.mean()), "rmse": _finite(rmse.mean()), "n": n}
