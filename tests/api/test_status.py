"""GET /api/status."""

from tests.helpers import wait_for_run


def test_status_reports_online_with_counts(client):
    body = client.get("/api/status").get_json()
    assert body["status"] == "online"
    assert body["active_networks"] == 0
    assert body["training_jobs"] == 0


def test_status_counts_networks_and_only_active_runs(client):
    created = client.post("/api/networks", json={"dataset_id": "iris", "layer_sizes": [4, 5, 3]}).get_json()
    assert client.get("/api/status").get_json()["active_networks"] == 1
    started = client.post(f"/api/networks/{created['network_id']}/train", json={"epochs": 1}).get_json()
    wait_for_run(client, started["run_id"])
    assert client.get("/api/status").get_json()["training_jobs"] == 0
