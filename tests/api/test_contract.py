"""The compatibility contract with the original MNIST network server (DESIGN.md), item by item.

Its JavaScript clients and scripts must work unchanged: the endpoints, fields and status codes below,
and the Socket.IO events they listen to without subscribing to anything. With the MNIST files present
the network is the original [784, 30, 10] on MNIST; without them, the default digits network.
The `pending`, `training` and `cancelled` job statuses are checked in test_runs.py, where a run is
held in the queue and cancelled.
"""

from __future__ import annotations

import base64

import pytest

from tests.conftest import HAVE_MNIST, requires_mnist
from tests.helpers import events_named, wait_for_run

ARCHITECTURE = [784, 30, 10] if HAVE_MNIST else [64, 30, 10]
HELD_OUT = 2000 if HAVE_MNIST else 360


@pytest.fixture(scope="module")
def story(make_module_app):
    """An old client's session: create a network with no body, train it with no body, watch, then a failure."""
    app = make_module_app(warm_workers=1)
    client = app.test_client()
    socketio = app.extensions["socketio"]
    # two old clients that never subscribe to anything
    clients = [socketio.test_client(app, flask_test_client=client) for _ in range(2)]
    s = {"app": app}
    s["status_before"] = client.get("/api/status")
    s["create"] = client.post("/api/networks")
    network_id = s["create"].get_json()["network_id"]
    s["train"] = client.post(f"/api/networks/{network_id}/train")
    job_id = s["train"].get_json()["job_id"]
    s["run"] = wait_for_run(client, job_id)
    s["job"] = client.get(f"/api/training/{job_id}")
    s["status_after"] = client.get("/api/status")
    s["list"] = client.get("/api/networks")
    s["successful"] = client.get(f"/api/networks/{network_id}/successful_example")
    s["unsuccessful"] = client.get(f"/api/networks/{network_id}/unsuccessful_example")

    # a run that fails: resume from a checkpoint whose file no longer matches its recorded SHA-256
    home = app.extensions["livetrain"].settings.models_dir
    checkpoint = sorted((home / "networks" / network_id / "runs" / job_id).glob("checkpoint-*.pt"))[-1]
    data = bytearray(checkpoint.read_bytes())
    data[len(data) // 2] ^= 0xFF
    checkpoint.write_bytes(bytes(data))
    s["failing"] = client.post(f"/api/networks/{network_id}/train", json={"epochs": 1, "resume": True})
    failing_id = s["failing"].get_json()["job_id"]
    s["failed_run"] = wait_for_run(client, failing_id)
    s["failed_job"] = client.get(f"/api/training/{failing_id}")
    s["network_after_failure"] = client.get(f"/api/networks/{network_id}").get_json()

    s["received"] = [c.get_received() for c in clients]
    for c in clients:
        c.disconnect()
    s.update(network_id=network_id, job_id=job_id, failing_id=failing_id)
    return s


@pytest.fixture
def client(story):
    return story["app"].test_client()


def test_status(story):
    for response in (story["status_before"], story["status_after"]):
        assert response.status_code == 200
        body = response.get_json()
        assert body["status"] == "online"
        assert type(body["active_networks"]) is int and type(body["training_jobs"]) is int
    assert story["status_before"].get_json()["active_networks"] == 0
    assert story["status_after"].get_json()["active_networks"] == 1
    assert story["status_after"].get_json()["training_jobs"] == 0  # the finished job no longer counts


def test_create_network_with_no_body_gives_the_default(story):
    response = story["create"]
    assert response.status_code == 201
    body = response.get_json()
    assert body["architecture"] == ARCHITECTURE
    assert body["status"] == "created"
    assert isinstance(body["network_id"], str) and body["network_id"]


@requires_mnist
def test_create_network_with_the_original_layer_sizes(client):
    response = client.post("/api/networks", json={"layer_sizes": [784, 30, 10]})
    assert response.status_code == 201
    body = response.get_json()
    assert (body["architecture"], body["status"]) == ([784, 30, 10], "created")
    assert client.delete(f"/api/networks/{body['network_id']}").status_code == 200


def test_list_networks(story):
    networks = story["list"].get_json()["networks"]
    assert len(networks) == 1
    network = networks[0]
    assert network["network_id"] == story["network_id"]
    assert network["architecture"] == ARCHITECTURE
    assert network["trained"] is True
    assert network["accuracy"] == story["run"]["accuracy"]
    assert isinstance(network["status"], str)


def test_train_with_no_body_uses_the_original_defaults(story):
    response = story["train"]
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "training_started"
    assert body["network_id"] == story["network_id"]
    assert body["job_id"] == story["job_id"]
    params = story["run"]["params"]
    assert (params["epochs"], params["batch_size"], params["learning_rate"]) == (5, 10, 3.0)


def test_train_with_the_original_body(client, story):
    network_id = client.post("/api/networks").get_json()["network_id"]
    try:
        response = client.post(f"/api/networks/{network_id}/train",
                               json={"epochs": 1, "mini_batch_size": 20, "learning_rate": 0.5})
        assert response.status_code == 202
        body = response.get_json()
        assert (body["status"], body["network_id"]) == ("training_started", network_id)
        params = client.get(f"/api/runs/{body['job_id']}").get_json()["params"]
        assert (params["epochs"], params["batch_size"], params["learning_rate"]) == (1, 20, 0.5)
    finally:
        client.delete(f"/api/networks/{network_id}")  # cancels the run: its training is not the point here


def test_train_unknown_network_is_404(client):
    response = client.post("/api/networks/no-such-network/train", json={"epochs": 1})
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_job_status_of_a_completed_job(story):
    assert story["job"].status_code == 200
    body = story["job"].get_json()
    assert body["network_id"] == story["network_id"]
    assert body["status"] == "completed"
    assert body["progress"] == 100
    assert body["epochs"] == 5
    assert body["accuracy"] == story["run"]["accuracy"]
    assert "error" not in body


def test_job_status_of_a_failed_job_says_why(story):
    body = story["failed_job"].get_json()
    assert body["status"] == "failed"
    assert body["network_id"] == story["network_id"]
    assert "SHA-256" in body["error"]
    assert {"progress", "epochs", "accuracy"} <= set(body)


def test_job_status_of_unknown_job_is_404(client):
    response = client.get("/api/training/no-such-job")
    assert response.status_code == 404
    assert set(response.get_json()) >= {"error", "message"}


def test_training_update_events(story):
    for received in story["received"]:  # every connected client, none of them subscribed
        updates = [e for e in events_named(received, "training_update") if e["job_id"] == story["job_id"]]
        assert [u["epoch"] for u in updates] == [1, 2, 3, 4, 5]
        for update in updates:
            assert {"job_id", "network_id", "epoch", "total_epochs", "accuracy", "elapsed_time", "progress",
                    "correct", "total"} <= set(update)
            assert update["network_id"] == story["network_id"]
            assert update["total_epochs"] == 5
            assert update["total"] == HELD_OUT
            assert update["accuracy"] == update["correct"] / update["total"]
            assert update["progress"] == pytest.approx(100 * update["epoch"] / 5)
            assert isinstance(update["elapsed_time"], float) and update["elapsed_time"] > 0
        assert updates[-1]["accuracy"] == story["run"]["accuracy"]
        assert updates[-1]["accuracy"] > 0.8


def test_training_complete_event(story):
    for received in story["received"]:
        complete = [e for e in events_named(received, "training_complete") if e["job_id"] == story["job_id"]]
        assert len(complete) == 1
        event = complete[0]
        assert event["network_id"] == story["network_id"]
        assert event["status"] == "completed"
        assert event["progress"] == 100
        assert event["accuracy"] == story["run"]["accuracy"]


def test_training_error_event(story):
    assert story["failing"].status_code == 202
    assert story["failed_run"]["status"] == "failed"
    for received in story["received"]:
        errors = events_named(received, "training_error")
        assert [(e["job_id"], e["network_id"], e["status"]) for e in errors] == [
            (story["failing_id"], story["network_id"], "failed")]
        assert "does not match its recorded SHA-256" in errors[0]["error"]
        assert not [e for e in events_named(received, "training_complete") if e["job_id"] == story["failing_id"]]


def test_a_failed_run_leaves_the_network_as_it_was(story):
    network = story["network_after_failure"]
    assert (network["status"], network["current_version"], network["trained"]) == ("trained", 1, True)


@pytest.mark.parametrize("kind, right", [("successful_example", True), ("unsuccessful_example", False)])
def test_examples(story, kind, right):
    response = story["successful" if right else "unsuccessful"]
    assert response.status_code == 200
    body = response.get_json()
    assert {"network_id", "example_index", "predicted_digit", "actual_digit", "image_data", "output_weights",
            "network_output"} <= set(body)
    assert body["network_id"] == story["network_id"]
    assert (body["predicted_digit"] == body["actual_digit"]) is right
    assert 0 <= body["example_index"] < HELD_OUT
    assert not body["image_data"].startswith("data:")
    png = base64.b64decode(body["image_data"], validate=True)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    side = 28 if HAVE_MNIST else 8
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (side, side)
    assert len(body["network_output"]) == 10 and len(body["output_weights"]) == 30


def test_examples_404_when_none_exists(client):
    network_id = client.post("/api/networks").get_json()["network_id"]
    try:
        for kind in ("successful_example", "unsuccessful_example"):
            response = client.get(f"/api/networks/{network_id}/{kind}")
            assert response.status_code == 404
            assert set(response.get_json()) >= {"error", "message"}
        assert client.get("/api/networks/no-such-network/successful_example").status_code == 404
    finally:
        client.delete(f"/api/networks/{network_id}")


def test_delete_network(client):
    network_id = client.post("/api/networks").get_json()["network_id"]
    response = client.delete(f"/api/networks/{network_id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["network_id"] == network_id
    assert body["deleted_from_memory"] is True
    assert isinstance(body["deleted_from_disk"], bool)
    unknown = client.delete(f"/api/networks/{network_id}")
    assert unknown.status_code == 404
    assert set(unknown.get_json()) >= {"error", "message"}


def test_delete_all_networks(make_app):
    client = make_app().test_client()
    for _ in range(2):
        client.post("/api/networks", json={"dataset_id": "iris", "layer_sizes": [4, 3]})
    response = client.delete("/api/networks")
    assert response.status_code == 200
    body = response.get_json()
    assert body["deleted_count"] == 2
    assert isinstance(body["message"], str) and body["message"]
    assert client.get("/api/networks").get_json()["networks"] == []
