"""The local runner with real worker processes: a worker that dies takes only its own run down."""

from __future__ import annotations

import os
import signal

from tests.helpers import create_network, start_run, wait_for_epochs, wait_for_run, wait_until


def test_a_worker_killed_mid_run_fails_that_run_and_the_server_goes_on(make_app):
    app = make_app(warm_workers=1)
    client = app.test_client()
    sio = app.extensions["socketio"].test_client(app, flask_test_client=client)
    network_id = create_network(client, dataset_id="digits", layer_sizes=[64, 30, 10])["network_id"]
    run_id = start_run(client, network_id, epochs=2000)["run_id"]
    running = wait_for_epochs(client, run_id, 1)
    pid = running["worker_pid"]
    assert isinstance(pid, int) and pid != os.getpid()

    os.kill(pid, signal.SIGKILL)
    failed = wait_for_run(client, run_id)
    assert failed["status"] == "failed"
    assert "worker process died" in failed["error"] and "-9" in failed["error"]
    assert failed["finished_at"] is not None
    assert failed["has_checkpoint"] is True and failed["checkpoint_epoch"] >= 1  # what it finished is kept
    legacy = client.get(f"/api/training/{run_id}").get_json()
    assert (legacy["status"], legacy["error"]) == ("failed", failed["error"])
    errors = [e["args"][0] for e in sio.get_received() if e["name"] == "training_error"]
    assert [(e["run_id"], e["status"], e["error"]) for e in errors] == [(run_id, "failed", failed["error"])]

    # the server still answers, the slot is free and the network can train again
    status = client.get("/api/status").get_json()
    assert (status["status"], status["training_jobs"]) == ("online", 0)
    wait_until(lambda: client.get("/api/status").get_json()["running"] == 0, what="the runner to free the slot")
    network = client.get(f"/api/networks/{network_id}").get_json()
    assert network["status"] == "created" and network["active_run"] is None
    again = wait_for_run(client, start_run(client, network_id, epochs=1)["run_id"])
    assert again["status"] == "completed" and again["worker_pid"] != pid
    sio.disconnect()
