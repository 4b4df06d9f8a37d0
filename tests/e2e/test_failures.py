"""When processes die: a killed worker fails its run only; a killed server leaves resumable runs."""

from __future__ import annotations

import os
import signal

from tests.e2e.helpers import LONG_EPOCHS, parent_pid, wait_until


def test_a_killed_worker_fails_its_run_and_the_server_keeps_serving(server, connect):
    api = server.api
    client = connect(server)
    network_id = api.create_network()["network_id"]
    run_id = api.train(network_id, epochs=LONG_EPOCHS)["job_id"]
    run = api.wait_for_run(run_id, statuses={"running", "completed", "failed", "cancelled"})
    assert run["status"] == "running"
    pid = run["worker_pid"]
    assert isinstance(pid, int)
    # the run trains in a worker process of this server, not in the server (and we only kill our own):
    # forked from the server's worker template, which the server started
    assert parent_pid(pid) != server.pid and parent_pid(parent_pid(pid)) == server.pid

    os.kill(pid, signal.SIGKILL)
    run = api.wait_for_run(run_id, timeout=60)
    assert run["status"] == "failed"
    assert "worker" in run["error"]
    error = client.wait_for("training_error", run_id)
    assert error["status"] == "failed" and error["error"] == run["error"]
    legacy = api.get(f"/api/training/{run_id}")
    assert legacy["status"] == "failed" and legacy["error"] == run["error"]
    assert api.get(f"/api/networks/{network_id}")["status"] != "training"

    other = api.create_network()["network_id"]
    next_id = api.train(other, epochs=2)["job_id"]
    assert client.wait_for("training_complete", next_id)["status"] == "completed"
    assert api.wait_for_run(next_id)["status"] == "completed"
    assert api.get("/api/status")["status"] == "online"


def test_a_run_survives_a_killed_server_as_interrupted_and_resumes(start_server, connect):
    first = start_server()
    network_id = first.api.create_network()["network_id"]
    run_id = first.api.train(network_id, epochs=LONG_EPOCHS)["job_id"]
    wait_until(lambda: first.api.run(run_id)["checkpoint_epoch"], timeout=90,
               what="the first epoch's checkpoint")

    first.kill()  # kill -9 the server and its workers: no shutdown code runs
    second = start_server(home=first.home)
    api = second.api
    network = api.get(f"/api/networks/{network_id}")
    assert network["network_id"] == network_id and network["status"] != "training"
    run = api.run(run_id)
    assert run["status"] == "interrupted"
    assert run["has_checkpoint"] is True
    kept = run["checkpoint_epoch"]
    assert 1 <= kept == run["epochs_done"] < LONG_EPOCHS
    assert [m["epoch"] for m in api.get(f"/api/runs/{run_id}/metrics")["metrics"]] == list(range(1, kept + 1))

    client = connect(second)
    new_id = api.train(network_id, resume=True, epochs=2)["job_id"]
    client.wait_for("training_complete", new_id)
    new_run = api.wait_for_run(new_id)
    assert new_run["status"] == "completed" and new_run["resumed_from"] == run_id
    assert [u["epoch"] for u in client.payloads("training_update", new_id)] == [kept + 1, kept + 2]
