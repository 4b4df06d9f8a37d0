"""Runs over REST: queue, conflict, cancel, resume, listing, history, and what survives a restart."""

from __future__ import annotations

import csv
import io
import socket
import subprocess
import sys

import pytest

from livetrain.store import MetadataStore, Network, Run
from tests.helpers import create_network, events_named, start_run, wait_for_epochs, wait_for_run

LONG = 2000  # epochs: a run that trains until the test stops it


@pytest.fixture(scope="module")
def story(make_module_app):
    """One long run on a one-slot server: a second run queues behind it, both are cancelled, the first resumed.

    Each step's answers are kept for the tests below to check.
    """
    app = make_module_app(max_concurrent_runs=1, warm_workers=1)
    client = app.test_client()
    sio = app.extensions["socketio"].test_client(app, flask_test_client=client)
    s = {"app": app}
    s["long_net"] = create_network(client, dataset_id="digits", layer_sizes=[64, 30, 10])["network_id"]
    s["queued_net"] = create_network(client, dataset_id="iris", layer_sizes=[4, 3])["network_id"]
    s["long_start"] = start_run(client, s["long_net"], epochs=LONG)
    long_id = s["long_start"]["run_id"]
    wait_for_epochs(client, long_id, 1)

    s["again"] = client.post(f"/api/networks/{s['long_net']}/train", json={"epochs": 1})
    s["queued_start"] = start_run(client, s["queued_net"], epochs=1)
    queued_id = s["queued_start"]["run_id"]
    s["queued_run"] = client.get(f"/api/runs/{queued_id}").get_json()
    s["legacy_training"] = client.get(f"/api/training/{long_id}").get_json()
    s["legacy_pending"] = client.get(f"/api/training/{queued_id}").get_json()
    s["status_busy"] = client.get("/api/status").get_json()
    s["network_busy"] = client.get(f"/api/networks/{s['long_net']}").get_json()
    s["running_list"] = client.get("/api/runs?status=running").get_json()

    s["cancel_queued"] = client.post(f"/api/runs/{queued_id}/cancel").get_json()
    s["queued_final"] = wait_for_run(client, queued_id)
    s["cancel_long"] = client.post(f"/api/runs/{long_id}/cancel")
    s["long_final"] = wait_for_run(client, long_id)
    s["cancel_again"] = client.post(f"/api/runs/{long_id}/cancel")
    s["legacy_cancelled"] = client.get(f"/api/training/{long_id}").get_json()
    s["network_after_cancel"] = client.get(f"/api/networks/{s['long_net']}").get_json()
    s["status_idle"] = client.get("/api/status").get_json()

    s["resume_start"] = client.post(f"/api/runs/{long_id}/resume", json={"epochs": 2})
    s["resumed"] = wait_for_run(client, s["resume_start"].get_json()["run_id"])
    # and once more, the way the original clients ask: train the network with "resume": true
    s["continue_start"] = start_run(client, s["long_net"], epochs=1, resume=True)
    s["continued"] = wait_for_run(client, s["continue_start"]["run_id"])
    s["received"] = sio.get_received()
    sio.disconnect()
    return s


@pytest.fixture
def client(story):
    return story["app"].test_client()


def test_start_answers_at_once_with_a_queued_run(story):
    body = story["long_start"]
    assert body["status"] == "training_started"
    assert body["job_id"] == body["run_id"] == body["run"]["run_id"]
    assert body["network_id"] == story["long_net"]
    assert body["run"]["status"] in ("queued", "running")
    run = body["run"]
    assert (run["total_epochs"], run["params"]["batch_size"], run["params"]["learning_rate"]) == (LONG, 10, 3.0)


def test_a_network_trains_one_run_at_a_time(story):
    response = story["again"]
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "conflict"
    assert story["long_start"]["run_id"] in body["message"]
    assert body["detail"]["run_id"] == story["long_start"]["run_id"]


def test_beyond_the_concurrency_limit_runs_wait_in_the_queue(story):
    assert story["queued_run"]["status"] == "queued"
    assert story["legacy_pending"]["status"] == "pending"
    assert story["legacy_training"]["status"] == "training"
    busy = story["status_busy"]
    assert (busy["training_jobs"], busy["running"], busy["queued"]) == (2, 1, 1)
    assert [r["run_id"] for r in story["running_list"]["runs"]] == [story["long_start"]["run_id"]]


def test_a_training_network_shows_its_active_run(story):
    network = story["network_busy"]
    assert network["status"] == "training"
    assert network["active_run"]["run_id"] == story["long_start"]["run_id"]
    assert network["active_run"]["status"] == "running"


def test_cancelling_a_queued_run_ends_it_without_training(story):
    final = story["queued_final"]
    assert story["cancel_queued"]["run_id"] == final["run_id"]
    assert final["status"] == "cancelled"
    assert (final["epochs_done"], final["started_at"], final["has_checkpoint"]) == (0, None, False)
    assert final["finished_at"] is not None


def test_cancelling_a_running_run_keeps_its_last_whole_epoch(story):
    assert story["cancel_long"].status_code == 200
    final = story["long_final"]
    assert final["status"] == "cancelled"
    assert 1 <= final["epochs_done"] < LONG
    assert final["has_checkpoint"] is True and final["checkpoint_epoch"] == final["epochs_done"]
    assert final["version"] is None  # only completed runs make versions
    assert story["legacy_cancelled"]["status"] == "cancelled"
    cancelled = [e for e in events_named(story["received"], "training_cancelled") if e["run_id"] == final["run_id"]]
    assert len(cancelled) == 1
    assert cancelled[0]["epochs_done"] == cancelled[0]["checkpoint_epoch"] == final["epochs_done"]


def test_after_cancelling_the_network_is_free_again(story):
    network = story["network_after_cancel"]
    assert network["status"] == "created" and network["trained"] is False
    assert network["active_run"] is None
    assert story["status_idle"]["training_jobs"] == 0


def test_an_ended_run_cannot_be_cancelled(story):
    response = story["cancel_again"]
    assert response.status_code == 409
    assert "already ended (cancelled)" in response.get_json()["message"]


def test_resuming_a_cancelled_run_continues_its_epochs(story, client):
    assert story["resume_start"].status_code == 202
    source, resumed = story["long_final"], story["resumed"]
    done = source["checkpoint_epoch"]
    assert resumed["status"] == "completed"
    assert resumed["resumed_from"] == source["run_id"]
    assert (resumed["start_epoch"], resumed["total_epochs"], resumed["epochs_done"]) == (done, done + 2, done + 2)
    assert resumed["params"]["batch_size"] == 10 and resumed["params"]["learning_rate"] == 3.0
    metrics = client.get(f"/api/runs/{resumed['run_id']}/metrics").get_json()["metrics"]
    assert [m["epoch"] for m in metrics] == [done + 1, done + 2]
    # the resumed run starts from trained weights: its first epoch is already good
    assert metrics[0]["accuracy"] > 0.8


def test_train_with_resume_continues_from_the_networks_latest_checkpoint(story, client):
    resumed, started = story["resumed"], story["continue_start"]
    end = resumed["total_epochs"]
    assert started["run"]["resumed_from"] == resumed["run_id"]
    assert (started["run"]["start_epoch"], started["run"]["total_epochs"]) == (end, end + 1)
    continued = story["continued"]
    assert (continued["status"], continued["epochs_done"], continued["version"]) == ("completed", end + 1, 2)
    metrics = client.get(f"/api/runs/{continued['run_id']}/metrics").get_json()["metrics"]
    assert [(m["epoch"], m["total_epochs"], m["progress"]) for m in metrics] == [(end + 1, end + 1, 100.0)]
    legacy = client.get(f"/api/training/{continued['run_id']}").get_json()
    assert (legacy["epochs"], legacy["epochs_done"], legacy["progress"]) == (1, 1, 100.0)

    versions = client.get(f"/api/networks/{story['long_net']}/versions").get_json()["versions"]
    assert [(v["version"], v["run_id"], v["metrics"]["epochs"]) for v in versions] == [
        (1, resumed["run_id"], end), (2, continued["run_id"], end + 1)]
    network = client.get(f"/api/networks/{story['long_net']}").get_json()
    assert (network["current_version"], network["accuracy"]) == (2, continued["accuracy"])


def test_runs_are_listed_newest_first_filtered_and_paged(story, client):
    ids = [story["long_start"]["run_id"], story["queued_start"]["run_id"], story["resumed"]["run_id"],
           story["continued"]["run_id"]]
    listing = client.get("/api/runs").get_json()
    assert [r["run_id"] for r in listing["runs"]] == ids[::-1]
    assert (listing["total"], listing["limit"], listing["offset"]) == (4, 50, 0)
    by_network = client.get(f"/api/runs?network_id={story['long_net']}").get_json()
    assert [r["run_id"] for r in by_network["runs"]] == [ids[3], ids[2], ids[0]]
    cancelled = client.get("/api/runs?status=cancelled").get_json()
    assert sorted(r["run_id"] for r in cancelled["runs"]) == sorted(ids[:2]) and cancelled["total"] == 2
    page = client.get("/api/runs?limit=1&offset=2").get_json()
    assert [r["run_id"] for r in page["runs"]] == [ids[1]] and page["total"] == 4


def test_unknown_runs_are_404(client):
    for path in ("/api/runs/nope", "/api/runs/nope/metrics", "/api/runs/nope/metrics.csv", "/api/runs/nope/events",
                 "/api/training/nope"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["error"] == "not_found"
    for path in ("/api/runs/nope/cancel", "/api/runs/nope/resume"):
        assert client.post(path, json={}).status_code == 404


def test_event_history_of_a_run(story, client):
    run_id = story["resumed"]["run_id"]
    events = client.get(f"/api/runs/{run_id}/events").get_json()["events"]
    # the run's log lines (run_log) are stored events too, between the others
    lifecycle = [e for e in events if e["event"] != "run_log"]
    assert [e["event"] for e in lifecycle] == ["run_created", "training_started", "training_update",
                                               "training_update", "training_complete"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["run_id"] == run_id for e in events)
    assert events[0]["resumed_from"] == story["resumed"]["resumed_from"] == story["long_final"]["run_id"]
    later = client.get(f"/api/runs/{run_id}/events?after_seq={lifecycle[-2]['seq']}").get_json()["events"]
    assert [e["event"] for e in later if e["event"] != "run_log"] == ["training_complete"]


def test_metric_history_as_csv_matches_the_json(story, client):
    run_id = story["resumed"]["run_id"]
    metrics = client.get(f"/api/runs/{run_id}/metrics").get_json()["metrics"]
    response = client.get(f"/api/runs/{run_id}/metrics.csv")
    assert response.mimetype == "text/csv"
    assert f"run-{run_id}-metrics.csv" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [int(r["epoch"]) for r in rows] == [m["epoch"] for m in metrics]
    assert [float(r["accuracy"]) for r in rows] == [m["accuracy"] for m in metrics]
    assert [int(r["correct"]) for r in rows] == [m["correct"] for m in metrics]
    same = client.get(f"/api/runs/{run_id}/metrics?format=csv")
    assert same.get_data(as_text=True) == response.get_data(as_text=True)


# -- restarts ---------------------------------------------------------------------------------


def test_a_run_going_when_the_server_stops_is_interrupted_and_can_be_resumed(make_app, tmp_path):
    home = tmp_path / "home"
    app = make_app(home=home)
    client = app.test_client()
    network_id = create_network(client, dataset_id="iris", layer_sizes=[4, 8, 3])["network_id"]
    run_id = start_run(client, network_id, epochs=LONG, mini_batch_size=4)["run_id"]
    wait_for_epochs(client, run_id, 1)
    container = app.extensions["livetrain"]
    # `livetrain serve` interrupts the runs first, while it still delivers events, then closes
    assert container.interrupt_runs() == [run_id]
    container.close()

    restarted = make_app(home=home).test_client()
    run = restarted.get(f"/api/runs/{run_id}").get_json()
    assert run["status"] == "interrupted"
    assert "server stopped" in run["error"]
    assert run["has_checkpoint"] is True and run["checkpoint_epoch"] >= 1
    assert restarted.get(f"/api/training/{run_id}").get_json()["status"] == "failed"
    assert restarted.get(f"/api/networks/{network_id}").get_json()["status"] == "created"
    events = restarted.get(f"/api/runs/{run_id}/events").get_json()["events"]
    assert events[-1]["event"] == "training_interrupted"
    # the last line of its log, just before
    assert events[-2]["event"] == "run_log" and events[-2]["message"].startswith("interrupted: the server stopped")
    assert [e["event"] for e in events].count("training_interrupted") == 1  # close() did not repeat it
    assert events[-1]["checkpoint_epoch"] == run["checkpoint_epoch"]

    started = restarted.post(f"/api/runs/{run_id}/resume", json={"epochs": 1}).get_json()
    resumed = wait_for_run(restarted, started["run_id"])
    assert resumed["status"] == "completed"
    assert resumed["start_epoch"] == run["checkpoint_epoch"]
    assert resumed["epochs_done"] == run["checkpoint_epoch"] + 1


def test_start_up_marks_runs_whose_server_is_gone_interrupted(make_app, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    store = MetadataStore(f"sqlite:///{home / 'livetrain.db'}")
    store.create_schema()
    store.create_network(Network(id="net", name="n", kind="layer_sizes", spec={"kind": "layer_sizes",
                         "layer_sizes": [4, 3]}, dataset_id="iris", parameter_count=15, status="training"))
    owners = {
        "dead-here": f"{host}:{int(dead.stdout)}:0000dead",  # a process on this machine that has exited
        "alive-elsewhere": "another-machine:1:0000beef",  # a server elsewhere that still beats
        "silent-elsewhere": "another-machine:2:00000000",  # a server elsewhere that stopped beating
    }
    for run_id, owner in owners.items():
        store.create_run(Run(id=run_id, network_id="net" if run_id == "dead-here" else None, dataset_id="iris",
                             status="running", owner=owner))
    store.register_server(owners["alive-elsewhere"])
    store.close()

    client = make_app(home=home).test_client()
    status = {run_id: client.get(f"/api/runs/{run_id}").get_json()["status"] for run_id in owners}
    assert status == {"dead-here": "interrupted", "alive-elsewhere": "running", "silent-elsewhere": "interrupted"}
    assert client.get("/api/networks/net").get_json()["status"] == "created"


def test_prometheus_counts_runs_and_epochs(story, client):
    text = client.get("/metrics").get_data(as_text=True)
    epochs = story["long_final"]["epochs_done"] + 2 + 1  # the cancelled run's, then the resumed and continued runs'
    assert f"livetrain_epochs_total {float(epochs)}" in text
    assert 'livetrain_run_transitions_total{status="queued"} 4.0' in text
    assert 'livetrain_run_transitions_total{status="completed"} 2.0' in text
    assert 'livetrain_run_transitions_total{status="cancelled"} 2.0' in text
    assert "livetrain_active_runs 0.0" in text
