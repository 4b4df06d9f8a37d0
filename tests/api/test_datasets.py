"""Datasets over REST: upload a CSV, generate one, inspect, download, delete, and train and predict on it.

Most tests share one module app and read what its fixtures stored. Every refused request is checked
for its status, its `{"error", "message"}` body, and that it stored nothing: the list of datasets and
the folders under `<home>/models/datasets/` are exactly as before.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from livetrain.data.tabular import split_indices
from tests.helpers import (
    create_experiment,
    create_network,
    events_named,
    run_in,
    start_run,
    wait_for_run,
)

N_CUSTOMERS = 200
GENERATOR_KEYS = {"factorization", "blobs", "moons", "circles", "classification", "regression", "friedman"}


def customers(n: int = N_CUSTOMERS, seed: int = 0) -> pd.DataFrame:
    """A customer table with one column of each kind, a few ages missing, and a churned/stayed label."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "pro", "enterprise"], n, p=[0.5, 0.3, 0.2])
    active = rng.choice(["yes", "no"], n, p=[0.7, 0.3])
    # spend is heavy-tailed, so the training rows' mean is far from the mean over every row
    spend = np.round(rng.lognormal(3.0, 1.0, n) * np.where(plan == "enterprise", 4.0, 1.0), 2)
    churn_odds = 0.6 * (active == "no") + 0.3 * (plan == "basic") + rng.uniform(0, 0.5, n)
    frame = pd.DataFrame({
        "customer_id": np.arange(5000, 5000 + n),
        "age": rng.integers(18, 80, n).astype(float),
        "plan": plan,
        "active": active,
        "signup": (pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"))
        .strftime("%Y-%m-%d"),
        "monthly_spend": spend,
        "status": np.where(churn_odds > 0.6, "churned", "stayed"),
    })
    frame.loc[rng.choice(n, 7, replace=False), "age"] = np.nan
    return frame


# the calendar features the signup dates (no times of day) become
SIGNUP = ["signup.year", "signup.month", "signup.month_sin", "signup.month_cos", "signup.day_of_week",
          "signup.day_of_week_sin", "signup.day_of_week_cos", "signup.day_of_year_sin", "signup.day_of_year_cos"]


def as_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def upload(client, data: bytes, filename: str = "customers.csv", **form):
    """POST /api/datasets as multipart; form values that are not strings are sent as JSON."""
    fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in form.items()}
    return client.post("/api/datasets", data={"file": (io.BytesIO(data), filename), **fields},
                       content_type="multipart/form-data")


def uploaded(client, data: bytes, filename: str = "customers.csv", **form) -> dict:
    """Upload, asserting it was created; the dataset detail."""
    response = upload(client, data, filename, **form)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def generated(client, generator: str, params: dict | None = None, **body) -> dict:
    """Generate a dataset, asserting it was created; the dataset detail."""
    response = client.post("/api/datasets", json={"generator": generator, "params": params or {}, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def stored(app, client) -> dict:
    """What a refused request must leave alone: the dataset ids and the dataset folders on disk."""
    folder = app.extensions["livetrain"].settings.home / "models" / "datasets"
    return {
        "ids": sorted(d["id"] for d in client.get("/api/datasets").get_json()["datasets"]),
        "folders": sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [],
    }


def refused(app, client, status: int, code: str | None, send) -> dict:
    """Send the request `send(client)` makes; assert the status, the error body, and that nothing was stored."""
    before = stored(app, client)
    response = send(client)
    body = response.get_json()
    assert response.status_code == status, body
    assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str) and body["message"], body
    if code is not None:
        assert body["error"] == code, body
    assert stored(app, client) == before
    return body


def train_positions(frame: pd.DataFrame, detail: dict) -> np.ndarray:
    """The training rows' positions, recomputed from the split the dataset records."""
    split = detail["meta"]["split"]
    target = frame[detail["schema"]["targets"][0]]
    task = detail["task"]
    y = target.to_numpy(dtype=object) if task == "classification" else target.to_numpy(dtype=float)[:, None]
    train, _, _ = split_indices(y, task, split["fractions"], split["seed"])
    return train


def semiprime_count(high: int) -> int:
    """How many n <= high are a product of two primes (by trial division)."""
    def prime_factors(n: int) -> int:
        count, p = 0, 2
        while p * p <= n:
            while n % p == 0:
                n //= p
                count += 1
            p += 1
        return count + (n > 1)

    return sum(prime_factors(n) == 2 for n in range(4, high + 1))


@pytest.fixture(scope="module")
def shared_app(make_module_app):
    return make_module_app(warm_workers=1)


@pytest.fixture
def client(shared_app):
    return shared_app.test_client()


@pytest.fixture
def socket_client(shared_app, client):
    """A Socket.IO test client of the shared app (the conftest one would build an app of its own)."""
    sio = shared_app.extensions["socketio"].test_client(shared_app, flask_test_client=client)
    yield sio
    if sio.is_connected():
        sio.disconnect()


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return customers()


@pytest.fixture(scope="module")
def dataset(shared_app, table) -> dict:
    """The customer table uploaded with default options."""
    return uploaded(shared_app.test_client(), as_csv(table))


@pytest.fixture(scope="module")
def trained(shared_app, dataset) -> dict:
    """The default network on the customer table, trained for 3 epochs."""
    client = shared_app.test_client()
    network = create_network(client, dataset_id=dataset["id"])
    run = wait_for_run(client, start_run(client, network["network_id"], epochs=3)["run_id"])
    assert run["status"] == "completed", run
    return {"network": network, "run": run}


# -- uploading ------------------------------------------------------------------------------------


def test_an_upload_describes_every_column(dataset, table):
    columns = {c["name"]: c for c in dataset["schema"]["columns"]}
    assert list(columns) == list(table.columns)
    assert {name: (c["type"], c["role"]) for name, c in columns.items()} == {
        "customer_id": ("numeric", "ignored"),
        "age": ("numeric", "feature"),
        "plan": ("categorical", "feature"),
        "active": ("boolean", "feature"),
        "signup": ("datetime", "feature"),
        "monthly_spend": ("numeric", "feature"),
        "status": ("categorical", "target"),
    }
    assert "identifier" in columns["customer_id"]["note"]
    assert all(c["inferred"] == c["type"] for c in columns.values())
    assert (columns["age"]["missing"], columns["plan"]["unique"], columns["active"]["unique"]) == (7, 3, 2)
    assert dataset["schema"]["targets"] == ["status"]
    assert dataset["schema"]["features"] == ["age", "plan", "active", "signup", "monthly_spend"]
    assert dataset["schema"]["passthrough"] is False


def test_an_upload_reports_task_shape_balance_and_split(dataset, table):
    assert (dataset["name"], dataset["task"], dataset["builtin"]) == ("customers", "classification", False)
    assert dataset["meta"]["classes"] == ["churned", "stayed"]
    assert dataset["n_classes"] == 2 and dataset["meta"]["n_outputs"] == 1
    assert dataset["class_balance"] == table["status"].value_counts().to_dict()
    assert dataset["missing"] == {name: int(table[name].isna().sum()) for name in table.columns}
    assert dataset["feature_names"] == ["age", "monthly_spend", "plan=basic", "plan=enterprise", "plan=pro",
                                        "active", *SIGNUP]
    assert dataset["n_features"] == len(dataset["feature_names"])
    assert dataset["n_rows"] == N_CUSTOMERS
    assert dataset["splits"] == {"train": 140, "val": 30, "test": 30}
    assert (dataset["n_train"], dataset["n_val"], dataset["n_test"]) == (140, 30, 30)
    assert dataset["meta"]["split"] == {"fractions": [0.7, 0.15, 0.15], "seed": 0, "stratified": True}
    assert len(dataset["content_sha256"]) == 64 and int(dataset["content_sha256"], 16) >= 0


def test_the_preview_is_the_first_rows_as_uploaded(dataset, table):
    expected = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                for row in table.head(10).to_dict("records")]
    assert dataset["preview"] == expected


def test_get_lists_and_describes_the_upload_like_the_upload_response(client, dataset):
    assert client.get(f"/api/datasets/{dataset['id']}").get_json() == dataset
    listed = {d["id"]: d for d in client.get("/api/datasets").get_json()["datasets"]}
    assert (listed[dataset["id"]]["name"], listed[dataset["id"]]["task"]) == ("customers", "classification")
    assert {"iris", "digits"} <= set(listed)


def test_the_csv_download_is_the_uploaded_file(client, dataset, table):
    response = client.get(f"/api/datasets/{dataset['id']}/csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert 'filename="customers.csv"' in response.headers["Content-Disposition"]
    assert response.data == as_csv(table)


def test_a_builtin_downloads_as_csv_with_a_split_column(client):
    iris = client.get("/api/datasets/iris").get_json()
    frame = pd.read_csv(io.BytesIO(client.get("/api/datasets/iris/csv").data))
    assert list(frame.columns) == ["x0", "x1", "x2", "x3", "target", "split"]
    counts = frame["split"].value_counts().to_dict()
    assert counts == {split: n for split, n in iris["splits"].items() if n}
    assert sorted(frame["target"].unique()) == [0, 1, 2]


@pytest.mark.parametrize("split", ["0.6,0.2,0.2", [0.6, 0.2, 0.2]])
def test_form_fields_override_name_target_types_split_and_seed(client, table, split):
    detail = uploaded(client, as_csv(table), name="churn by plan", target="plan", split=split, seed="7",
                      types={"active": "categorical", "customer_id": "ignored", "signup": "ignored"})
    columns = {c["name"]: c for c in detail["schema"]["columns"]}
    assert detail["name"] == "churn by plan"
    assert (detail["task"], detail["schema"]["targets"]) == ("classification", ["plan"])
    assert detail["meta"]["classes"] == ["basic", "enterprise", "pro"]
    assert detail["class_balance"] == table["plan"].value_counts().to_dict()
    assert (columns["active"]["type"], columns["active"]["inferred"]) == ("categorical", "boolean")
    assert (columns["customer_id"]["role"], columns["customer_id"]["note"]) == ("ignored", "left out by request")
    assert columns["signup"]["role"] == "ignored" and columns["status"]["role"] == "feature"
    assert detail["feature_names"] == ["age", "monthly_spend", "active=no", "active=yes", "status=churned",
                                       "status=stayed"]
    assert detail["splits"] == {"train": 120, "val": 40, "test": 40}
    assert detail["meta"]["split"] == {"fractions": [0.6, 0.2, 0.2], "seed": 7, "stratified": True}


def test_a_numeric_target_is_regression_scaled_with_the_training_rows_only(client, table):
    detail = uploaded(client, as_csv(table), target="monthly_spend")
    assert (detail["task"], detail["n_classes"], detail["class_balance"]) == ("regression", 0, None)
    assert detail["meta"]["classes"] is None and detail["meta"]["split"]["stratified"] is False
    spend = table["monthly_spend"]
    train_mean = spend.iloc[train_positions(table, detail)].mean()
    assert detail["meta"]["target_mean"] == [pytest.approx(train_mean)]
    assert abs(train_mean - spend.mean()) > 1.0


def test_a_list_of_numeric_targets_is_multi_output_regression(client, table):
    detail = uploaded(client, as_csv(table.assign(yearly_spend=table["monthly_spend"] * 12)),
                      target=["monthly_spend", "yearly_spend"])
    assert (detail["task"], detail["meta"]["n_outputs"]) == ("regression", 2)
    assert detail["schema"]["targets"] == ["monthly_spend", "yearly_spend"]
    assert "monthly_spend" not in detail["feature_names"]
    mean = detail["meta"]["target_mean"]
    assert mean[1] == pytest.approx(12 * mean[0])


def test_task_regression_can_be_asked_for_an_integer_target(client, table):
    # an integer column with few values would be inferred as class labels
    frame = table.assign(visits=np.random.default_rng(3).integers(0, 5, len(table)))
    assert uploaded(client, as_csv(frame))["task"] == "classification"
    assert uploaded(client, as_csv(frame), task="regression")["task"] == "regression"


# -- no leakage, determinism ----------------------------------------------------------------------


def test_preprocessing_is_fitted_on_the_training_rows_only(shared_app, dataset, table):
    svc = shared_app.extensions["livetrain"]
    pipeline = svc.datasets.pipeline(svc.datasets.get(dataset["id"]))
    train = table.iloc[train_positions(table, dataset)]

    scaler = pipeline.named_transformers_["numeric"].named_steps["scale"]
    # missing ages are filled with the training rows' median before scaling
    expected = [train["age"].fillna(train["age"].median()).mean(), train["monthly_spend"].mean()]
    np.testing.assert_allclose(scaler.mean_, expected, rtol=1e-9)
    assert abs(scaler.mean_[1] - table["monthly_spend"].mean()) > 1.0

    signup = pd.to_datetime(train["signup"], utc=True).dt
    year = signup.year + (signup.day_of_year - 1) / np.where(signup.is_leap_year, 366, 365)
    datetime_scaler = pipeline.named_transformers_["datetime"].named_steps["scale"]
    # signup.year and signup.month, the first two calendar features, averaged over the training rows
    np.testing.assert_allclose(datetime_scaler.mean_[:2], [year.mean(), signup.month.mean()], rtol=1e-9)

    arrays = svc.datasets.arrays(dataset["id"])
    spend = dataset["feature_names"].index("monthly_spend")
    assert arrays.X_train[:, spend].mean() == pytest.approx(0.0, abs=1e-5)
    assert arrays.X_train[:, spend].std() == pytest.approx(1.0, abs=1e-4)
    assert arrays.X_test[:, spend].mean() != pytest.approx(0.0, abs=1e-3)


def test_the_same_file_gives_the_same_hash_and_split_and_another_seed_other_rows(shared_app, client, table,
                                                                                    dataset):
    svc = shared_app.extensions["livetrain"]
    again = uploaded(client, as_csv(table))
    reseeded = uploaded(client, as_csv(table), seed="11")
    assert again["id"] != dataset["id"]
    assert again["content_sha256"] == reseeded["content_sha256"] == dataset["content_sha256"]
    assert again["splits"] == reseeded["splits"] == dataset["splits"]

    first, second, third = (svc.datasets.arrays(d["id"]) for d in (dataset, again, reseeded))
    np.testing.assert_array_equal(first.X_train, second.X_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)
    assert not np.array_equal(first.X_train, third.X_train)
    assert not np.array_equal(train_positions(table, dataset), train_positions(table, reseeded))

    changed = table.copy()
    changed.loc[0, "monthly_spend"] += 1
    assert uploaded(client, as_csv(changed))["content_sha256"] != dataset["content_sha256"]


# -- generators -----------------------------------------------------------------------------------


def test_the_generator_catalog_lists_every_generator_with_its_parameters(client):
    catalog = {g["key"]: g for g in client.get("/api/datasets/generators").get_json()["generators"]}
    assert set(catalog) == GENERATOR_KEYS
    for generator in catalog.values():
        assert generator["description"]
        for param in generator["params"]:
            assert param["type"] in ("int", "float")
            assert param["min"] <= param["default"] <= param["max"], param
    assert [p["name"] for p in catalog["factorization"]["params"]] == ["low", "high"]
    assert {p["name"]: p["default"] for p in catalog["moons"]["params"]} == {"n_samples": 500, "noise": 0.2,
                                                                             "seed": 0}


@pytest.mark.parametrize("generator, params, task, n_rows, n_features, n_classes", [
    ("factorization", {"low": 4, "high": 200}, "regression", semiprime_count(200), 3, 0),
    ("blobs", {"n_samples": 60, "n_features": 3, "centers": 4}, "classification", 60, 3, 4),
    ("moons", {"n_samples": 50, "noise": 0.1}, "classification", 50, 2, 2),
    ("circles", {"n_samples": 40, "factor": 0.3}, "classification", 40, 2, 2),
    ("classification", {"n_samples": 80, "n_features": 6, "n_informative": 3, "n_classes": 3},
     "classification", 80, 6, 3),
    ("regression", {"n_samples": 30, "n_features": 4, "n_informative": 2}, "regression", 30, 4, 0),
    ("friedman", {"n_samples": 25}, "regression", 25, 10, 0),
])
def test_each_generator_makes_a_dataset_like_an_upload(client, generator, params, task, n_rows, n_features,
                                                       n_classes):
    detail = generated(client, generator, params, name=f"gen {generator}")
    assert (detail["name"], detail["task"], detail["builtin"]) == (f"gen {generator}", task, False)
    assert (detail["n_rows"], detail["n_features"], detail["n_classes"]) == (n_rows, n_features, n_classes)
    assert sum(detail["splits"].values()) == n_rows
    assert detail["meta"]["kind"] == generator and detail["meta"]["origin"] == "generator"
    assert detail["meta"]["generator"] == generator and detail["meta"]["params"] == params
    if task == "classification":
        assert sum(detail["class_balance"].values()) == n_rows
        assert detail["meta"]["classes"] == list(range(n_classes))
    frame = pd.read_csv(io.BytesIO(client.get(f"/api/datasets/{detail['id']}/csv").data))
    assert len(frame) == n_rows
    assert list(frame.columns) == [c["name"] for c in detail["schema"]["columns"]]


def test_a_generator_with_the_same_parameters_makes_the_same_rows(client):
    first = generated(client, "moons", {"n_samples": 60, "seed": 3}, seed=5)
    second = generated(client, "moons", {"n_samples": 60, "seed": 3}, seed=5)
    other = generated(client, "moons", {"n_samples": 60, "seed": 4}, seed=5)
    assert first["content_sha256"] == second["content_sha256"] != other["content_sha256"]
    assert client.get(f"/api/datasets/{first['id']}/csv").data == client.get(f"/api/datasets/{second['id']}/csv").data
    assert first["meta"]["split"]["seed"] == 5 and first["splits"] == second["splits"]


# -- refused uploads and generations store nothing ------------------------------------------------


def _single_class(table: pd.DataFrame) -> bytes:
    return as_csv(table.assign(status="stayed"))


def _empty_column(table: pd.DataFrame) -> bytes:
    return as_csv(table.assign(notes=None)[[*table.columns[:-1], "notes", "status"]])


@pytest.mark.parametrize("make_data, form, code, words", [
    (lambda t: b"age,plan,status\n31,basic,stayed\n45,pro\n", {}, "malformed_csv", ["Line 3", "2 fields"]),
    (lambda t: as_csv(t).replace(b"\n5003,", b"\n5003,,", 1), {}, "malformed_csv", ["Line 5", "8 fields"]),
    (lambda t: b"", {}, "empty_dataset", ["empty"]),
    (lambda t: b"age,plan,status\n", {}, "empty_dataset", ["no data rows"]),
    (lambda t: as_csv(t.head(5)), {}, "empty_dataset", ["5 rows"]),
    (_single_class, {"task": "classification"}, "single_class_target", ["status", "stayed"]),
    (_empty_column, {}, "all_missing_column", ["notes"]),
    (as_csv, {"target": "churn"}, "unknown_column", ["churn", "monthly_spend"]),
    (as_csv, {"target": "age"}, "missing_target", ["age", "7 of 200"]),
    (as_csv, {"types": {"plan": "vector"}}, "bad_type", ["vector", "plan"]),
    (as_csv, {"types": {"plan": "numeric"}}, "bad_type", ["plan", "not a number"]),
    (as_csv, {"types": {"tier": "categorical"}}, "unknown_column", ["tier"]),
    (as_csv, {"types": "{plan: categorical"}, "bad_parameter", ["types", "JSON"]),
    (as_csv, {"types": ["plan", "categorical"]}, "bad_parameter", ["types"]),
    (as_csv, {"types": {"status": "ignored"}}, "bad_type", ["status", "target"]),
    (as_csv, {"task": "regression"}, "bad_type", ["status", "numeric"]),
    (as_csv, {"task": "clustering"}, "bad_parameter", ["task"]),
    (as_csv, {"split": "0.5,0.5"}, "bad_split", ["three"]),
    (as_csv, {"split": [0.8, 0.3, 0.1]}, "bad_split", ["add up to 1"]),
    (as_csv, {"split": [1.2, -0.1, -0.1]}, "bad_split", ["positive"]),
    (as_csv, {"split": [0.7, "0.15", 0.15]}, "bad_split", ["three fractions"]),
    (as_csv, {"split": "0.7,x,0.15"}, "bad_split", ["three"]),
    (as_csv, {"seed": "-1"}, "bad_parameter", ["seed"]),
    (as_csv, {"name": "../etc"}, "validation_error", ["name"]),
])
def test_a_bad_upload_is_refused_and_stores_nothing(shared_app, client, table, make_data, form, code, words):
    body = refused(shared_app, client, 400, code, lambda c: upload(c, make_data(table), **form))
    for word in words:
        assert word in body["message"], body


def test_an_upload_without_a_file_field_is_refused(shared_app, client, table):
    body = refused(shared_app, client, 400, "bad_parameter", lambda c: c.post(
        "/api/datasets", data={"name": "customers", "csv": (io.BytesIO(as_csv(table)), "customers.csv")},
        content_type="multipart/form-data"))
    assert "'file'" in body["message"] and body["detail"] == {"field": "file"}


@pytest.mark.parametrize("body, code, field", [
    ({"generator": "spirals"}, "unknown_generator", None),
    ({"params": {"n_samples": 50}}, "unknown_generator", "generator"),
    ({"generator": "moons", "params": {"noise": -1}}, "bad_parameter", "noise"),
    ({"generator": "moons", "params": {"n_samples": 2.5}}, "bad_parameter", "n_samples"),
    ({"generator": "moons", "params": {"n_samples": "50"}}, "bad_parameter", "n_samples"),
    ({"generator": "moons", "params": {"n_samples": True}}, "bad_parameter", "n_samples"),
    ({"generator": "moons", "params": {"n_samples": 10**9}}, "bad_parameter", "n_samples"),
    ({"generator": "moons", "params": {"radius": 2}}, "bad_parameter", "radius"),
    ({"generator": "moons", "params": [50]}, "bad_parameter", "params"),
    ({"generator": "blobs", "params": {"n_samples": 100_000, "n_features": 100}}, "bad_parameter", "n_samples"),
    ({"generator": "classification", "params": {"n_features": 4, "n_informative": 6}}, "bad_parameter",
     "n_informative"),
    ({"generator": "factorization", "params": {"low": 500, "high": 100}}, "bad_parameter", "low"),
    ({"generator": "factorization", "params": {"low": 4, "high": 20}}, "bad_parameter", "high"),
    ({"generator": "moons", "split": [0.5, 0.5, 0.5]}, "bad_split", None),
    ({"generator": "moons", "seed": 2.5}, "bad_parameter", "seed"),
])
def test_a_bad_generator_request_is_refused_and_stores_nothing(shared_app, client, body, code, field):
    error = refused(shared_app, client, 400, code, lambda c: c.post("/api/datasets", json=body))
    if field is not None:
        assert error["detail"]["field"] == field, error
        assert field in error["message"], error


def test_an_unknown_generator_names_the_ones_there_are(shared_app, client):
    error = refused(shared_app, client, 400, "unknown_generator",
                    lambda c: c.post("/api/datasets", json={"generator": "spirals"}))
    assert "spirals" in error["message"] and all(key in error["message"] for key in GENERATOR_KEYS)


@pytest.mark.parametrize("path", ["/api/datasets/nope", "/api/datasets/nope/csv"])
def test_an_unknown_dataset_is_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found" and "nope" in response.get_json()["message"]


# -- size limits ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_app(make_module_app):
    return make_module_app(max_upload_bytes=2000, max_content_length=1000)


@pytest.mark.parametrize("rows", [60, 2000])  # over the file limit; over the limit of the whole request too
def test_a_file_over_the_upload_limit_is_413(small_app, rows):
    data = as_csv(customers(rows))
    assert len(data) > 2000
    body = refused(small_app, small_app.test_client(), 413, "payload_too_large", lambda c: upload(c, data))
    assert "2000" in body["message"]


def test_a_file_under_the_upload_limit_is_taken_though_the_json_limit_is_lower(small_app):
    data = as_csv(customers(30))
    assert 1000 < len(data) <= 2000
    assert uploaded(small_app.test_client(), data)["n_rows"] == 30


def test_a_json_body_over_the_content_limit_is_413(small_app):
    body = {"generator": "moons", "params": {"n_samples": 50}, "description": "x" * 1500}
    error = refused(small_app, small_app.test_client(), 413, "payload_too_large",
                    lambda c: c.post("/api/datasets", json=body))
    assert "1000" in error["message"]


# -- deleting -------------------------------------------------------------------------------------


def test_a_builtin_cannot_be_deleted(shared_app, client):
    body = refused(shared_app, client, 409, "builtin_dataset", lambda c: c.delete("/api/datasets/iris"))
    assert "iris" in body["message"]
    assert client.get("/api/datasets/iris").status_code == 200


def test_a_dataset_a_network_uses_is_kept_until_the_network_is_gone(shared_app, client, table):
    detail = uploaded(client, as_csv(table.head(60)), name="short-lived")
    folder = shared_app.extensions["livetrain"].settings.home / "models" / "datasets" / detail["id"]
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "pipeline.joblib", "table.parquet", "upload.csv"]
    network = create_network(client, dataset_id=detail["id"])

    body = refused(shared_app, client, 409, "dataset_in_use", lambda c: c.delete(f"/api/datasets/{detail['id']}"))
    assert network["network_id"] in body["message"] and body["detail"]["network_ids"] == [network["network_id"]]

    assert client.delete(f"/api/networks/{network['network_id']}").status_code == 200
    response = client.delete(f"/api/datasets/{detail['id']}")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"dataset_id": detail["id"], "deleted": True, "deleted_from_disk": True}
    assert not folder.exists()
    assert detail["id"] not in stored(shared_app, client)["ids"]
    assert client.get(f"/api/datasets/{detail['id']}").status_code == 404
    assert client.get(f"/api/datasets/{detail['id']}/csv").status_code == 404
    assert client.delete(f"/api/datasets/{detail['id']}").status_code == 404


def test_creating_and_deleting_a_dataset_reaches_connected_clients(client, socket_client):
    socket_client.get_received()  # drop the connect greeting
    detail = generated(client, "moons", {"n_samples": 40}, name="announced")
    created = events_named(socket_client.get_received(), "dataset_created")
    assert [(e["dataset_id"], e["name"], e["task"]) for e in created] == [(detail["id"], "announced",
                                                                           "classification")]
    assert client.delete(f"/api/datasets/{detail['id']}").status_code == 200
    deleted = events_named(socket_client.get_received(), "dataset_deleted")
    assert [e["dataset_id"] for e in deleted] == [detail["id"]]


def test_a_refused_upload_announces_nothing(client, socket_client):
    socket_client.get_received()
    assert upload(client, b"a,b\n1\n").status_code == 400
    assert events_named(socket_client.get_received(), "dataset_created") == []


# -- training and predicting on raw rows ----------------------------------------------------------


def test_the_default_network_on_an_upload_trains_to_completion(trained, dataset):
    network, run = trained["network"], trained["run"]
    assert network["architecture"] == [dataset["n_features"], 30, 2]
    assert network["dataset_id"] == dataset["id"]
    for split in ("train", "val", "test"):
        assert 0.0 <= run["metrics"][split]["accuracy"] <= 1.0, run["metrics"]


def test_raw_rows_are_predicted_as_the_original_labels(client, trained, dataset, table):
    features = dataset["schema"]["features"]
    rows = [{name: _plain(row[name]) for name in features} for row in table.head(5).to_dict("records")]
    response = client.post(f"/api/networks/{trained['network']['network_id']}/predict", json={"rows": rows})
    body = response.get_json()
    assert response.status_code == 200, body
    predictions = body["predictions"]
    assert len(predictions) == 5
    for item in predictions:
        assert item["predicted"] in ("churned", "stayed")
        assert dataset["meta"]["classes"][item["class_index"]] == item["predicted"]
        assert item["class_index"] == int(np.argmax(item["output"]))

    # the same rows as lists in feature order, and copied whole from the preview, predict the same
    as_lists = [[row[name] for name in features] for row in rows]
    same = client.post(f"/api/networks/{trained['network']['network_id']}/predict", json={"rows": as_lists})
    assert [p["predicted"] for p in same.get_json()["predictions"]] == [p["predicted"] for p in predictions]
    copied = client.post(f"/api/networks/{trained['network']['network_id']}/predict",
                         json={"row": dataset["preview"][1]}).get_json()
    assert copied["prediction"] == predictions[1]["predicted"]


def test_a_row_with_an_unknown_value_is_imputed_like_a_missing_cell(client, trained):
    row = {"age": None, "plan": "pro", "active": "no", "signup": "2023-02-01", "monthly_spend": ""}
    body = client.post(f"/api/networks/{trained['network']['network_id']}/predict", json={"row": row}).get_json()
    assert body["prediction"] in ("churned", "stayed")


@pytest.mark.parametrize("row, words", [
    ({"age": 40, "plan": "pro", "active": "yes", "signup": "2023-02-01"}, ["'monthly_spend'"]),
    ({"age": 40, "plan": "pro", "active": "yes", "signup": "2023-02-01", "monthly_spend": 20, "tier": 1},
     ["'tier'"]),
    ({"age": "forty", "plan": "pro", "active": "yes", "signup": "2023-02-01", "monthly_spend": 20},
     ["'age'", "a number"]),
    ({"age": 40, "plan": "pro", "active": "maybe", "signup": "2023-02-01", "monthly_spend": 20}, ["'active'"]),
    ({"age": 40, "plan": "pro", "active": "yes", "signup": "someday", "monthly_spend": 20}, ["'signup'", "date"]),
])
def test_a_bad_raw_row_is_refused_naming_the_column(client, trained, row, words):
    response = client.post(f"/api/networks/{trained['network']['network_id']}/predict", json={"rows": [row]})
    body = response.get_json()
    assert (response.status_code, body["error"]) == (400, "bad_input"), body
    for word in words:
        assert word in body["message"], body


def test_dates_become_calendar_features_a_linear_model_learns_a_season_from(client):
    at = pd.date_range("2019-01-01 06:00", "2022-12-31", freq="19h")  # four years of times of day
    frame = pd.DataFrame({"at": at.strftime("%Y-%m-%d %H:%M"),
                          "season": np.where(at.month.isin([11, 12, 1, 2]), "winter", "other")})
    detail = uploaded(client, as_csv(frame), filename="seasons.csv")
    assert client.get(f"/api/datasets/{detail['id']}").get_json() == detail
    columns = {c["name"]: c for c in detail["schema"]["columns"]}
    made = ["year", "month", "month_sin", "month_cos", "day_of_week", "day_of_week_sin", "day_of_week_cos",
            "day_of_year_sin", "day_of_year_cos", "hour", "hour_sin", "hour_cos"]
    assert columns["at"]["features"] == detail["feature_names"] == [f"at.{name}" for name in made]
    assert columns["season"]["features"] is None  # the target is not an input

    experiment = create_experiment(client, name="seasons")["experiment_id"]
    run = wait_for_run(client, run_in(client, experiment, algorithm="linear", dataset_id=detail["id"],
                                      seed=0)["run_id"])
    assert run["status"] == "completed", run
    assert run["metrics"]["test"]["accuracy"] >= 0.9  # one timestamp number: about 0.67, always "other"
    response = client.post(f"/api/runs/{run['run_id']}/predict",
                           json={"rows": [{"at": "2030-01-20 14:00"}, {"at": "2030-07-04"}]})
    assert response.status_code == 200, response.get_json()
    assert [p["predicted"] for p in response.get_json()["predictions"]] == ["winter", "other"]


def _plain(value):
    """A table cell as JSON sends it: NaN as null, numpy numbers as Python ones."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


# -- the integer-factorization workflow -----------------------------------------------------------


@pytest.fixture(scope="module")
def factorization(shared_app) -> dict:
    """The default factorization set, its default network, trained for 3 epochs."""
    client = shared_app.test_client()
    detail = generated(client, "factorization", {"low": 4, "high": 9999})
    network = create_network(client, dataset_id=detail["id"])
    run = wait_for_run(client, start_run(client, network["network_id"], epochs=3, batch_size=64)["run_id"])
    assert run["status"] == "completed", run
    return {"dataset": detail, "network": network, "run": run}


def test_the_factorization_set_is_every_product_of_two_primes(client, factorization):
    detail = factorization["dataset"]
    assert (detail["task"], detail["n_features"], detail["n_classes"]) == ("regression", 4, 0)
    assert detail["meta"]["kind"] == "factorization" and detail["meta"]["n_outputs"] == 2
    assert detail["schema"]["targets"] == ["p", "q"] and detail["schema"]["passthrough"] is True
    assert detail["n_rows"] == detail["meta"]["count"] == semiprime_count(9999)
    assert sum(detail["splits"].values()) == detail["n_rows"]
    frame = pd.read_csv(io.BytesIO(client.get(f"/api/datasets/{detail['id']}/csv").data))
    assert list(frame.columns) == ["d0", "d1", "d2", "d3", "p", "q"]
    n = frame["d0"] * 1000 + frame["d1"] * 100 + frame["d2"] * 10 + frame["d3"]
    assert (n == frame["p"] * frame["q"]).all() and (frame["p"] <= frame["q"]).all()
    assert frame.loc[n == 2021, ["p", "q"]].values.tolist() == [[43, 47]]


def test_a_factorization_network_embeds_the_digits_and_reports_regression_metrics(factorization):
    network, run = factorization["network"], factorization["run"]
    assert network["architecture"][0]["type"] == "Embedding"
    assert network["layers"][-1]["output_shape"] == [2]
    for split in ("train", "val", "test"):
        metrics = run["metrics"][split]
        assert {"r2", "mae", "rmse", "factorized"} <= set(metrics), metrics
        assert metrics["mae"] >= 0 and metrics["rmse"] >= metrics["mae"]
        assert 0.0 <= metrics["factorized"] <= 1.0


def test_predicting_factors_of_a_number(client, factorization):
    response = client.post(f"/api/networks/{factorization['network']['network_id']}/predict", json={"n": 2021})
    body = response.get_json()
    assert response.status_code == 200, body
    assert (body["n"], body["digits"]) == (2021, [2, 0, 2, 1])
    assert len(body["factors"]) == 2 and all(isinstance(f, int) for f in body["factors"])
    assert body["factors"] == sorted(body["factors"])
    assert len(body["raw_outputs"]) == 2 and all(isinstance(v, float) for v in body["raw_outputs"])
    assert body["factors"] == sorted(max(0, round(v)) for v in body["raw_outputs"])
    assert body["product"] == body["factors"][0] * body["factors"][1]
    assert body["correct"] == (body["product"] == 2021 and min(body["factors"]) > 1)


@pytest.mark.parametrize("n, word", [
    (2.5, "whole number"), ("x", "whole number"), ("2021", "whole number"), (True, "whole number"),
    (3, "at least 4"), (-7, "at least 4"), (100000, "at most 4"),
])
def test_a_bad_number_to_factor_is_refused(client, factorization, n, word):
    response = client.post(f"/api/networks/{factorization['network']['network_id']}/predict", json={"n": n})
    body = response.get_json()
    assert response.status_code == 400, body
    assert body["error"] == "bad_input" and word in body["message"], body
