"""Bad input gets a 4xx with {"error", "message"}, never a 500, and creates nothing.

Every case runs against one app holding an iris network from `layer_sizes` and a digits network
from layer specs (neither trained); each checks the status, the error body, and that the lists of
networks and runs, and the files under the home folder, are exactly as before.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import create_network

MAX_CONTENT = 20_000
MAX_BATCH = 5
IRIS_MLP = [{"type": "Linear", "out_features": 8}, {"type": "ReLU"}, {"type": "Linear", "out_features": 3}]


@pytest.fixture(scope="module")
def shared_app(make_module_app):
    return make_module_app(max_content_length=MAX_CONTENT, max_batch_inputs=MAX_BATCH)


@pytest.fixture(scope="module")
def ids(shared_app):
    client = shared_app.test_client()
    return {
        "iris": create_network(client, dataset_id="iris", layer_sizes=[4, 8, 3])["network_id"],
        "digits": create_network(client, dataset_id="digits", layers=[
            {"type": "Flatten"}, {"type": "Linear", "out_features": 10}])["network_id"],
    }


@pytest.fixture
def client(shared_app):
    return shared_app.test_client()


def snapshot(app, client) -> dict:
    home = app.extensions["livetrain"].settings.home
    return {
        "networks": client.get("/api/networks").get_json()["networks"],
        "runs": client.get("/api/runs").get_json()["runs"],
        "files": sorted(str(p.relative_to(home)) for p in home.rglob("*")
                        if p.is_file() and not p.name.startswith("livetrain.db")),
    }


def check(app, client, ids, method: str, path: str, status: int, *, contains: str | None = None,
          code: str | None = None, **kwargs) -> dict:
    """Send the request; assert the status, the error body, and that nothing changed."""
    before = snapshot(app, client)
    response = client.open(path.format(**ids), method=method, **kwargs)
    body = response.get_json()
    assert response.status_code == status, body
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("message"), str)
    assert body["error"] and body["message"]
    if code:
        assert body["error"] == code, body
    if contains:
        assert contains in body["message"], body
    assert snapshot(app, client) == before
    return body


def as_json(text: str) -> dict:
    return {"data": text, "content_type": "application/json"}


# -- creating networks ------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, status, code, contains", [
    (as_json('{"layer_sizes": [784, 30'), 400, "invalid_json", "not valid JSON"),
    (as_json("[784, 30, 10]"), 400, "validation_error", "JSON object"),
    ({"data": '{"layer_sizes": [64, 3, 10]}', "content_type": "text/plain"}, 415, "unsupported_media_type", "JSON"),
    ({"data": "layer_sizes=64", "content_type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type",
     "JSON"),
    (as_json('"784,30,10"'), 400, "validation_error", "JSON object"),
    ({"json": {"layer_sizes": "784,30,10"}}, 400, "validation_error", "layer_sizes"),
    ({"json": {"layer_sizes": [784, "thirty", 10]}}, 400, "validation_error", "layer_sizes[1]"),
    ({"json": {"dataset_id": "iris", "layer_sizes": [4, 2.5, 3]}}, 400, "validation_error", "layer_sizes[1]"),
    ({"json": {"dataset_id": "iris", "layer_sizes": [4, True, 3]}}, 400, "validation_error", "layer_sizes[1]"),
    ({"json": {"dataset_id": "iris", "layer_sizes": [4, None, 3]}}, 400, "validation_error", "layer_sizes[1]"),
    ({"json": {"dataset_id": "iris", "layer_sizes": [4]}}, 400, "validation_error", "layer_sizes"),
    ({"json": {"dataset_id": "iris", "layer_sizes": [4, 0, 3]}}, 400, "validation_error", "layer_sizes[1]"),
    ({"json": {"dataset_id": "iris", "layer_sizes": [4, -8, 3]}}, 400, "validation_error", "layer_sizes[1]"),
    ({"json": {"dataset_id": "iris", "layer_sizes": [4, 10**30, 3]}}, 400, "validation_error", "layer_sizes[1]"),
    ({"json": {"dataset_id": "iris", "layer_sizes": [4] * 300}}, 400, "validation_error", "layer_sizes"),
    ({"json": {"dataset_id": "iris", "layer_sizes": [5, 3]}}, 400, "validation_error", "dataset has 4 features"),
    ({"json": {"dataset_id": "iris", "layer_sizes": [4, 10]}}, 400, "validation_error", "dataset has 3 classes"),
    ({"json": {"dataset_id": "iris", "layer_sizes": [4, 3], "layers": IRIS_MLP}}, 400, "validation_error", "either"),
    ({"json": {"dataset_id": "diabetes", "layer_sizes": [10, 1]}}, 400, "validation_error", "classify"),
    ({"json": {"dataset_id": "cifar10"}}, 404, "not_found", "cifar10"),
    ({"json": {"dataset_id": 5}}, 400, "validation_error", "dataset_id"),
    ({"json": {"dataset_id": ["iris"]}}, 400, "validation_error", "dataset_id"),
    ({"json": {"dataset_id": "iris", "layers": IRIS_MLP, "loss": "hinge"}}, 400, "validation_error", "loss"),
    ({"json": {"dataset_id": "iris", "layers": IRIS_MLP, "optimizer": "rmsprop"}}, 400, "validation_error",
     "optimizer"),
    ({"json": {"dataset_id": "iris", "layers": IRIS_MLP, "learning_rate": -1}}, 400, "validation_error",
     "learning_rate"),
    ({"json": {"dataset_id": "iris", "layers": IRIS_MLP, "learning_rate": 0}}, 400, "validation_error",
     "learning_rate"),
    ({"json": {"dataset_id": "iris", "layers": IRIS_MLP, "learning_rate": "fast"}}, 400, "validation_error",
     "learning_rate"),
    (as_json('{"dataset_id": "iris", "layers": [{"type": "Linear", "out_features": 3}], "learning_rate": NaN}'), 400,
     "validation_error", "learning_rate"),
    (as_json('{"dataset_id": "iris", "layer_sizes": [4, 3], "learning_rate": 1e999}'), 400, "validation_error",
     "learning_rate"),
    ({"json": {"dataset_id": "iris", "layers": IRIS_MLP, "momentum": 1.5}}, 400, "validation_error", "momentum"),
    ({"json": {"dataset_id": "iris", "layers": IRIS_MLP, "weight_decay": -0.1}}, 400, "validation_error",
     "weight_decay"),
    ({"json": {"dataset_id": "iris", "layer_sizes": [4, 3], "seed": -1}}, 400, "validation_error", "seed"),
    ({"json": {"dataset_id": "iris", "layer_sizes": [4, 3], "init": "xavier"}}, 400, "validation_error", "init"),
], ids=lambda v: v if isinstance(v, (str, int)) else None)
def test_bad_network_bodies(shared_app, client, ids, kwargs, status, code, contains):
    check(shared_app, client, ids, "POST", "/api/networks", status, code=code, contains=contains, **kwargs)


def test_a_bad_layer_parameter_names_both_the_layer_and_the_field(shared_app, client, ids):
    body = check(shared_app, client, ids, "POST", "/api/networks", 400, code="validation_error",
                 contains="layers[1].out_features",
                 json={"dataset_id": "iris", "layers": [{"type": "Linear", "out_features": 8},
                                                        {"type": "Linear", "out_features": -3}]})
    assert body["detail"] == {"layer": 1, "field": "layers[1].out_features"}


@pytest.mark.parametrize("name", [
    "../../etc/passwd", "a/b", "a\\b", "..", "x..y", "/abs", ".hidden", "", " leading space", "x" * 101,
    "nul\x00byte", "new\nline", 42, ["a"],
])
def test_names_with_path_characters_or_wrong_types_are_refused(shared_app, client, ids, name):
    check(shared_app, client, ids, "POST", "/api/networks", 400, code="validation_error", contains="name",
          json={"dataset_id": "iris", "layer_sizes": [4, 3], "name": name})


@pytest.mark.parametrize("dataset, layers, index, contains", [
    ("iris", "Linear", None, "layers"),
    ("iris", [], None, "layers"),
    ("iris", [5], 0, "layers[0]"),
    ("iris", [{"out_features": 3}], 0, "layers[0]"),
    ("iris", [{"type": "Linear", "out_features": 8}, {"type": "Attention"}], 1, "layers[1]: unknown layer type"),
    ("iris", [{"type": "Linear"}], 0, "layers[0] (Linear): 'out_features' is required"),
    ("iris", [{"type": "Linear", "out_features": 3, "activation": "relu"}], 0, "unknown parameter(s) activation"),
    ("iris", [{"type": "Linear", "out_features": 0}], 0, "layers[0].out_features"),
    ("iris", [{"type": "Linear", "out_features": 8}, {"type": "Dropout", "p": 1}], 1, "layers[1] (Dropout)"),
    ("iris", [{"type": "Linear", "out_features": 8}, {"type": "Linear", "out_features": 4}], None,
     "the last layer must give 3 output(s) for this classification dataset, it gives [4]"),
    ("iris", [{"type": "Linear", "out_features": 8, "in_features": 5}, {"type": "Linear", "out_features": 3}], 0,
     "layers[0] (Linear): in_features is 5"),
    ("iris", [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3}], None, "need image data"),
    ("digits", [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3}, {"type": "Linear", "out_features": 10}], 1,
     "layers[1] (Linear) expects flat"),
    ("digits", [{"type": "Conv2d", "out_channels": 4, "kernel_size": 9}, {"type": "Flatten"},
                {"type": "Linear", "out_features": 10}], 0, "layers[0] (Conv2d) cannot take input of shape [1, 8, 8]"),
    ("digits", [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3}, {"type": "MaxPool2d", "kernel_size": 8},
                {"type": "Flatten"}, {"type": "Linear", "out_features": 10}], 1, "layers[1] (MaxPool2d)"),
    ("diabetes", [{"type": "Linear", "out_features": 1}], None, "cross_entropy needs a classification dataset"),
    ("digits", [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3}, {"type": "BatchNorm2d", "num_features": 5},
                {"type": "Flatten"}, {"type": "Linear", "out_features": 10}], 1,
     "layers[1] (BatchNorm2d): num_features is 5 but the input has 4 channels"),
])
def test_bad_layer_specs_name_the_failing_layer(shared_app, client, ids, dataset, layers, index, contains):
    body = check(shared_app, client, ids, "POST", "/api/networks", 400, code="validation_error", contains=contains,
                 json={"dataset_id": dataset, "layers": layers})
    if index is not None:
        assert f"layers[{index}]" in body["message"]


@pytest.mark.parametrize("body", [
    {"dataset_id": "iris", "layer_sizes": [4, 100_000, 100_000, 3]},
    {"dataset_id": "digits", "layers": [{"type": "Flatten"}, {"type": "Linear", "out_features": 500_000},
                                        {"type": "Linear", "out_features": 10}]},
])
def test_networks_over_the_parameter_cap_are_refused_clearly(shared_app, client, ids, body):
    message = check(shared_app, client, ids, "POST", "/api/networks", 400, code="too_large",
                    contains="parameters", json=body)["message"]
    assert "20,000,000" in message and "LIVETRAIN_MAX_PARAMETERS" in message


def test_the_parameter_cap_is_configurable(make_app):
    client = make_app(max_parameters=100).test_client()
    refused = client.post("/api/networks", json={"dataset_id": "iris", "layer_sizes": [4, 30, 3]})
    assert refused.status_code == 400 and refused.get_json()["error"] == "too_large"
    assert "100" in refused.get_json()["message"]
    assert client.post("/api/networks", json={"dataset_id": "iris", "layer_sizes": [4, 3]}).status_code == 201
    assert len(client.get("/api/networks").get_json()["networks"]) == 1


# -- oversized bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/networks", "/api/networks/{iris}/train", "/api/networks/{iris}/predict"])
def test_oversized_bodies_are_refused_with_413(shared_app, client, ids, path):
    big = json.dumps({"dataset_id": "iris", "layer_sizes": [4, 3], "name": "x", "padding": "y" * MAX_CONTENT})
    check(shared_app, client, ids, "POST", path, 413, code="payload_too_large", contains=str(MAX_CONTENT),
          **as_json(big))


# -- training -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, status, contains", [
    (as_json("{epochs: 5}"), 400, "not valid JSON"),
    (as_json("[5]"), 400, "JSON object"),
    ({"data": '{"epochs": 3}', "content_type": "text/plain"}, 415, "JSON"),
    ({"json": {"epochs": 0}}, 400, "epochs"),
    ({"json": {"epochs": -1}}, 400, "epochs"),
    ({"json": {"epochs": 10_001}}, 400, "epochs"),
    ({"json": {"epochs": 10**30}}, 400, "epochs"),
    ({"json": {"epochs": "five"}}, 400, "epochs"),
    ({"json": {"epochs": 2.5}}, 400, "epochs"),
    ({"json": {"epochs": True}}, 400, "epochs"),
    ({"json": {"epochs": [5]}}, 400, "epochs"),
    ({"json": {"mini_batch_size": 0}}, 400, "mini_batch_size"),
    ({"json": {"mini_batch_size": 121}}, 400, "mini_batch_size"),  # iris trains on 120 rows
    ({"json": {"batch_size": -10}}, 400, "mini_batch_size"),
    ({"json": {"learning_rate": 0}}, 400, "learning_rate"),
    ({"json": {"learning_rate": -3.0}}, 400, "learning_rate"),
    ({"json": {"learning_rate": 1e9}}, 400, "learning_rate"),
    (as_json('{"learning_rate": NaN}'), 400, "learning_rate"),
    (as_json('{"learning_rate": Infinity}'), 400, "learning_rate"),
    ({"json": {"seed": -1}}, 400, "seed"),
    ({"json": {"resume": "maybe"}}, 400, "resume"),
    ({"json": {"optimizer": "adam"}}, 400, "layer_sizes network"),
    ({"json": {"momentum": 0.9}}, 400, "layer_sizes network"),
    ({"json": {"optimizer": "rmsprop"}}, 400, "optimizer"),
    ({"json": {"resume": True}}, 409, "no checkpoint"),
])
def test_bad_train_requests(shared_app, client, ids, kwargs, status, contains):
    check(shared_app, client, ids, "POST", "/api/networks/{iris}/train", status, contains=contains, **kwargs)


@pytest.mark.parametrize("body, contains", [
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"optimizer": "sgd", "momentum": 1.0}, "momentum"),
    ({"weight_decay": 2}, "weight_decay"),
    ({"learning_rate": 5000}, "learning_rate"),
])
def test_bad_train_requests_for_layer_spec_networks(shared_app, client, ids, body, contains):
    check(shared_app, client, ids, "POST", "/api/networks/{digits}/train", 400, code="validation_error",
          contains=contains, json=body)


# -- predicting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, status, contains", [
    ({"json": {}}, 400, "either 'input'"),
    ({"json": {"input": [1, 2, 3, 4], "inputs": [[1, 2, 3, 4]]}}, 400, "either 'input'"),
    ({"json": {"input": 5}}, 400, "input"),
    ({"json": {"input": [1, 2]}}, 400, "4 numbers"),
    ({"json": {"input": ["a", "b", "c", "d"]}}, 400, "list of numbers"),
    ({"json": {"input": [1, 2, 3, None]}}, 400, "input[3]"),
    ({"json": {"inputs": []}}, 400, "non-empty"),
    ({"json": {"inputs": [[1, 2, 3, 4], [1, 2]]}}, 400, "list of numbers"),
    ({"json": {"inputs": [[1, 2, 3, 4]] * (MAX_BATCH + 1)}}, 400, f"at most {MAX_BATCH}"),
    (as_json('{"input": [1, 2, 3, NaN]}'), 400, "finite"),
    ({"json": {"input": [1e39, 1, 1, 1]}}, 400, "finite"),
    ({"json": {"input": [1, True, 3, 4]}}, 400, "not true/false"),
    ({"json": {"input": [1, 2, 3, 4]}}, 404, "has not been trained"),
])
def test_bad_predict_requests(shared_app, client, ids, kwargs, status, contains):
    check(shared_app, client, ids, "POST", "/api/networks/{iris}/predict", status, contains=contains, **kwargs)


# -- queries, unknown ids, methods ------------------------------------------------------------------


@pytest.mark.parametrize("path, contains", [
    ("/api/runs?limit=0", "limit"),
    ("/api/runs?limit=501", "limit"),
    ("/api/runs?limit=ten", "limit"),
    ("/api/runs?offset=-1", "offset"),
    ("/api/runs?offset=17852964739109657509888", "offset"),  # beyond any database integer
    ("/api/experiments?offset=34812022655851888640", "offset"),
    ("/api/experiments?limit=0", "limit"),
    ("/api/runs/whatever/metrics?after_seq=99999999999999999999", "after_seq"),
    ("/api/experiments/default/leaderboard?split=everything", "split"),
    ("/api/runs?status=exploded", "status"),
    ("/api/runs/whatever/metrics?after_seq=-1", "after_seq"),
    ("/api/runs/whatever/metrics?after_seq=abc", "after_seq"),
    ("/api/runs/whatever/metrics?format=xml", "format"),
    ("/api/runs/whatever/events?after_seq=-5", "after_seq"),
    ("/api/networks/{iris}/examples?kind=sideways", "kind"),
    ("/api/networks/{iris}/successful_example?index=-1", "index"),
    ("/api/networks/{iris}/unsuccessful_example?index=first", "index"),
])
def test_bad_query_parameters(shared_app, client, ids, path, contains):
    check(shared_app, client, ids, "GET", path, 400, code="validation_error", contains=contains)


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/networks/nope"),
    ("DELETE", "/api/networks/nope"),
    ("POST", "/api/networks/nope/train"),
    ("POST", "/api/networks/nope/predict"),
    ("GET", "/api/networks/nope/versions"),
    ("GET", "/api/networks/nope/weights"),
    ("GET", "/api/networks/nope/versions/1/weights"),
    ("GET", "/api/networks/{iris}/versions/1/weights"),
    ("GET", "/api/networks/{iris}/versions/308470253934801518592/weights"),  # beyond any database integer
    ("GET", "/api/experiments/nope"),
    ("DELETE", "/api/experiments/nope"),
    ("GET", "/api/experiments/nope/leaderboard"),
    ("POST", "/api/experiments/nope/runs"),
    ("POST", "/api/runs/nope/rerun"),
    ("POST", "/api/runs/nope/predict"),
    ("GET", "/api/runs/nope/model"),
    ("DELETE", "/api/datasets/nope"),
    ("GET", "/api/datasets/nope/csv"),
    ("GET", "/api/networks/nope/successful_example"),
    ("GET", "/api/networks/nope/examples"),
    ("GET", "/api/runs/nope"),
    ("POST", "/api/runs/nope/cancel"),
    ("POST", "/api/runs/nope/resume"),
    ("GET", "/api/runs/nope/metrics"),
    ("GET", "/api/runs/nope/metrics.csv"),
    ("GET", "/api/training/nope"),
    ("GET", "/api/datasets/nope"),
    ("GET", "/api/networks/..%2F..%2Fetc%2Fpasswd"),
    ("GET", "/api/networks/..%2F..%2Fetc%2Fpasswd/weights"),
    ("DELETE", "/api/networks/.."),
    ("GET", "/api/no-such-endpoint"),
])
def test_unknown_ids_are_404(shared_app, client, ids, method, path):
    kwargs = {"json": {"input": [1, 2, 3, 4]}} if path.endswith("predict") else {}
    check(shared_app, client, ids, method, path, 404, **kwargs)


@pytest.mark.parametrize("method, path", [
    ("PUT", "/api/networks"),
    ("PATCH", "/api/networks/{iris}"),
    ("GET", "/api/networks/{iris}/train"),
    ("DELETE", "/api/runs"),
])
def test_wrong_methods_are_405(shared_app, client, ids, method, path):
    check(shared_app, client, ids, method, path, 405, code="method_not_allowed")


def test_the_fixture_networks_are_still_there(client, ids):
    listed = {n["network_id"]: n for n in client.get("/api/networks").get_json()["networks"]}
    assert set(listed) == set(ids.values())
    assert all(n["status"] == "created" for n in listed.values())
    assert client.get("/api/runs").get_json()["total"] == 0
