"""Training controls over REST with real worker processes: bad bodies are 400s naming the field; the
learning rate is in every update (live and caught up); early stopping ends a run completed with its
reason, and the network's new version is the best epoch's weights; a resumed run goes on counting its
patience."""

from __future__ import annotations

import csv
import io
import re

import pytest
import torch

from tests.helpers import create_network, events_named, start_run, wait_for_run

MLP = [{"type": "Linear", "out_features": 16}, {"type": "ReLU"}, {"type": "Linear", "out_features": 10}]


@pytest.fixture(scope="module")
def app(make_module_app):
    return make_module_app(max_concurrent_runs=1, warm_workers=1, progress_interval=0.0)


@pytest.fixture(scope="module")
def network_id(app):
    return create_network(app.test_client(), dataset_id="digits", layers=MLP, optimizer="sgd",
                          learning_rate=0.05)["network_id"]


@pytest.fixture(scope="module")
def stopped_early(app, network_id):
    """A run that early stopping ends at epoch 3 of 10 (min_delta 1: nothing beats epoch 1), with a schedule."""
    client = app.test_client()
    sio = app.extensions["socketio"].test_client(app, flask_test_client=client)
    started = start_run(client, network_id, epochs=10, mini_batch_size=32,
                        early_stopping={"metric": "accuracy", "patience": 2, "min_delta": 1.0},
                        lr_schedule={"type": "step", "step_size": 1, "gamma": 0.5})
    run = wait_for_run(client, started["run_id"])
    received = sio.get_received()
    sio.disconnect()
    return {"run": run, "received": received}


@pytest.mark.parametrize("body, field, message", [
    ({"lr_schedule": {"type": "linear"}}, "lr_schedule.type", "must be one of step, exponential, cosine"),
    ({"lr_schedule": {"type": "step"}}, "lr_schedule.step_size", "step_size is required"),
    ({"lr_schedule": {"type": "step", "step_size": 2, "gamma": 1.5}}, "lr_schedule.gamma", r"must be in \(0.0, 1.0\]"),
    ({"lr_schedule": {"type": "exponential"}}, "lr_schedule.gamma", "gamma is required"),
    ({"lr_schedule": {"type": "cosine", "t_max": 0}}, "lr_schedule.t_max", "must be in"),
    ({"lr_schedule": {"type": "cosine", "warmup": 3}}, "lr_schedule", r"unknown field\(s\) warmup"),
    ({"lr_schedule": {"type": "reduce_on_plateau", "factor": 1.0}}, "lr_schedule.factor", "must be below 1"),
    ({"lr_schedule": {"type": "reduce_on_plateau", "patience": -1}}, "lr_schedule.patience", "must be in"),
    ({"lr_schedule": 7}, "lr_schedule", "must be an object with a 'type'"),
    ({"clip_grad_norm": 0}, "clip_grad_norm", "must be in"),
    ({"clip_grad_norm": -1.0}, "clip_grad_norm", "must be in"),
    ({"clip_grad_norm": "1"}, "clip_grad_norm", "Not a valid number"),
    ({"early_stopping": {"metric": "loss_of_heart"}}, "early_stopping.metric", "give early_stopping.mode"),
    ({"early_stopping": {"metric": "accuracy", "patience": 0}}, "early_stopping.patience", "must be in"),
    ({"early_stopping": {"metric": "accuracy", "mode": "up"}}, "early_stopping.mode", "must be one of min, max"),
    ({"early_stopping": {"metric": "accuracy", "min_delta": -0.1}}, "early_stopping.min_delta", "must be in"),
    ({"early_stopping": "accuracy:soon"}, "early_stopping", "METRIC\\[:PATIENCE\\]"),
    ({"early_stopping": {"metric": "r2"}}, "early_stopping.metric", "'r2' is never reported for a classification"),
    # metrics only a text dataset's epochs report, or none does: refused now, not failed at the first epoch
    ({"early_stopping": {"metric": "f1"}}, "early_stopping.metric", "'f1' is never reported for a classification"),
    ({"early_stopping": {"metric": "rmse"}}, "early_stopping.metric", "'rmse' is never reported"),
    ({"lr_schedule": {"type": "reduce_on_plateau", "metric": "perplexity"}}, "lr_schedule.metric",
     "'perplexity' is never reported"),
])
def test_bad_controls_are_400s_naming_the_field(app, network_id, body, field, message):
    response = app.test_client().post(f"/api/networks/{network_id}/train", json={"epochs": 1, **body})
    assert response.status_code == 400, response.get_json()
    error = response.get_json()
    assert error["error"] == "validation_error"
    assert field in error["message"] or error.get("detail", {}).get("field") == field
    assert re.search(message, error["message"]), error["message"]


def test_clipping_is_refused_for_a_layer_sizes_network(app):
    client = app.test_client()
    nielsen = create_network(client, dataset_id="digits", layer_sizes=[64, 10])["network_id"]
    response = client.post(f"/api/networks/{nielsen}/train", json={"clip_grad_norm": 1.0})
    assert response.status_code == 400
    assert "clip_grad_norm needs a network created from layers" in response.get_json()["message"]


def test_accuracy_cannot_be_watched_on_a_regression_dataset(app):
    client = app.test_client()
    regression = create_network(client, dataset_id="diabetes", loss="mse", layers=[
        {"type": "Linear", "out_features": 1}])["network_id"]
    response = client.post(f"/api/networks/{regression}/train",
                           json={"lr_schedule": {"type": "reduce_on_plateau", "metric": "accuracy"}})
    assert response.status_code == 400
    assert "'accuracy' is never reported for a regression dataset" in response.get_json()["message"]


def test_the_run_records_its_controls_as_parameters(stopped_early):
    params = stopped_early["run"]["params"]
    assert params["early_stopping"] == {"metric": "accuracy", "mode": "max", "patience": 2, "min_delta": 1.0}
    assert params["lr_schedule"] == {"type": "step", "step_size": 1, "gamma": 0.5}
    assert "clip_grad_norm" not in params  # off


def test_early_stopping_ends_the_run_completed_with_its_reason_and_best_epoch(stopped_early, app):
    run = stopped_early["run"]
    assert run["status"] == "completed"
    assert run["stop_reason"] == "early_stopping: no improvement in accuracy for 2 epochs"
    assert run["best_epoch"] == 1
    assert run["epochs_done"] == 3 and run["total_epochs"] == 10
    # what a resume continues from is the best epoch too
    assert run["checkpoint_epoch"] == 1
    complete = [e for e in events_named(stopped_early["received"], "training_complete")
                if e["run_id"] == run["run_id"]]
    assert len(complete) == 1
    assert (complete[0]["stop_reason"], complete[0]["best_epoch"], complete[0]["epochs_done"]) == (
        run["stop_reason"], 1, 3)
    stored = app.test_client().get(f"/api/runs/{run['run_id']}/events").get_json()["events"]
    assert stored[-1]["event"] == "training_complete" and stored[-1]["stop_reason"] == run["stop_reason"]


def test_the_new_version_is_the_best_epochs_weights_and_scores(stopped_early, app, network_id):
    client = app.test_client()
    run = stopped_early["run"]
    updates = client.get(f"/api/runs/{run['run_id']}/metrics").get_json()["metrics"]
    assert [u["epoch"] for u in updates] == [1, 2, 3]
    assert [u["best_epoch"] for u in updates] == [1, 1, 1]
    versions = client.get(f"/api/networks/{network_id}/versions").get_json()["versions"]
    version = next(v for v in versions if v["run_id"] == run["run_id"])
    assert version["metrics"]["best_epoch"] == 1
    assert version["metrics"]["accuracy"] == updates[0]["accuracy"] == run["accuracy"]
    assert version["metrics"]["val_loss"] == updates[0]["val_loss"]
    assert run["metrics"]["test"]["accuracy"] == updates[0]["accuracy"]  # final scores: same weights

    download = client.get(f"/api/networks/{network_id}/versions/{version['version']}/weights")
    assert download.status_code == 200
    saved = torch.load(io.BytesIO(download.data), map_location="cpu", weights_only=True)["state_dict"]
    settings = app.extensions["livetrain"].settings
    folder = settings.models_dir / "networks" / network_id / "runs" / run["run_id"]
    best = torch.load(folder / "checkpoint-00001.pt", map_location="cpu", weights_only=True)["model"]
    last = torch.load(folder / "checkpoint-00003.pt", map_location="cpu", weights_only=True)["model"]
    assert set(saved) == set(best)
    for name in saved:
        torch.testing.assert_close(saved[name], best[name], rtol=0, atol=0)
    assert any(not torch.equal(saved[name], last[name]) for name in saved)


def test_the_learning_rate_is_in_every_update_live_and_caught_up(stopped_early, app):
    client = app.test_client()
    run_id = stopped_early["run"]["run_id"]
    expected = [0.05, 0.025, 0.0125]  # step_size 1, gamma 0.5 from the network's rate
    live = [e for e in events_named(stopped_early["received"], "training_update") if e["run_id"] == run_id]
    assert [e["learning_rate"] for e in live] == pytest.approx(expected)
    caught_up = client.get(f"/api/runs/{run_id}/metrics?after_seq=0").get_json()["metrics"]
    assert [m["learning_rate"] for m in caught_up] == [e["learning_rate"] for e in live]
    rows = list(csv.DictReader(io.StringIO(client.get(f"/api/runs/{run_id}/metrics.csv").get_data(as_text=True))))
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx(expected)
    progress = [e for e in events_named(stopped_early["received"], "training_progress") if e["run_id"] == run_id]
    assert progress, "progress events (interval 0)"
    for event in progress:
        assert event["learning_rate"] == pytest.approx(expected[event["epoch"] - 1])


def _resumed(client, source: dict, epochs: int, **body) -> dict:
    """`source` resumed for `epochs` more (and the rest of `body`), once it has ended."""
    response = client.post(f"/api/runs/{source['run_id']}/resume", json={"epochs": epochs, **body})
    assert response.status_code == 202, response.get_json()
    return wait_for_run(client, response.get_json()["run_id"])


def test_a_resumed_run_goes_on_with_the_schedule_and_controls(stopped_early, app):
    client = app.test_client()
    source = stopped_early["run"]
    resumed = _resumed(client, source, epochs=2)
    assert resumed["status"] == "completed" and resumed["start_epoch"] == 1
    assert resumed["params"]["lr_schedule"] == source["params"]["lr_schedule"]
    assert resumed["params"]["early_stopping"] == source["params"]["early_stopping"]
    updates = client.get(f"/api/runs/{resumed['run_id']}/metrics").get_json()["metrics"]
    # from the best epoch's checkpoint (epoch 1): its schedule had taken one step
    assert [(u["epoch"], u["learning_rate"]) for u in updates] == [(2, pytest.approx(0.025)),
                                                                   (3, pytest.approx(0.0125))]


def test_a_resumed_run_goes_on_counting_its_early_stopping_patience(stopped_early, app, network_id):
    client = app.test_client()
    source = stopped_early["run"]
    resumed = _resumed(client, source, epochs=5)
    # from the best epoch's checkpoint (epoch 1): epochs 2 and 3 are its patience of 2, not epochs 3 and 4
    # after a new best at epoch 2 as a fresh count would have it
    assert resumed["status"] == "completed" and resumed["start_epoch"] == 1
    assert resumed["stop_reason"] == "early_stopping: no improvement in accuracy for 2 epochs"
    assert resumed["best_epoch"] == 1 and resumed["epochs_done"] == 3 and resumed["total_epochs"] == 6
    updates = client.get(f"/api/runs/{resumed['run_id']}/metrics").get_json()["metrics"]
    assert [(u["epoch"], u["best_epoch"]) for u in updates] == [(2, 1), (3, 1)]
    # its model is still epoch 1's: the weights and the scores the source had there
    assert resumed["accuracy"] == source["accuracy"]
    versions = client.get(f"/api/networks/{network_id}/versions").get_json()["versions"]
    version = next(v for v in versions if v["run_id"] == resumed["run_id"])
    assert version["metrics"]["best_epoch"] == 1 and version["metrics"]["accuracy"] == source["accuracy"]
    download = client.get(f"/api/networks/{network_id}/versions/{version['version']}/weights")
    saved = torch.load(io.BytesIO(download.data), map_location="cpu", weights_only=True)["state_dict"]
    folder = app.extensions["livetrain"].settings.models_dir / "networks" / network_id / "runs"
    best = torch.load(folder / source["run_id"] / "checkpoint-00001.pt", map_location="cpu", weights_only=True)
    for name in saved:
        torch.testing.assert_close(saved[name], best["model"][name], rtol=0, atol=0)


def test_a_resume_with_early_stopping_null_trains_all_its_epochs_without_it(stopped_early, app):
    client = app.test_client()
    source = stopped_early["run"]
    # inherited, the source's patience of 2 would end it after 2 of these 4 epochs (as the test above shows)
    resumed = _resumed(client, source, epochs=4, early_stopping=None)
    assert resumed["status"] == "completed" and resumed.get("stop_reason") is None
    assert resumed["epochs_done"] == resumed["total_epochs"] == 5  # from the checkpoint of epoch 1
    updates = client.get(f"/api/runs/{resumed['run_id']}/metrics").get_json()["metrics"]
    assert [u["epoch"] for u in updates] == [2, 3, 4, 5]
    assert "early_stopping" not in resumed["params"]
    assert resumed["params"]["lr_schedule"] == source["params"]["lr_schedule"]  # the others still inherited


def test_a_resume_with_lr_schedule_null_keeps_the_rate_constant(stopped_early, app):
    client = app.test_client()
    source = stopped_early["run"]
    resumed = _resumed(client, source, epochs=2, lr_schedule=None)
    assert resumed["status"] == "completed" and "lr_schedule" not in resumed["params"]
    updates = client.get(f"/api/runs/{resumed['run_id']}/metrics").get_json()["metrics"]
    # the source's base rate every epoch, not its schedule's 0.025 then 0.0125
    assert [u["learning_rate"] for u in updates] == pytest.approx([0.05, 0.05])


def test_null_controls_on_a_fresh_run_are_left_out_and_other_nulls_stay_refused(app, network_id):
    client = app.test_client()
    started = start_run(client, network_id, epochs=1, mini_batch_size=64, lr_schedule=None, clip_grad_norm=None,
                        early_stopping=None)
    params = wait_for_run(client, started["run_id"])["params"]
    assert not {"lr_schedule", "clip_grad_norm", "early_stopping"} & set(params)
    refused = client.post(f"/api/runs/{started['run_id']}/resume", json={"resume": None})
    assert refused.status_code == 400 and refused.get_json()["error"] == "validation_error"


def test_a_resumed_run_keeps_the_monitor_as_its_source_had_it(app, network_id):
    client = app.test_client()
    source = wait_for_run(client, start_run(client, network_id, epochs=1, mini_batch_size=64, monitor=False)["run_id"])
    assert source["status"] == "completed" and source["params"]["extra"]["monitor"]["enabled"] is False
    response = client.post(f"/api/runs/{source['run_id']}/resume", json={"epochs": 1})
    assert response.status_code == 202, response.get_json()
    resumed = wait_for_run(client, response.get_json()["run_id"])
    assert resumed["status"] == "completed"
    assert resumed["params"]["extra"]["monitor"] == source["params"]["extra"]["monitor"]
    kinds = {e["event"] for e in client.get(f"/api/runs/{resumed['run_id']}/events").get_json()["events"]}
    assert "weights_update" not in kinds  # switched off for the run, so for its continuation too
    # a sampling rate carries over as well
    every = wait_for_run(client, start_run(client, network_id, epochs=1, mini_batch_size=64, monitor_every=7)["run_id"])
    response = client.post(f"/api/runs/{every['run_id']}/resume", json={"epochs": 1})
    resumed = wait_for_run(client, response.get_json()["run_id"])
    assert resumed["params"]["extra"]["monitor"] == {"enabled": True, "every": 7, "explode_above": 1e3,
                                                     "vanish_below": 1e-7}


@pytest.mark.parametrize("body, field", [
    ({"monitor_explode_above": 0}, "monitor_explode_above"),
    ({"monitor_explode_above": "100"}, "monitor_explode_above"),
    ({"monitor_vanish_below": -1e-6}, "monitor_vanish_below"),
    ({"monitor_explode_above": 1e-3, "monitor_vanish_below": 1e-2}, "monitor_vanish_below"),
])
def test_bad_monitor_thresholds_are_400s_naming_the_field_and_create_no_run(app, network_id, body, field):
    client = app.test_client()
    before = client.get(f"/api/runs?network_id={network_id}").get_json()["total"]
    response = client.post(f"/api/networks/{network_id}/train", json={"epochs": 1, **body})
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "validation_error"
    assert response.get_json()["detail"]["field"] == field
    assert client.get(f"/api/runs?network_id={network_id}").get_json()["total"] == before


def test_a_runs_monitor_thresholds_are_recorded_and_kept_on_resume(app, network_id):
    client = app.test_client()
    source = wait_for_run(client, start_run(client, network_id, epochs=1, mini_batch_size=64,
                                            monitor_explode_above=100, monitor_vanish_below=1e-6)["run_id"])
    assert source["status"] == "completed"
    assert source["params"]["extra"]["monitor"] == {"enabled": True, "every": None, "explode_above": 100.0,
                                                    "vanish_below": 1e-6}
    resumed = _resumed(client, source, epochs=1)
    assert resumed["params"]["extra"]["monitor"] == source["params"]["extra"]["monitor"]
