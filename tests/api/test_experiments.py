"""Experiments over the API: create, list, describe and delete them; start runs in them (and what is
refused); rank their runs on the leaderboard; follow them live in their Socket.IO room.

Two module apps: `shared` (default settings) holds two small experiments trained once, a
classification one and a regression one, that the leaderboard tests read; `story` (broadcast off,
one run at a time) follows an experiment's room and deletes an experiment while one of its runs
trains and another waits in the queue.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import (
    create_experiment,
    create_network,
    events_named,
    run_in,
    wait_for_epochs,
    wait_for_run,
    wait_until,
)

SKLEARN_RUN = {"algorithm": "random_forest", "dataset_id": "iris", "params": {"n_estimators": 20}, "steps": 3}
LONG_RUN = {"algorithm": "gradient_boosting", "dataset_id": "digits", "params": {"n_estimators": 1000},
            "steps": 100}  # about a minute of boosting: it is still training when a test stops it


@pytest.fixture(scope="module")
def shared(make_module_app):
    return make_module_app(warm_workers=2, max_concurrent_runs=2)


@pytest.fixture
def client(shared):
    return shared.test_client()


def leaderboard(client, experiment_id: str, **query) -> dict:
    """GET the experiment's leaderboard, asserting it answered; the response JSON."""
    response = client.get(f"/api/experiments/{experiment_id}/leaderboard", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def competition_ranks(values: list[float], higher_better: bool) -> list[int]:
    """1 + how many values are strictly better: equal values share a rank and the next rank skips."""
    return [1 + sum((other > v) if higher_better else (other < v) for other in values) for v in values]


# -- create, list, describe, delete -----------------------------------------------------------------


def test_creating_an_experiment_returns_it_empty(client):
    body = create_experiment(client, name="Trees vs. boosting", description="iris, seed 0")
    assert body["experiment_id"] == body["id"] and len(body["id"]) == 12
    assert (body["name"], body["description"], body["is_default"]) == ("Trees vs. boosting", "iris, seed 0", False)
    assert (body["runs"], body["active_runs"]) == (0, 0)
    assert isinstance(body["created_at"], float)
    detail = client.get(f"/api/experiments/{body['id']}").get_json()
    assert detail == body | {"run_list": []}


def test_an_experiment_without_a_name_gets_one(client):
    body = create_experiment(client)
    assert body["name"] == f"experiment-{body['id'][:6]}" and body["description"] == ""


def test_creating_an_experiment_is_announced_to_every_client(shared, client):
    sio = shared.extensions["socketio"].test_client(shared, flask_test_client=client)
    body = create_experiment(client, name="announced")
    (created,) = [e for e in events_named(sio.get_received(), "experiment_created")
                  if e["experiment_id"] == body["id"]]
    assert created["name"] == "announced"
    sio.disconnect()


@pytest.mark.parametrize("body, error, field", [
    ({"name": ""}, "validation_error", "name"),
    ({"name": "../secrets"}, "validation_error", "name"),
    ({"name": "a/b"}, "validation_error", "name"),
    ({"name": " leading space"}, "validation_error", "name"),
    ({"name": "x" * 101}, "validation_error", "name"),
    ({"name": 5}, "validation_error", None),
    ({"name": "ok", "description": "x" * 2001}, "bad_parameter", "description"),
], ids=["empty", "dotdot", "slash", "leading-space", "too-long", "number", "long-description"])
def test_a_bad_experiment_is_refused_and_not_created(client, body, error, field):
    before = client.get("/api/experiments").get_json()["total"]
    response = client.post("/api/experiments", json=body)
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["error"] == error and answer["message"]
    if field:
        assert answer["detail"]["field"] == field
    assert client.get("/api/experiments").get_json()["total"] == before


def test_experiments_are_listed_newest_first_with_pages(client):
    made = [create_experiment(client, name=f"page-{i}")["id"] for i in range(3)]
    listing = client.get("/api/experiments?limit=500").get_json()
    ids = [e["id"] for e in listing["experiments"]]
    assert listing["total"] == len(ids) and (listing["limit"], listing["offset"]) == (500, 0)
    assert [i for i in ids if i in made] == made[::-1]
    assert ids[-1] == "default"  # created when the server first started
    first, second = (client.get(f"/api/experiments?limit=2&offset={offset}").get_json() for offset in (0, 2))
    assert [e["id"] for e in first["experiments"] + second["experiments"]] == ids[:4]
    assert first["total"] == second["total"] == listing["total"]


def test_the_default_experiment_always_exists_and_cannot_be_deleted(client):
    default = client.get("/api/experiments/default").get_json()
    assert (default["id"], default["is_default"], default["name"]) == ("default", True, "Default")
    response = client.delete("/api/experiments/default")
    assert response.status_code == 409
    assert response.get_json()["error"] == "default_experiment"
    assert client.get("/api/experiments/default").status_code == 200


def test_deleting_an_empty_experiment(client):
    experiment_id = create_experiment(client, name="short-lived")["id"]
    response = client.delete(f"/api/experiments/{experiment_id}")
    assert response.status_code == 200
    assert response.get_json() == {"experiment_id": experiment_id, "deleted": True, "deleted_runs": 0}
    assert client.get(f"/api/experiments/{experiment_id}").status_code == 404
    assert experiment_id not in [e["id"] for e in client.get("/api/experiments?limit=500").get_json()["experiments"]]
    assert client.delete(f"/api/experiments/{experiment_id}").status_code == 404


@pytest.mark.parametrize("request_", [
    ("get", "/api/experiments/nope"),
    ("delete", "/api/experiments/nope"),
    ("get", "/api/experiments/nope/leaderboard"),
])
def test_an_unknown_experiment_is_not_found(client, request_):
    method, url = request_
    response = getattr(client, method)(url)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found" and "nope" in response.get_json()["message"]


# -- starting runs: what is refused -----------------------------------------------------------------


def run_body(**changes) -> dict:
    body = {**SKLEARN_RUN, **changes}
    return {k: v for k, v in body.items() if v is not None}


REFUSED = [
    # (body, status, error code, field named in the answer)
    (run_body(algorithm="xgboost"), 400, "unknown_algorithm", "algorithm"),
    (run_body(algorithm=None), 400, "unknown_algorithm", "algorithm"),
    (run_body(dataset_id=None), 400, "bad_parameter", "dataset_id"),
    (run_body(dataset_id="no-such-dataset"), 404, "not_found", "dataset_id"),
    (run_body(params={"n_estimators": "20"}), 400, "bad_parameter", "params.n_estimators"),
    (run_body(params={"n_estimators": 0}), 400, "bad_parameter", "params.n_estimators"),
    (run_body(params={"n_estimators": 1001}), 400, "bad_parameter", "params.n_estimators"),
    (run_body(params={"n_estimators": 2.5}), 400, "bad_parameter", "params.n_estimators"),
    (run_body(params={"n_estimators": True}), 400, "bad_parameter", "params.n_estimators"),
    (run_body(params={"max_depth": 0}), 400, "bad_parameter", "params.max_depth"),
    (run_body(params={"bootstrap": 1}), 400, "bad_parameter", "params.bootstrap"),
    (run_body(params={"max_features": "most"}), 400, "bad_parameter", "params.max_features"),
    (run_body(params={"criterion": "squared_error"}), 400, "bad_parameter", "params.criterion"),  # regression's
    (run_body(params={"learning_rate": 0.1}), 400, "bad_parameter", "params.learning_rate"),  # not a forest's
    (run_body(algorithm="gradient_boosting", params={"loss": "huber"}), 400, "bad_parameter", "params.loss"),
    (run_body(algorithm="mlp", params={"hidden_layer_sizes": []}), 400, "bad_parameter",
     "params.hidden_layer_sizes"),
    (run_body(algorithm="mlp", params={"hidden_layer_sizes": [2000]}), 400, "bad_parameter",
     "params.hidden_layer_sizes"),
    (run_body(algorithm="mlp", params={"epochs": 0}), 400, "bad_parameter", "params.epochs"),
    (run_body(algorithm="mlp", params={"epochs": 501}), 400, "bad_parameter", "params.epochs"),
    (run_body(algorithm="mlp", params={"learning_rate_init": 0}), 400, "bad_parameter", "params.learning_rate_init"),
    (run_body(algorithm="svm", params={"kernel": "cubic"}), 400, "bad_parameter", "params.kernel"),
    (run_body(algorithm="knn", params={"n_neighbors": 101}), 400, "bad_parameter", "params.n_neighbors"),
    (run_body(algorithm="naive_bayes", params={"var_smoothing": 2.0}), 400, "bad_parameter",
     "params.var_smoothing"),
    (run_body(algorithm="naive_bayes", dataset_id="diabetes", params={}), 400, "unsupported_task", None),
    (run_body(dataset_id="diabetes", params={"criterion": "gini"}), 400, "bad_parameter", "params.criterion"),
    (run_body(steps=0), 400, "bad_parameter", "steps"),
    (run_body(steps=101), 400, "bad_parameter", "steps"),
    (run_body(steps="5"), 400, "bad_parameter", "steps"),
    (run_body(steps=2.5), 400, "bad_parameter", "steps"),
    (run_body(steps=True), 400, "bad_parameter", "steps"),
    (run_body(seed=-1), 400, "bad_parameter", "seed"),
    (run_body(seed=2**31), 400, "bad_parameter", "seed"),
    (run_body(seed="zero"), 400, "validation_error", None),
    (run_body(params=[20]), 400, "validation_error", None),
    ({"network_id": "no-such-network", "epochs": 1}, 404, "not_found", None),
]


def refused_id(body: dict) -> str:
    """What a refused body changes from SKLEARN_RUN, e.g. `steps=101` or `no-dataset_id`."""
    changed = [f"{k}={json.dumps(v)}" for k, v in body.items() if SKLEARN_RUN.get(k) != v]
    return ",".join(changed + [f"no-{k}" for k in SKLEARN_RUN if k not in body])


@pytest.mark.parametrize("body, status, error, field", REFUSED, ids=[refused_id(case[0]) for case in REFUSED])
def test_a_bad_run_request_is_refused_and_creates_no_run(client, body, status, error, field):
    before = client.get("/api/runs").get_json()["total"]
    response = client.post("/api/experiments/default/runs", json=body)
    assert response.status_code == status, response.get_json()
    answer = response.get_json()
    assert answer["error"] == error and answer["message"]
    if field is not None:
        assert answer["detail"]["field"] == field
        if field.startswith("params."):
            assert field in answer["message"]
    assert client.get("/api/runs").get_json()["total"] == before


def test_naive_bayes_says_which_tasks_it_does(client):
    answer = client.post("/api/experiments/default/runs",
                         json=run_body(algorithm="naive_bayes", dataset_id="diabetes", params={})).get_json()
    assert "regression" in answer["message"] and "classification" in answer["message"]


def test_an_unknown_algorithm_lists_the_known_ones(client):
    answer = client.post("/api/experiments/default/runs", json=run_body(algorithm="xgboost")).get_json()
    assert "random_forest" in answer["message"] and "naive_bayes" in answer["message"]


def test_a_run_in_an_unknown_experiment_is_not_found(client):
    before = client.get("/api/runs").get_json()["total"]
    response = client.post("/api/experiments/no-such-experiment/runs", json=SKLEARN_RUN)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    assert client.get("/api/runs").get_json()["total"] == before


# -- the leaderboard --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def board(shared) -> dict:
    """A classification experiment: a logistic regression and its rerun (a tie), neighbours on iris,
    a one-question tree, and a network on iris; name -> finished run."""
    client = shared.test_client()
    experiment = create_experiment(client, name="classifiers", description="breast cancer and iris")
    eid = experiment["id"]
    network_id = create_network(client, dataset_id="iris", layer_sizes=[4, 8, 3])["network_id"]
    started = {
        "best": run_in(client, eid, algorithm="linear", dataset_id="breast_cancer", steps=3),
        "knn": run_in(client, eid, algorithm="knn", dataset_id="iris", steps=3),
        "stump": run_in(client, eid, algorithm="decision_tree", dataset_id="breast_cancer", params={"max_depth": 1},
                       steps=3),
        "network": run_in(client, eid, network_id=network_id, epochs=2),
    }
    runs = {name: wait_for_run(client, body["run_id"]) for name, body in started.items()}
    tie = client.post(f"/api/runs/{runs['best']['run_id']}/rerun")
    assert tie.status_code == 202, tie.get_json()
    runs["tie"] = wait_for_run(client, tie.get_json()["run_id"])
    assert {run["status"] for run in runs.values()} == {"completed"}, {n: r["error"] for n, r in runs.items()}
    return {"experiment": experiment, "network_id": network_id, "started": started, "runs": runs,
            "ids": {name: run["run_id"] for name, run in runs.items()}}


@pytest.fixture(scope="module")
def regression_board(shared) -> dict:
    """A regression experiment on diabetes: ridge, neighbours and a two-level tree; name -> finished run."""
    client = shared.test_client()
    eid = create_experiment(client, name="regressors")["id"]
    started = {
        "linear": run_in(client, eid, algorithm="linear", dataset_id="diabetes", steps=3),
        "knn": run_in(client, eid, algorithm="knn", dataset_id="diabetes", steps=3),
        "tree": run_in(client, eid, algorithm="decision_tree", dataset_id="diabetes", params={"max_depth": 2},
                      steps=3),
    }
    runs = {name: wait_for_run(client, body["run_id"]) for name, body in started.items()}
    assert {run["status"] for run in runs.values()} == {"completed"}
    return {"id": eid, "runs": runs}


def test_a_network_trains_in_an_experiment_beside_algorithms(board, client):
    body = board["started"]["network"]
    assert (body["status"], body["network_id"], body["algorithm"]) == ("training_started", board["network_id"],
                                                                       "network")
    assert body["experiment_id"] == board["experiment"]["id"]
    run = board["runs"]["network"]
    assert (run["experiment_id"], run["algorithm"], run["total_epochs"]) == (board["experiment"]["id"], "network", 2)
    assert set(run["metrics"]) == {"train", "test"} and run["metrics"]["test"]["n"] == 30
    # the network's own history knows nothing of experiments: it just has a new version
    assert client.get(f"/api/networks/{board['network_id']}").get_json()["current_version"] == 1


def test_the_experiment_lists_its_runs_newest_first(board, client):
    detail = client.get(f"/api/experiments/{board['experiment']['id']}").get_json()
    assert (detail["runs"], detail["active_runs"]) == (5, 0)
    listed = [r["run_id"] for r in detail["run_list"]]
    assert set(listed) == set(board["ids"].values())
    assert listed[0] == board["ids"]["tie"]  # the rerun came last
    created = [r["created_at"] for r in detail["run_list"]]
    assert created == sorted(created, reverse=True)
    filtered = client.get(f"/api/runs?experiment_id={board['experiment']['id']}").get_json()
    assert sorted(r["run_id"] for r in filtered["runs"]) == sorted(listed) and filtered["total"] == 5


def test_the_leaderboard_ranks_best_first_and_ties_share_a_rank(board, client):
    ranked = leaderboard(client, board["experiment"]["id"], metric="f1", split="test")
    assert (ranked["experiment_id"], ranked["metric"], ranked["split"], ranked["direction"]) == (
        board["experiment"]["id"], "f1", "test", "max")
    entries = ranked["entries"]
    assert {e["run_id"] for e in entries} == set(board["ids"].values()) and ranked["unranked"] == []
    values = [e["value"] for e in entries]
    assert values == sorted(values, reverse=True)
    assert [e["rank"] for e in entries] == competition_ranks(values, higher_better=True)
    # a rerun repeats the numbers, so the logistic regression and its rerun tie at the top: 1, 1, 3
    assert [e["rank"] for e in entries][:3] == [1, 1, 3]
    assert [e["run_id"] for e in entries[:2]] == [board["ids"]["best"], board["ids"]["tie"]]
    assert entries[0]["value"] == entries[1]["value"] == board["runs"]["best"]["metrics"]["test"]["f1"]


def test_a_limited_leaderboard_shows_the_top_and_counts_the_rest(board, client):
    whole = leaderboard(client, board["experiment"]["id"], metric="f1", split="test")
    top = leaderboard(client, board["experiment"]["id"], metric="f1", split="test", limit=2)
    assert top["entries"] == whole["entries"][:2]
    assert top["counts"] == whole["counts"] == {"ranked": len(whole["entries"]), "unranked": 0, "live": 0}
    assert top["dataset_ids"] == sorted({e["dataset_id"] for e in whole["entries"]})
    assert top["network_runs"] is any(e["algorithm"] == "network" for e in whole["entries"])


def test_a_leaderboard_entry_shows_the_run_behind_it(board, client):
    by_id = {e["run_id"]: e for e in leaderboard(client, board["experiment"]["id"], metric="f1")["entries"]}
    for name, run in board["runs"].items():
        entry = by_id[run["run_id"]]
        assert (entry["algorithm"], entry["status"], entry["live"]) == (run["algorithm"], "completed", False), name
        assert (entry["params"], entry["seed"]) == (run["params"], run["seed"]), name
        assert entry["metrics"] == run["metrics"]["test"] and entry["value"] == run["metrics"]["test"]["f1"], name
    assert by_id[board["ids"]["network"]]["network_id"] == board["network_id"]


def test_the_default_metric_is_accuracy_on_the_test_split(board, client):
    ranked = leaderboard(client, board["experiment"]["id"])
    assert (ranked["metric"], ranked["split"], ranked["direction"]) == ("accuracy", "test", "max")
    values = [e["value"] for e in ranked["entries"]]
    assert values == sorted(values, reverse=True) and len(values) == 5
    assert values == [next(r for r in board["runs"].values() if r["run_id"] == e["run_id"])["metrics"]["test"][
        "accuracy"] for e in ranked["entries"]]


def test_runs_without_the_metric_are_listed_apart(board, client):
    # ROC AUC exists for two classes only: the iris runs (three species) have none
    ranked = leaderboard(client, board["experiment"]["id"], metric="roc_auc")
    assert [e["run_id"] for e in ranked["entries"]][:2] == [board["ids"]["best"], board["ids"]["tie"]]
    assert {e["run_id"] for e in ranked["entries"]} == {board["ids"][n] for n in ("best", "tie", "stump")}
    assert [e["rank"] for e in ranked["entries"]] == [1, 1, 3]
    assert {e["run_id"] for e in ranked["unranked"]} == {board["ids"]["knn"], board["ids"]["network"]}
    assert all(e["value"] is None and "rank" not in e for e in ranked["unranked"])


def test_built_in_datasets_have_no_validation_metrics_to_rank(board, client):
    ranked = leaderboard(client, board["experiment"]["id"], split="val")
    assert ranked["entries"] == []
    assert {e["run_id"] for e in ranked["unranked"]} == set(board["ids"].values())


def test_a_loss_ranks_lowest_first(board, client):
    ranked = leaderboard(client, board["experiment"]["id"], metric="log_loss")
    assert ranked["direction"] == "min"
    values = [e["value"] for e in ranked["entries"]]
    assert values == sorted(values) and len(values) >= 4
    assert [e["rank"] for e in ranked["entries"]] == competition_ranks(values, higher_better=False)


def test_training_split_metrics_can_be_ranked_too(board, client):
    ranked = leaderboard(client, board["experiment"]["id"], metric="accuracy", split="train")
    by_id = {e["run_id"]: e for e in ranked["entries"]}
    assert by_id[board["ids"]["best"]]["value"] == board["runs"]["best"]["metrics"]["train"]["accuracy"]
    assert len(by_id) == 5


@pytest.mark.parametrize("metric", ["rmse", "mae"])
def test_a_regression_error_ranks_lowest_first(regression_board, client, metric):
    ranked = leaderboard(client, regression_board["id"], metric=metric)
    assert (ranked["metric"], ranked["direction"]) == (metric, "min")
    values = [e["value"] for e in ranked["entries"]]
    assert values == sorted(values) and ranked["unranked"] == []
    assert [e["rank"] for e in ranked["entries"]] == [1, 2, 3]
    runs = regression_board["runs"]
    assert [e["algorithm"] for e in ranked["entries"]] == ["linear", "knn", "decision_tree"]
    assert values == [runs[n]["metrics"]["test"][metric] for n in ("linear", "knn", "tree")]


def test_a_regression_experiment_is_ranked_by_r2_by_default(regression_board, client):
    ranked = leaderboard(client, regression_board["id"])
    assert (ranked["metric"], ranked["direction"]) == ("r2", "max")
    values = [e["value"] for e in ranked["entries"]]
    assert values == sorted(values, reverse=True)
    assert [e["algorithm"] for e in ranked["entries"]] == ["linear", "knn", "decision_tree"]


def test_an_empty_experiment_has_an_empty_leaderboard(client):
    experiment_id = create_experiment(client, name="empty-board")["id"]
    ranked = leaderboard(client, experiment_id)
    assert (ranked["metric"], ranked["entries"], ranked["unranked"]) == ("accuracy", [], [])


def test_a_run_stopped_early_is_listed_but_not_ranked(client):
    # it keeps its last step's numbers, which are not a result to rank against finished runs
    experiment_id = create_experiment(client, name="stopped-early")["id"]
    run_id = run_in(client, experiment_id, **LONG_RUN)["run_id"]
    running = wait_for_epochs(client, run_id, 1)
    assert leaderboard(client, experiment_id, split="test")["entries"][0]["run_id"] == run_id  # live: ranked
    client.post(f"/api/runs/{run_id}/cancel")
    stopped = wait_for_run(client, run_id)
    assert stopped["status"] == "cancelled" and stopped["metrics"]["test"]["accuracy"] is not None
    board = leaderboard(client, experiment_id, split="test")
    assert board["entries"] == []
    assert [(e["run_id"], e["status"], e["value"]) for e in board["unranked"]] == [(run_id, "cancelled", None)]
    assert running["status"] == "running"


@pytest.mark.parametrize("query, status, error", [
    ({"limit": 0}, 400, "validation_error"),
    ({"limit": "ten"}, 400, "validation_error"),
    ({"metric": "auc"}, 400, "unknown_metric"),
    ({"metric": ""}, 400, "unknown_metric"),
    ({"split": "validation"}, 400, "validation_error"),
    ({"split": "holdout", "metric": "f1"}, 400, "validation_error"),
])
def test_a_bad_leaderboard_query_is_refused(client, query, status, error):
    response = client.get("/api/experiments/default/leaderboard", query_string=query)
    assert response.status_code == status
    answer = response.get_json()
    assert answer["error"] == error
    if error == "unknown_metric":
        assert "rmse" in answer["message"] and "accuracy" in answer["message"]


# -- rooms, and deleting an experiment while it trains ------------------------------------------------


@pytest.fixture(scope="module")
def story(make_module_app):
    """Broadcast off, one run at a time. Clients subscribe to experiments `watched` and `other`; a run
    trains in `watched`. Then `doomed` gets a finished run, a running one and a queued one, and is deleted."""
    app = make_module_app(broadcast_events=False, max_concurrent_runs=1, warm_workers=1)
    client = app.test_client()
    livetrain = app.extensions["livetrain"]
    ids = {name: create_experiment(client, name=name)["id"] for name in ("watched", "other", "doomed")}
    s = {"app": app, "ids": ids, "acks": {}, "listeners": {}}
    for name in ("watched", "other"):
        sio = app.extensions["socketio"].test_client(app, flask_test_client=client)
        s["acks"][name] = sio.emit("subscribe", {"experiment_id": ids[name]}, callback=True)
        s["listeners"][name] = sio

    s["watched_run"] = wait_for_run(client, run_in(client, ids["watched"], algorithm="knn", dataset_id="iris",
                                                  steps=3)["run_id"])

    doomed = ids["doomed"]
    s["finished"] = wait_for_run(client, run_in(client, doomed, algorithm="decision_tree", dataset_id="iris",
                                               steps=2)["run_id"])
    s["model_dir"] = livetrain.settings.models_dir / "runs" / s["finished"]["run_id"]
    s["model_dir_before"] = s["model_dir"].is_dir()
    long_id = run_in(client, doomed, **LONG_RUN)["run_id"]
    s["running"] = wait_for_epochs(client, long_id, 1)
    s["queued"] = client.get(f"/api/runs/{run_in(client, doomed, **SKLEARN_RUN)['run_id']}").get_json()
    s["run_ids"] = [s["finished"]["run_id"], long_id, s["queued"]["run_id"]]
    s["detail_before"] = client.get(f"/api/experiments/{doomed}").get_json()
    s["board_before"] = leaderboard(client, doomed)

    s["delete"] = client.delete(f"/api/experiments/{doomed}")
    # the cancelled worker reports until it lets go of the run: only then can nothing more be written
    wait_until(lambda: long_id not in livetrain.runner.running(), timeout=30, what="the runner to let go")
    s["after"] = {
        "experiment": client.get(f"/api/experiments/{doomed}"),
        "runs": [client.get(f"/api/runs/{run_id}") for run_id in s["run_ids"]],
        "events": [client.get(f"/api/runs/{run_id}/events") for run_id in s["run_ids"]],
        "stored_events": [livetrain.store.list_events(run_id) for run_id in s["run_ids"]],
        "listed": client.get(f"/api/runs?experiment_id={doomed}").get_json(),
        "experiments": [e["id"] for e in client.get("/api/experiments?limit=500").get_json()["experiments"]],
    }
    s["received"] = {name: sio.get_received() for name, sio in s["listeners"].items()}
    for sio in s["listeners"].values():
        sio.disconnect()
    return s


def test_a_client_subscribes_to_an_experiments_room(story):
    for name in ("watched", "other"):
        assert story["acks"][name] == {"ok": True, "room": f"experiment:{story['ids'][name]}"}


def test_a_subscriber_hears_every_step_of_the_experiments_runs(story):
    run = story["watched_run"]
    assert run["status"] == "completed"
    updates = [u for u in events_named(story["received"]["watched"], "training_update")
               if u["run_id"] == run["run_id"]]
    assert [u["step"] for u in updates] == list(range(1, run["total_epochs"] + 1))
    assert {u["experiment_id"] for u in updates} == {story["ids"]["watched"]}
    (complete,) = events_named(story["received"]["watched"], "training_complete")
    assert complete["run_id"] == run["run_id"] and complete["metrics"] == run["metrics"]


def test_a_subscriber_to_another_experiment_hears_none_of_its_training(story):
    training = {"training_started", "training_update", "training_complete", "training_cancelled"}
    assert [e for e in story["received"]["other"] if e["name"] in training] == []
    # and the watched experiment's listener heard nothing of the doomed experiment's runs
    assert {e["args"][0]["experiment_id"] for e in story["received"]["watched"] if e["name"] in training} == {
        story["ids"]["watched"]}


def test_new_runs_and_deletions_reach_every_client(story):
    for name in ("watched", "other"):
        created = {e["run_id"] for e in events_named(story["received"][name], "run_created")}
        assert set(story["run_ids"]) | {story["watched_run"]["run_id"]} <= created
        deleted = events_named(story["received"][name], "experiment_deleted")
        assert [e["experiment_id"] for e in deleted] == [story["ids"]["doomed"]]


def test_the_leaderboard_shows_live_and_waiting_runs(story):
    finished_id, running_id, queued_id = story["run_ids"]
    assert story["running"]["status"] == "running" and story["queued"]["status"] == "queued"
    entries = {e["run_id"]: e for e in story["board_before"]["entries"]}
    unranked = {e["run_id"]: e for e in story["board_before"]["unranked"]}
    assert (entries[finished_id]["status"], entries[finished_id]["live"]) == ("completed", False)
    # a running run is ranked by its latest step, flagged live: its value still changes
    assert (entries[running_id]["status"], entries[running_id]["live"]) == ("running", True)
    assert set(unranked) == {queued_id}
    assert (unranked[queued_id]["status"], unranked[queued_id]["live"], unranked[queued_id]["value"]) == (
        "queued", True, None)
    assert (story["detail_before"]["runs"], story["detail_before"]["active_runs"]) == (3, 2)


def test_deleting_an_experiment_cancels_and_removes_its_runs(story):
    response = story["delete"]
    assert response.status_code == 200
    assert response.get_json() == {"experiment_id": story["ids"]["doomed"], "deleted": True, "deleted_runs": 3}
    after = story["after"]
    assert after["experiment"].status_code == 404
    assert story["ids"]["doomed"] not in after["experiments"]
    assert [r.status_code for r in after["runs"]] == [404, 404, 404]
    assert [r.status_code for r in after["events"]] == [404, 404, 404]
    assert after["stored_events"] == [[], [], []]
    assert (after["listed"]["total"], after["listed"]["runs"]) == (0, [])


def test_deleting_an_experiment_removes_its_models_from_disk(story):
    assert story["model_dir_before"] is True
    assert not story["model_dir"].exists()


def test_the_other_experiments_keep_their_runs(story):
    client = story["app"].test_client()
    run = client.get(f"/api/runs/{story['watched_run']['run_id']}").get_json()
    assert run["status"] == "completed" and run["experiment_id"] == story["ids"]["watched"]
    assert client.get(f"/api/experiments/{story['ids']['watched']}").get_json()["runs"] == 1


def test_deleting_an_experiment_frees_a_network_that_was_training_in_it(story):
    client = story["app"].test_client()
    livetrain = story["app"].extensions["livetrain"]
    experiment_id = create_experiment(client, name="network-doomed")["id"]
    # wide layers and big batches: a mini-batch takes long enough that the worker is still in one when the
    # delete (a few milliseconds) is done, so its "cancelled" report always comes after the run is gone
    network_id = create_network(client, dataset_id="digits", layer_sizes=[64, 2048, 2048, 10])["network_id"]
    run_id = run_in(client, experiment_id, network_id=network_id, epochs=2000, mini_batch_size=1000)["run_id"]
    wait_for_epochs(client, run_id, 1)
    assert client.delete(f"/api/experiments/{experiment_id}").get_json()["deleted_runs"] == 1
    wait_until(lambda: run_id not in livetrain.runner.running(), timeout=30, what="the runner to let go")
    assert livetrain.store.list_events(run_id) == []
    # no run of it is active any more, and it never finished one: back to "created"
    network = client.get(f"/api/networks/{network_id}").get_json()
    assert network["status"] == "created"
