"""GET /metrics after real training: every family is there with the values a user would check."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from livetrain.store import Run
from tests.helpers import create_experiment, create_network, run_in, start_run, wait_for_run


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape, by name and sorted labels."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True)) for s in family.samples}


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


class FakeRegistry:
    """What the model registry provides the metrics with (the registry is another module's)."""

    def counts(self):
        return {"churn": {"predictions": 12, "feedback": 3}, "iris": {"predictions": 1, "feedback": 0}}

    def champion_metrics(self):
        return {"churn": ("roc_auc", 0.91), "iris": ("accuracy", 0.97)}


@pytest.fixture(scope="module")
def trained(make_module_app):
    """An app with one network run (2 epochs) and one scikit-learn run (3 steps), a Socket.IO client connected
    throughout, and a run waiting in a Celery queue (written to the store as another node would)."""
    app = make_module_app()
    client = app.test_client()
    sio = app.extensions["socketio"].test_client(app, flask_test_client=client)
    network = create_network(client, dataset_id="iris", layer_sizes=[4, 5, 3])
    network_run = wait_for_run(client, start_run(client, network["network_id"], epochs=2)["run_id"])
    experiment = create_experiment(client, name="metrics")
    sklearn_run = wait_for_run(client, run_in(client, experiment["experiment_id"], algorithm="knn", dataset_id="iris",
                                              steps=3)["run_id"])
    assert (network_run["status"], sklearn_run["status"]) == ("completed", "completed")
    client.get("/api/no-such-thing")
    app.extensions["livetrain"].store.create_run(Run(id="waiting", network_id=None, dataset_id="iris",
                                                     status="queued", queue="gpu"))
    yield {"app": app, "client": client, "sio": sio, "run": network_run}
    if sio.is_connected():
        sio.disconnect()


def test_http_requests_are_counted_and_timed_by_route_and_status(trained):
    samples = scrape(trained["client"])
    post = {"method": "POST", "route": "/api/networks", "status": "201"}
    assert value(samples, "livetrain_http_requests_total", **post) == 1
    train = {"method": "POST", "route": "/api/networks/<network_id>/train", "status": "202"}
    assert value(samples, "livetrain_http_requests_total", **train) == 1
    polls = {"method": "GET", "route": "/api/runs/<run_id>", "status": "200"}
    assert value(samples, "livetrain_http_requests_total", **polls) >= 2  # the raw paths share one route
    assert value(samples, "livetrain_http_request_duration_seconds_count", **polls) == \
        value(samples, "livetrain_http_requests_total", **polls)
    assert value(samples, "livetrain_http_request_duration_seconds_bucket", **polls, le="+Inf") == \
        value(samples, "livetrain_http_requests_total", **polls)
    assert value(samples, "livetrain_http_request_duration_seconds_sum", **polls) > 0
    assert value(samples, "livetrain_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert not [key for key in samples if dict(key[1]).get("route", "").startswith("/api/runs/") and
                "<" not in dict(key[1])["route"]]


def test_runs_by_status_and_queue_and_the_queue_depth_come_from_the_store(trained):
    samples = scrape(trained["client"])
    assert value(samples, "livetrain_runs", status="completed", queue="local") == 2
    assert value(samples, "livetrain_runs", status="queued", queue="gpu") == 1
    assert value(samples, "livetrain_queue_depth", queue="gpu") == 1
    assert value(samples, "livetrain_queue_depth", queue="local") == 0
    assert value(samples, "livetrain_active_runs") == 1


def test_epochs_and_steps_are_counted_here_and_read_from_the_store(trained):
    samples = scrape(trained["client"])
    assert value(samples, "livetrain_epochs_total") == 2
    assert value(samples, "livetrain_steps_total") == 3
    assert value(samples, "livetrain_stored_epochs", kind="network") == 2
    assert value(samples, "livetrain_stored_epochs", kind="sklearn") == 3
    assert value(samples, "livetrain_run_transitions_total", status="completed") == 2


def test_events_emitted_and_delivered_to_the_connected_client(trained):
    samples = scrape(trained["client"])
    # broadcast (the default): each run event reached the one connected client
    assert value(samples, "livetrain_events_emitted_total", event="training_update") == 5
    assert value(samples, "livetrain_events_delivered_total", event="training_update") == 5
    assert value(samples, "livetrain_events_emitted_total", event="training_complete") == 2
    assert value(samples, "livetrain_events_emitted_total", event="network_created") == 1
    assert value(samples, "livetrain_socketio_clients") == 1


def test_workers_are_counted(trained):
    samples = scrape(trained["client"])
    [worker] = trained["client"].get("/api/workers").get_json()["workers"]
    assert value(samples, "livetrain_workers") == 1
    assert value(samples, "livetrain_worker_slots") == worker["concurrency"]


def test_model_registry_series_only_with_a_registry(trained, monkeypatch):
    assert not [key for key in scrape(trained["client"]) if key[0].startswith(("livetrain_predictions",
                                                                                "livetrain_champion"))]
    monkeypatch.setattr(trained["app"].extensions["livetrain"], "registry", FakeRegistry(), raising=False)
    samples = scrape(trained["client"])
    assert value(samples, "livetrain_predictions_total", model="churn") == 12
    assert value(samples, "livetrain_feedback_total", model="churn") == 3
    assert value(samples, "livetrain_champion_metric", model="churn", metric="roc_auc") == 0.91
    assert value(samples, "livetrain_champion_metric", model="iris", metric="accuracy") == 0.97


def test_a_broken_source_leaves_its_series_out_and_the_rest_answers(trained, monkeypatch, caplog):
    class Broken:
        def counts(self):
            raise RuntimeError("registry tables missing")

    monkeypatch.setattr(trained["app"].extensions["livetrain"], "registry", Broken(), raising=False)
    samples = scrape(trained["client"])
    assert value(samples, "livetrain_runs", status="completed", queue="local") == 2
    assert not [key for key in samples if key[0].startswith("livetrain_predictions")]
    assert "registry failed" in caplog.text


def test_metrics_needs_the_read_scope(trained):
    assert trained["app"].view_functions["status.prometheus"].livetrain_scope == "read"


def test_a_disconnected_client_is_no_longer_counted(trained):
    trained["sio"].disconnect()
    assert value(scrape(trained["client"]), "livetrain_socketio_clients") == 0
