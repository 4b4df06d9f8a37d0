"""The nine scikit-learn algorithms over the API: the catalog, runs end to end with their live events,
results, reruns, predictions, model downloads and cancelling.

One module app trains every case once, all at the start (two at a time, on warm workers); the
tests then read what the runs left: their JSON, their stored events and what a Socket.IO client
was pushed meanwhile.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass, field
from importlib import metadata

import pytest

from tests.helpers import run_in, wait_for_epochs, wait_for_run

ALGORITHMS = ["random_forest", "gradient_boosting", "adaboost", "mlp", "svm", "linear", "decision_tree", "knn",
              "naive_bayes"]
TREES = {"random_forest", "gradient_boosting", "adaboost", "decision_tree"}
HAS_IMPORTANCES = TREES | {"linear"}
SIZE_LABELS = {"random_forest": "trees", "gradient_boosting": "estimators", "adaboost": "estimators",
               "mlp": "epoch", "svm": "rows", "linear": "rows", "decision_tree": "rows", "knn": "rows",
               "naive_bayes": "rows"}
SPLIT_SIZES = {"iris": (120, 30), "breast_cancer": (455, 114), "diabetes": (353, 89)}  # (train, test) rows
STEPS = 4
MLP = {"epochs": 5, "hidden_layer_sizes": [32], "learning_rate_init": 0.05}
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]  # a setosa (class 0) and a virginica (class 2)


@dataclass(frozen=True)
class Case:
    """One run to train: an algorithm on a dataset, and the least a sensible model scores on its test split."""

    algorithm: str
    dataset_id: str
    params: dict = field(default_factory=dict)
    floors: dict = field(default_factory=dict)  # metric -> lowest acceptable test value

    @property
    def id(self) -> str:
        return f"{self.algorithm}-{self.dataset_id}"

    @property
    def task(self) -> str:
        return "regression" if self.dataset_id == "diabetes" else "classification"


def iris(algorithm, floor=0.85, **params) -> Case:
    """A three-species case, judged by accuracy and macro F1."""
    return Case(algorithm, "iris", params, {"accuracy": floor, "f1": floor - 0.05})


def diabetes(algorithm, floor=0.15, **params) -> Case:
    """A regression case, judged by R² (0 is no better than predicting the mean)."""
    return Case(algorithm, "diabetes", params, {"r2": floor})


def breast_cancer(algorithm, **params) -> Case:
    """A two-class case: accuracy, and ROC AUC, which only two classes have."""
    return Case(algorithm, "breast_cancer", params, {"accuracy": 0.85, "roc_auc": 0.9})


CASES = [
    iris("random_forest", n_estimators=20),
    iris("gradient_boosting", n_estimators=20),
    iris("adaboost", n_estimators=20),
    iris("mlp", floor=0.75, **MLP),  # five epochs: well above chance (1/3), not yet good
    iris("svm"),
    iris("linear"),
    iris("decision_tree", max_depth=3),
    iris("knn"),
    iris("naive_bayes"),
    diabetes("random_forest", n_estimators=20),
    diabetes("gradient_boosting", n_estimators=20),
    diabetes("adaboost", n_estimators=20),
    diabetes("mlp", **MLP),
    diabetes("svm"),
    diabetes("linear"),
    diabetes("decision_tree", floor=0.05, max_depth=3),  # one shallow tree explains little of this target
    diabetes("knn"),
    breast_cancer("random_forest", n_estimators=20),
    breast_cancer("naive_bayes"),
]
CASE_IDS = [case.id for case in CASES]
TREE_CASES = [case for case in CASES if case.algorithm in TREES]


@dataclass
class Zoo:
    """The trained cases: the app, their experiment, and per case id the start answer, run, events."""

    app: object
    experiment_id: str
    started: dict
    runs: dict
    stored: dict  # case id -> the run's stored events (GET /api/runs/{id}/events)
    pushed: dict  # case id -> [(event name, payload)] the Socket.IO client received for the run


@pytest.fixture(scope="module")
def shared(make_module_app):
    return make_module_app(warm_workers=2, max_concurrent_runs=2)


@pytest.fixture
def client(shared):
    return shared.test_client()


@pytest.fixture(scope="module")
def zoo(shared) -> Zoo:
    """Every case started at once in one experiment, with a Socket.IO client listening until all have ended."""
    client = shared.test_client()
    sio = shared.extensions["socketio"].test_client(shared, flask_test_client=client)
    experiment_id = client.post("/api/experiments", json={"name": "zoo"}).get_json()["experiment_id"]
    started = {case.id: run_in(client, experiment_id, algorithm=case.algorithm, dataset_id=case.dataset_id,
                              params=case.params, seed=0, steps=STEPS) for case in CASES}
    runs = {key: wait_for_run(client, body["run_id"]) for key, body in started.items()}
    stored = {key: client.get(f"/api/runs/{run['run_id']}/events").get_json()["events"] for key, run in runs.items()}
    received = sio.get_received()
    sio.disconnect()
    pushed = {key: [(e["name"], e["args"][0]) for e in received
                    if e["args"] and isinstance(e["args"][0], dict) and e["args"][0].get("run_id") == run["run_id"]]
              for key, run in runs.items()}
    return Zoo(shared, experiment_id, started, runs, stored, pushed)


def catalog_defaults(client, algorithm: str, task: str) -> dict:
    """The defaults GET /api/algorithms lists for the parameters that exist for `task`."""
    item = next(a for a in client.get("/api/algorithms").get_json()["algorithms"] if a["key"] == algorithm)
    return {p["name"]: p["default"] for p in item["params"] if task in p.get("tasks", [task])}


# -- the catalog ------------------------------------------------------------------------------------


def test_the_catalog_explains_nine_algorithms(client):
    items = client.get("/api/algorithms").get_json()["algorithms"]
    assert [item["key"] for item in items] == ALGORITHMS
    for item in items:
        assert set(item["tasks"]) <= {"classification", "regression"} and item["tasks"]
        assert item["how_it_works"].strip() and item["analogy"].strip(), item["key"]
        assert set(item["fixed"]) == set(item["tasks"])
        assert item["params"], item["key"]
        for param in item["params"]:
            assert param["type"] in ("int", "float", "choice", "bool", "int_list"), param
            assert "default" in param
            if param["type"] in ("int", "float"):
                assert param["min"] <= param["max"]
                if param["default"] is None:
                    assert param["nullable"], (item["key"], param)
                else:
                    assert param["min"] <= param["default"] <= param["max"], (item["key"], param)
            if param["type"] == "choice":
                assert param["default"] in param["choices"], (item["key"], param)
    tasks = {item["key"]: item["tasks"] for item in items}
    assert tasks["naive_bayes"] == ["classification"]
    assert all(tasks[key] == ["classification", "regression"] for key in ALGORITHMS if key != "naive_bayes")
    forest = next(p for p in items[0]["params"] if p["name"] == "n_estimators")
    assert (forest["type"], forest["min"], forest["max"], forest["default"]) == ("int", 1, 1000, 100)


# -- every algorithm, end to end --------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_a_run_is_accepted_at_once_into_its_experiment(zoo, case):
    body = zoo.started[case.id]
    assert body["status"] == "training_started"
    assert body["run_id"] == body["job_id"] == body["run"]["run_id"]
    assert (body["network_id"], body["experiment_id"], body["algorithm"]) == (None, zoo.experiment_id,
                                                                             case.algorithm)
    assert body["run"]["status"] in ("queued", "running")
    assert body["run"]["dataset_id"] == case.dataset_id and body["run"]["seed"] == 0


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_each_algorithm_completes_with_sensible_test_metrics(zoo, case):
    run = zoo.runs[case.id]
    assert run["status"] == "completed", run["error"]
    assert (run["algorithm"], run["experiment_id"], run["dataset_id"]) == (case.algorithm, zoo.experiment_id,
                                                                          case.dataset_id)
    assert set(run["metrics"]) == {"train", "test"}  # built-ins have no validation split
    test = run["metrics"]["test"]
    n_train, n_test = SPLIT_SIZES[case.dataset_id]
    assert (test["n"], run["metrics"]["train"]["n"]) == (n_test, n_train)
    for metric, floor in case.floors.items():
        assert test[metric] >= floor, (metric, test)
    if case.task == "classification":
        assert run["accuracy"] == test["accuracy"]
        matrix = test["confusion_matrix"]
        assert sum(map(sum, matrix)) == n_test
        assert sum(matrix[i][i] for i in range(len(matrix))) == round(test["accuracy"] * n_test)
        assert ("roc_auc" in test) == (case.dataset_id == "breast_cancer")
    else:
        assert 0 < test["mae"] <= test["rmse"]
    assert (run["epochs_done"], run["progress"], run["has_model"]) == (run["total_epochs"], 100.0, True)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_each_step_is_one_training_update(zoo, case):
    run = zoo.runs[case.id]
    updates = [payload for name, payload in zoo.pushed[case.id] if name == "training_update"]
    expected_steps = case.params["epochs"] if case.algorithm == "mlp" else STEPS
    if case.algorithm == "adaboost":
        # boosting stops early when a learner is perfect: fewer stages, so maybe fewer steps
        assert 1 <= run["total_epochs"] <= STEPS
    else:
        assert run["total_epochs"] == expected_steps
    assert len(updates) == run["total_epochs"]
    assert [u["step"] for u in updates] == [u["epoch"] for u in updates] == list(range(1, len(updates) + 1))
    assert {u["total_epochs"] for u in updates} == {run["total_epochs"]}
    assert {(u["algorithm"], u["experiment_id"], u["held_out_split"], u["size_label"]) for u in updates} == {
        (case.algorithm, zoo.experiment_id, "test", SIZE_LABELS[case.algorithm])}
    sizes = [u["size"] for u in updates]
    assert sizes == sorted(set(sizes))
    # the last step has the whole model: every tree or stage, every epoch, every training row
    if case.algorithm == "adaboost":
        assert sizes[-1] <= case.params["n_estimators"]
    elif case.algorithm in ("random_forest", "gradient_boosting"):
        assert sizes[-1] == case.params["n_estimators"]
    elif case.algorithm == "mlp":
        assert sizes == list(range(1, case.params["epochs"] + 1))
    else:
        assert sizes[-1] == SPLIT_SIZES[case.dataset_id][0]
    assert [u["progress"] for u in updates][-1] == 100.0
    assert all(set(u["metrics"]) == {"train", "test"} for u in updates)
    if case.task == "classification":
        assert [u["accuracy"] for u in updates] == [u["metrics"]["test"]["accuracy"] for u in updates]
    # the last step scored the final model: its numbers are the run's
    assert updates[-1]["metrics"] == run["metrics"]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_what_was_pushed_is_what_was_stored(zoo, case):
    names = [name for name, _ in zoo.pushed[case.id]]
    steps = zoo.runs[case.id]["total_epochs"]
    # the run's log lines (run_log) come between them: queued, started, a line per step, completed
    assert [n for n in names if n != "run_log"] == (["run_created", "training_started"] + ["training_update"] * steps
                                                    + ["training_complete"])
    assert names[-2] == "run_log" and names.count("run_log") >= steps + 3
    stored = [{k: v for k, v in event.items() if k != "event"} for event in zoo.stored[case.id]]
    assert stored == [payload for _, payload in zoo.pushed[case.id]]
    assert [event["event"] for event in zoo.stored[case.id]] == names
    seqs = [event["seq"] for event in stored]
    assert seqs == list(range(1, len(seqs) + 1))
    assert zoo.runs[case.id]["last_seq"] == seqs[-1]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_the_complete_event_carries_the_final_results(zoo, case):
    run = zoo.runs[case.id]
    (complete,) = [payload for name, payload in zoo.pushed[case.id] if name == "training_complete"]
    assert complete["status"] == "completed" and complete["progress"] == 100
    assert complete["metrics"] == run["metrics"]
    assert complete["feature_importances"] == run["importances"]
    # trees and linear models have importances; an MLP, an SVM, neighbours and naive Bayes do not
    assert (run["importances"] is not None) == (case.algorithm in HAS_IMPORTANCES)
    assert ("feature_importances" in run) == (case.algorithm in HAS_IMPORTANCES)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_the_run_records_what_a_rerun_needs(zoo, case):
    run = zoo.runs[case.id]
    client = zoo.app.test_client()
    assert run["params"] == catalog_defaults(client, case.algorithm, case.task) | case.params
    repro = run["repro"]
    assert (repro["dataset_id"], repro["params"], repro["seed"], repro["steps"]) == (
        case.dataset_id, run["params"], 0, case.params.get("epochs", STEPS))
    versions = repro["versions"]
    assert versions["scikit-learn"] == metadata.version("scikit-learn")
    assert versions["numpy"] == metadata.version("numpy")
    assert versions["python"].count(".") == 2


@pytest.mark.parametrize("case", TREE_CASES, ids=[case.id for case in TREE_CASES])
def test_tree_models_rank_their_features(zoo, case):
    run = zoo.runs[case.id]
    importances = run["feature_importances"]
    n_features = {"iris": 4, "breast_cancer": 30, "diabetes": 10}[case.dataset_id]
    assert sorted(item["feature"] for item in importances) == sorted(f"x{i}" for i in range(n_features))
    values = [item["importance"] for item in importances]
    assert values == sorted(values, reverse=True)
    assert all(v >= 0 for v in values) and math.isclose(sum(values), 1.0, rel_tol=1e-6)
    assert sorted(values) == sorted(run["importances"])


def test_iris_petal_measurements_matter_most_to_a_forest(zoo):
    # petal length and width (x2, x3) separate the three species; sepal width (x1) hardly does
    ranked = [item["feature"] for item in zoo.runs["random_forest-iris"]["feature_importances"]]
    assert set(ranked[:2]) == {"x2", "x3"}


# -- listing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("filters", [
    {"algorithm": "random_forest"},
    {"dataset_id": "diabetes"},
    {"algorithm": "naive_bayes", "dataset_id": "breast_cancer"},
    {"algorithm": "knn", "dataset_id": "iris"},
], ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
def test_runs_are_listed_by_experiment_algorithm_and_dataset(zoo, filters):
    client = zoo.app.test_client()
    every = client.get("/api/runs?limit=500").get_json()["runs"]
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    listed = client.get(f"/api/runs?limit=500&{query}").get_json()
    expected = [r["run_id"] for r in every if all(r[k] == v for k, v in filters.items())]
    assert [r["run_id"] for r in listed["runs"]] == expected
    assert listed["total"] == len(expected)
    ours = {zoo.runs[c.id]["run_id"] for c in CASES if all(getattr(c, k) == v for k, v in filters.items())}
    assert ours and ours <= set(expected)


def test_the_experiment_lists_every_run_trained_in_it(zoo):
    client = zoo.app.test_client()
    listed = client.get(f"/api/runs?experiment_id={zoo.experiment_id}&limit=500").get_json()
    assert {r["run_id"] for r in listed["runs"]} >= {run["run_id"] for run in zoo.runs.values()}
    detail = client.get(f"/api/experiments/{zoo.experiment_id}").get_json()
    assert detail["runs"] == listed["total"] == len(detail["run_list"])
    assert detail["active_runs"] == 0  # every fixture waits for its runs to end


# -- reruns, predictions, models --------------------------------------------------------------------


@pytest.fixture(scope="module")
def reruns(zoo) -> dict:
    """Each rerun of a forest, an MLP and an SVM on iris, once completed: case id -> (start answer, run)."""
    client = zoo.app.test_client()
    out = {}
    for key in ("random_forest-iris", "mlp-iris", "svm-iris"):
        response = client.post(f"/api/runs/{zoo.runs[key]['run_id']}/rerun")
        assert response.status_code == 202, response.get_json()
        out[key] = response.get_json()
    return {key: (body, wait_for_run(client, body["run_id"])) for key, body in out.items()}


@pytest.mark.parametrize("key", ["random_forest-iris", "mlp-iris", "svm-iris"])
def test_a_rerun_repeats_the_numbers(zoo, reruns, key):
    source = zoo.runs[key]
    body, again = reruns[key]
    assert body["status"] == "training_started" and body["run_id"] != source["run_id"]
    assert again["status"] == "completed"
    assert again["rerun_of"] == source["run_id"]
    assert (again["algorithm"], again["dataset_id"], again["experiment_id"]) == (
        source["algorithm"], source["dataset_id"], source["experiment_id"])
    assert (again["params"], again["seed"], again["total_epochs"]) == (source["params"], source["seed"],
                                                                       source["total_epochs"])
    assert again["metrics"]["test"] == source["metrics"]["test"]
    assert again["metrics"]["train"] == source["metrics"]["train"]
    assert again.get("feature_importances") == source.get("feature_importances")


def test_an_algorithm_run_cannot_be_resumed(zoo):
    client = zoo.app.test_client()
    before = client.get("/api/runs").get_json()["total"]
    response = client.post(f"/api/runs/{zoo.runs['random_forest-iris']['run_id']}/resume", json={})
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "conflict" and "rerun" in body["message"]
    assert client.get("/api/runs").get_json()["total"] == before


@pytest.mark.parametrize("key", ["random_forest-iris", "svm-iris", "naive_bayes-iris", "mlp-iris"])
def test_a_completed_run_predicts_raw_iris_rows(zoo, key):
    client = zoo.app.test_client()
    run_id = zoo.runs[key]["run_id"]
    response = client.post(f"/api/runs/{run_id}/predict", json={"rows": IRIS_ROWS})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["run_id"], body["algorithm"]) == (run_id, key.split("-")[0])
    predictions = body["predictions"]
    assert [p["class_index"] for p in predictions] == [p["predicted"] for p in predictions] == [0, 2]
    for p in predictions:
        assert len(p["probabilities"]) == 3 and math.isclose(sum(p["probabilities"]), 1.0, rel_tol=1e-6)
        assert max(p["probabilities"]) == p["probabilities"][p["class_index"]]
    one = client.post(f"/api/runs/{run_id}/predict", json={"row": IRIS_ROWS[0]}).get_json()
    assert one["prediction"] == 0
    # float32 sums differ in the last digits between a batch of two and a single row
    assert one["predictions"][0]["probabilities"] == pytest.approx(predictions[0]["probabilities"], abs=1e-6)


def test_a_regression_run_predicts_in_the_targets_units(zoo):
    client = zoo.app.test_client()
    run_id = zoo.runs["linear-diabetes"]["run_id"]
    # scikit-learn's diabetes features come centred: all zeros is an average patient; the second has a
    # higher body mass index (x2), blood pressure (x3) and serum triglycerides (x8)
    rows = [[0.0] * 10, [0.0, 0.0, 0.06, 0.05, 0.0, 0.0, 0.0, 0.0, 0.04, 0.0]]
    body = client.post(f"/api/runs/{run_id}/predict", json={"rows": rows}).get_json()
    average, heavier = (p["predicted"] for p in body["predictions"])
    assert average == pytest.approx(152, abs=10)  # the mean disease progression score, not a standardized 0
    assert heavier > average + 20


@pytest.mark.parametrize("rows, message", [
    ([[5.1, 3.5, 1.4]], "4 numbers"),
    ([["a", "b", "c", "d"]], "numbers"),
    ([], "rows"),
    # the checks a network's predict makes: no NaN, no booleans taken for 1, no overflow to inf
    ([[5.1, 3.5, None, 0.2]], "rows[0][2]"),
    ([[5.1, 3.5, True, 0.2]], "not true/false"),
    ([[5.1, 3.5, 1e39, 0.2]], "finite"),
])
def test_predicting_bad_rows_is_refused(zoo, rows, message):
    client = zoo.app.test_client()
    response = client.post(f"/api/runs/{zoo.runs['knn-iris']['run_id']}/predict", json={"rows": rows})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "bad_input" and message in body["message"]


def test_a_runs_predict_refuses_a_head_instead_of_ignoring_it(zoo):
    client = zoo.app.test_client()
    response = client.post(f"/api/runs/{zoo.runs['knn-iris']['run_id']}/predict",
                           json={"rows": [[5.1, 3.5, 1.4, 0.2]], "head": "*"})
    assert response.status_code == 400
    assert response.get_json()["detail"] == {"field": "head"}


@pytest.mark.parametrize("key", ["random_forest-iris", "gradient_boosting-iris", "knn-diabetes"])
def test_the_downloaded_model_scores_what_the_run_reported(zoo, key):
    import joblib

    from livetrain.data.sources import load_dataset

    run = zoo.runs[key]
    response = zoo.app.test_client().get(f"/api/runs/{run['run_id']}/model")
    assert response.status_code == 200
    assert response.headers["X-Checksum-SHA256"] == hashlib.sha256(response.data).hexdigest()
    assert response.headers["X-Checksum-SHA256"] == run["model_sha256"]
    assert f"run-{run['run_id']}-{run['algorithm']}.joblib" in response.headers["Content-Disposition"]
    model = joblib.load(io.BytesIO(response.data))
    data = load_dataset(run["dataset_id"], zoo.app.extensions["livetrain"].settings.resolved_mnist_dir)
    predicted = model.predict(data.X_test)
    if data.info.task == "classification":
        accuracy = float((predicted == data.y_test.ravel()).mean())
        assert accuracy == pytest.approx(run["metrics"]["test"]["accuracy"])
    else:
        error = data.unscale_target(predicted).ravel() - data.unscale_target(data.y_test).ravel()
        assert float(abs(error).mean()) == pytest.approx(run["metrics"]["test"]["mae"])


# -- cancelling -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cancelled(zoo) -> dict:
    """A boosting run sized to take a minute (1,000 stages on digits in 100 steps), cancelled after a step."""
    client = zoo.app.test_client()
    body = run_in(client, zoo.experiment_id, algorithm="gradient_boosting", dataset_id="digits",
                 params={"n_estimators": 1000}, steps=100)
    run_id = body["run_id"]
    running = wait_for_epochs(client, run_id, 1)
    no_model_yet = {"predict": client.post(f"/api/runs/{run_id}/predict", json={"rows": [[0] * 64]}),
                    "model": client.get(f"/api/runs/{run_id}/model")}
    answer = client.post(f"/api/runs/{run_id}/cancel")
    final = wait_for_run(client, run_id)
    after = {"predict": client.post(f"/api/runs/{run_id}/predict", json={"rows": [[0] * 64]}),
             "model": client.get(f"/api/runs/{run_id}/model"),
             "cancel_again": client.post(f"/api/runs/{run_id}/cancel")}
    events = client.get(f"/api/runs/{run_id}/events").get_json()["events"]
    return {"running": running, "answer": answer, "final": final, "no_model_yet": no_model_yet, "after": after,
            "events": events}


def test_cancelling_a_running_algorithm_run_ends_it(cancelled):
    assert cancelled["running"]["status"] == "running"
    assert cancelled["answer"].status_code == 200
    assert cancelled["answer"].get_json()["run_id"] == cancelled["final"]["run_id"]
    final = cancelled["final"]
    assert final["status"] == "cancelled"
    assert 1 <= final["epochs_done"] < final["total_epochs"] == 100
    assert final["has_model"] is False
    names = [e["event"] for e in cancelled["events"]]
    assert names[-1] == "training_cancelled"
    assert names.count("training_update") == final["epochs_done"]
    assert "training_complete" not in names
    assert cancelled["after"]["cancel_again"].status_code == 409


@pytest.mark.parametrize("moment", ["no_model_yet", "after"])
@pytest.mark.parametrize("what", ["predict", "model"])
def test_a_run_that_did_not_complete_has_no_model(cancelled, moment, what):
    response = cancelled[moment][what]
    assert response.status_code == 409
    assert response.get_json()["error"] == "no_model"


def test_an_mlp_trains_as_many_epochs_as_the_catalog_allows(zoo):
    client = zoo.app.test_client()
    body = run_in(client, zoo.experiment_id, algorithm="mlp", dataset_id="iris",
                 params={"epochs": 101, "hidden_layer_sizes": [4]})
    run = wait_for_run(client, body["run_id"])
    assert (run["status"], run["error"]) == ("completed", None)
    assert run["epochs_done"] == run["total_epochs"] == 101

