"""The model registry over REST: models, versions of networks and runs, aliases with their history,
predictions through the champion, feedback, its CSV export and the retraining policy."""

from __future__ import annotations

import csv
import io
import uuid

import pytest

from tests.helpers import create_network, events_named, run_in, start_run, wait_for_run, wait_until

IRIS_SETOSA = [5.1, 3.5, 1.4, 0.2]
IRIS_LAYERS = [{"type": "Linear", "out_features": 8}, {"type": "ReLU"}, {"type": "Linear", "out_features": 3}]


@pytest.fixture(scope="module")
def shared_app(make_module_app):
    return make_module_app(warm_workers=1)


@pytest.fixture
def client(shared_app):
    return shared_app.test_client()


@pytest.fixture(scope="module")
def trained(shared_app):
    """An iris network with two versions (2 and 3 epochs) and a completed iris k-NN run."""
    client = shared_app.test_client()
    network = create_network(client, dataset_id="iris", layers=IRIS_LAYERS, learning_rate=0.05)
    runs = [wait_for_run(client, start_run(client, network["network_id"], epochs=n)["run_id"]) for n in (2, 3)]
    knn = wait_for_run(client, run_in(client, "default", algorithm="knn", dataset_id="iris", steps=1)["run_id"])
    assert [r["status"] for r in runs + [knn]] == ["completed"] * 3, runs + [knn]
    return {"network_id": network["network_id"], "runs": runs, "knn": knn}


@pytest.fixture
def model(client, trained):
    """A fresh model with network versions 1 and 2 (v1, v2) and the k-NN run (v3); champion on v1."""
    name = f"iris-{uuid.uuid4().hex[:8]}"
    assert client.post("/api/models", json={"name": name, "description": "iris"}).status_code == 201
    for number in (1, 2):
        r = client.post(f"/api/models/{name}/versions", json={"network_id": trained["network_id"], "version": number})
        assert r.status_code == 201, r.get_json()
    r = client.post(f"/api/models/{name}/versions", json={"run_id": trained["knn"]["run_id"]})
    assert r.status_code == 201, r.get_json()
    assert client.put(f"/api/models/{name}/aliases/champion", json={"version": 1}).status_code == 200
    return name


def test_versions_point_at_their_source_with_its_held_out_metrics(client, trained, model):
    body = client.get(f"/api/models/{model}").get_json()
    assert [v["version"] for v in body["versions"]] == [1, 2, 3]
    assert body["versions"][0]["source"] == {"kind": "network", "network_id": trained["network_id"], "version": 1}
    assert body["versions"][2]["source"] == {"kind": "run", "run_id": trained["knn"]["run_id"]}
    knn_test = trained["knn"]["metrics"]["test"]["accuracy"]
    assert body["versions"][2]["metrics"]["accuracy"] == pytest.approx(knn_test)
    assert body["versions"][2]["metrics"]["split"] == "test"
    assert "accuracy" in body["metric_names"]
    assert body["aliases"] == {"champion": 1}
    assert body["versions"][0]["aliases"] == ["champion"]
    assert body["versions"][0]["created_by"] == "anonymous"


def test_registering_a_network_run_registers_the_version_it_made(client, trained, model):
    r = client.post(f"/api/models/{model}/versions", json={"run_id": trained["runs"][1]["run_id"]})
    assert r.status_code == 409 and r.get_json()["error"] == "already_registered"
    assert r.get_json()["detail"] == {"version": 2}


def test_events_announce_models_versions_and_moves(shared_app, client, trained):
    sio = shared_app.extensions["socketio"].test_client(shared_app, flask_test_client=client)
    client.post("/api/models", json={"name": "evented"})
    client.post("/api/models/evented/versions", json={"network_id": trained["network_id"], "version": 2})
    client.put("/api/models/evented/aliases/champion", json={"version": 1, "reason": "first"})
    received = sio.get_received()
    sio.disconnect()
    assert events_named(received, "model_registered")[0]["model"] == "evented"
    assert events_named(received, "model_version_registered")[0]["version"] == 1
    moved = events_named(received, "model_alias_moved")[0]
    assert (moved["alias"], moved["from_version"], moved["to_version"], moved["reason"]) == ("champion", None, 1,
                                                                                          "first")


@pytest.mark.parametrize("body, status, error", [
    ({"name": "bad name"}, 400, "bad_name"),
    ({"name": "x" * 101}, 400, "bad_name"),
    ({"name": ".."}, 400, "bad_name"),
    ({}, 400, "validation_error"),
])
def test_bad_model_names_are_refused(client, body, status, error):
    r = client.post("/api/models", json=body)
    assert (r.status_code, r.get_json()["error"]) == (status, error)


def test_a_taken_name_is_a_conflict(client, model):
    r = client.post("/api/models", json={"name": model})
    assert (r.status_code, r.get_json()["error"]) == (409, "model_exists")


@pytest.mark.parametrize("path, body, status, error", [
    ("/api/models/nope", None, 404, "not_found"),
    ("/api/models/{m}/versions", {"network_id": "nope", "version": 1}, 404, "not_found"),
    ("/api/models/{m}/versions", {"network_id": "{n}", "version": 9}, 404, "not_found"),
    ("/api/models/{m}/versions", {"network_id": "{n}", "version": 1.5}, 400, "bad_parameter"),
    ("/api/models/{m}/versions", {}, 400, "bad_source"),
    ("/api/models/{m}/versions", {"run_id": "nope"}, 404, "not_found"),
    ("/api/models/{m}/aliases/champion", {"version": 7}, 404, "not_found"),
    ("/api/models/{m}/aliases/Champion", {"version": 1}, 400, "bad_alias"),
    ("/api/models/{m}/aliases/champion", {}, 400, "validation_error"),
])
def test_unknown_and_bad_requests(client, trained, model, path, body, status, error):
    path = path.format(m=model)
    if body is not None:
        body = {k: v.format(n=trained["network_id"]) if isinstance(v, str) else v for k, v in body.items()}
    method = client.get if body is None else (client.put if "/aliases/" in path else client.post)
    r = method(path, json=body) if body is not None else method(path)
    assert (r.status_code, r.get_json()["error"]) == (status, error), r.get_json()


def test_aliases_move_are_removed_and_every_move_is_in_the_history(client, model):
    r = client.put(f"/api/models/{model}/aliases/champion", json={"version": 2, "reason": "better"})
    assert r.get_json()["from_version"] == 1 and r.get_json()["version"] == 2
    client.put(f"/api/models/{model}/aliases/challenger", json={"version": 3})
    assert client.get(f"/api/models/{model}").get_json()["aliases"] == {"challenger": 3, "champion": 2}
    assert client.delete(f"/api/models/{model}/aliases/challenger").status_code == 200
    assert client.delete(f"/api/models/{model}/aliases/challenger").status_code == 404
    history = client.get(f"/api/models/{model}/history").get_json()["history"]
    moves = [(m["alias"], m["from_version"], m["to_version"]) for m in history]
    assert moves == [("challenger", 3, None), ("challenger", None, 3), ("champion", 1, 2), ("champion", None, 1)]
    assert history[2]["reason"] == "better" and history[2]["who"] == "anonymous" and history[2]["at"] > 0


def test_rollback_moves_the_alias_back_and_says_so(client, model):
    client.put(f"/api/models/{model}/aliases/champion", json={"version": 3})
    r = client.post(f"/api/models/{model}/aliases/champion/rollback", json={"reason": "worse in production"})
    assert r.status_code == 200 and r.get_json()["version"] == 1
    last = client.get(f"/api/models/{model}/history").get_json()["history"][0]
    assert (last["from_version"], last["to_version"]) == (3, 1)
    assert last["reason"] == "rollback: back from version 3 to version 1: worse in production"


def test_an_alias_never_moved_cannot_roll_back(client, model):
    r = client.post(f"/api/models/{model}/aliases/champion/rollback", json={})
    assert (r.status_code, r.get_json()["error"]) == (409, "no_previous_version")
    r = client.post(f"/api/models/{model}/aliases/nobody/rollback", json={})
    assert r.status_code == 404


def test_predict_uses_the_champion_unless_a_version_or_alias_is_named(client, trained, model):
    body = client.post(f"/api/models/{model}/predict", json={"input": IRIS_SETOSA}).get_json()
    assert (body["version"], body["alias"], body["source"]["version"]) == (1, "champion", 1)
    assert body["prediction_id"] == body["predictions"][0]["prediction_id"]
    by_version = client.post(f"/api/models/{model}/predict", json={"input": IRIS_SETOSA, "version": 3}).get_json()
    assert (by_version["version"], by_version["alias"], by_version["run_id"]) == (3, None, trained["knn"]["run_id"])
    assert by_version["prediction"] == 0  # a setosa
    client.put(f"/api/models/{model}/aliases/challenger", json={"version": 2})
    by_alias = client.post(f"/api/models/{model}/predict", json={"inputs": [IRIS_SETOSA] * 2,
                                                                  "alias": "challenger"}).get_json()
    assert (by_alias["version"], by_alias["alias"]) == (2, "challenger")
    assert len({p["prediction_id"] for p in by_alias["predictions"]}) == 2
    r = client.post(f"/api/models/{model}/predict", json={"input": IRIS_SETOSA, "alias": "staging"})
    assert (r.status_code, r.get_json()["error"]) == (404, "no_alias")


def test_a_head_is_refused_by_the_registrys_predict_with_where_to_ask(client, model):
    r = client.post(f"/api/models/{model}/predict", json={"input": IRIS_SETOSA, "head": "species"})
    assert r.status_code == 400
    body = r.get_json()
    assert body["error"] == "validation_error" and "/api/networks/{id}/predict" in body["message"]
    assert body["detail"] == {"field": "head"}
    assert client.post(f"/api/models/{model}/predict", json={"input": IRIS_SETOSA}).status_code == 200


def test_network_predict_uses_the_champion_of_a_registry(client, trained, model):
    network_id = trained["network_id"]
    assert client.post(f"/api/networks/{network_id}/predict", json={"input": IRIS_SETOSA}).get_json()["version"] == 1
    named = client.post(f"/api/networks/{network_id}/predict", json={"input": IRIS_SETOSA, "version": 2}).get_json()
    assert named["version"] == 2
    client.delete(f"/api/models/{model}")
    # no champion on this network any more (other tests' models may hold one: remove theirs too)
    for other in client.get("/api/models").get_json()["models"]:
        client.delete(f"/api/models/{other['name']}")
    latest = client.post(f"/api/networks/{network_id}/predict", json={"input": IRIS_SETOSA}).get_json()
    assert latest["version"] == 2


def test_feedback_by_prediction_id_and_by_input_and_its_csv(client, model):
    served = client.post(f"/api/models/{model}/predict", json={"input": IRIS_SETOSA}).get_json()
    r = client.post(f"/api/models/{model}/feedback", json={"prediction_id": served["prediction_id"], "label": 0,
                                                            "note": "checked by hand"})
    assert r.status_code == 201, r.get_json()
    first = r.get_json()
    assert (first["input"], first["version"], first["predicted"]) == (IRIS_SETOSA, 1, served["prediction"])
    second = client.post(f"/api/models/{model}/feedback", json={"input": [6.7, 3.0, 5.2, 2.3], "label": 2})
    assert second.status_code == 201
    listed = client.get(f"/api/models/{model}/feedback?limit=1&offset=1").get_json()
    assert listed["total"] == 2 and [f["label"] for f in listed["feedback"]] == [2]
    response = client.get(f"/api/models/{model}/feedback.csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert list(rows[0]) == ["id", "created_at", "prediction_id", "version", "predicted", "label", "note", "input"]
    assert rows[0]["prediction_id"] == served["prediction_id"] and rows[0]["note"] == "checked by hand"
    assert rows[0]["input"] == "[5.1, 3.5, 1.4, 0.2]" and rows[1]["label"] == "2" and rows[1]["prediction_id"] == ""
    assert client.get(f"/api/models/{model}").get_json()["feedback_count"] == 2


@pytest.mark.parametrize("body, status, error", [
    ({"label": 0}, 400, "bad_feedback"),
    ({"input": IRIS_SETOSA}, 400, "bad_feedback"),
    ({"input": IRIS_SETOSA, "label": 5}, 400, "bad_parameter"),
    ({"input": [1, 2], "label": 0}, 400, "bad_input"),
    ({"prediction_id": "nope", "label": 0}, 404, "not_found"),
    ({"input": IRIS_SETOSA, "label": 0, "note": "x" * 2001}, 400, "validation_error"),
])
def test_bad_feedback_is_refused(client, model, body, status, error):
    r = client.post(f"/api/models/{model}/feedback", json=body)
    assert (r.status_code, r.get_json()["error"]) == (status, error), r.get_json()


def test_the_policy_is_validated_and_its_direction_follows_the_metric(client, model):
    r = client.put(f"/api/models/{model}/policy", json={"min_feedback": 10, "metric": "f1", "margin": 0.02,
                                                        "epochs": 4})
    assert r.status_code == 200, r.get_json()
    policy = r.get_json()
    assert (policy["min_feedback"], policy["metric"], policy["higher_is_better"], policy["train"]) == (
        10, "f1", True, {"epochs": 4})
    assert policy["holdout_fraction"] == 0.2
    for bad in ({"metric": "rmse"}, {"margin": -1}, {"holdout_fraction": 1.5}, {"min_feedback": 0},
                {"decide_on": "mood"}, {"train": {"colour": 1}}):
        r = client.put(f"/api/models/{model}/policy", json=bad)
        assert r.status_code == 400, (bad, r.get_json())


def test_retraining_needs_feedback(client, model):
    r = client.post(f"/api/models/{model}/retrain")
    assert (r.status_code, r.get_json()["error"]) == (409, "no_feedback")
    assert client.get(f"/api/models/{model}/retrainings").get_json()["retrainings"] == []


def test_predictions_feedback_and_the_champion_metric_are_in_the_prometheus_scrape(client, model):
    from prometheus_client.parser import text_string_to_metric_families

    client.post(f"/api/models/{model}/predict", json={"input": IRIS_SETOSA})
    client.post(f"/api/models/{model}/feedback", json={"input": IRIS_SETOSA, "label": 0})
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
               for s in family.samples}
    assert samples[("livetrain_predictions_total", (("model", model),))] == 1
    assert samples[("livetrain_feedback_total", (("model", model),))] == 1
    champion = samples[("livetrain_champion_metric", (("metric", "accuracy"), ("model", model)))]
    assert 0 <= champion <= 1


def test_a_challenger_run_that_does_not_complete_fails_the_retraining_and_changes_nothing(shared_app, client, model):
    socket = shared_app.extensions["socketio"].test_client(shared_app, flask_test_client=client)
    client.put(f"/api/models/{model}/policy", json={"min_feedback": 100, "epochs": 500})  # long enough to cancel
    for label in (0, 0, 1):
        client.post(f"/api/models/{model}/feedback", json={"input": IRIS_SETOSA, "label": label})
    queued = client.post(f"/api/models/{model}/retrain")
    assert queued.status_code == 202, queued.get_json()
    retraining = client.get(f"/api/models/{model}/retrainings").get_json()["retrainings"][0]
    assert retraining["status"] == "training" and retraining["trigger"] == "manual"
    assert client.post(f"/api/models/{model}/retrain").get_json()["error"] == "retraining"
    client.post(f"/api/runs/{retraining['run_id']}/cancel")

    def ended():
        record = client.get(f"/api/models/{model}/retrainings").get_json()["retrainings"][0]
        return record if record["status"] not in ("queued", "training", "evaluating") else None

    record = wait_until(ended, timeout=30, what="the retraining's end")
    assert record["status"] == "failed" and record["reason"].endswith("ended cancelled")
    body = client.get(f"/api/models/{model}").get_json()
    assert body["aliases"] == {"champion": 1} and [v["version"] for v in body["versions"]] == [1, 2, 3]
    assert body["unused_feedback"] == 3  # given back for the next retraining
    failed = events_named(socket.get_received(), "model_retrain_failed")
    socket.disconnect()
    assert [e["retraining_id"] for e in failed] == [record["id"]]
