"""Sequence layers and heads over REST: created with the dry run's table, parameters and memory, refused with
a message naming the layer or head, trained by a worker with per-head metrics, and predicting."""

from __future__ import annotations

import numpy as np
import pytest

from livetrain.data.sources import load_dataset
from tests.api.test_datasets import generated
from tests.helpers import create_network, start_run, wait_for_run

FACTOR_HEADS = {
    "layers": [{"type": "Embedding", "num_embeddings": 10, "embedding_dim": 8}, {"type": "Flatten"},
               {"type": "Linear", "out_features": 64}, {"type": "ReLU"}],
    "heads": [{"name": "p", "task": "regression", "target": 0}, {"name": "q", "task": "regression", "target": 1}],
    "learning_rate": 0.003,
}
DIAGNOSIS_HEADS = {
    "layers": [{"type": "Linear", "out_features": 16}, {"type": "ReLU"}, {"type": "Linear", "out_features": 8},
               {"type": "ReLU"}],
    "heads": [{"name": "diagnosis", "task": "classification"},
              {"name": "benign", "task": "binary", "attach": 1, "weight": 0.5}],
    "learning_rate": 0.01,
}


@pytest.fixture(scope="module")
def shared_app(make_module_app):
    return make_module_app(warm_workers=1)


@pytest.fixture
def client(shared_app):
    return shared_app.test_client()


@pytest.fixture(scope="module")
def factor_heads(shared_app):
    """A factorization dataset and a network with one head per factor, trained for 2 epochs."""
    client = shared_app.test_client()
    dataset = generated(client, "factorization", {"low": 4, "high": 999})
    network = create_network(client, dataset_id=dataset["id"], **FACTOR_HEADS)
    run = wait_for_run(client, start_run(client, network["network_id"], epochs=2, batch_size=32)["run_id"])
    assert run["status"] == "completed", run
    return {"dataset": dataset, "network": network, "run": run}


@pytest.fixture(scope="module")
def diagnosis_heads(shared_app):
    """Breast cancer with a classification head and a binary head on the same label, trained for 3 epochs."""
    client = shared_app.test_client()
    network = create_network(client, dataset_id="breast_cancer", **DIAGNOSIS_HEADS)
    run = wait_for_run(client, start_run(client, network["network_id"], epochs=3, batch_size=32)["run_id"])
    assert run["status"] == "completed", run
    return network["network_id"]


def predict(client, network_id, **body):
    response = client.post(f"/api/networks/{network_id}/predict", json=body)
    return response.status_code, response.get_json()


def test_a_network_with_heads_lists_them_with_parameters_and_memory(client, factor_heads):
    network = factor_heads["network"]
    assert [h["name"] for h in network["spec"]["heads"]] == ["p", "q"]
    heads = [row for row in network["layers"] if row["type"] == "Head"]
    assert heads == [
        {"type": "Head", "name": "p", "task": "regression", "attach": 3, "output_shape": [1], "parameters": 65},
        {"type": "Head", "name": "q", "task": "regression", "attach": 3, "output_shape": [1], "parameters": 65},
    ]
    detail = client.get(f"/api/networks/{network['network_id']}").get_json()
    count = 10 * 8 + 24 * 64 + 64 + 2 * 65
    assert detail["parameters"] == detail["parameter_count"] == count
    assert sum(row["parameters"] for row in detail["layers"]) == count
    # Adam keeps two values per parameter; every value is a 4-byte float
    assert detail["memory"] == {"parameters": 4 * count, "gradients": 4 * count, "optimizer_state": 8 * count,
                                "total": 16 * count}
    listed = next(n for n in client.get("/api/networks").get_json()["networks"]
                  if n["network_id"] == network["network_id"])
    assert listed["memory"] == detail["memory"]


def test_a_layer_sizes_network_has_no_optimizer_state(client):
    network = create_network(client, dataset_id="iris", layer_sizes=[4, 8, 3])
    detail = client.get(f"/api/networks/{network['network_id']}").get_json()
    assert detail["parameters"] == 4 * 8 + 8 + 8 * 3 + 3
    assert detail["memory"]["optimizer_state"] == 0  # plain SGD, as the original server
    assert detail["memory"]["total"] == 8 * detail["parameters"]


def test_each_epoch_reports_every_heads_metrics_and_the_weighted_total(client, factor_heads):
    run = factor_heads["run"]
    metrics = client.get(f"/api/runs/{run['run_id']}/metrics").get_json()["metrics"]
    assert metrics, run
    last = metrics[-1]  # a training_update as stored and pushed: the extra metrics sit beside accuracy and loss
    assert {"head.p.loss", "head.p.r2", "head.q.loss", "head.q.r2", "r2"} <= set(last), last
    assert last["val_loss"] == pytest.approx(last["head.p.loss"] + last["head.q.loss"])
    assert last["r2"] == pytest.approx((last["head.p.r2"] + last["head.q.r2"]) / 2)


def test_a_network_with_heads_predicts_the_factors(client, factor_heads):
    response = client.post(f"/api/networks/{factor_heads['network']['network_id']}/predict", json={"n": 221})
    body = response.get_json()
    assert response.status_code == 200, body
    assert len(body["factors"]) == 2 and len(body["raw_outputs"]) == 2


@pytest.mark.parametrize("body, problem", [
    ({"layers": [{"type": "Linear", "out_features": 8}, {"type": "LSTM", "hidden_size": 4},
                 {"type": "Linear", "out_features": 3}]},
     "layers[1] (LSTM) expects a sequence (length x features) input but receives shape [8]"),
    ({"layers": [{"type": "Linear", "out_features": 8}],
      "heads": [{"name": "a", "task": "classification"}, {"name": "a", "task": "classification"}]},
     "heads[1]: the name 'a' is already used by heads[0]"),
    ({"layers": [{"type": "Linear", "out_features": 8}], "heads": [{"name": "a", "task": "regression"}]},
     "heads[0] (a): a regression head does not fit this classification dataset"),
])
def test_a_bad_layer_or_head_is_a_400_naming_it(client, body, problem):
    response = client.post("/api/networks", json={"dataset_id": "iris", **body})
    payload = response.get_json()
    assert response.status_code == 400, payload
    assert problem in payload["message"]


# -- predicting with a given head, or every head ------------------------------------------------------

@pytest.fixture(scope="module")
def cancer_rows():
    """Preprocessed held-out rows (sent with scaled) and their labels."""
    data = load_dataset("breast_cancer", "/nonexistent")
    return data.X_test[:40].tolist(), data.y_test[:40]


def test_the_first_classifying_heads_answer_is_the_default_one(client, diagnosis_heads, cancer_rows):
    rows, _ = cancer_rows
    status, default = predict(client, diagnosis_heads, inputs=rows, scaled=True)
    assert status == 200, default
    assert set(default) == {"network_id", "version", "predictions"}  # no head: the answer as before
    status, body = predict(client, diagnosis_heads, inputs=rows, scaled=True, head="diagnosis")
    assert status == 200, body
    assert (body["head"], body["task"]) == ("diagnosis", "classification")
    assert body["predictions"] == default["predictions"]
    assert {"predicted", "output", "probabilities"} == set(body["predictions"][0])


def test_a_binary_head_predicts_zero_or_one_with_its_probability(client, diagnosis_heads, cancer_rows):
    rows, labels = cancer_rows
    status, body = predict(client, diagnosis_heads, inputs=rows, scaled=True, head="benign")
    assert status == 200, body
    assert (body["head"], body["task"]) == ("benign", "binary")
    items = body["predictions"]
    for item in items:
        assert set(item) == {"predicted", "probability", "output"} and len(item["output"]) == 1
        assert item["probability"] == pytest.approx(1 / (1 + np.exp(-item["output"][0])))
        assert item["predicted"] == int(item["probability"] > 0.5)
    # trained on the dataset's label: it mostly agrees with it (and so differs from the classification answer)
    assert np.mean([item["predicted"] for item in items] == labels) > 0.85


def test_star_answers_every_head_by_name_one_input_too(client, diagnosis_heads, cancer_rows):
    rows, _ = cancer_rows
    status, body = predict(client, diagnosis_heads, input=rows[0], scaled=True, head="*")
    assert status == 200, body
    assert set(body) == {"network_id", "version", "heads"}
    assert list(body["heads"]) == ["diagnosis", "benign"]
    for name, answer in body["heads"].items():
        status, alone = predict(client, diagnosis_heads, input=rows[0], scaled=True, head=name)
        assert answer == {key: value for key, value in alone.items() if key not in ("network_id", "version", "head")}
        assert answer["prediction"] == answer["predictions"][0]["predicted"]
        assert answer["output"] == answer["predictions"][0]["output"]


def test_an_unknown_head_is_a_400_listing_the_heads(client, diagnosis_heads, cancer_rows):
    rows, _ = cancer_rows
    status, before = predict(client, diagnosis_heads, inputs=rows, scaled=True)
    status, body = predict(client, diagnosis_heads, inputs=rows, scaled=True, head="malignant")
    assert status == 400, body
    assert body["error"] == "validation_error"
    assert "no head 'malignant'" in body["message"] and "diagnosis, benign" in body["message"]
    assert predict(client, diagnosis_heads, inputs=rows, scaled=True) == (200, before)


def test_a_head_on_a_network_without_heads_is_a_400(client):
    network = create_network(client, dataset_id="iris", layers=[{"type": "Linear", "out_features": 3}])
    run = wait_for_run(client, start_run(client, network["network_id"], epochs=1)["run_id"])
    assert run["status"] == "completed", run
    status, body = predict(client, network["network_id"], input=[5.1, 3.5, 1.4, 0.2], head="output")
    assert status == 400, body
    assert body["error"] == "validation_error" and "has no heads" in body["message"]
    status, body = predict(client, network["network_id"], input=[5.1, 3.5, 1.4, 0.2])
    assert status == 200 and "head" not in body


def test_a_regression_head_predicts_its_own_column_in_target_units(client, factor_heads):
    network_id = factor_heads["network"]["network_id"]
    digits = [[2, 2, 1], [1, 4, 3], [0, 3, 5]]
    status, default = predict(client, network_id, inputs=digits)
    assert status == 200, default
    status, both = predict(client, network_id, inputs=digits, head="*")
    assert status == 200, both
    for column, name in enumerate(["p", "q"]):
        status, body = predict(client, network_id, inputs=digits, head=name)
        assert status == 200, body
        assert body["task"] == "regression" and body["predictions"] == both["heads"][name]["predictions"]
        assert [item["predicted"] for item in body["predictions"]] == pytest.approx(
            [item["predicted"][column] for item in default["predictions"]])
        assert [item["output"] for item in body["predictions"]] == [
            [item["output"][column]] for item in default["predictions"]]
    status, body = predict(client, network_id, n=221, head="p")
    assert status == 400 and "not to n" in body["message"], body
