"""The local runner with real worker processes: a batch of runs starts on warm workers; a worker that
dies takes only its own run down."""

from __future__ import annotations

import os
import signal

import pytest

from tests.helpers import (
    create_network,
    start_run,
    wait_for_epochs,
    wait_for_run,
    wait_until,
    worker_processes,
)


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


@pytest.mark.parametrize("warm_workers, warm", [(None, 2), (1, 1)], ids=["default", "override"])
def test_a_batch_of_max_concurrent_runs_starts_on_workers_started_before_it(make_app, warm_workers, warm):
    before = worker_processes()
    app = make_app(warm_workers=warm_workers, max_concurrent_runs=2)
    client = app.test_client()
    runner = app.extensions["livetrain"].runner
    runner.warm_up()  # as `livetrain serve` does
    status = wait_until(lambda: (s := client.get("/api/status").get_json())["idle_workers"] == warm and s,
                        what=f"{warm} warm worker(s)")
    assert status["warm_workers"] == warm
    warm_pids = set(runner.pool.idle_pids())
    networks = [create_network(client, dataset_id="digits", layer_sizes=[64, 30, 10])["network_id"]
                for _ in range(2)]

    # started together and still running side by side when both have a worker
    run_ids = [start_run(client, network_id, epochs=5000)["run_id"] for network_id in networks]
    pids = [wait_for_epochs(client, run_id, 1)["worker_pid"] for run_id in run_ids]
    assert len(set(pids)) == 2
    # by default every run of the batch gets a worker started before it; with the override, `warm` of them
    assert len(set(pids) & warm_pids) == warm

    for run_id in run_ids:
        assert client.post(f"/api/runs/{run_id}/cancel").status_code == 200
        assert wait_for_run(client, run_id)["status"] == "cancelled"
    # afterwards the pool is back to `warm` idle workers and every other worker process has exited
    wait_until(lambda: runner.pool.starting == 0 and len(runner.pool.idle_pids()) == warm
               and worker_processes() - before == set(runner.pool.idle_pids()),
               timeout=30, what=f"the pool to settle at {warm} idle worker(s)")
