"""MetadataStore experiments: CRUD, the idempotent default, run filters, deleting runs with their events,
and runs from before experiments existed landing in the default one after the upgrade."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, exc, text

from livetrain.store import Experiment, MetadataStore, Run, RunEvent
from livetrain.store.metadata import MIGRATIONS


@pytest.fixture
def store(tmp_path):
    s = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    s.create_schema()
    yield s
    s.close()


def make_run(run_id: str, *, experiment_id: str = "exp1", algorithm: str = "random_forest",
             dataset_id: str = "iris", created_at: float = 0.0, **values) -> Run:
    """A scikit-learn run row (no network)."""
    return Run(id=run_id, network_id=None, dataset_id=dataset_id, experiment_id=experiment_id,
               algorithm=algorithm, created_at=created_at, **values)


def record(store: MetadataStore, run_id: str, *seqs: int) -> None:
    for seq in seqs:
        store.record_event(RunEvent(run_id, seq, "training_update", {"run_id": run_id, "seq": seq}, float(seq)), {})


# -- experiments ------------------------------------------------------------------------------


def test_an_experiment_is_stored_and_read_back(store):
    created = store.create_experiment(Experiment(id="exp1", name="Trees vs. boosting", description="iris only"))
    assert created.created_at > 0
    got = store.get_experiment("exp1")
    assert isinstance(got, Experiment)
    assert (got.id, got.name, got.description, got.created_at) == ("exp1", "Trees vs. boosting", "iris only",
                                                                   created.created_at)
    assert got.is_default is False
    assert got.to_dict() | {"created_at": 0} == {"experiment_id": "exp1", "id": "exp1", "name": "Trees vs. boosting",
                                                 "description": "iris only", "created_at": 0, "is_default": False}
    assert store.get_experiment("nope") is None


def test_experiment_ids_are_unique(store):
    store.create_experiment(Experiment(id="exp1", name="first"))
    with pytest.raises(exc.IntegrityError):
        store.create_experiment(Experiment(id="exp1", name="second"))
    assert store.get_experiment("exp1").name == "first"


def test_experiments_are_listed_newest_first_and_paginated(store):
    for i, created_at in enumerate([30.0, 10.0, 20.0]):
        store.create_experiment(Experiment(id=f"e{i}", name=f"n{i}", created_at=created_at))
    assert [e.id for e in store.list_experiments()] == ["e0", "e2", "e1"]
    assert [e.id for e in store.list_experiments(limit=2)] == ["e0", "e2"]
    assert [e.id for e in store.list_experiments(limit=2, offset=2)] == ["e1"]
    assert store.count_experiments() == 3


def test_deleting_an_experiment_removes_only_its_row(store):
    store.create_experiment(Experiment(id="exp1", name="a"))
    store.create_experiment(Experiment(id="exp2", name="b"))
    store.create_run(make_run("r1", experiment_id="exp1"))
    assert store.delete_experiment("exp1") is True
    assert store.delete_experiment("exp1") is False
    assert store.get_experiment("exp1") is None
    assert [e.id for e in store.list_experiments()] == ["exp2"]
    # its runs go through delete_runs, which the service calls first
    assert store.get_run("r1").experiment_id == "exp1"


def test_ensure_experiment_creates_once_and_keeps_what_is_there(store):
    first = store.ensure_experiment(Experiment(id="default", name="Default", description="where runs land"))
    assert first.is_default and first.name == "Default"
    again = store.ensure_experiment(Experiment(id="default", name="Renamed", description="other"))
    assert (again.name, again.description, again.created_at) == ("Default", "where runs land", first.created_at)
    assert store.count_experiments() == 1


# -- runs by experiment -----------------------------------------------------------------------


@pytest.fixture
def runs(store):
    """Five runs over two experiments, three algorithms and two datasets, created in id order."""
    rows = [
        make_run("r1", experiment_id="exp1", algorithm="random_forest", dataset_id="iris", created_at=1.0),
        make_run("r2", experiment_id="exp1", algorithm="knn", dataset_id="iris", created_at=2.0,
                 status="completed"),
        make_run("r3", experiment_id="exp1", algorithm="random_forest", dataset_id="diabetes", created_at=3.0),
        make_run("r4", experiment_id="exp2", algorithm="random_forest", dataset_id="iris", created_at=4.0),
        Run(id="r5", network_id="net1", dataset_id="iris", experiment_id="exp2", created_at=5.0),
    ]
    for run in rows:
        store.create_run(run)
    return store


@pytest.mark.parametrize("filters, expected", [
    ({}, ["r5", "r4", "r3", "r2", "r1"]),
    ({"experiment_id": "exp1"}, ["r3", "r2", "r1"]),
    ({"experiment_id": "exp2"}, ["r5", "r4"]),
    ({"algorithm": "random_forest"}, ["r4", "r3", "r1"]),
    ({"algorithm": "network"}, ["r5"]),
    ({"dataset_id": "diabetes"}, ["r3"]),
    ({"experiment_id": "exp1", "algorithm": "random_forest"}, ["r3", "r1"]),
    ({"experiment_id": "exp1", "algorithm": "random_forest", "dataset_id": "iris"}, ["r1"]),
    ({"experiment_id": "exp1", "statuses": ["completed"]}, ["r2"]),
    ({"experiment_id": "exp3"}, []),
], ids=lambda value: "-".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None)
def test_runs_are_filtered_by_experiment_algorithm_and_dataset(runs, filters, expected):
    assert [r.id for r in runs.list_runs(**filters)] == expected
    assert runs.count_runs(**filters) == len(expected)


def test_filtered_runs_page_and_order(runs):
    assert [r.id for r in runs.list_runs(experiment_id="exp1", newest_first=False)] == ["r1", "r2", "r3"]
    assert [r.id for r in runs.list_runs(experiment_id="exp1", limit=2, offset=1)] == ["r2", "r1"]


def test_a_run_keeps_its_algorithm_fields(store):
    store.create_run(make_run("r1", seed=7, params={"n_estimators": 20}, repro={"seed": 7, "steps": 4}))
    store.update_run("r1", metrics={"train": {"accuracy": 1.0}, "test": {"accuracy": 0.9}},
                     importances=[0.75, 0.25], model_path="runs/r1/model.joblib", model_sha256="ab" * 32)
    run = store.get_run("r1")
    assert (run.experiment_id, run.algorithm, run.seed, run.params) == ("exp1", "random_forest", 7,
                                                                        {"n_estimators": 20})
    assert run.metrics == {"train": {"accuracy": 1.0}, "test": {"accuracy": 0.9}}
    assert (run.importances, run.repro) == ([0.75, 0.25], {"seed": 7, "steps": 4})
    assert run.to_dict()["has_model"] is True and "model_path" not in run.to_dict()


def test_delete_runs_removes_their_events_and_nothing_else(runs):
    record(runs, "r1", 1, 2, 3)
    record(runs, "r2", 1)
    record(runs, "r4", 1, 2)
    assert runs.delete_runs(["r1", "r2", "no-such-run"]) == 2
    assert runs.get_run("r1") is None and runs.get_run("r2") is None
    assert runs.list_events("r1") == [] and runs.list_events("r2") == []
    assert [e.seq for e in runs.list_events("r4")] == [1, 2]
    assert [r.id for r in runs.list_runs(experiment_id="exp1")] == ["r3"]
    assert runs.delete_runs([]) == 0


def test_run_scores_read_one_metric_out_of_the_json_in_the_database(database_url):
    # the leaderboard ranks on these values without decoding every run's metrics: the database
    # reads them out of the JSON, in SQLite and PostgreSQL alike
    store = MetadataStore(database_url)
    store.create_schema()
    try:
        store.create_run(make_run("a", created_at=1.0, status="completed", seed=7, params={"n_estimators": 10},
                                  metrics={"test": {"accuracy": 0.875, "f1": 0.5}, "train": {"accuracy": 1}}))
        store.create_run(make_run("b", created_at=2.0, status="running", metrics={"train": {"accuracy": 0.5}}))
        store.create_run(make_run("c", created_at=3.0, status="failed"))
        store.create_run(make_run("d", created_at=4.0, experiment_id="exp2", metrics={"test": {"accuracy": 0.1}}))
        scores = store.run_scores("exp1", "test", "accuracy")
        assert [(r.id, r.status, r.value) for r in scores] == [
            ("a", "completed", 0.875), ("b", "running", None), ("c", "failed", None)]
        assert [r.value for r in store.run_scores("exp1", "train", "accuracy")] == [1.0, 0.5, None]
        assert [r.value for r in store.run_scores("exp1", "test", "roc_auc")] == [None, None, None]
        assert store.run_details("exp1", ["a"]) == {
            "a": {"params": {"n_estimators": 10}, "seed": 7,
                  "metrics": {"test": {"accuracy": 0.875, "f1": 0.5}, "train": {"accuracy": 1}}}}
        assert sorted(store.run_details("exp1")) == ["a", "b", "c"]
    finally:
        store.close()


def test_a_nan_or_infinite_metric_is_stored_as_null_and_the_run_still_ranks(database_url):
    # a held-out loss can blow up to infinity: it is not JSON, and stored as is it made PostgreSQL
    # refuse the row and SQLite's JSON functions fail the whole leaderboard
    store = MetadataStore(database_url)
    store.create_schema()
    try:
        store.create_run(make_run("a", status="completed", metrics={
            "test": {"accuracy": 0.5, "loss": float("inf"), "log_loss": float("nan")}, "curve": [1.0, float("-inf")]}))
        assert store.get_run("a").metrics == {"test": {"accuracy": 0.5, "loss": None, "log_loss": None},
                                              "curve": [1.0, None]}
        assert [r.value for r in store.run_scores("exp1", "test", "accuracy")] == [0.5]
        assert [r.value for r in store.run_scores("exp1", "test", "loss")] == [None]
    finally:
        store.close()


# -- upgrading a database from before experiments ----------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return request.getfixturevalue("postgres_url")


def migrations() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def create_at_revision_0001(url: str) -> None:
    """A database as release 0001 left it: one dataset, one network run without an experiment, its events."""
    config = migrations()
    engine = create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text(
            "INSERT INTO datasets (id, name, task, source, n_features, n_classes, input_shape, n_train, n_test, "
            "description, meta, builtin, created_at) VALUES ('iris', 'iris', 'classification', 'test', 4, 3, "
            "'[4]', 120, 30, '', '{}', true, 1.0)"))
        connection.execute(text(
            "INSERT INTO runs (id, network_id, dataset_id, experiment_id, status, params, total_epochs, start_epoch, "
            "epochs_done, progress, accuracy, last_seq, created_at) VALUES ('old-run', 'net1', 'iris', NULL, "
            "'completed', '{\"epochs\": 2}', 2, 0, 2, 100.0, 0.9, 2, 1.0)"))
        for seq in (1, 2):
            connection.execute(text(
                "INSERT INTO run_events (run_id, seq, type, payload, ts) VALUES ('old-run', :seq, "
                "'training_update', :payload, :seq)"), {"seq": seq, "payload": f'{{"epoch": {seq}}}'})
    engine.dispose()


def test_runs_from_before_experiments_land_in_the_default_one(database_url):
    create_at_revision_0001(database_url)
    store = MetadataStore(database_url)
    store.create_schema()
    with store.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == (
            ScriptDirectory.from_config(migrations()).get_current_head())
    run = store.get_run("old-run")
    assert (run.experiment_id, run.algorithm, run.metrics, run.repro) == ("default", "network", {}, {})
    assert (run.seed, run.importances, run.model_path, run.rerun_of) == (None, None, None, None)
    assert (run.status, run.network_id, run.params, run.accuracy) == ("completed", "net1", {"epochs": 2}, 0.9)
    assert [r.id for r in store.list_runs(experiment_id="default")] == ["old-run"]
    assert store.count_runs(experiment_id="default", algorithm="network") == 1
    assert [(e.seq, e.payload) for e in store.list_events("old-run")] == [(1, {"epoch": 1}), (2, {"epoch": 2})]
    dataset = store.get_dataset("iris")
    assert (dataset.n_val, dataset.files, dataset.content_sha256) == (0, {}, None)
    # and the upgraded database takes new experiments and algorithm runs
    store.ensure_experiment(Experiment(id="default", name="Default"))
    store.create_run(make_run("new-run", experiment_id="default", created_at=2.0))
    assert [r.id for r in store.list_runs(experiment_id="default")] == ["new-run", "old-run"]
    store.close()
