"""The monitor and the run log through a real server: weights_update, training_stats and run_log pushed
live, stored as pushed, caught up after a disconnect; warnings in the stats and folded in the log."""

from __future__ import annotations

from tests.e2e.helpers import wait_until

MONITOR_EVENTS = {"weights_update", "training_stats", "run_log"}
MLP = [{"type": "Linear", "out_features": 32}, {"type": "ReLU"}, {"type": "Linear", "out_features": 10}]


def _network(api, **body) -> str:
    return api.post("/api/networks", {"dataset_id": "digits", "layers": MLP, **body}, expect=201)["network_id"]


def _monitor_events(events: list[dict]) -> list[tuple[str, dict]]:
    return [(e["event"], {k: v for k, v in e.items() if k != "event"}) for e in events if e["event"] in MONITOR_EVENTS]


def test_monitor_samples_and_log_lines_are_pushed_as_stored_and_caught_up_after_a_disconnect(server, connect):
    api = server.api
    staying, leaving = connect(server), connect(server)
    run_id = api.train(_network(api), epochs=4, batch_size=16, monitor_every=5)["run_id"]

    leaving.wait_for("weights_update", run_id, where=lambda p: p["epoch"] >= 2)
    leaving.disconnect()
    seen = {p["seq"]: (name, p) for name, p in leaving.events(MONITOR_EVENTS, run_id)}
    last_seq = max(seen)

    staying.wait_for("training_complete", run_id)
    assert api.wait_for_run(run_id)["status"] == "completed"
    stored = _monitor_events(api.stored_events(run_id))
    # every event of the run was stored before training_complete; the client may still be reading
    wait_until(lambda: len(staying.events(MONITOR_EVENTS, run_id)) >= len(stored), timeout=30,
               what="every monitor event and log line to arrive")

    # what was pushed is what was stored, in seq order
    pushed = [(name, p) for name, p in staying.events(MONITOR_EVENTS, run_id)]
    assert pushed == stored
    per_epoch = -(-1437 // 16)
    samples = [p for name, p in stored if name == "weights_update"]
    assert [p["step"] for p in samples] == list(range(0, 4 * per_epoch, 5))
    assert [p["step"] for name, p in stored if name == "training_stats"] == [p["step"] for p in samples]
    assert all(1 + p["step"] // per_epoch == p["epoch"] for p in samples)
    layer = samples[-1]["layers"][0]
    assert layer["name"] == "0" and layer["params"] == 64 * 32 + 32
    assert layer["weight"]["norm"] > 0 and layer["grad"]["norm"] > 0 and 0 < layer["update_ratio"] < 1
    assert 0 <= samples[-1]["activations"][0]["dead"] <= 1

    # the client that left fetches what it missed: with what it saw, every event exactly once
    fetched = api.get(f"/api/runs/{run_id}/events", params={"after_seq": last_seq})["events"]
    assert all(e["seq"] > last_seq for e in fetched)
    assert [seen[seq] for seq in sorted(seen)] + _monitor_events(fetched) == stored

    # and the log lines, as the log endpoint returns them
    lines = api.get(f"/api/runs/{run_id}/logs")["lines"]
    assert [line["seq"] for line in lines] == [p["seq"] for name, p in stored if name == "run_log"]
    assert lines[-1]["message"].startswith("completed: accuracy ")


def test_a_run_whose_gradients_vanish_is_warned_about_and_its_log_folds_the_repeats(server, connect):
    api = server.api
    client = connect(server)
    # plain SGD at a learning rate of 50 kills every ReLU within a few steps: the gradients are zero from then on
    network = _network(api, optimizer="sgd")
    run_id = api.train(network, epochs=2, batch_size=32, learning_rate=50, momentum=0.9, monitor_every=1)["run_id"]
    client.wait_for("training_complete", run_id)
    stats = client.payloads("training_stats", run_id)
    warned = [s for s in stats if s["warnings"]]
    assert warned and {w["kind"] for s in warned for w in s["warnings"]} == {"vanishing"}
    assert {w["layer"] for w in warned[-1]["warnings"]} == {"0", "2"}
    assert client.payloads("weights_update", run_id)[-1]["activations"][0]["dead"] == 1.0

    lines = api.get(f"/api/runs/{run_id}/logs", params={"level": "warning", "fold": "true"})["lines"]
    assert len(lines) == 1, "one lasting problem, one folded line"
    assert lines[0]["message"] == "vanishing gradients in layers 0, 2: gradient norms below 1e-07"
    assert lines[0]["count"] == len(warned) and lines[0]["source"] == "monitor"
    unfolded = api.get(f"/api/runs/{run_id}/logs", params={"level": "warning"})
    assert unfolded["total"] == len(warned)
