"""The algorithm catalog: its JSON, parameter checks with messages naming the field, estimators built from it."""

from __future__ import annotations

import json

import pytest

from livetrain.errors import ValidationError
from livetrain.training.algorithms import (
    ALGORITHMS,
    build_estimator,
    catalog,
    get_algorithm,
    resolve_params,
    resolve_steps,
)

STRATEGIES = {
    "random_forest": "estimators", "gradient_boosting": "estimators", "adaboost": "staged", "mlp": "epochs",
    "svm": "learning_curve", "linear": "learning_curve", "decision_tree": "learning_curve",
    "knn": "learning_curve", "naive_bayes": "learning_curve",
}
PAIRS = [(key, task) for key, algorithm in ALGORITHMS.items() for task in algorithm.tasks]


def test_the_catalog_has_nine_families_with_their_strategies():
    assert {key: a.strategy for key, a in ALGORITHMS.items()} == STRATEGIES
    assert ALGORITHMS["naive_bayes"].tasks == ("classification",)
    assert all(a.tasks == ("classification", "regression") for k, a in ALGORITHMS.items() if k != "naive_bayes")
    assert {k for k, a in ALGORITHMS.items() if a.multi_output} == {"random_forest", "decision_tree", "knn",
                                                                      "linear", "mlp"}
    assert ALGORITHMS["linear"].names == {"classification": "Logistic regression",
                                          "regression": "Linear regression (ridge)"}


def test_catalog_json_describes_every_algorithm_for_a_user():
    items = json.loads(json.dumps(catalog(), allow_nan=False))
    assert [item["key"] for item in items] == list(ALGORITHMS)
    for item in items:
        assert set(item["names"]) == set(item["tasks"])
        assert item["how_it_works"].count(".") >= 2 and item["analogy"]
        assert item["params"], item["key"]
        for param in item["params"]:
            assert param["type"] in ("int", "float", "choice", "bool", "int_list")
            assert param["help"]
    forest = next(item for item in items if item["key"] == "random_forest")
    assert forest["size_label"] == "trees"
    assert forest["fixed"]["classification"]["warm_start"] is True
    n_estimators = next(p for p in forest["params"] if p["name"] == "n_estimators")
    assert (n_estimators["default"], n_estimators["min"], n_estimators["max"]) == (100, 1, 1000)
    hidden = next(p for p in next(i for i in items if i["key"] == "mlp")["params"] if p["name"] == "hidden_layer_sizes")
    assert hidden | {"help": ""} == {"name": "hidden_layer_sizes", "type": "int_list", "default": [100],
                                     "nullable": False, "help": "", "min": 1, "max": 1024, "log": False,
                                     "min_items": 1, "max_items": 4}


@pytest.mark.parametrize("key, task", PAIRS)
def test_defaults_resolve_and_build(key, task):
    resolved = resolve_params(key, task, None)
    assert resolved == resolve_params(key, task, {})
    assert set(resolved) == {p.name for p in ALGORITHMS[key].params_for(task)}
    estimator = build_estimator(key, task, resolved, seed=7)
    assert hasattr(estimator, "fit") and hasattr(estimator, "get_params")
    if ALGORITHMS[key].fixed[task].get("random_state"):
        assert estimator.get_params()["random_state"] == 7


def test_given_values_are_kept_and_whole_floats_become_ints():
    resolved = resolve_params("random_forest", "classification",
                              {"n_estimators": 50.0, "max_depth": None, "bootstrap": False, "criterion": "entropy"})
    assert resolved["n_estimators"] == 50 and type(resolved["n_estimators"]) is int
    assert resolved["max_depth"] is None and resolved["bootstrap"] is False and resolved["criterion"] == "entropy"
    assert resolve_params("mlp", "regression", {"hidden_layer_sizes": [64, 32.0]})["hidden_layer_sizes"] == [64, 32]
    assert resolve_params("linear", "classification", {"C": 2})["C"] == 2.0


@pytest.mark.parametrize("key, task, params, field, message", [
    ("random_forest", "classification", {"n_estimators": "100"}, "params.n_estimators",
     "params.n_estimators: must be an integer between 1 and 1000"),
    ("random_forest", "classification", {"n_estimators": 0}, "params.n_estimators",
     "params.n_estimators: must be an integer between 1 and 1000"),
    ("random_forest", "classification", {"n_estimators": 1001}, "params.n_estimators",
     "params.n_estimators: must be an integer between 1 and 1000"),
    ("random_forest", "classification", {"n_estimators": True}, "params.n_estimators",
     "params.n_estimators: must be an integer between 1 and 1000"),
    ("random_forest", "classification", {"n_estimators": 2.5}, "params.n_estimators",
     "params.n_estimators: must be an integer between 1 and 1000"),
    ("random_forest", "classification", {"n_estimators": None}, "params.n_estimators",
     "params.n_estimators: must be an integer between 1 and 1000"),
    ("random_forest", "classification", {"max_depth": 0}, "params.max_depth",
     "params.max_depth: must be an integer between 1 and 100 (or null)"),
    ("random_forest", "classification", {"bootstrap": 1}, "params.bootstrap",
     "params.bootstrap: must be true or false"),
    ("random_forest", "classification", {"criterion": "squared_error"}, "params.criterion",
     "params.criterion: must be one of 'gini', 'entropy', 'log_loss'"),
    ("random_forest", "classification", {"trees": 10}, "params.trees", "params.trees: is not a parameter of"),
    ("gradient_boosting", "regression", {"learning_rate": 0}, "params.learning_rate",
     "params.learning_rate: must be a number between 0.001 and 1"),
    ("gradient_boosting", "regression", {"learning_rate": float("nan")}, "params.learning_rate",
     "params.learning_rate: must be a number"),
    ("gradient_boosting", "regression", {"learning_rate": False}, "params.learning_rate",
     "params.learning_rate: must be a number"),
    ("svm", "classification", {"epsilon": 0.2}, "params.epsilon", "params.epsilon: is not a parameter of svm"),
    ("mlp", "classification", {"hidden_layer_sizes": []}, "params.hidden_layer_sizes",
     "params.hidden_layer_sizes: must be a list of 1 to 4 integers, each between 1 and 1024"),
    ("mlp", "classification", {"hidden_layer_sizes": [8, 8, 8, 8, 8]}, "params.hidden_layer_sizes",
     "must be a list of 1 to 4"),
    ("mlp", "classification", {"hidden_layer_sizes": [8, 0]}, "params.hidden_layer_sizes", "each between 1 and 1024"),
    ("mlp", "classification", {"hidden_layer_sizes": [8, True]}, "params.hidden_layer_sizes", "must be a list"),
    ("mlp", "classification", {"hidden_layer_sizes": 100}, "params.hidden_layer_sizes", "must be a list"),
])
def test_bad_parameters_name_their_field(key, task, params, field, message):
    with pytest.raises(ValidationError) as info:
        resolve_params(key, task, params)
    assert info.value.code == "bad_parameter"
    assert info.value.detail == {"field": field}
    assert info.value.message.startswith(field + ": ")
    assert message in info.value.message
    assert info.value.to_dict()["error"] == "bad_parameter"


def test_params_must_be_an_object():
    with pytest.raises(ValidationError, match="params: must be an object") as info:
        resolve_params("knn", "classification", [("n_neighbors", 3)])
    assert info.value.code == "bad_parameter"


def test_an_unknown_algorithm_lists_the_known_ones():
    with pytest.raises(ValidationError, match="random_forest, gradient_boosting, adaboost") as info:
        get_algorithm("xgboost")
    assert info.value.code == "unknown_algorithm"
    with pytest.raises(ValidationError):
        resolve_params("xgboost", "classification", {})


@pytest.mark.parametrize("key, task", [("naive_bayes", "regression"), ("knn", "clustering")])
def test_an_algorithm_outside_its_tasks_is_unsupported(key, task):
    with pytest.raises(ValidationError, match=f"{key} does not do {task}") as info:
        resolve_params(key, task, {})
    assert info.value.code == "unsupported_task"


def test_parameters_differ_by_task_where_the_estimators_do():
    assert resolve_params("random_forest", "regression", {})["criterion"] == "squared_error"
    assert resolve_params("adaboost", "classification", {})["max_depth"] == 1
    assert resolve_params("adaboost", "regression", {})["max_depth"] == 3
    assert set(resolve_params("linear", "regression", {})) == {"alpha"}


@pytest.mark.parametrize("steps, ok", [(1, True), (10, True), (100, True), (10.0, True),
                                       (0, False), (101, False), (True, False), ("10", False), (None, False)])
def test_steps_are_checked(steps, ok):
    if ok:
        assert resolve_steps(steps) == int(steps)
    else:
        with pytest.raises(ValidationError, match="steps: must be an integer between 1 and 100") as info:
            resolve_steps(steps)
        assert info.value.detail == {"field": "steps"}


def test_built_estimators_carry_the_translated_settings():
    forest = build_estimator("random_forest", "regression", {"max_features": "all", "n_estimators": 30}, 3, n_jobs=2)
    assert forest.get_params()["max_features"] == 1.0
    assert (forest.n_estimators, forest.warm_start, forest.random_state, forest.n_jobs) == (30, True, 3, 2)
    mlp = build_estimator("mlp", "classification", {"hidden_layer_sizes": [16, 8], "epochs": 7}, 0)
    assert (mlp.hidden_layer_sizes, mlp.max_iter, mlp.batch_size, mlp.shuffle) == ((16, 8), 7, "auto", False)
    boost = build_estimator("adaboost", "classification", {"max_depth": 2}, 0)
    assert boost.estimator.max_depth == 2
    svm = build_estimator("svm", "classification", {"C": 10}, 0)
    assert type(svm).__name__ == "CalibratedClassifierCV" and svm.estimator.C == 10.0 and svm.cv == 5
    assert type(build_estimator("svm", "regression", {"epsilon": 0.5}, 0)).__name__ == "SVR"
    assert type(build_estimator("linear", "regression", {}, 0)).__name__ == "Ridge"


def test_the_network_entry_states_the_defaults_a_layer_sizes_network_trains_with():
    from livetrain.training.algorithms import NETWORK_RUNS
    from livetrain.training.spec import parse_hyperparams, parse_network_spec

    spec = parse_network_spec({"layer_sizes": [4, 8, 3]})
    hp = parse_hyperparams({}, spec, max_epochs=10_000, n_train=100)
    defaults = {p["name"]: p["default"] for p in NETWORK_RUNS["params"]}
    assert defaults == {"epochs": hp.epochs, "mini_batch_size": hp.batch_size, "learning_rate": hp.learning_rate,
                        "optimizer": hp.optimizer}
    assert NETWORK_RUNS["how_it_works"] and NETWORK_RUNS["analogy"]
