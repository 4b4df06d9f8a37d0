"""Live scikit-learn training without a server: steps, stopping, determinism, metrics in target units."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from livetrain.data.sources import DatasetArrays
from livetrain.errors import ValidationError
from livetrain.store.entities import Dataset
from livetrain.training import estimators
from livetrain.training.algorithms import ALGORITHMS
from livetrain.training.estimators import StepResult, predict_rows, train_estimator
from livetrain.training.metrics import classification_metrics, regression_metrics

LOADERS = {
    "iris": (datasets.load_iris, "classification"),
    "breast_cancer": (datasets.load_breast_cancer, "classification"),
    "diabetes": (datasets.load_diabetes, "regression"),
    "linnerud": (datasets.load_linnerud, "regression"),  # 20 rows, 3 targets
}
# small settings so the whole file stays fast
SMALL = {"random_forest": {"n_estimators": 20}, "gradient_boosting": {"n_estimators": 20},
         "adaboost": {"n_estimators": 20},
         "mlp": {"hidden_layer_sizes": [16], "epochs": 4, "batch_size": 16, "learning_rate_init": 0.01}}
STEPS = 4


def make_data(name: str, *, val: bool = False) -> DatasetArrays:
    """A scikit-learn dataset split 80/20 (or 60/20/20 with a validation split) and standardized on its
    training rows, regression targets too, as the built-in datasets are."""
    loader, task = LOADERS[name]
    X, y = loader(return_X_y=True)
    X = X.astype(np.float32)
    stratify = y if task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=stratify)
    X_val = y_val = None
    if val:
        X_train, X_val, y_train, y_val = train_test_split(X_train, y_train, test_size=0.25, random_state=0,
                                                          stratify=y_train if stratify is not None else None)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0
    scaled = [None if part is None else (part - mean) / std for part in (X_train, X_test, X_val)]
    n_outputs = 1 if y.ndim == 1 else y.shape[1]
    prep: dict[str, Any] = {"mean": mean.tolist(), "std": std.tolist()}
    if task == "classification":
        targets = [None if part is None else part.astype(np.int64) for part in (y_train, y_test, y_val)]
    else:
        target_mean, target_std = y_train.mean(axis=0), y_train.std(axis=0)
        prep.update(target_mean=target_mean.tolist(), target_std=target_std.tolist())
        targets = [None if part is None else ((part - target_mean) / target_std).astype(np.float32)
                   for part in (y_train, y_test, y_val)]
    info = Dataset(id=name, name=name, task=task, source="test", n_features=X.shape[1],
                   n_classes=int(y.max()) + 1 if task == "classification" else 0, input_shape=[X.shape[1]],
                   n_train=len(X_train), n_test=len(X_test), meta={"n_outputs": n_outputs})
    return DatasetArrays(info, scaled[0], targets[0], scaled[1], targets[1], prep, X_val=scaled[2], y_val=targets[2])


@pytest.fixture(scope="module")
def data():
    """Datasets by name, built once for the file."""
    made: dict[str, DatasetArrays] = {}

    def get(name: str, *, val: bool = False) -> DatasetArrays:
        key = f"{name}+val" if val else name
        if key not in made:
            made[key] = make_data(name, val=val)
        return made[key]

    return get


class Recorder:
    """Callbacks that keep every step and ask to stop once `stop_after` steps are done."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.results: list[StepResult] = []
        self.stop_after = stop_after
        self.polls = 0

    def should_stop(self) -> bool:
        self.polls += 1
        return self.stop_after is not None and len(self.results) >= self.stop_after

    def on_step(self, result: StepResult) -> None:
        self.results.append(result)


def assert_metrics_close(got: dict, expected: dict) -> None:
    """Equal keys, equal counts, floats equal up to rounding."""
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == (pytest.approx(value) if isinstance(value, float) else value), name


def train(key: str, dataset: DatasetArrays, params: dict | None = None, *, steps: int = STEPS, seed: int = 0,
          callbacks: Recorder | None = None, **kwargs):
    callbacks = callbacks or Recorder()
    outcome = train_estimator(key, dataset.info.task, {**SMALL.get(key, {}), **(params or {})}, seed, dataset,
                              callbacks, steps=steps, **kwargs)
    return outcome, callbacks.results


RUNS = [(key, name) for key, algorithm in ALGORITHMS.items()
        for name in ("iris", "diabetes") if LOADERS[name][1] in algorithm.tasks]


@pytest.mark.parametrize("key, name", RUNS)
def test_every_algorithm_trains_live_end_to_end(key, name, data):
    dataset = data(name)
    outcome, steps = train(key, dataset)
    assert not outcome.stopped
    assert len(steps) == outcome.steps_done == STEPS
    assert [s.step for s in steps] == [1, 2, 3, 4] and {s.total_steps for s in steps} == {STEPS}
    sizes = [s.size for s in steps]
    assert sizes == sorted(set(sizes))
    expected_last = {"epochs": 4, "estimators": 20, "staged": 20, "learning_curve": len(dataset.y_train)}
    assert sizes[-1] == expected_last[ALGORITHMS[key].strategy]
    assert {s.size_label for s in steps} == {ALGORITHMS[key].size_label}
    assert {s.held_out_split for s in steps} == {"test"}  # these sets have no validation split
    assert all(s.elapsed_time >= 0 and s.eval_time >= 0 for s in steps)
    json.dumps([s.to_dict() for s in steps], allow_nan=False)
    assert set(outcome.final) == {"train", "test"}
    assert outcome.final["test"] == steps[-1].val and outcome.final["test"]["n"] == len(dataset.y_test)
    json.dumps(outcome.final, allow_nan=False)
    if name == "iris":
        assert outcome.final["test"]["accuracy"] >= 0.6
        assert all(s.loss is not None and s.loss >= 0 for s in steps)
    else:
        # regression metrics are in the target's own units (diabetes progression spans about 25..346)
        assert outcome.final["test"]["mae"] > 10 and outcome.final["test"]["r2"] > -1
        assert all((s.loss is not None) == (key == "mlp") for s in steps)
    if ALGORITHMS[key].has_importances:
        assert len(outcome.feature_importances) == dataset.X_train.shape[1]
        assert all(type(v) is float and v >= 0 for v in outcome.feature_importances)
    else:
        assert outcome.feature_importances is None


def test_quality_is_sensible(data):
    forest, _ = train("random_forest", data("iris"))
    assert forest.final["test"]["accuracy"] >= 0.85
    linear, _ = train("linear", data("diabetes"))
    assert linear.final["test"]["r2"] > 0.3


def test_a_validation_split_is_the_held_out_split_and_the_test_split_is_scored_at_the_end(data):
    dataset = data("breast_cancer", val=True)
    outcome, steps = train("gradient_boosting", dataset)
    assert {s.held_out_split for s in steps} == {"val"}
    assert steps[-1].val["n"] == len(dataset.y_val)
    assert outcome.final["val"] == steps[-1].val and outcome.final["train"] == steps[-1].train
    test = outcome.final["test"]
    assert test["n"] == len(dataset.y_test) and test["roc_auc"] > 0.9 and test["accuracy"] > 0.85


def test_the_incremental_forest_equals_the_forests_own_prediction(data):
    dataset = data("iris", val=True)
    outcome, steps = train("random_forest", dataset, {"n_estimators": 30}, steps=7)
    assert [s.size for s in steps] == [5, 9, 13, 18, 22, 26, 30]
    model = outcome.model
    proba = model.predict_proba(dataset.X_val)
    assert steps[-1].val == classification_metrics(dataset.y_val, proba.argmax(axis=1), proba, 3)
    # growing in steps ends with the very forest one plain fit would give
    plain = RandomForestClassifier(n_estimators=30, random_state=0).fit(dataset.X_train, dataset.y_train)
    np.testing.assert_array_equal(plain.predict_proba(dataset.X_test), model.predict_proba(dataset.X_test))


def test_the_incremental_forest_with_threads_and_for_regression(data):
    dataset = data("diabetes")
    outcome, steps = train("random_forest", dataset, {"n_estimators": 24}, steps=3, n_jobs=2)
    direct = regression_metrics(dataset.unscale_target(dataset.y_test),
                                dataset.unscale_target(outcome.model.predict(dataset.X_test)))
    assert_metrics_close(steps[-1].val, direct)


def test_adaboost_stages_match_the_fitted_ensemble(data):
    for name in ("iris", "diabetes"):
        dataset = data(name)
        outcome, steps = train("adaboost", dataset)
        assert steps[0].elapsed_time > 0 and all(s.elapsed_time == 0 for s in steps[1:])
        if name == "iris":
            proba = outcome.model.predict_proba(dataset.X_test)
            direct = classification_metrics(dataset.y_test, proba.argmax(axis=1), proba, 3)
        else:
            direct = regression_metrics(dataset.unscale_target(dataset.y_test),
                                        dataset.unscale_target(outcome.model.predict(dataset.X_test)))
        assert_metrics_close(steps[-1].val, direct)


def test_fewer_trees_than_steps_gives_one_step_per_tree(data):
    outcome, steps = train("adaboost", data("iris"), {"n_estimators": 3}, steps=10)
    assert [s.size for s in steps] == [1, 2, 3] and steps[0].total_steps == 3


def test_the_mlp_runs_one_step_per_epoch_whatever_steps_says(data):
    outcome, steps = train("mlp", data("iris"), {"epochs": 6}, steps=2)
    assert [s.size for s in steps] == [1, 2, 3, 4, 5, 6] and {s.size_label for s in steps} == {"epoch"}
    assert steps[-1].loss == pytest.approx(outcome.model.loss_)


def test_mlp_epochs_fed_in_blocks_train_exactly_like_whole_epochs(data, monkeypatch):
    whole, whole_steps = train("mlp", data("iris"))
    monkeypatch.setattr(estimators, "MLP_BLOCK_ROWS", 40)  # 120 rows, batch 16: blocks of 32 rows
    blocks, block_steps = train("mlp", data("iris"))
    assert [(s.train, s.val) for s in block_steps] == [(s.train, s.val) for s in whole_steps]
    assert [s.loss for s in block_steps] == pytest.approx([s.loss for s in whole_steps])
    np.testing.assert_array_equal(blocks.model.coefs_[0], whole.model.coefs_[0])


def test_the_first_learning_curve_step_sees_every_class(data):
    dataset = data("iris")
    _, steps = train("svm", dataset, steps=40)  # 3 rows a step: the first holds 2 of each class
    assert steps[0].size == 6
    assert [sum(row) for row in steps[0].train["confusion_matrix"]] == [2, 2, 2]
    assert steps[0].train["log_loss"] is not None  # calibrated with 2 folds


def test_knn_neighbours_are_capped_at_the_rows_available(data):
    outcome, steps = train("knn", data("iris"), {"n_neighbors": 50}, steps=10)
    assert steps[0].size == 12 and steps[0].val["accuracy"] is not None
    assert outcome.model.n_neighbors == 50


@pytest.mark.parametrize("key", ["random_forest", "gradient_boosting", "adaboost", "mlp", "knn"])
def test_stopping_after_two_steps(key, data):
    callbacks = Recorder(stop_after=2)
    outcome, steps = train(key, data("iris"), callbacks=callbacks)
    assert outcome.stopped and outcome.steps_done == 2 and len(steps) == 2
    assert outcome.final == {} and outcome.last is steps[-1]
    assert callbacks.polls == 3  # before steps 1, 2 and 3
    assert outcome.model is not None


def test_stopping_before_the_first_step(data):
    outcome, steps = train("random_forest", data("iris"), callbacks=Recorder(stop_after=0))
    assert outcome.stopped and outcome.steps_done == 0 and steps == []
    assert outcome.model is None and outcome.last is None and outcome.feature_importances is None


@pytest.mark.parametrize("key, name, params", [
    ("random_forest", "iris", {}),
    ("gradient_boosting", "diabetes", {"subsample": 0.7}),
    ("adaboost", "diabetes", {}),
    ("mlp", "iris", {}),
    ("svm", "iris", {}),
    ("decision_tree", "diabetes", {"max_depth": 4}),
])
def test_same_params_seed_and_data_give_the_same_metrics(key, name, params, data):
    first = train(key, data(name), params, seed=5)
    second = train(key, data(name), params, seed=5)
    assert first[0].final == second[0].final
    assert [(s.train, s.val, s.loss) for s in first[1]] == [(s.train, s.val, s.loss) for s in second[1]]


@pytest.mark.parametrize("key", ["gradient_boosting", "adaboost", "svm"])
def test_multi_output_regression_is_refused_before_fitting(key, data):
    callbacks = Recorder()
    with pytest.raises(ValidationError, match="does not predict several targets at once; use random_forest") as info:
        train(key, data("linnerud"), callbacks=callbacks)
    assert info.value.code == "unsupported_task"
    assert callbacks.polls == 0 and callbacks.results == []


@pytest.mark.parametrize("key", ["random_forest", "decision_tree", "knn", "linear", "mlp"])
def test_multi_output_regression_where_supported(key, data):
    dataset = data("linnerud")
    outcome, steps = train(key, dataset, steps=2)
    assert outcome.final["test"]["n"] == 4 and outcome.final["test"]["mae"] is not None
    predicted = predict_rows(outcome.model, "regression", dataset.X_test, data=dataset)["predicted"]
    assert np.asarray(predicted).shape == (4, 3)


def test_wrong_task_and_bad_steps_are_refused(data):
    with pytest.raises(ValidationError) as info:
        train_estimator("knn", "regression", {}, 0, data("iris"), Recorder())
    assert info.value.code == "unsupported_task"
    with pytest.raises(ValidationError, match="steps: must be an integer") as info:
        train("knn", data("iris"), steps=0)
    assert info.value.code == "bad_parameter"
    with pytest.raises(ValidationError) as info:
        train("naive_bayes", data("diabetes"))
    assert info.value.code == "unsupported_task"


def test_convergence_warnings_are_collected_not_raised(data):
    outcome, _ = train("linear", data("breast_cancer"), {"max_iter": 10}, steps=1)
    assert outcome.warnings and "converge" in outcome.warnings[0].lower()


def test_predict_rows(data):
    iris = data("iris")
    outcome, _ = train("random_forest", iris)
    out = predict_rows(outcome.model, "classification", iris.X_test, data=iris)
    assert all(type(p) is int for p in out["predicted"])
    assert np.allclose(np.sum(out["probabilities"], axis=1), 1.0)
    accuracy = np.mean(np.asarray(out["predicted"]) == iris.y_test)
    assert accuracy == pytest.approx(outcome.final["test"]["accuracy"])
    assert predict_rows(outcome.model, "classification", iris.X_test[:2]) == {
        "predicted": out["predicted"][:2], "probabilities": out["probabilities"][:2]}
    with pytest.raises(ValidationError, match="each row must have 4 features, got 3") as info:
        predict_rows(outcome.model, "classification", iris.X_test[:, :3])
    assert info.value.code == "bad_input"

    diabetes = data("diabetes")
    ridge, _ = train("linear", diabetes, steps=1)
    values = predict_rows(ridge.model, "regression", diabetes.X_test, data=diabetes)
    assert values["probabilities"] is None
    truth = diabetes.unscale_target(diabetes.y_test)
    assert np.mean(np.abs(np.asarray(values["predicted"]) - truth)) == pytest.approx(ridge.final["test"]["mae"])
