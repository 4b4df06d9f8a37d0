"""The original MNIST server's browser client, replayed against the real eventlet server."""

from __future__ import annotations

import base64

from tests.conftest import HAVE_MNIST
from tests.e2e.helpers import wait_until

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ORIGIN = {"Origin": "http://localhost:3000"}  # the page is served from elsewhere, as that client's was
LEGACY_UPDATE = {"job_id", "network_id", "epoch", "total_epochs", "accuracy", "elapsed_time", "progress",
                 "correct", "total"}


def test_the_original_javascript_client_flow_works_unchanged(server, connect):
    api = server.api
    client = connect(server)  # the page connects at load and listens without subscribing

    response = api.request("POST", "/api/networks", json={}, headers=ORIGIN)
    assert response.status_code == 201
    assert response.headers.get("Access-Control-Allow-Origin") in ("*", ORIGIN["Origin"])
    created = response.json()
    network_id = created["network_id"]
    assert created["status"] == "created"
    assert created["architecture"] == ([784, 30, 10] if HAVE_MNIST else [64, 30, 10])
    listed = {n["network_id"]: n for n in api.get("/api/networks", headers=ORIGIN)["networks"]}
    assert listed[network_id]["trained"] is False and listed[network_id]["accuracy"] is None

    started = api.post(f"/api/networks/{network_id}/train",
                       {"epochs": 3, "mini_batch_size": 10, "learning_rate": 3.0}, expect=202, headers=ORIGIN)
    assert started["network_id"] == network_id and started["status"] == "training_started"
    job_id = started["job_id"]

    seen = set()

    def poll():
        body = api.get(f"/api/training/{job_id}", headers=ORIGIN)
        seen.add(body["status"])
        return body if body["status"] in ("completed", "failed", "cancelled") else None

    job = wait_until(poll, timeout=90, what=f"job {job_id} to finish", interval=0.2)
    assert seen <= {"pending", "training", "completed"}
    assert job["status"] == "completed" and job["network_id"] == network_id
    assert job["progress"] == 100 and job["epochs"] == 3
    assert 0.5 < job["accuracy"] <= 1.0

    updates = client.payloads("training_update", job_id)
    assert [u["epoch"] for u in updates] == [1, 2, 3]
    assert all(LEGACY_UPDATE <= set(u) for u in updates)
    complete = client.wait_for("training_complete", job_id)
    assert complete["status"] == "completed" and complete["progress"] == 100
    assert complete["accuracy"] == job["accuracy"] == updates[-1]["accuracy"]

    listed = {n["network_id"]: n for n in api.get("/api/networks")["networks"]}
    assert listed[network_id]["trained"] is True and listed[network_id]["accuracy"] == job["accuracy"]

    for kind, right in (("successful_example", True), ("unsuccessful_example", False)):
        example = api.get(f"/api/networks/{network_id}/{kind}", headers=ORIGIN)
        assert example["network_id"] == network_id
        assert (example["predicted_digit"] == example["actual_digit"]) is right
        assert not example["image_data"].startswith("data:")
        assert base64.b64decode(example["image_data"], validate=True).startswith(PNG_SIGNATURE)
        assert len(example["network_output"]) == 10
        assert max(range(10), key=example["network_output"].__getitem__) == example["predicted_digit"]
        assert len(example["output_weights"]) == 30
        assert isinstance(example["example_index"], int)

    deleted = api.delete(f"/api/networks/{network_id}", headers=ORIGIN)
    assert deleted["network_id"] == network_id and deleted["deleted_from_memory"] is True
    assert api.request("GET", f"/api/networks/{network_id}/successful_example").status_code == 404
    assert network_id not in {n["network_id"] for n in api.get("/api/networks")["networks"]}
