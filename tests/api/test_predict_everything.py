"""Every model a user can train predicts on raw rows: each algorithm of GET /api/algorithms and each kind of
network, on an uploaded CSV of each task (classification, one regression target, several).

One module app uploads the three CSVs and trains every pair at once, small (84 training rows, few trees or
epochs); the tests then send what a user sends to predict: one raw row, a batch, and rows with missing
values, and check the answers a user would: a class of the data, or a finite number in the target's units
that is close on a target that is easy to learn.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from livetrain.data.tabular import split_indices
from livetrain.training.algorithms import catalog
from tests.helpers import start_run, wait_for_run

N_ROWS = 120
FEATURES = ["size", "color", "member"]
CLASSES = ["high", "low", "mid"]  # sorted, as the dataset lists them
# The uploads: the same table with one target, or two, and the other target columns left out
UPLOADS = {
    "classification": {"target": "grade"},
    "regression": {"target": "price", "task": "regression"},
    "multi_output": {"target": ["price", "weight"]},
}
# Small versions of the parameters the catalog offers, so that every run takes a moment
SMALL_PARAMS = {"n_estimators": 10, "epochs": 20, "hidden_layer_sizes": [16], "learning_rate_init": 0.03}
NETWORK_KINDS = ("default", "layer_sizes", "layers")
NETWORK_TRAINING = {"layer_sizes": {"epochs": 10, "mini_batch_size": 10},
                    "layers": {"epochs": 25, "mini_batch_size": 16, "learning_rate": 0.02}}
# rows a user could type: every feature known; a missing number; missing category and boolean
KNOWN_ROWS = 8
MISSING_ROWS = [{"size": None, "color": "red", "member": "yes"},
                {"size": 5.0, "color": None, "member": None}]


def table(seed: int = 0) -> pd.DataFrame:
    """A numeric, a categorical and a boolean feature, some cells missing, and targets that follow them."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(0, 10, N_ROWS)
    color = rng.choice(["red", "green", "blue"], N_ROWS)
    member = rng.choice(["yes", "no"], N_ROWS)
    frame = pd.DataFrame({
        "size": np.round(size, 2),
        "color": color,
        "member": member,
        "grade": np.where(size < 3.3, "low", np.where(size < 6.6, "mid", "high")),
        # far from 0 and wide, so an answer left in standardized units cannot pass for one in dollars
        "price": np.round(500 + 30 * size + 40 * (member == "yes") + 20 * (color == "red")
                          + rng.normal(0, 3, N_ROWS), 2),
        "weight": np.round(50 - 4 * size + rng.normal(0, 0.5, N_ROWS), 2),
    })
    # missing cells from the 20th row on: the first rows stay complete, to compare with their targets
    frame.loc[rng.choice(np.arange(20, N_ROWS), 6, replace=False), "size"] = np.nan
    frame.loc[rng.choice(np.arange(20, N_ROWS), 4, replace=False), "color"] = None
    frame.loc[rng.choice(np.arange(20, N_ROWS), 3, replace=False), "member"] = None
    return frame


TABLE = table()
TARGETS = ["grade", "price", "weight"]


def targets_of(dataset_key: str) -> list[str]:
    target = UPLOADS[dataset_key]["target"]
    return target if isinstance(target, list) else [target]


def task_of(dataset_key: str) -> str:
    return "classification" if dataset_key == "classification" else "regression"


ALGORITHMS = catalog()  # what GET /api/algorithms lists; the first test checks that it still is


def refusal(dataset: str, model: str) -> str | None:
    """The error code a user gets when the pair cannot be trained, or None when it trains."""
    task = task_of(dataset)
    if model.startswith("network:"):
        # sigmoid outputs cannot reach a standardized target: such a network is refused, named as such
        return "validation_error" if model == "network:layer_sizes" and task == "regression" else None
    algorithm = next(a for a in ALGORITHMS if a["key"] == model)
    if task not in algorithm["tasks"] or (len(targets_of(dataset)) > 1 and not algorithm["multi_output"]):
        return "unsupported_task"
    return None


PAIRS = [(dataset, model) for dataset in UPLOADS
         for model in [a["key"] for a in ALGORITHMS] + [f"network:{kind}" for kind in NETWORK_KINDS]]
TRAINED = [pair for pair in PAIRS if refusal(*pair) is None]
REFUSED = [pair for pair in PAIRS if refusal(*pair) is not None]
NETWORKS = [pair for pair in TRAINED if pair[1].startswith("network:")]


def ids(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{dataset}-{model}" for dataset, model in pairs]


@dataclass
class Trained:
    """What one pair left: the start answer or refusal, the finished run, and the network if any."""

    refused: dict | None = None  # the 4xx body when the pair cannot be trained
    run: dict | None = None
    network_id: str | None = None


@dataclass
class Zoo:
    app: object
    datasets: dict  # dataset key -> detail
    algorithms: list  # GET /api/algorithms's "algorithms"
    trained: dict  # (dataset key, model) -> Trained


def small_params(algorithm: dict, task: str) -> dict:
    """The catalog's parameters for the task that have a smaller value in SMALL_PARAMS."""
    return {p["name"]: SMALL_PARAMS[p["name"]] for p in algorithm["params"]
            if p["name"] in SMALL_PARAMS and task in p.get("tasks", [task])}


def network_body(kind: str, detail: dict) -> dict:
    """A create-network body of that kind for the dataset (the default: no layers named)."""
    n_out = detail["n_classes"] if detail["task"] == "classification" else detail["meta"]["n_outputs"]
    body = {"dataset_id": detail["id"]}
    if kind == "layer_sizes":
        body["layer_sizes"] = [detail["n_features"], 16, n_out]
    elif kind == "layers":
        body["layers"] = [{"type": "Linear", "out_features": 16}, {"type": "ReLU"},
                          {"type": "Linear", "out_features": n_out}]
        body["loss"] = "cross_entropy" if detail["task"] == "classification" else "mse"
    return body


def upload(client, key: str) -> dict:
    """Upload the table with the dataset's target(s), leaving out the other target columns."""
    target = UPLOADS[key]["target"]
    ignored = {name: "ignored" for name in TARGETS if name not in targets_of(key)}
    form = {**UPLOADS[key], "target": json.dumps(target) if isinstance(target, list) else target,
            "types": json.dumps(ignored), "name": f"predict-{key}"}
    response = client.post("/api/datasets", data={"file": (io.BytesIO(TABLE.to_csv(index=False).encode()),
                                                           f"{key}.csv"), **form},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture(scope="module")
def shared(make_module_app):
    return make_module_app(warm_workers=2, max_concurrent_runs=2)


@pytest.fixture(scope="module")
def zoo(shared) -> Zoo:
    """Every pair started at once (an algorithm in an experiment, a network by /train), then waited for."""
    client = shared.test_client()
    algorithms = client.get("/api/algorithms").get_json()["algorithms"]
    datasets = {key: upload(client, key) for key in UPLOADS}
    experiment_id = client.post("/api/experiments", json={"name": "predict everything"}).get_json()["experiment_id"]
    trained: dict = {}
    for key, detail in datasets.items():
        for algorithm in algorithms:
            body = {"algorithm": algorithm["key"], "dataset_id": detail["id"], "steps": 2,
                    "params": small_params(algorithm, detail["task"])}
            response = client.post(f"/api/experiments/{experiment_id}/runs", json=body)
            trained[key, algorithm["key"]] = (Trained(refused=response.get_json()) if response.status_code == 400
                                              else Trained(run=_accepted(response)))
        for kind in NETWORK_KINDS:
            response = client.post("/api/networks", json=network_body(kind, detail))
            if response.status_code == 400:
                trained[key, f"network:{kind}"] = Trained(refused=response.get_json())
                continue
            assert response.status_code == 201, response.get_json()
            network = response.get_json()
            run = start_run(client, network["network_id"], **NETWORK_TRAINING.get(network["kind"], {}))
            trained[key, f"network:{kind}"] = Trained(run=run, network_id=network["network_id"])
    for item in trained.values():
        if item.run is not None:
            item.run = wait_for_run(client, item.run["run_id"])
    return Zoo(shared, datasets, algorithms, trained)


def _accepted(response) -> dict:
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def predict_path(zoo: Zoo, dataset: str, model: str) -> str:
    """Where a user asks the pair's model: its network, or its run."""
    item = zoo.trained[dataset, model]
    return f"/api/networks/{item.network_id}/predict" if item.network_id else f"/api/runs/{item.run['run_id']}/predict"


def predict(client, zoo: Zoo, dataset: str, model: str, body: dict) -> dict:
    """POST the body to the pair's predict endpoint, asserting 200; the answer."""
    response = client.post(predict_path(zoo, dataset, model), json=body)
    answer = response.get_json()
    assert response.status_code == 200, f"{dataset} / {model}: {response.status_code} {answer}"
    return answer


def known_rows() -> list[dict]:
    """The first rows' features, every one known, as JSON sends them."""
    return [{name: _plain(row[name]) for name in FEATURES} for row in TABLE.head(KNOWN_ROWS).to_dict("records")]


def held_out_positions(detail: dict) -> np.ndarray:
    """The test rows' positions, recomputed from the split the dataset records."""
    split = detail["meta"]["split"]
    target = TABLE[detail["schema"]["targets"]]
    y = target.iloc[:, 0].to_numpy(dtype=object) if detail["task"] == "classification" else target.to_numpy(float)
    return split_indices(y, detail["task"], split["fractions"], split["seed"])[2]


def target_block(predictions: list[dict]) -> np.ndarray:
    """Regression predictions as (rows, targets)."""
    return np.array([p["predicted"] for p in predictions], dtype=float).reshape(len(predictions), -1)


def _plain(value):
    """A table cell as JSON sends it: NaN as null, numpy numbers as Python ones."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def check_value(dataset: str, predicted, what: str) -> list[float]:
    """Assert a prediction is what the dataset's task gives, in the target's units; the numbers (if any)."""
    if dataset == "classification":
        assert predicted in CLASSES, f"{what}: {predicted!r} is not a class of the data"
        return []
    names = targets_of(dataset)
    values = predicted if len(names) > 1 else [predicted]
    assert isinstance(values, list) and len(values) == len(names), f"{what}: {predicted!r}"
    for name, value in zip(names, values):
        assert isinstance(value, float) and math.isfinite(value), f"{what}: {name} = {value!r}"
        low, high = TABLE[name].min(), TABLE[name].max()
        margin = 0.25 * (high - low)
        assert low - margin <= value <= high + margin, \
            f"{what}: {name} = {value} is outside the target's range [{low}, {high}] (units?)"
    return values


# -- which pairs there are -------------------------------------------------------------------------


def test_the_pairs_cover_every_algorithm_the_endpoint_lists(zoo):
    assert zoo.algorithms == ALGORITHMS
    assert set(zoo.trained) == set(PAIRS)


@pytest.mark.parametrize("dataset", list(UPLOADS))
def test_the_uploads_have_the_task_and_targets_asked_for(zoo, dataset):
    detail = zoo.datasets[dataset]
    assert detail["task"] == task_of(dataset)
    assert detail["schema"]["targets"] == targets_of(dataset)
    assert detail["schema"]["features"] == FEATURES
    assert {name: detail["missing"][name] for name in FEATURES} == {"size": 6, "color": 4, "member": 3}


@pytest.mark.parametrize("dataset, model", REFUSED, ids=ids(REFUSED))
def test_a_pair_that_cannot_train_is_refused_with_a_reason(zoo, dataset, model):
    refused = zoo.trained[dataset, model].refused
    assert refused is not None and refused["error"] == refusal(dataset, model), refused
    assert refused["message"], refused


@pytest.mark.parametrize("dataset, model", TRAINED, ids=ids(TRAINED))
def test_every_other_pair_trains(zoo, dataset, model):
    item = zoo.trained[dataset, model]
    assert item.refused is None, item.refused
    assert item.run["status"] == "completed", item.run.get("error")


# -- predicting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset, model", TRAINED, ids=ids(TRAINED))
def test_one_raw_row_and_a_batch_predict_the_same(zoo, dataset, model):
    client = zoo.app.test_client()
    rows = known_rows()
    one = predict(client, zoo, dataset, model, {"row": rows[0]})
    assert len(one["predictions"]) == 1 and one["prediction"] == one["predictions"][0]["predicted"]
    single = check_value(dataset, one["prediction"], "one row")
    batch = predict(client, zoo, dataset, model, {"rows": rows})
    assert len(batch["predictions"]) == len(rows)
    assert "prediction" not in batch
    values = [check_value(dataset, p["predicted"], f"row {i} of a batch") for i, p in enumerate(batch["predictions"])]
    if dataset == "classification":
        assert batch["predictions"][0]["predicted"] == one["prediction"]
        for p in batch["predictions"]:
            assert CLASSES[p["class_index"]] == p["predicted"]
            if "probabilities" in p:
                probabilities = p["probabilities"]
                total = sum(probabilities.values() if isinstance(probabilities, dict) else probabilities)
                assert total == pytest.approx(1.0, abs=1e-5)
    else:
        # float32 sums differ in the last digits between a batch and a single row
        assert values[0] == pytest.approx(single, rel=1e-5)


@pytest.mark.parametrize("dataset, model", TRAINED, ids=ids(TRAINED))
def test_rows_with_missing_values_predict_like_any_row(zoo, dataset, model):
    client = zoo.app.test_client()
    one = predict(client, zoo, dataset, model, {"row": MISSING_ROWS[0]})
    check_value(dataset, one["prediction"], "a row without size")
    batch = predict(client, zoo, dataset, model, {"rows": MISSING_ROWS})
    assert len(batch["predictions"]) == len(MISSING_ROWS)
    for row, p in zip(MISSING_ROWS, batch["predictions"]):
        check_value(dataset, p["predicted"], f"the row {row}")


@pytest.mark.parametrize("dataset, model", TRAINED, ids=ids(TRAINED))
def test_an_easy_target_is_predicted_close(zoo, dataset, model):
    client = zoo.app.test_client()
    batch = predict(client, zoo, dataset, model, {"rows": known_rows()})
    truth = TABLE.head(KNOWN_ROWS)
    if dataset == "classification":
        predicted = [p["predicted"] for p in batch["predictions"]]
        right = sum(p == t for p, t in zip(predicted, truth["grade"]))
        assert right >= KNOWN_ROWS // 2, f"{right} of {KNOWN_ROWS} right: {predicted} vs {list(truth['grade'])}"
        return
    predicted = target_block(batch["predictions"])
    for j, name in enumerate(targets_of(dataset)):
        error = float(np.abs(predicted[:, j] - truth[name].to_numpy()).mean())
        # guessing the mean would be off by about 0.8 standard deviations
        assert error < 0.5 * TABLE[name].std(), f"{name}: mean error {error:.1f}, predicted {predicted[:, j]}"


@pytest.mark.parametrize("dataset, model", TRAINED, ids=ids(TRAINED))
def test_predictions_on_the_test_rows_score_what_the_run_reported(zoo, dataset, model):
    client = zoo.app.test_client()
    detail = zoo.datasets[dataset]
    test = TABLE.iloc[held_out_positions(detail)]
    assert len(test) == detail["n_test"]
    rows = [{name: _plain(row[name]) for name in FEATURES} for row in test.to_dict("records")]
    predictions = predict(client, zoo, dataset, model, {"rows": rows})["predictions"]
    reported = zoo.trained[dataset, model].run["metrics"]["test"]
    if dataset == "classification":
        right = sum(p["predicted"] == t for p, t in zip(predictions, test["grade"]))
        # float32 sums may tip one row that sits on a boundary
        assert abs(right - round(reported["accuracy"] * len(test))) <= 1, (right, reported)
        return
    truth = test[targets_of(dataset)].to_numpy(dtype=float)
    mae = float(np.abs(target_block(predictions) - truth).mean())
    assert mae == pytest.approx(reported["mae"], rel=1e-3), reported


BAD_ROWS = [  # (what is wrong, the row, words the message must have)
    ("a missing column", {"size": 5.0, "color": "red"}, ["'member'"]),
    ("not a number", {"size": "big", "color": "red", "member": "yes"}, ["'size'", "a number"]),
    ("not a boolean", {"size": 5.0, "color": "red", "member": "maybe"}, ["'member'"]),
    ("an unknown column", {"size": 5.0, "color": "red", "member": "yes", "height": 3}, ["'height'"]),
    ("beyond float32", {"size": 1e39, "color": "red", "member": "yes"}, ["'size'", "finite"]),
    ("a short list", [5.0, "red"], ["3"]),
    ("not a row", "size=5", []),
]


@pytest.mark.parametrize("dataset, model", TRAINED, ids=ids(TRAINED))
def test_a_bad_row_is_refused_naming_what_is_wrong(zoo, dataset, model):
    client = zoo.app.test_client()
    for what, row, words in BAD_ROWS:
        response = client.post(predict_path(zoo, dataset, model), json={"rows": [known_rows()[0], row]})
        body = response.get_json()
        assert (response.status_code, body["error"]) == (400, "bad_input"), (what, body)
        assert all(word in body["message"] for word in words), (what, body)


@pytest.mark.parametrize("dataset, model", NETWORKS, ids=ids(NETWORKS))
def test_a_network_run_predicts_as_its_network_does(zoo, dataset, model):
    item = zoo.trained[dataset, model]
    client = zoo.app.test_client()
    body = {"rows": known_rows() + MISSING_ROWS}
    by_network = predict(client, zoo, dataset, model, body)
    response = client.post(f"/api/runs/{item.run['run_id']}/predict", json=body)
    assert response.status_code == 200, response.get_json()
    by_run = response.get_json()
    assert by_run["run_id"] == item.run["run_id"]
    assert by_run["predictions"] == by_network["predictions"]
