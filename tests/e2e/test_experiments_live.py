"""A data scientist against a real server: upload a CSV, race algorithms in one experiment, watch them rank."""

from __future__ import annotations

import io

import numpy as np


def churn_csv(rows: int = 400, seed: int = 7) -> bytes:
    """A customer table: numbers, a category, yes/no, a date; churn depends on spend, plan and tenure."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    spend = rng.gamma(2.0, 30.0, rows).round(2)
    tenure = rng.integers(1, 60, rows)
    active = rng.choice(["yes", "no"], rows)
    signup = [f"2024-{1 + m:02d}-{1 + d:02d}" for m, d in zip(rng.integers(0, 12, rows), rng.integers(0, 28, rows))]
    score = -0.03 * spend + 0.8 * (plan == "basic") - 0.04 * tenure + 1.5 + rng.normal(0, 0.5, rows)
    churned = np.where(score > 0, "churned", "stayed")
    lines = ["spend,plan,tenure,active,signup,outcome"]
    lines += [f"{s},{p},{t},{a},{d},{c}" for s, p, t, a, d, c in zip(spend, plan, tenure, active, signup, churned)]
    return ("\n".join(lines) + "\n").encode()


def test_algorithms_race_in_one_experiment_and_rank_live(server, connect):
    api = server.api
    client = connect(server)
    upload = api.request("POST", "/api/datasets", files={"file": ("churn.csv", io.BytesIO(churn_csv()), "text/csv")},
                         data={"name": "churn"})
    assert upload.status_code == 201, upload.text
    dataset = upload.json()
    assert (dataset["task"], dataset["meta"]["classes"]) == ("classification", ["churned", "stayed"])
    assert dataset["splits"] == {"train": 280, "val": 60, "test": 60}

    experiment = api.post("/api/experiments", {"name": "churn models"}, expect=201)
    started = {}
    for algorithm, params in (("random_forest", {"n_estimators": 40}), ("gradient_boosting", {"n_estimators": 40}),
                              ("linear", {})):
        job = api.post(f"/api/experiments/{experiment['id']}/runs",
                       {"algorithm": algorithm, "dataset_id": dataset["id"], "params": params, "steps": 4},
                       expect=202)
        started[algorithm] = job["run_id"]

    for algorithm, run_id in started.items():
        complete = client.wait_for("training_complete", run_id, timeout=120)
        updates = client.payloads("training_update", run_id)
        assert [u["step"] for u in updates] == list(range(1, len(updates) + 1)) and len(updates) == 4
        assert all(u["experiment_id"] == experiment["id"] and u["algorithm"] == algorithm for u in updates)
        assert all(u["held_out_split"] == "val" and u["metrics"]["val"]["n"] == 60 for u in updates)
        sizes = [u["size"] for u in updates]
        assert sizes == sorted(sizes) and len(set(sizes)) == 4, sizes
        assert complete["metrics"]["test"]["n"] == 60
        # what was pushed is what was stored
        stored = api.get(f"/api/runs/{run_id}/metrics")["metrics"]
        assert [(m["seq"], m["metrics"]) for m in stored] == [(u["seq"], u["metrics"]) for u in updates]

    board = api.get(f"/api/experiments/{experiment['id']}/leaderboard?metric=f1&split=test")
    assert {e["run_id"] for e in board["entries"]} == set(started.values())
    values = [e["value"] for e in board["entries"]]
    assert values == sorted(values, reverse=True) and board["entries"][0]["rank"] == 1
    assert board["entries"][0]["value"] > 0.6  # churn is learnable from spend, plan and tenure

    # the best model answers raw rows the way the file wrote them
    best = board["entries"][0]["run_id"]
    answer = api.post(f"/api/runs/{best}/predict", {"rows": [
        {"spend": 5.0, "plan": "basic", "tenure": 2, "active": "yes", "signup": "2024-05-03"},
        {"spend": 250.0, "plan": "pro", "tenure": 55, "active": "no", "signup": "2024-01-20"}]})
    assert [p["predicted"] for p in answer["predictions"]] == ["churned", "stayed"]


def test_a_long_algorithm_run_stops_on_cancel(server, connect):
    api = server.api
    client = connect(server)
    dataset = api.post("/api/datasets", {"generator": "classification",
                                         "params": {"n_samples": 4000, "n_features": 20}}, expect=201)
    job = api.post("/api/experiments/default/runs",
                   {"algorithm": "gradient_boosting", "dataset_id": dataset["id"],
                    "params": {"n_estimators": 1000, "max_depth": 5}, "steps": 100}, expect=202)
    run_id = job["run_id"]
    client.wait_for("training_update", run_id, timeout=60)
    api.post(f"/api/runs/{run_id}/cancel")
    cancelled = client.wait_for("training_cancelled", run_id, timeout=30)
    assert cancelled["status"] == "cancelled"
    run = api.wait_for_run(run_id)
    assert run["status"] == "cancelled" and 1 <= run["epochs_done"] < 100 and run["has_model"] is False
