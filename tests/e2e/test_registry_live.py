"""The feedback loop against a real server: predictions, feedback, a retraining through the ordinary run
path, the evaluation side by side, and the champion moved only when the challenger wins by the margin."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris

IRIS_LAYERS = [{"type": "Linear", "out_features": 16}, {"type": "ReLU"}, {"type": "Linear", "out_features": 3}]


@pytest.fixture(scope="module")
def iris_rows():
    """Raw iris measurements and their true species, in a seeded order."""
    data = load_iris()
    order = np.random.default_rng(7).permutation(len(data.target))
    return [[float(v) for v in data.data[i]] for i in order], [int(data.target[i]) for i in order]


def _register(api, name: str, source: dict) -> None:
    api.post("/api/models", {"name": name}, expect=201)
    api.post(f"/api/models/{name}/versions", source, expect=201)
    api.call("PUT", f"/api/models/{name}/aliases/champion", json={"version": 1, "reason": "first model"})


def _ended(client, name: str, event: str) -> dict:
    return client.wait_for(event, where=lambda p: p.get("model") == name, timeout=60)


def test_a_better_challenger_is_promoted_automatically(server, connect, iris_rows):
    api, client = server.api, connect(server)
    network = api.post("/api/networks", {"dataset_id": "iris", "layers": IRIS_LAYERS, "optimizer": "adam",
                                         "learning_rate": 0.01}, expect=201)
    run = api.wait_for_run(api.train(network["network_id"], epochs=1, learning_rate=1e-5)["run_id"])
    assert run["status"] == "completed", run
    _register(api, "iris-auto", {"network_id": network["network_id"], "version": 1})
    policy = api.call("PUT", "/api/models/iris-auto/policy", json={
        "min_feedback": 30, "metric": "accuracy", "margin": 0.05, "epochs": 40, "learning_rate": 0.01})
    assert policy["higher_is_better"] is True

    rows, labels = iris_rows
    for row, label in zip(rows[:30], labels[:30]):  # the 30th starts the retraining
        served = api.post("/api/models/iris-auto/predict", {"input": row})
        assert served["version"] == 1 and served["alias"] == "champion"
        api.post("/api/models/iris-auto/feedback", {"prediction_id": served["prediction_id"], "label": label},
                 expect=201)

    assert [r["trigger"] for r in api.get("/api/models/iris-auto/retrainings")["retrainings"]] == ["auto"], (
        api.get("/api/models/iris-auto"))
    started = _ended(client, "iris-auto", "model_retrain_started")
    assert started["trigger"] == "auto" and (started["feedback_train"], started["feedback_holdout"]) == (24, 6)
    promoted = _ended(client, "iris-auto", "model_promoted")
    evaluated = client.payloads("model_retrain_evaluated")[-1]
    assert evaluated["retraining_id"] == promoted["retraining_id"] == started["retraining_id"]
    old = evaluated["champion_metrics"]["dataset"]["accuracy"]
    new = evaluated["challenger_metrics"]["dataset"]["accuracy"]
    assert new > old + 0.05
    assert evaluated["champion_metrics"]["feedback"]["n"] == 6
    assert client.payloads("training_complete", started["run_id"]), "the challenger's run went through the run path"

    model = api.get("/api/models/iris-auto")
    assert model["aliases"] == {"champion": 2}
    assert model["versions"][1]["source"]["network_id"] != network["network_id"]  # a network on the derived data
    record = api.get("/api/models/iris-auto/retrainings")["retrainings"][0]
    assert (record["status"], record["champion_version"], record["challenger_version"]) == ("promoted", 1, 2)
    assert record["reason"].startswith("promoted: accuracy on the dataset's held-out split")
    assert record["challenger_metrics"]["dataset"]["accuracy"] == new
    move = next(m for m in model["history"] if m["alias"] == "champion" and m["to_version"] == 2)
    assert move["from_version"] == 1 and move["who"] == f"retraining:{record['id']}" and f"{new:.4f}" in move["reason"]
    derived = api.get(f"/api/datasets/{record['dataset_id']}")
    assert derived["meta"]["parent_id"] == "iris" and derived["n_train"] == 120 + 24 and derived["n_test"] == 30
    # the network predict endpoint now answers with the new champion's network... and the old network with
    # its latest version, no champion pointing there any more
    assert api.post("/api/models/iris-auto/predict", {"input": rows[0]})["version"] == 2
    assert api.post(f"/api/networks/{network['network_id']}/predict", {"input": rows[0]})["version"] == 1


def test_a_challenger_that_cannot_meet_the_margin_stays_challenger(server, connect, iris_rows):
    api, client = server.api, connect(server)
    knn = api.post("/api/experiments/default/runs", {"algorithm": "knn", "dataset_id": "iris", "steps": 1},
                   expect=202)
    assert api.wait_for_run(knn["run_id"])["status"] == "completed"
    _register(api, "iris-margin", {"run_id": knn["run_id"]})
    # k-NN scores about 0.97 on iris' test split: no challenger can gain 0.1 on it
    api.call("PUT", "/api/models/iris-margin/policy", json={"min_feedback": 1000, "margin": 0.1})
    rows, labels = iris_rows
    for row, label in zip(rows[:20], labels[:20]):
        api.post("/api/models/iris-margin/feedback", {"input": row, "label": (label + 1) % 3}, expect=201)
    assert api.get("/api/models/iris-margin/retrainings")["retrainings"] == []  # 20 < min_feedback: no auto start

    queued = api.post("/api/models/iris-margin/retrain", expect=202)
    assert queued["trigger"] == "manual"
    rejected = _ended(client, "iris-margin", "model_retrain_rejected")
    assert rejected["retraining_id"] == queued["id"]
    assert [p["retraining_id"] for p in client.payloads("model_retrain_evaluated")
            if p["model"] == "iris-margin"] == [queued["id"]]
    record = api.get("/api/models/iris-margin/retrainings")["retrainings"][0]
    assert record["status"] == "rejected" and record["finished_at"] >= record["created_at"]
    assert record["reason"].startswith("not promoted: accuracy on the dataset's held-out split")
    assert "margin 0.1" in record["reason"] and "version 2 stays challenger" in record["reason"]
    assert set(record["champion_metrics"]) == {"dataset", "feedback"}
    model = api.get("/api/models/iris-margin")
    assert model["aliases"] == {"champion": 1, "challenger": 2}
    assert model["versions"][1]["source"]["kind"] == "run" and model["unused_feedback"] == 0
    assert api.post("/api/models/iris-margin/predict", {"input": rows[0]})["version"] == 1
