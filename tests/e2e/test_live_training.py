"""Watching a run live: every epoch pushed in order while the server keeps answering; reconnecting loses nothing."""

from __future__ import annotations

import math
import time

import pytest

from tests.e2e.helpers import TRAINING_EVENTS, wait_until


def test_epochs_arrive_live_in_order_while_status_keeps_answering(server, connect):
    api = server.api
    client = connect(server)
    network = api.create_network()
    job = api.train(network["network_id"], epochs=3)
    run_id = job["job_id"]
    assert job["run_id"] == run_id and job["status"] == "training_started"

    statuses = []  # every /api/status answer while the run is on
    deadline = time.monotonic() + 90  # a guard against hanging, not a speed requirement
    while not client.events({"training_complete", "training_error"}, run_id):
        assert time.monotonic() < deadline, "the run did not end"
        statuses.append(api.get("/api/status"))
        time.sleep(0.05)
    assert all(s["status"] == "online" for s in statuses)
    assert any(s["training_jobs"] >= 1 for s in statuses), "no status answer came while the run was going"

    events = client.events(TRAINING_EVENTS, run_id)
    milestones = [(name, p.get("epoch")) for name, p in events if name != "training_progress"]
    assert milestones == [("training_started", None), ("training_update", 1), ("training_update", 2),
                          ("training_update", 3), ("training_complete", None)]
    seqs = [p["seq"] for _, p in events]
    assert all(a < b for a, b in zip(seqs, seqs[1:])), f"seq not strictly increasing: {seqs}"
    for _, payload in events:
        assert payload["job_id"] == run_id and payload["network_id"] == network["network_id"]
        assert isinstance(payload["ts"], float)

    started = client.payloads("training_started", run_id)[0]
    updates = client.payloads("training_update", run_id)
    for update in updates:
        assert update["total_epochs"] == 3
        assert update["total"] == started["n_test"] > 0
        assert 0 <= update["correct"] <= update["total"]
        assert math.isclose(update["accuracy"], update["correct"] / update["total"])
        assert update["elapsed_time"] > 0
    progress = [u["progress"] for u in updates]
    assert all(a < b for a, b in zip(progress, progress[1:])) and progress[-1] == 100
    complete = client.payloads("training_complete", run_id)[0]
    assert complete["status"] == "completed" and complete["progress"] == 100
    assert complete["accuracy"] == updates[-1]["accuracy"]

    # what the server stored is what it pushed
    stored = api.get(f"/api/runs/{run_id}/metrics")["metrics"]
    assert [(m["seq"], m["epoch"], m["accuracy"]) for m in stored] == [
        (u["seq"], u["epoch"], u["accuracy"]) for u in updates]
    legacy = api.get(f"/api/training/{run_id}")
    assert legacy["status"] == "completed" and legacy["progress"] == 100 and legacy["epochs"] == 3
    assert legacy["accuracy"] == complete["accuracy"]


def test_a_client_that_reconnects_gets_every_epoch_exactly_once(server, connect):
    api = server.api
    epochs = 40
    network = api.create_network()
    first = connect(server)
    run_id = api.train(network["network_id"], epochs=epochs)["job_id"]

    first.wait_for("training_update", run_id, where=lambda p: p["epoch"] >= 2)
    first.disconnect()
    seen = first.events(TRAINING_EVENTS, run_id)
    last_seq = max(p["seq"] for _, p in seen)
    last_epoch = max(p["epoch"] for name, p in seen if name == "training_update")
    # the run goes on without the client; reconnect once it has missed some epochs
    wait_until(lambda: api.run(run_id)["epochs_done"] >= min(epochs, last_epoch + 2), timeout=90,
               what="the run to train on while the client is away")

    second = connect(server)
    fetched = api.get(f"/api/runs/{run_id}/metrics", params={"after_seq": last_seq})
    second.wait_for("training_complete", run_id)
    assert api.run(run_id)["status"] == "completed"

    by_seq: dict[int, dict] = {}
    for payload in ([p for n, p in seen if n == "training_update"] + fetched["metrics"]
                    + second.payloads("training_update", run_id)):
        if payload["seq"] in by_seq:  # seen live and fetched: the same event, not a second one
            assert by_seq[payload["seq"]]["epoch"] == payload["epoch"]
            assert by_seq[payload["seq"]]["accuracy"] == payload["accuracy"]
        by_seq[payload["seq"]] = payload
    assert all(m["seq"] > last_seq for m in fetched["metrics"])
    assert fetched["metrics"], "the client missed no epoch, so reconnecting was not exercised"
    assert [by_seq[s]["epoch"] for s in sorted(by_seq)] == list(range(1, epochs + 1))


@pytest.mark.parametrize("async_mode", ["gevent", "threading"])
def test_the_same_server_runs_under_other_async_modes(start_server, connect, async_mode):
    server = start_server(env={"LIVETRAIN_ASYNC_MODE": async_mode})
    api = server.api
    assert api.get("/api/status")["async_mode"] == async_mode
    client = connect(server)
    network = api.create_network()
    run_id = api.train(network["network_id"], epochs=2)["job_id"]
    client.wait_for("training_complete", run_id)
    milestones = [(name, p.get("epoch")) for name, p in client.events(TRAINING_EVENTS, run_id)
                  if name != "training_progress"]
    assert milestones == [("training_started", None), ("training_update", 1), ("training_update", 2),
                          ("training_complete", None)]
    assert api.get(f"/api/training/{run_id}")["status"] == "completed"
