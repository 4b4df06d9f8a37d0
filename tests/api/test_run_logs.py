"""A run's structured log over REST: lifecycle lines written as it lives, filtering by level, source and text,
folding repeats; and its monitor samples among its stored events."""

from __future__ import annotations

import pytest

from livetrain.services import run_logs
from tests.helpers import create_network, start_run, wait_for_run

MLP = [{"type": "Linear", "out_features": 16}, {"type": "ReLU"}, {"type": "Linear", "out_features": 10}]


@pytest.fixture(scope="module")
def trained(make_module_app):
    """A layer-spec network trained 2 epochs on digits, monitored every 10 steps; then lines written to its log
    the way the monitor writes them: 120 repeats of one warning, a debug line, the warning again."""
    app = make_module_app()
    client = app.test_client()
    network = create_network(client, dataset_id="digits", layers=MLP)["network_id"]
    run_id = start_run(client, network, epochs=2, batch_size=64, monitor_every=10)["run_id"]
    run = wait_for_run(client, run_id)
    assert run["status"] == "completed", run
    lifecycle = client.get(f"/api/runs/{run_id}/logs").get_json()["lines"]
    reporter = app.extensions["livetrain"].runs.reporter
    stored = app.extensions["livetrain"].store.get_run(run_id)
    warning = "exploding gradients: the global gradient norm is above 1000"
    for _ in range(120):
        reporter.log(stored, "warning", warning, "monitor", {"value": 1500.0})
    reporter.log(stored, "debug", "checkpoint written", "worker")
    reporter.log(stored, "warning", warning, "monitor")
    return {"client": client, "run_id": run_id, "run": run, "lifecycle": lifecycle, "warning": warning}


def test_a_run_logs_its_life_in_order(trained):
    lines = trained["lifecycle"]
    messages = [line["message"] for line in lines]
    assert messages[0] == "queued: 2 epochs"
    assert messages[1].startswith("started on ") and "on 1,437 training rows" in messages[1]
    assert [m for m in messages if m.startswith("epoch ")][0].startswith("epoch 1/2: loss ")
    assert len([m for m in messages if m.startswith("epoch ")]) == 2
    assert messages[-1] == f"completed: accuracy {trained['run']['accuracy']:.1%}, version 1"
    assert {line["level"] for line in lines} == {"debug", "info"}
    assert {line["source"] for line in lines} == {"server", "worker", "trainer", "monitor"}
    assert [line["seq"] for line in lines] == sorted(line["seq"] for line in lines)
    assert all(line["time"] <= line["ts"] for line in lines)


def test_level_keeps_lines_at_or_above_it(trained):
    client, run_id = trained["client"], trained["run_id"]
    warnings = client.get(f"/api/runs/{run_id}/logs?level=warning").get_json()
    assert warnings["total"] == 121 and {line["level"] for line in warnings["lines"]} == {"warning"}
    info = client.get(f"/api/runs/{run_id}/logs?level=info").get_json()["lines"]
    assert "debug" not in {line["level"] for line in info} and len(info) == 121 + len(
        [line for line in trained["lifecycle"] if line["level"] == "info"])
    assert client.get(f"/api/runs/{run_id}/logs?level=error").get_json()["lines"] == []


def test_q_matches_any_case_and_source_narrows(trained):
    client, run_id = trained["client"], trained["run_id"]
    epochs = client.get(f"/api/runs/{run_id}/logs?q=EPOCH 2/2").get_json()["lines"]
    assert [line["message"][:9] for line in epochs] == ["epoch 2/2"]
    monitor = client.get(f"/api/runs/{run_id}/logs?source=monitor&level=info").get_json()["lines"]
    assert len(monitor) == 121 and {line["source"] for line in monitor} == {"monitor"}


def test_fold_turns_repeats_into_one_line_with_a_count(trained):
    client, run_id = trained["client"], trained["run_id"]
    every = client.get(f"/api/runs/{run_id}/logs?fold=true").get_json()["lines"]
    assert [(line["message"], line["count"]) for line in every[-3:]] == [
        (trained["warning"], 120), ("checkpoint written", 1), (trained["warning"], 1)]
    folded = every[-3]
    assert folded["last_seq"] == folded["seq"] + 119 and folded["last_time"] >= folded["time"]
    assert folded["data"] == {"value": 1500.0}
    # with the debug line filtered out, the two runs of the warning are consecutive: one line
    warnings = client.get(f"/api/runs/{run_id}/logs?level=warning&fold=true").get_json()
    assert [(line["message"], line["count"]) for line in warnings["lines"]] == [(trained["warning"], 121)]
    # without fold, every line is there (and has no count)
    assert "count" not in client.get(f"/api/runs/{run_id}/logs?level=warning&limit=1").get_json()["lines"][0]


def test_limit_and_after_seq_page_through_the_lines(trained):
    client, run_id = trained["client"], trained["run_id"]
    last_two = client.get(f"/api/runs/{run_id}/logs?limit=2").get_json()
    assert last_two["total"] > 2 and [line["message"] for line in last_two["lines"]] == [
        "checkpoint written", trained["warning"]]
    after = client.get(f"/api/runs/{run_id}/logs?after_seq={last_two['lines'][0]['seq']}").get_json()["lines"]
    assert [line["message"] for line in after] == [trained["warning"]]


@pytest.mark.parametrize("query", ["level=loud", "fold=maybe", "limit=0", "after_seq=-1", "source=kernel",
                                   f"q={'x' * 201}"])
def test_bad_log_queries_are_400(trained, query):
    response = trained["client"].get(f"/api/runs/{trained['run_id']}/logs?{query}")
    assert response.status_code == 400 and response.get_json()["error"] == "validation_error"


def test_logs_of_an_unknown_run_are_404(trained):
    response = trained["client"].get("/api/runs/nope/logs")
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_the_monitor_samples_are_stored_events_of_the_run(trained):
    client, run_id = trained["client"], trained["run_id"]
    events = client.get(f"/api/runs/{run_id}/events").get_json()["events"]
    weights = [e for e in events if e["event"] == "weights_update"]
    stats = [e for e in events if e["event"] == "training_stats"]
    per_epoch = -(-1437 // 64)
    assert [w["step"] for w in weights] == [s["step"] for s in stats] == list(range(0, 2 * per_epoch, 10))
    assert all(w["run_id"] == run_id and [layer["name"] for layer in w["layers"]] == ["0", "2"] for w in weights)
    assert weights[0]["activations"][0]["type"] == "ReLU"
    assert all(s["learning_rate"] == 0.001 for s in stats)  # Adam's default for a network of layers
    # caught up after any seq: exactly the later events
    middle = weights[len(weights) // 2]["seq"]
    later = client.get(f"/api/runs/{run_id}/events?after_seq={middle}").get_json()["events"]
    assert [e["seq"] for e in later] == [e["seq"] for e in events if e["seq"] > middle]


def test_monitor_false_samples_nothing_and_a_layer_sizes_network_refuses_the_monitor(trained, make_module_app):
    client = trained["client"]
    network = create_network(client, dataset_id="digits", layers=MLP)["network_id"]
    run_id = start_run(client, network, epochs=1, batch_size=128, monitor=False)["run_id"]
    assert wait_for_run(client, run_id)["status"] == "completed"
    names = {e["event"] for e in client.get(f"/api/runs/{run_id}/events").get_json()["events"]}
    assert not names & {"weights_update", "training_stats"}
    assert "monitor: off" in [line["message"] for line in client.get(f"/api/runs/{run_id}/logs").get_json()["lines"]]
    nielsen = create_network(client, dataset_id="digits", layer_sizes=[64, 10, 10])["network_id"]
    refused = client.post(f"/api/networks/{nielsen}/train", json={"monitor": True})
    assert refused.status_code == 400 and refused.get_json()["detail"]["field"] == "monitor"
    assert client.post(f"/api/networks/{network}/train", json={"monitor_every": 0}).status_code == 400


def test_fold_and_select_on_their_own():
    lines = [{"seq": i, "level": level, "source": "monitor", "message": m, "time": float(i)}
             for i, (level, m) in enumerate([("info", "a"), ("info", "a"), ("warning", "a"), ("info", "A b")], 1)]
    assert [(line["seq"], line["count"]) for line in run_logs.fold(lines)] == [(1, 2), (3, 1), (4, 1)]
    assert [line["seq"] for line in run_logs.select(lines, q="B")] == [4]
    assert [line["seq"] for line in run_logs.select(lines, level="warning")] == [3]
