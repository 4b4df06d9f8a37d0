"""Uploading files as people have them, over REST: spreadsheet exports in other dialects and encodings,
Excel, Parquet and gzip, numbers written with separators, rows without a target, the file as sent, and
the progress of the work. Each defect found with real files has its regression test here."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pandas as pd
import pytest

from tests.api.test_datasets import customers, refused, upload, uploaded
from tests.helpers import create_experiment, events_named, run_in, wait_for_run


@pytest.fixture(scope="module")
def shared_app(make_module_app):
    return make_module_app(warm_workers=1)


@pytest.fixture
def client(shared_app):
    return shared_app.test_client()


def spooled(app) -> list[str]:
    folder = app.extensions["livetrain"].settings.models_dir / ".spool"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def column(detail: dict, name: str) -> dict:
    return next(c for c in detail["schema"]["columns"] if c["name"] == name)


def test_a_european_spreadsheet_export_is_read(client):
    # defect 2: semicolons and decimal commas were refused as one ragged column
    frame = customers(80)
    data = frame.to_csv(index=False, sep=";", decimal=",", lineterminator="\r\n").encode("cp1252")
    detail = uploaded(client, data, "export.csv", target="status")
    dialect = detail["schema"]["dialect"]
    assert (dialect["delimiter"], dialect["decimal"], dialect["line_ending_name"]) == (";", ",", "CRLF")
    assert column(detail, "monthly_spend")["type"] == "numeric"
    assert [row["monthly_spend"] for row in detail["preview"]] == frame["monthly_spend"].head(10).tolist()


def test_a_tab_separated_file_is_read(client):
    # defect 3: one column named "a\tb\tc..." and an unknown target
    data = customers(60).to_csv(index=False, sep="\t").encode()
    detail = uploaded(client, data, "customers.txt", target="status")
    assert detail["schema"]["dialect"]["delimiter_name"] == "tab"
    assert {c["name"] for c in detail["schema"]["columns"]} == set(customers(60).columns)


def test_windows_1252_text_keeps_its_euro_signs_and_quotes(client):
    # defect 4: "< 10 €" became "< 10 \x80", so the user's own value was an unseen category
    frame = customers(60)
    frame["band"] = np.where(frame["monthly_spend"] < 10, "< 10 €", "l’été – more")
    detail = uploaded(client, frame.to_csv(index=False).encode("cp1252"), target="status")
    assert detail["schema"]["dialect"]["encoding"] == "cp1252"
    assert "band=< 10 €" in detail["feature_names"] and "band=l’été – more" in detail["feature_names"]
    assert {row["band"] for row in detail["preview"]} <= {"< 10 €", "l’été – more"}


@pytest.mark.parametrize("encoding, ending", [("utf-16", "\n"), ("utf-8", "\r")])
def test_utf16_and_carriage_return_files_are_read(client, encoding, ending):
    # defect 4: UTF-16 was "binary"; CR-only endings leaked a Python csv error
    frame = customers(40)
    data = frame.to_csv(index=False, lineterminator=ending).encode(encoding)
    detail = uploaded(client, data, target="status")
    assert detail["n_rows"] == 40
    assert detail["schema"]["dialect"]["encoding"] == encoding


def test_numbers_as_people_write_them_are_numbers_and_predict_as_written(client):
    # defect 5: "89,961.37" and "58%" were left out as free text
    rng = np.random.default_rng(5)
    n = 80
    revenue = np.round(rng.uniform(500, 90_000, n), 2)
    margin = rng.integers(1, 99, n)
    frame = pd.DataFrame({"revenue": [f"{v:,.2f}" for v in revenue], "margin": [f"{m}%" for m in margin],
                          "label": np.where(revenue > 45_000, "big", "small")})
    detail = uploaded(client, frame.to_csv(index=False).encode(), target="label")
    revenue_column, margin_column = column(detail, "revenue"), column(detail, "margin")
    assert revenue_column["type"] == margin_column["type"] == "numeric"
    assert revenue_column["role"] == "feature" and revenue_column["number_format"]["thousands"] == ","
    assert "thousands separator" in revenue_column["note"] and "percent" in margin_column["note"]

    experiment = create_experiment(client, name="written-numbers")
    run = run_in(client, experiment["experiment_id"], algorithm="linear", dataset_id=detail["id"])
    assert wait_for_run(client, run["run_id"])["status"] == "completed"
    for row, expected in (({"revenue": "88,500.00", "margin": "40%"}, "big"),
                          ({"revenue": 900.5, "margin": 40}, "small")):
        response = client.post(f"/api/runs/{run['run_id']}/predict", json={"row": row})
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["prediction"] == expected
    bad = client.post(f"/api/runs/{run['run_id']}/predict", json={"row": {"revenue": "lots", "margin": "4%"}})
    assert bad.status_code == 400 and "revenue" in bad.get_json()["message"]


def test_rows_without_a_target_can_be_dropped_and_are_counted(shared_app, client):
    # defect 6: the only way out was to edit the file
    frame = customers(60)
    frame.loc[[4, 11, 30], "status"] = None
    data = frame.to_csv(index=False).encode()
    body = refused(shared_app, client, 400, "missing_target", lambda c: upload(c, data, target="status"))
    assert "missing_target=drop" in body["message"] and "3 of 60" in body["message"]
    detail = uploaded(client, data, target="status", missing_target="drop")
    assert detail["schema"]["dropped_rows"] == {"missing_target": 3}
    assert detail["n_rows"] == 57
    refused(shared_app, client, 400, "bad_parameter", lambda c: upload(c, data, missing_target="fill"))


@pytest.mark.parametrize("kind", ["xlsx", "parquet", "csv.gz", "tsv"])
def test_other_formats_and_the_file_comes_back_as_sent(client, kind):
    frame = customers(50)
    out = io.BytesIO()
    if kind == "xlsx":
        frame.to_excel(out, index=False, sheet_name="Customers")
    elif kind == "parquet":
        frame.to_parquet(out, index=False)
    elif kind == "tsv":
        out.write(frame.to_csv(index=False, sep="\t").encode())
    else:
        out.write(gzip.compress(frame.to_csv(index=False).encode()))
    data = out.getvalue()
    detail = uploaded(client, data, f"customers.{kind}", target="status")
    assert detail["n_rows"] == 50 and detail["schema"]["dialect"]["format"] == kind.split(".")[0].replace("tsv", "csv")
    with client.get(f"/api/datasets/{detail['id']}/file") as sent_back:
        assert sent_back.status_code == 200 and sent_back.data == data
        assert f'customers.{kind}' in sent_back.headers["Content-Disposition"]
    as_csv = pd.read_csv(io.BytesIO(client.get(f"/api/datasets/{detail['id']}/csv").data))
    assert as_csv["status"].tolist() == frame["status"].tolist()
    np.testing.assert_allclose(as_csv["monthly_spend"], frame["monthly_spend"])


def test_a_generated_dataset_has_no_file_but_its_csv(client):
    response = client.post("/api/datasets", json={"generator": "moons", "params": {"n_samples": 60}})
    dataset_id = response.get_json()["id"]
    missing = client.get(f"/api/datasets/{dataset_id}/file")
    assert missing.status_code == 404 and missing.get_json()["error"] == "no_file"
    assert len(pd.read_csv(io.BytesIO(client.get(f"/api/datasets/{dataset_id}/csv").data))) == 60


@pytest.mark.parametrize("data, form, code, words", [
    (customers(30).to_csv(index=False, sep=";").encode(), {"delimiter": "comma"}, "malformed_csv",
     ["comma", "delimiter"]),
    (b"a,b\n1,2\n" * 3, {"sheet": "x", "format": "xlsx"}, "unsupported_format", ["xlsx"]),
    (b"\x00\x01\x02binary\x00" * 50, {}, "malformed_csv", ["binary"]),
    (customers(30).to_csv(index=False).encode(), {"encoding": "no-such-codec"}, "bad_parameter", ["encoding"]),
    (customers(30).to_csv(index=False).encode(), {"decimal": "x"}, "bad_parameter", ["decimal"]),
])
def test_refused_files_say_what_was_seen_and_leave_nothing(shared_app, client, data, form, code, words):
    body = refused(shared_app, client, 400, code, lambda c: upload(c, data, **form))
    for word in words:
        assert word in body["message"], body
    assert spooled(shared_app) == []  # the received bytes are gone too


def test_the_uploader_hears_each_stage(shared_app, client):
    sio = shared_app.extensions["socketio"].test_client(shared_app, flask_test_client=client)
    try:
        detail = uploaded(client, customers(60).to_csv(index=False).encode(), upload_id="u-123")
        stages = [e for e in events_named(sio.get_received(), "dataset_progress") if e["upload_id"] == "u-123"]
        assert stages and stages[-1]["stage"] == "done" and stages[-1]["dataset_id"] == detail["id"]
        upload(client, b"a,b\n1\n", upload_id="u-456")
        failed = [e for e in events_named(sio.get_received(), "dataset_progress") if e["upload_id"] == "u-456"]
        assert failed[-1]["stage"] == "failed" and "Line 2" in failed[-1]["message"]
    finally:
        sio.disconnect()


def test_a_dataset_stored_before_parquet_still_downloads_and_serves_its_file(shared_app, client):
    # earlier versions kept the upload as data.csv and no table.parquet; those datasets must keep working
    livetrain = shared_app.extensions["livetrain"]
    data = customers(40).to_csv(index=False).encode()
    detail = uploaded(client, data, target="status")
    dataset = livetrain.store.get_dataset(detail["id"])
    old = livetrain.artifacts.write_bytes(f"datasets/{dataset.id}/data.csv", data)
    for key in ("table", "upload"):
        livetrain.artifacts.delete(dataset.files.pop(key)["path"])
    dataset.files["csv"] = {"path": old.path, "sha256": old.sha256}
    livetrain.store.upsert_dataset(dataset)
    assert client.get(f"/api/datasets/{dataset.id}/csv").data == data
    with client.get(f"/api/datasets/{dataset.id}/file") as response:
        assert response.status_code == 200 and response.data == data


@pytest.fixture(scope="module")
def worker_app(make_module_app):
    # every upload is prepared in a worker process here, as a big one is by default
    return make_module_app(prepare_in_worker_bytes=0, warm_workers=1)


def test_a_big_upload_is_prepared_in_a_worker_with_the_same_result_and_refusals(worker_app, shared_app):
    data = customers(80).to_csv(index=False, sep=";", decimal=",").encode("cp1252")
    in_worker = uploaded(worker_app.test_client(), data, "export.csv", target="status")
    in_server = uploaded(shared_app.test_client(), data, "export.csv", target="status")
    for key in ("schema", "feature_names", "class_balance", "preview", "splits", "content_sha256"):
        assert in_worker[key] == in_server[key], key

    client = worker_app.test_client()
    sio = worker_app.extensions["socketio"].test_client(worker_app, flask_test_client=client)
    try:
        body = refused(worker_app, client, 400, "malformed_csv",
                       lambda c: upload(c, b"a;b;c\n1;2;3\n4;5\n" * 4, upload_id="w-1"))
        assert "Line 3" in body["message"] and body["detail"]["field"] == "delimiter"
        stages = [e["stage"] for e in events_named(sio.get_received(), "dataset_progress")
                  if e["upload_id"] == "w-1"]
        assert stages[0] == "reading" and stages[-1] == "failed"
    finally:
        sio.disconnect()
    assert spooled(worker_app) == []

    # the dataset a worker prepared trains and predicts like any other
    experiment = create_experiment(client, name="prepared-in-a-worker")
    run = run_in(client, experiment["experiment_id"], algorithm="linear", dataset_id=in_worker["id"])
    assert wait_for_run(client, run["run_id"])["status"] == "completed"
    response = client.post(f"/api/runs/{run['run_id']}/predict", json={"row": in_worker["preview"][0]})
    assert response.status_code == 200 and response.get_json()["prediction"] in ("churned", "stayed")
