"""Socket.IO events: subscribe/unsubscribe acks, rooms, payload fields, and catching up over REST."""

from __future__ import annotations

import csv
import io
import time

import pytest

from tests.helpers import create_network, events_named, start_run, wait_for_epochs, wait_for_run

TRAINING_EVENTS = {"training_started", "training_progress", "training_update", "training_complete",
                   "training_error", "training_cancelled"}


def emit(sio, event, data):
    return sio.emit(event, data, callback=True)


def training_events(received, run_id=None):
    return [(e["name"], e["args"][0]) for e in received
            if e["name"] in TRAINING_EVENTS and (run_id is None or e["args"][0]["run_id"] == run_id)]


# -- acks -------------------------------------------------------------------------------------


@pytest.fixture
def acks_app(make_app):
    return make_app()


def test_connect_sends_server_info(acks_app):
    sio = acks_app.extensions["socketio"].test_client(acks_app)
    info = events_named(sio.get_received(), "server_info")
    assert len(info) == 1
    assert info[0]["broadcast_events"] is True and isinstance(info[0]["ts"], float)
    sio.disconnect()


def test_a_nan_or_an_infinity_in_an_event_arrives_as_null(acks_app):
    # Python would write them as NaN and Infinity, which a browser's JSON.parse rejects
    socketio = acks_app.extensions["socketio"]
    sio = socketio.test_client(acks_app)
    socketio.emit("training_update", {"run_id": "r1", "val_loss": float("inf"), "train_loss": float("nan"),
                                      "accuracy": 0.5, "metrics": {"test": {"loss": float("-inf")}}})
    assert events_named(sio.get_received(), "training_update") == [
        {"run_id": "r1", "val_loss": None, "train_loss": None, "accuracy": 0.5, "metrics": {"test": {"loss": None}}}]
    sio.disconnect()


def test_subscribe_and_unsubscribe_acks(acks_app):
    client = acks_app.test_client()
    network_id = create_network(client, dataset_id="iris", layer_sizes=[4, 3])["network_id"]
    sio = acks_app.extensions["socketio"].test_client(acks_app, flask_test_client=client)
    assert emit(sio, "subscribe", {"network_id": network_id}) == {"ok": True, "room": f"network:{network_id}"}
    experiment_id = client.post("/api/experiments", json={"name": "exp1"}).get_json()["experiment_id"]
    assert emit(sio, "subscribe", {"experiment_id": experiment_id}) == {"ok": True,
                                                                         "room": f"experiment:{experiment_id}"}
    assert emit(sio, "subscribe", {"experiment_id": "nope"})["error"] == "not_found"
    assert emit(sio, "unsubscribe", {"network_id": network_id}) == {"ok": True, "room": f"network:{network_id}"}
    missing = emit(sio, "subscribe", {"run_id": "no-such-run"})
    assert (missing["ok"], missing["error"]) == (False, "not_found")
    assert "no-such-run" in missing["message"]
    assert emit(sio, "subscribe", {"network_id": "no-such-network"})["error"] == "not_found"
    sio.disconnect()


@pytest.mark.parametrize("event", ["subscribe", "unsubscribe"])
@pytest.mark.parametrize("data", [
    None, "run:abc", 5, [], {}, {"run_id": 5}, {"run_id": ""}, {"run_id": "x" * 65}, {"room": "run:abc"},
    {"run_id": "a", "network_id": "b"},
])
def test_bad_room_requests_are_refused_in_the_ack(acks_app, event, data):
    sio = acks_app.extensions["socketio"].test_client(acks_app)
    ack = emit(sio, event, data)
    assert ack["ok"] is False and ack["error"] == "validation_error" and ack["message"]
    assert sio.is_connected()
    sio.disconnect()


# -- rooms ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rooms(make_module_app):
    """Broadcast off, one slot: run B (network NB) trains while run A (network NA) waits in the queue.

    Clients: `run` subscribed to run A while it was queued, `network` to network NA, `quitter` to run A
    and then out again, `other` to network NB, `nothing` to nothing.
    """
    app = make_module_app(broadcast_events=False, max_concurrent_runs=1, warm_workers=1, progress_interval=0.005)
    client = app.test_client()
    socketio = app.extensions["socketio"]
    s = {"app": app}
    na = create_network(client, dataset_id="digits", layer_sizes=[64, 30, 10])["network_id"]
    nb = create_network(client, dataset_id="digits", layer_sizes=[64, 10])["network_id"]
    sockets = {name: socketio.test_client(app, flask_test_client=client)
               for name in ("run", "network", "quitter", "other", "nothing")}
    assert emit(sockets["network"], "subscribe", {"network_id": na})["ok"]
    assert emit(sockets["other"], "subscribe", {"network_id": nb})["ok"]

    # mini-batches of one make epochs long enough for several progress events each
    run_b = start_run(client, nb, epochs=2000, mini_batch_size=1)["run_id"]
    wait_for_epochs(client, run_b, 1)
    s["posted_at"] = time.time()
    run_a = start_run(client, na, epochs=3, mini_batch_size=1, learning_rate=0.5)["run_id"]
    s["queued"] = client.get(f"/api/runs/{run_a}").get_json()["status"]
    s["run_ack"] = emit(sockets["run"], "subscribe", {"run_id": run_a})
    assert emit(sockets["quitter"], "subscribe", {"run_id": run_a})["ok"]
    s["quit_ack"] = emit(sockets["quitter"], "unsubscribe", {"run_id": run_a})

    client.post(f"/api/runs/{run_b}/cancel")
    wait_for_run(client, run_b)
    s["run_a"] = wait_for_run(client, run_a)
    s["done_at"] = time.time()
    s["received"] = {name: sock.get_received() for name, sock in sockets.items()}
    for sock in sockets.values():
        sock.disconnect()
    s.update(na=na, nb=nb, a=run_a, b=run_b)
    return s


@pytest.fixture
def client(rooms):
    return rooms["app"].test_client()


def test_the_subscribed_run_was_still_queued(rooms):
    assert rooms["queued"] == "queued"
    assert rooms["run_ack"] == {"ok": True, "room": f"run:{rooms['a']}"}
    assert rooms["quit_ack"] == {"ok": True, "room": f"run:{rooms['a']}"}
    assert rooms["run_a"]["status"] == "completed"


def test_a_run_subscriber_gets_that_run_and_nothing_else(rooms):
    events = training_events(rooms["received"]["run"])
    assert events and all(payload["run_id"] == rooms["a"] for _, payload in events)
    names = [name for name, _ in events]
    assert names[0] == "training_started" and names[-1] == "training_complete"
    assert names.count("training_update") == 3
    assert "training_progress" in names


def test_a_network_subscriber_gets_the_same_events(rooms):
    assert training_events(rooms["received"]["network"]) == training_events(rooms["received"]["run"])


def test_the_other_networks_subscriber_gets_only_its_run(rooms):
    events = training_events(rooms["received"]["other"])
    assert {payload["run_id"] for _, payload in events} == {rooms["b"]}
    assert [name for name, _ in events][-1] == "training_cancelled"


@pytest.mark.parametrize("who", ["nothing", "quitter"])
def test_clients_not_subscribed_get_no_training_events(rooms, who):
    received = rooms["received"][who]
    assert training_events(received) == []
    # resource events still reach everyone
    assert {e["run_id"] for e in events_named(received, "run_created")} >= {rooms["a"]}


def test_every_payload_carries_ids_seq_and_server_time(rooms):
    events = training_events(rooms["received"]["run"])
    seqs = [payload["seq"] for _, payload in events]
    # seq 1 is the run's run_created, which every client hears (it was connected already)
    created = [p for p in events_named(rooms["received"]["run"], "run_created") if p["run_id"] == rooms["a"]]
    assert [p["seq"] for p in created] == [1]
    # seq 2 is the "queued" line of its log (run_log, docs/events.md), sent before this client subscribed
    assert seqs == sorted(set(seqs)) and seqs[0] == 3
    for _, payload in events:
        assert payload["run_id"] == payload["job_id"] == rooms["a"]
        assert payload["network_id"] == rooms["na"]
        assert isinstance(payload["ts"], float)
        assert rooms["posted_at"] <= payload["ts"] <= rooms["done_at"]
    stamps = [payload["ts"] for _, payload in events]
    assert stamps == sorted(stamps)


def test_progress_events_lie_inside_their_epoch(rooms):
    events = training_events(rooms["received"]["run"])
    progress = [p for name, p in events if name == "training_progress"]
    assert progress
    for p in progress:
        assert 1 <= p["epoch"] <= 3 and p["total_epochs"] == 3
        assert 1 <= p["batch"] < p["batches"]
        assert 100 * (p["epoch"] - 1) / 3 < p["progress"] < 100 * p["epoch"] / 3
        assert p["train_loss"] > 0
    # every progress event comes after its epoch's start and before that epoch's update
    updates = {p["epoch"]: p["seq"] for name, p in events if name == "training_update"}
    assert all(p["seq"] < updates[p["epoch"]] for p in progress)
    assert all(p["seq"] > updates[p["epoch"] - 1] for p in progress if p["epoch"] > 1)


def test_metrics_after_seq_are_exactly_the_missed_updates(rooms, client):
    updates = [p for name, p in training_events(rooms["received"]["run"]) if name == "training_update"]
    run_id = rooms["a"]
    every = client.get(f"/api/runs/{run_id}/metrics").get_json()
    assert every["metrics"] == updates  # what was stored is what was pushed
    assert every["last_seq"] == training_events(rooms["received"]["run"])[-1][1]["seq"]
    # the last line of its log comes just before its end
    assert events_named(rooms["received"]["run"], "run_log")[-1]["seq"] == every["last_seq"] - 1
    for n in [0, updates[0]["seq"] - 1, updates[0]["seq"], updates[1]["seq"] + 1, updates[-1]["seq"]]:
        missed = client.get(f"/api/runs/{run_id}/metrics?after_seq={n}").get_json()["metrics"]
        assert missed == [u for u in updates if u["seq"] > n]


def test_metrics_after_seq_as_csv(rooms, client):
    updates = [p for name, p in training_events(rooms["received"]["run"]) if name == "training_update"]
    after = updates[0]["seq"]
    text = client.get(f"/api/runs/{rooms['a']}/metrics?after_seq={after}&format=csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["seq", "epoch", "total_epochs", "train_loss", "val_loss", "accuracy", "correct",
                             "total", "elapsed_time", "eval_time", "progress", "learning_rate", "ts"]
    assert [(int(r["seq"]), int(r["epoch"]), float(r["accuracy"]), float(r["ts"])) for r in rows] == [
        (u["seq"], u["epoch"], u["accuracy"], u["ts"]) for u in updates[1:]]
