"""A string where a number or a boolean is expected, or null for a list, is refused with a 400 naming the
field: never read as the value it spells. One table per endpoint body; nothing is created by a refusal.
"""

from __future__ import annotations

import pytest

from tests.helpers import create_experiment, create_network, wait_for_run

IRIS = {"dataset_id": "iris", "layer_sizes": [4, 5, 3]}
IRIS_MLP = [{"type": "Linear", "out_features": 3}]


@pytest.fixture(scope="module")
def shared_app(make_module_app):
    return make_module_app()


@pytest.fixture(scope="module")
def ids(shared_app):
    client = shared_app.test_client()
    return {
        "network": create_network(client, **IRIS)["network_id"],
        "experiment": create_experiment(client, name="strict")["experiment_id"],
    }


@pytest.fixture
def client(shared_app):
    return shared_app.test_client()


def refused(client, path: str, body: dict, field: str) -> None:
    runs_before = client.get("/api/runs").get_json()["total"]
    networks_before = len(client.get("/api/networks").get_json()["networks"])
    response = client.post(path, json=body)
    answer = response.get_json()
    assert response.status_code == 400, answer
    assert answer["error"] == "validation_error"
    assert answer["message"].startswith(f"{field}: "), answer
    assert client.get("/api/runs").get_json()["total"] == runs_before
    assert len(client.get("/api/networks").get_json()["networks"]) == networks_before


@pytest.mark.parametrize("body, field", [
    ({**IRIS, "layer_sizes": [4, "30", 3]}, "layer_sizes[1]"),
    ({**IRIS, "layer_sizes": ["4", 5, 3]}, "layer_sizes[0]"),
    ({**IRIS, "layer_sizes": None}, "layer_sizes"),
    ({"dataset_id": "iris", "layers": None}, "layers"),
    ({"dataset_id": "iris", "layers": IRIS_MLP, "learning_rate": "0.1"}, "learning_rate"),
    ({"dataset_id": "iris", "layers": IRIS_MLP, "momentum": "0.9"}, "momentum"),
    ({"dataset_id": "iris", "layers": IRIS_MLP, "weight_decay": "0"}, "weight_decay"),
    ({**IRIS, "seed": "7"}, "seed"),
])
def test_create_network(client, ids, body, field):
    refused(client, "/api/networks", body, field)


TRAIN_BODIES = [
    ({"epochs": "10"}, "epochs"),
    ({"epochs": 1, "mini_batch_size": "10"}, "mini_batch_size"),
    ({"epochs": 1, "batch_size": "10"}, "batch_size"),
    ({"epochs": 1, "learning_rate": "0.1"}, "learning_rate"),
    ({"epochs": 1, "momentum": "0.5"}, "momentum"),
    ({"epochs": 1, "weight_decay": "0.01"}, "weight_decay"),
    ({"epochs": 1, "seed": "1"}, "seed"),
    ({"epochs": 1, "resume": "yes"}, "resume"),
    ({"epochs": 1, "resume": "1"}, "resume"),
    ({"epochs": 1, "resume": 1}, "resume"),
    ({"epochs": 1, "resume": "false"}, "resume"),
]


@pytest.mark.parametrize("body, field", TRAIN_BODIES)
def test_train_network(client, ids, body, field):
    refused(client, f"/api/networks/{ids['network']}/train", body, field)


@pytest.mark.parametrize("body, field", TRAIN_BODIES[:3])
def test_resume_run(client, ids, body, field):
    # the schema answers before the run is looked up: the run need not exist
    refused(client, "/api/runs/no-such-run/resume", body, field)


# an algorithm's own parameters and steps are checked by the algorithm catalog: code bad_parameter
@pytest.mark.parametrize("body, code, field", [
    ({"algorithm": "knn", "dataset_id": "iris", "epochs": "10"}, "validation_error", "epochs"),
    ({"algorithm": "knn", "dataset_id": "iris", "seed": "3"}, "validation_error", "seed"),
    ({"algorithm": "mlp", "dataset_id": "iris", "learning_rate": "0.01"}, "validation_error", "learning_rate"),
    ({"algorithm": "knn", "dataset_id": "iris", "steps": "5"}, "bad_parameter", "steps"),
    ({"algorithm": "knn", "dataset_id": "iris", "params": {"n_neighbors": "5"}}, "bad_parameter",
     "params.n_neighbors"),
])
def test_experiment_run(client, ids, body, code, field):
    response = client.post(f"/api/experiments/{ids['experiment']}/runs", json=body)
    answer = response.get_json()
    assert response.status_code == 400, answer
    assert answer["error"] == code and answer["message"].startswith(f"{field}: "), answer
    assert client.get("/api/runs").get_json()["total"] == 0


@pytest.mark.parametrize("body, field", [
    ({"inputs": None}, "inputs"),
    ({"rows": None}, "rows"),
    ({"input": [5.1, 3.5, 1.4, 0.2], "scaled": "yes"}, "scaled"),
    ({"input": [5.1, 3.5, 1.4, 0.2], "scaled": 1}, "scaled"),
])
def test_predict_with_a_network(client, ids, body, field):
    refused(client, f"/api/networks/{ids['network']}/predict", body, field)


@pytest.mark.parametrize("body, field", [({"rows": None}, "rows"), ({"inputs": None}, "inputs")])
def test_predict_with_a_run(client, ids, body, field):
    refused(client, "/api/runs/no-such-run/predict", body, field)


@pytest.mark.parametrize("body, field", [({"name": 5}, "name"), ({"name": "x", "description": ["a"]}, "description")])
def test_create_experiment(client, ids, body, field):
    response = client.post("/api/experiments", json=body)
    assert response.status_code == 400 and response.get_json()["message"].startswith(f"{field}: ")


def test_numbers_sent_as_numbers_still_work_whole_floats_included(client, ids):
    # JSON has one number type: 2.0 is the number 2 (only text is refused)
    response = client.post(f"/api/networks/{ids['network']}/train",
                           json={"epochs": 1.0, "mini_batch_size": 10, "learning_rate": 1, "resume": False})
    assert response.status_code == 202, response.get_json()
    run = wait_for_run(client, response.get_json()["run_id"])
    assert (run["status"], run["epochs"], run["params"]["learning_rate"]) == ("completed", 1, 1.0)


@pytest.mark.parametrize("body, field", [
    ({"generator": "moons", "seed": "3"}, "seed"),
    ({"generator": "moons", "split": "[0.7, 0.15, 0.15]"}, "split"),
    ({"generator": "moons", "params": {"n_samples": "50"}}, "n_samples"),
])
def test_generate_dataset(client, ids, body, field):
    before = len(client.get("/api/datasets").get_json()["datasets"])
    response = client.post("/api/datasets", json=body)
    answer = response.get_json()
    assert response.status_code == 400 and answer["error"] == "bad_parameter", answer
    assert field in answer["message"]
    assert len(client.get("/api/datasets").get_json()["datasets"]) == before
