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


def test_the_local_runner_is_one_worker_with_its_concurrency_and_current_runs(client):
    listed = client.get("/api/workers").get_json()
    assert listed["runner"] == "local"
    [worker] = listed["workers"]
    assert (worker["kind"], worker["device"], worker["runs"]) == ("local", "cpu", [])
    status = client.get("/api/status").get_json()
    assert (status["workers"], status["worker_slots"]) == (1, worker["concurrency"])
    assert (status["server_nodes"], status["message_queue"]) == (1, False)


def test_a_run_trained_here_says_where_it_ran(client):
    created = client.post("/api/networks", json={"dataset_id": "iris", "layer_sizes": [4, 5, 3]}).get_json()
    started = client.post(f"/api/networks/{created['network_id']}/train", json={"epochs": 1}).get_json()
    run = wait_for_run(client, started["run_id"])
    [worker] = client.get("/api/workers").get_json()["workers"]
    assert (run["status"], run["device"], run["worker"], run["queue"]) == ("completed", "cpu", worker["name"], None)


def test_the_local_runner_refuses_a_queue_of_celery_workers_and_changes_nothing(client):
    created = client.post("/api/networks", json={"dataset_id": "iris", "layer_sizes": [4, 5, 3]}).get_json()
    for queue, words in (("gpu", "--runner celery"), ("not a name!", "letters, digits")):
        refused = client.post(f"/api/networks/{created['network_id']}/train", json={"epochs": 1, "queue": queue})
        assert refused.status_code == 400 and words in refused.get_json()["message"]
        assert refused.get_json()["error"] == "validation_error"
    assert client.get("/api/runs").get_json()["runs"] == []
    ok = client.post(f"/api/networks/{created['network_id']}/train", json={"epochs": 1, "queue": "default"})
    assert ok.status_code == 202
