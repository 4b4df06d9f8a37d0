"""Cancelling a long run keeps its last whole epoch; resuming counts on from there."""

from __future__ import annotations

from tests.e2e.helpers import LONG_EPOCHS


def test_cancel_keeps_the_last_epoch_and_resume_continues_from_it(server, connect):
    api = server.api
    client = connect(server)
    network_id = api.create_network()["network_id"]
    run_id = api.train(network_id, epochs=LONG_EPOCHS)["job_id"]
    client.wait_for("training_update", run_id, where=lambda p: p["epoch"] >= 2)

    answer = api.post(f"/api/runs/{run_id}/cancel")
    assert answer["run_id"] == run_id
    run = api.wait_for_run(run_id, timeout=60)
    assert run["status"] == "cancelled"
    assert 2 <= run["epochs_done"] < LONG_EPOCHS
    assert run["has_checkpoint"] is True and run["checkpoint_epoch"] == run["epochs_done"]
    cancelled = client.wait_for("training_cancelled", run_id)
    assert cancelled["status"] == "cancelled" and cancelled["checkpoint_epoch"] == run["checkpoint_epoch"]
    assert api.get(f"/api/training/{run_id}")["status"] == "cancelled"
    epochs = [m["epoch"] for m in api.get(f"/api/runs/{run_id}/metrics")["metrics"]]
    assert epochs == list(range(1, run["epochs_done"] + 1))
    assert api.get(f"/api/networks/{network_id}")["status"] != "training"

    kept = run["checkpoint_epoch"]
    resumed = api.train(network_id, resume=True, epochs=2)
    new_id = resumed["job_id"]
    client.wait_for("training_complete", new_id)
    new_run = api.wait_for_run(new_id)
    assert new_run["status"] == "completed" and new_run["resumed_from"] == run_id
    assert client.payloads("training_started", new_id)[0]["start_epoch"] == kept
    assert [u["epoch"] for u in client.payloads("training_update", new_id)] == [kept + 1, kept + 2]
    legacy = api.get(f"/api/training/{new_id}")
    assert legacy["status"] == "completed" and legacy["epochs"] == 2 and legacy["progress"] == 100
