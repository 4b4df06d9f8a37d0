"""Networks over REST: create, list, inspect, train, versions, weights, predict, examples, delete."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
import torch

from livetrain.data.sources import load_dataset
from tests.conftest import HAVE_MNIST
from tests.helpers import create_network, events_named, start_run, wait_for_run

DIGITS_CONV = [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3}, {"type": "ReLU"},
               {"type": "MaxPool2d", "kernel_size": 2}, {"type": "Flatten"}, {"type": "Linear", "out_features": 10}]


@pytest.fixture(scope="module")
def shared_app(make_module_app):
    return make_module_app(warm_workers=1)


@pytest.fixture
def client(shared_app):
    return shared_app.test_client()


@pytest.fixture(scope="module")
def trained(shared_app):
    """A digits network trained for 3 epochs, with the run that trained it and its last epoch's metrics."""
    client = shared_app.test_client()
    network = create_network(client, dataset_id="digits", layer_sizes=[64, 30, 10], name="trained digits")
    run = wait_for_run(client, start_run(client, network["network_id"], epochs=3)["run_id"])
    assert run["status"] == "completed", run
    metrics = client.get(f"/api/runs/{run['run_id']}/metrics").get_json()["metrics"]
    return {"network_id": network["network_id"], "run": run, "last": metrics[-1]}


@pytest.fixture(scope="module")
def layer_net(shared_app):
    """An iris network from layer specs, trained for 2 epochs."""
    client = shared_app.test_client()
    network = create_network(client, dataset_id="iris",
                             layers=[{"type": "Linear", "out_features": 8}, {"type": "ReLU"},
                                     {"type": "Linear", "out_features": 3}], learning_rate=0.05)
    run = wait_for_run(client, start_run(client, network["network_id"], epochs=2)["run_id"])
    assert run["status"] == "completed", run
    return {"network_id": network["network_id"], "run": run}


def decode_png(data: str) -> np.ndarray:
    """Pixels of an 8-bit grayscale PNG without filters (what the server writes)."""
    raw = base64.b64decode(data, validate=True)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, color = struct.unpack(">IIBB", raw[16:26])
    assert (depth, color) == (8, 0)
    idat = raw.index(b"IDAT")
    length = struct.unpack(">I", raw[idat - 4:idat])[0]
    rows = zlib.decompress(raw[idat + 4:idat + 4 + length])
    pixels = np.frombuffer(rows, dtype=np.uint8).reshape(height, width + 1)
    assert (pixels[:, 0] == 0).all()
    return pixels[:, 1:]


# -- create, list, inspect --------------------------------------------------------------


def test_create_from_layer_sizes(client):
    body = create_network(client, dataset_id="digits", layer_sizes=[64, 20, 10], name="my net")
    assert body["status"] == "created"
    assert body["architecture"] == [64, 20, 10]
    assert (body["kind"], body["dataset_id"], body["name"]) == ("layer_sizes", "digits", "my net")
    assert body["parameter_count"] == 64 * 20 + 20 + 20 * 10 + 10
    assert [row["output_shape"] for row in body["layers"]] == [[20], [20], [10], [10]]
    assert body["trained"] is False and body["accuracy"] is None

    listed = {n["network_id"]: n for n in client.get("/api/networks").get_json()["networks"]}
    assert listed[body["network_id"]]["architecture"] == [64, 20, 10]
    assert listed[body["network_id"]]["status"] == "created"

    detail = client.get(f"/api/networks/{body['network_id']}").get_json()
    assert detail["spec"]["layer_sizes"] == [64, 20, 10]
    assert detail["layers"] == body["layers"]
    assert detail["versions"] == [] and detail["active_run"] is None


def test_create_without_a_body_uses_the_default_dataset(client):
    body = create_network(client)
    if HAVE_MNIST:
        assert (body["dataset_id"], body["architecture"]) == ("mnist", [784, 30, 10])
    else:
        assert (body["dataset_id"], body["architecture"]) == ("digits", [64, 30, 10])
    assert client.get("/api/datasets").get_json()["default"] == body["dataset_id"]


def test_create_without_layer_sizes_fits_the_chosen_dataset(client):
    body = create_network(client, dataset="wine")
    assert (body["dataset_id"], body["architecture"]) == ("wine", [13, 30, 3])


def test_create_from_layers(client):
    body = create_network(client, dataset_id="digits", layers=DIGITS_CONV, optimizer="sgd")
    assert body["kind"] == "layers"
    assert [layer["type"] for layer in body["architecture"]] == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert [row["output_shape"] for row in body["layers"]] == [[4, 6, 6], [4, 6, 6], [4, 3, 3], [36], [10]]
    assert body["parameter_count"] == (9 * 4 + 4) + (36 * 10 + 10)
    assert sum(row["parameters"] for row in body["layers"]) == body["parameter_count"]
    spec = body["spec"]
    assert (spec["loss"], spec["optimizer"], spec["learning_rate"]) == ("cross_entropy", "sgd", 0.01)


def test_creating_a_network_tells_every_client(shared_app, client):
    sio = shared_app.extensions["socketio"].test_client(shared_app, flask_test_client=client)
    try:
        sio.get_received()
        body = create_network(client, dataset_id="iris", layer_sizes=[4, 3])
        created = events_named(sio.get_received(), "network_created")
    finally:
        sio.disconnect()
    assert [(e["network_id"], e["architecture"]) for e in created] == [(body["network_id"], [4, 3])]
    assert isinstance(created[0]["ts"], float)


def test_networks_are_listed_oldest_first(client):
    first = create_network(client, dataset_id="iris", layer_sizes=[4, 3])
    second = create_network(client, dataset_id="iris", layer_sizes=[4, 3])
    ids = [n["network_id"] for n in client.get("/api/networks").get_json()["networks"]]
    assert ids.index(first["network_id"]) < ids.index(second["network_id"])


# -- a trained network -----------------------------------------------------------------------


def test_training_makes_version_one_with_the_runs_accuracy(client, trained):
    run, last = trained["run"], trained["last"]
    assert run["accuracy"] == last["accuracy"] == last["correct"] / last["total"]
    assert run["accuracy"] > 0.8
    detail = client.get(f"/api/networks/{trained['network_id']}").get_json()
    assert (detail["trained"], detail["status"], detail["current_version"]) == (True, "trained", 1)
    assert detail["accuracy"] == run["accuracy"]
    assert [(v["version"], v["run_id"]) for v in detail["versions"]] == [(1, run["run_id"])]
    assert detail["versions"][0]["metrics"]["accuracy"] == run["accuracy"]
    versions = client.get(f"/api/networks/{trained['network_id']}/versions").get_json()
    assert versions["current_version"] == 1 and versions["versions"] == detail["versions"]


def test_weights_download_loads_with_weights_only(client, trained):
    network_id = trained["network_id"]
    response = client.get(f"/api/networks/{network_id}/weights")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f'attachment; filename="{network_id}-v1.pt"'
    digest = hashlib.sha256(response.data).hexdigest()
    assert response.headers["X-Checksum-SHA256"] == digest
    versions = client.get(f"/api/networks/{network_id}/versions").get_json()["versions"]
    assert versions[0]["weights_sha256"] == digest
    run = client.get(f"/api/runs/{trained['run']['run_id']}").get_json()
    assert run["model_sha256"] == digest  # the run's model is the version it made
    model = client.get(f"/api/runs/{run['run_id']}/model")
    assert model.headers["X-Checksum-SHA256"] == digest and model.data == response.data

    saved = torch.load(io.BytesIO(response.data), map_location="cpu", weights_only=True)
    assert saved["architecture"]["layer_sizes"] == [64, 30, 10]
    assert saved["dataset_id"] == "digits"
    assert {k: tuple(v.shape) for k, v in saved["state_dict"].items()} == {
        "0.weight": (30, 64), "0.bias": (30,), "2.weight": (10, 30), "2.bias": (10,)}

    assert client.get(f"/api/networks/{network_id}/versions/1/weights").data == response.data
    missing = client.get(f"/api/networks/{network_id}/versions/2/weights")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"


def test_untrained_network_has_no_weights(client):
    network = create_network(client, dataset_id="iris", layer_sizes=[4, 3])
    response = client.get(f"/api/networks/{network['network_id']}/weights")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_trained"


def test_predictions_score_the_held_out_set_as_training_did(client, trained, tmp_path):
    data = load_dataset("digits", tmp_path)
    raw = (data.X_test * 16).round().tolist()  # the dataset's own units: pixel intensities 0..16
    body = client.post(f"/api/networks/{trained['network_id']}/predict", json={"inputs": raw}).get_json()
    assert body["version"] == 1
    predicted = np.array([p["predicted"] for p in body["predictions"]])
    assert int((predicted == data.y_test).sum()) == trained["last"]["correct"]
    assert all(len(p["output"]) == 10 and p["predicted"] == int(np.argmax(p["output"])) for p in body["predictions"])

    scaled = client.post(f"/api/networks/{trained['network_id']}/predict",
                         json={"inputs": data.X_test[:5].tolist(), "scaled": True}).get_json()
    assert [p["predicted"] for p in scaled["predictions"]] == predicted[:5].tolist()

    single = client.post(f"/api/networks/{trained['network_id']}/predict", json={"input": raw[0]}).get_json()
    assert single["prediction"] == predicted[0]
    assert single["output"] == pytest.approx(body["predictions"][0]["output"], rel=1e-5)


def test_an_image_can_be_sent_as_rows(client, trained, tmp_path):
    data = load_dataset("digits", tmp_path)
    image = (data.X_test[0] * 16).round().reshape(8, 8).tolist()
    flat = client.post(f"/api/networks/{trained['network_id']}/predict",
                       json={"input": (data.X_test[0] * 16).round().tolist()}).get_json()
    rows = client.post(f"/api/networks/{trained['network_id']}/predict", json={"inputs": [image]}).get_json()
    assert rows["predictions"][0]["predicted"] == flat["prediction"]


def test_layer_spec_predictions_include_probabilities(client, layer_net):
    body = client.post(f"/api/networks/{layer_net['network_id']}/predict",
                       json={"input": [5.1, 3.5, 1.4, 0.2]}).get_json()
    probabilities = body["predictions"][0]["probabilities"]
    assert sum(probabilities) == pytest.approx(1.0)
    assert int(np.argmax(probabilities)) == body["prediction"]


def test_a_network_run_on_a_builtin_predicts_rows_as_an_algorithm_run_does(client, layer_net):
    # POST /api/runs/{id}/predict takes `rows` / `row` for every run; a network's run passes them on
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    expected = client.post(f"/api/networks/{layer_net['network_id']}/predict", json={"inputs": rows}).get_json()
    run_id = layer_net["run"]["run_id"]
    batch = client.post(f"/api/runs/{run_id}/predict", json={"rows": rows})
    assert batch.status_code == 200, batch.get_json()
    assert batch.get_json()["predictions"] == expected["predictions"]
    one = client.post(f"/api/runs/{run_id}/predict", json={"row": rows[1]}).get_json()
    assert (one["run_id"], one["prediction"]) == (run_id, expected["predictions"][1]["predicted"])


def test_successful_and_unsuccessful_examples(client, trained, tmp_path):
    data = load_dataset("digits", tmp_path)
    network_id = trained["network_id"]
    right = client.get(f"/api/networks/{network_id}/successful_example").get_json()
    wrong = client.get(f"/api/networks/{network_id}/unsuccessful_example").get_json()
    for example, is_right in [(right, True), (wrong, False)]:
        index = example["example_index"]
        assert example["network_id"] == network_id
        assert example["actual_digit"] == int(data.y_test[index])
        assert (example["predicted_digit"] == example["actual_digit"]) is is_right
        assert example["predicted_digit"] == int(np.argmax(example["network_output"]))
        assert len(example["network_output"]) == 10
        assert len(example["output_weights"]) == 30  # the output neuron's weights from the hidden layer
        pixels = decode_png(example["image_data"])
        np.testing.assert_array_equal(pixels, np.round(data.X_test[index].reshape(8, 8) * 255).astype(np.uint8))

    listed = client.get(f"/api/networks/{network_id}/examples?kind=wrong").get_json()["examples"]
    assert listed and all(e["predicted_digit"] != e["actual_digit"] for e in listed)
    chosen = listed[-1]["example_index"]
    picked = client.get(f"/api/networks/{network_id}/unsuccessful_example?index={chosen}").get_json()
    assert picked["example_index"] == chosen
    absent = client.get(f"/api/networks/{network_id}/successful_example?index={chosen}")
    assert absent.status_code == 404


def test_examples_of_an_untrained_network_are_404(client):
    network = create_network(client, dataset_id="iris", layer_sizes=[4, 3])
    for kind in ("successful_example", "unsuccessful_example"):
        response = client.get(f"/api/networks/{network['network_id']}/{kind}")
        assert response.status_code == 404
        assert set(response.get_json()) >= {"error", "message"}


def test_a_regression_network_has_no_right_or_wrong_examples_and_says_why(client):
    network = create_network(client, dataset_id="diabetes", loss="mse", layers=[
        {"type": "Linear", "out_features": 8}, {"type": "ReLU"}, {"type": "Linear", "out_features": 1}])
    network_id = network["network_id"]
    assert wait_for_run(client, start_run(client, network_id, epochs=1)["run_id"])["status"] == "completed"
    for kind in ("successful_example", "unsuccessful_example"):
        response = client.get(f"/api/networks/{network_id}/{kind}")
        assert response.status_code == 409
        body = response.get_json()
        assert body["error"] == "not_a_classifier" and "regression" in body["message"]
    assert client.get(f"/api/networks/{network_id}/examples?kind=wrong").get_json()["examples"] == []


# -- resume -------------------------------------------------------------------------------------


def test_resume_without_a_checkpoint_is_a_conflict(client):
    network = create_network(client, dataset_id="iris", layer_sizes=[4, 3])
    response = client.post(f"/api/networks/{network['network_id']}/train", json={"resume": True})
    assert response.status_code == 409
    assert "no checkpoint" in response.get_json()["message"]


# -- delete -------------------------------------------------------------------------------------


def test_delete_a_trained_network_removes_its_files_and_keeps_its_runs(shared_app, client, layer_net):
    network_id, run = layer_net["network_id"], layer_net["run"]
    folder = shared_app.extensions["livetrain"].settings.models_dir / "networks" / network_id
    assert any(folder.rglob("*.pt"))

    body = client.delete(f"/api/networks/{network_id}").get_json()
    assert body == {"network_id": network_id, "deleted_from_memory": True, "deleted_from_disk": True}
    assert not folder.exists()
    assert client.get(f"/api/networks/{network_id}").status_code == 404
    assert client.get(f"/api/networks/{network_id}/weights").status_code == 404
    assert network_id not in [n["network_id"] for n in client.get("/api/networks").get_json()["networks"]]
    assert client.get(f"/api/runs/{run['run_id']}").get_json()["status"] == "completed"  # history stays
    again = client.delete(f"/api/networks/{network_id}")
    assert again.status_code == 404 and again.get_json()["error"] == "not_found"


def test_delete_an_untrained_network(client):
    network = create_network(client, dataset_id="iris", layer_sizes=[4, 3])
    body = client.delete(f"/api/networks/{network['network_id']}").get_json()
    assert body["deleted_from_memory"] is True and body["deleted_from_disk"] is False


def test_delete_all_networks(make_app):
    app = make_app()
    client = app.test_client()
    sio = app.extensions["socketio"].test_client(app, flask_test_client=client)
    ids = [create_network(client, dataset_id="iris", layer_sizes=[4, 3])["network_id"] for _ in range(3)]
    sio.get_received()
    body = client.delete("/api/networks").get_json()
    assert body["deleted_count"] == 3
    assert sorted(body["network_ids"]) == sorted(ids)
    assert "3" in body["message"]
    assert client.get("/api/networks").get_json() == {"networks": []}
    assert sorted(e["network_id"] for e in events_named(sio.get_received(), "network_deleted")) == sorted(ids)
    assert client.delete("/api/networks").get_json()["deleted_count"] == 0
    sio.disconnect()
