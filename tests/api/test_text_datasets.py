"""Text datasets of the six kinds: created from samples and from uploads, checked, previewed, appended to."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

SAMPLES = {
    "binary_classification": [{"text": f"{w} movie number {i}", "label": w == "great"}
                              for i in range(6) for w in ("great", "awful")],
    "multiclass_classification": [{"text": f"about {t} today {i}", "label": t}
                                  for i in range(4) for t in ("sport", "music", "food")],
    "regression": [{"text": "stars " * (i % 5 + 1), "target": i % 5 + 1} for i in range(12)],
    "question_answering": [{"question": f"What is {i} plus one?", "context": f"{i} plus one is {i + 1}.",
                            "answer": str(i + 1)} for i in range(10)],
    "summarization": [{"article": f"The long story number {i} goes on and on about cats.",
                       "summary": f"story {i}: cats"} for i in range(10)],
    "generation": [{"input": f"say {i}", "target": f"I say {i}"} for i in range(10)],
}
TASKS = {"binary_classification": "classification", "multiclass_classification": "classification",
         "regression": "regression", "question_answering": "sequence", "summarization": "sequence",
         "generation": "sequence"}


def _create(client, kind, samples=None, **extra):
    return client.post("/api/datasets", json={"kind": kind, "samples": samples or SAMPLES[kind], **extra})


def _upload(client, kind, content: bytes, filename: str, **form):
    return client.post("/api/datasets", data={"kind": kind, "file": (io.BytesIO(content), filename), **form},
                       content_type="multipart/form-data")


def _csv(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _check(app, body, kind, n):
    assert body["task"] == TASKS[kind]
    assert body["meta"]["text"]["kind"] == kind
    assert body["n_train"] + body["n_val"] + body["n_test"] == n
    assert body["n_rows"] == n and body["preview"][0]["tokens"] > 0
    arrays = app.extensions["livetrain"].datasets.arrays(body["id"])
    T = body["meta"]["text"]["max_len"]
    assert arrays.X_train.shape == (body["n_train"], T) and arrays.X_train.dtype == np.float32
    if TASKS[kind] == "classification":
        assert arrays.y_train.dtype == np.int64 and arrays.y_train.ndim == 1
    elif TASKS[kind] == "regression":
        assert arrays.y_train.shape == (body["n_train"], 1) and arrays.y_train.dtype == np.float32
    else:
        assert arrays.y_train.shape == (body["n_train"], T) and arrays.y_train.dtype == np.int64
        assert (arrays.y_train == -100).any() and (arrays.y_train == 3).sum() == body["n_train"]  # one <eos> each
    return arrays


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_each_kind_from_samples(app, client, kind):
    response = _create(client, kind, name=f"{kind}-set")
    assert response.status_code == 201, response.get_json()
    _check(app, response.get_json(), kind, len(SAMPLES[kind]))


@pytest.mark.parametrize("kind", list(SAMPLES))
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_each_kind_from_an_upload(app, client, kind, fmt):
    rows = SAMPLES[kind]
    content = _csv(rows) if fmt == "csv" else "\n".join(json.dumps(r) for r in rows).encode()
    response = _upload(client, kind, content, f"data.{fmt}", split="0.6,0.2,0.2", seed="3")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    _check(app, body, kind, len(rows))
    assert body["meta"]["split"] == {"fractions": [0.6, 0.2, 0.2], "seed": 3,
                                     "stratified": TASKS[kind] == "classification"}
    with client.get(f"/api/datasets/{body['id']}/file") as original:
        assert original.status_code == 200 and original.data == content


def test_the_binary_labels_and_their_balance(client):
    body = _create(client, "binary_classification").get_json()
    assert body["meta"]["classes"] == ["false", "true"]
    assert body["class_balance"] == {"false": 6, "true": 6}
    assert body["meta"]["text"]["level"] == "word"


def test_a_plain_text_generation_dataset_from_one_text(app, client):
    story = "Once upon a time there was a small robot who liked to train networks. " * 20
    response = _upload(client, "generation", _csv([{"text": story}]), "story.csv", max_len="64")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["meta"]["text"]["level"] == "char" and body["meta"]["text"]["mode"] == "text"
    assert body["n_train"] + body["n_val"] + body["n_test"] == -(-(len(story) + 1) // 64)


def test_max_len_truncation_is_counted_and_shown(client):
    samples = [{"text": "word " * (40 if i % 2 else 3) + str(i % 3), "label": i % 3} for i in range(12)]
    body = _create(client, "multiclass_classification", samples, max_len=8).get_json()
    assert body["truncated"] == 6
    assert [p["truncated"] for p in body["preview"][:2]] == [False, True]
    assert body["token_counts"]["max"] == 41


@pytest.mark.parametrize("kind, samples, code, field", [
    ("binary_classification", [{"text": "", "label": 1}] + SAMPLES["binary_classification"], "empty_text", "text"),
    ("binary_classification", [{"text": "x"}] + SAMPLES["binary_classification"], "missing_column", "label"),
    ("binary_classification", [{"text": "x", "label": None}] + SAMPLES["binary_classification"], "missing_label",
     "label"),
    ("regression", SAMPLES["regression"] + [{"text": "x", "target": "lots"}], "label_not_numeric", "target"),
    ("summarization", [{"article": "a", "summary": "   "}] * 4, "empty_text", "summary"),
])
def test_checks_name_the_sample_and_the_field(client, kind, samples, code, field):
    response = _create(client, kind, samples)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == code and body["detail"]["field"] == field
    assert "sample" in body["message"]


@pytest.mark.parametrize("kind, samples, code", [
    ("multiclass_classification", [{"text": "a", "label": k} for k in "xxyyz"], "too_few_per_class"),
    ("binary_classification", [{"text": "a", "label": k} for k in "xyzxyz"], "bad_labels"),  # three labels
    ("multiclass_classification", [{"text": "a", "label": 1}] * 6, "bad_labels"),  # one label
    ("binary_classification", [{"text": "a", "label": 1}, {"text": "b", "label": 0}], "too_few_samples"),
])
def test_label_checks(client, kind, samples, code):
    response = _create(client, kind, samples)
    assert response.status_code == 400 and response.get_json()["error"] == code


@pytest.mark.parametrize("body, field", [
    ({"kind": "poetry"}, "kind"), ({"level": "byte"}, "level"), ({"max_len": 2}, "max_len"),
    ({"split": [0.5, 0.5]}, "split"), ({"samples": "text"}, "samples"), ({"samples": []}, "samples"),
    ({"min_freq": 0}, "min_freq"),
])
def test_bad_options_are_400(client, body, field):
    response = client.post("/api/datasets", json={"kind": "binary_classification",
                                                  "samples": SAMPLES["binary_classification"], **body})
    assert response.status_code == 400
    detail = response.get_json().get("detail") or {}
    assert detail.get("field") == field


def test_an_upload_without_the_kinds_columns_is_refused(client):
    response = _upload(client, "summarization", b"text,label\nhi,1\n", "x.csv")
    assert response.status_code == 400 and response.get_json()["error"] == "missing_column"
    assert "article" in response.get_json()["message"]


def test_samples_are_appended_and_encoded_with_the_datasets_own_tokens(app, client):
    body = _create(client, "binary_classification").get_json()
    vid = body["meta"]["text"]["vocabulary_id"]
    client.post(f"/api/vocabularies/{vid}/tokens", json={"token": "brilliant"})
    response = client.post(f"/api/datasets/{body['id']}/samples",
                           json={"samples": [{"text": "brilliant movie", "label": True},
                                             {"text": "awful awful", "label": False}]})
    assert response.status_code == 201, response.get_json()
    after = response.get_json()
    assert after["added"] == 2 and after["n_rows"] == 14
    assert after["content_sha256"] != body["content_sha256"]
    # the id of "brilliant" was added after the dataset was made: its copy of the tokens says <unk>
    assert after["meta"]["text"]["vocab_size"] == body["meta"]["text"]["vocab_size"]
    arrays = app.extensions["livetrain"].datasets.arrays(body["id"])
    assert arrays.X_train.max() < body["meta"]["text"]["vocab_size"]
    one = client.post(f"/api/datasets/{body['id']}/samples", json={"text": "great", "label": True})
    assert one.status_code == 201 and one.get_json()["n_rows"] == 15
    bad = client.post(f"/api/datasets/{body['id']}/samples", json={"text": "great"})
    assert bad.status_code == 400 and bad.get_json()["detail"]["row"] == 16


def test_samples_go_only_to_text_datasets(client):
    response = client.post("/api/datasets/iris/samples", json={"samples": [{"text": "a", "label": 1}]})
    assert response.status_code == 400 and response.get_json()["error"] == "not_text"


def test_the_csv_download_has_each_sample_and_its_split(client):
    body = _create(client, "summarization").get_json()
    with client.get(f"/api/datasets/{body['id']}/csv") as response:
        rows = list(csv.DictReader(io.StringIO(response.data.decode())))
    assert len(rows) == 10 and set(rows[0]) == {"article", "summary", "split"}
    assert rows[0]["article"] == SAMPLES["summarization"][0]["article"]
    assert {r["split"] for r in rows} == {"train", "val", "test"}


def test_templates_fit_the_kind(client):
    expected = {"binary_classification": "gru_classifier", "regression": "gru_regressor",
                "generation": "char_lm"}
    for kind, default in expected.items():
        dataset = _create(client, kind).get_json()
        body = client.get("/api/templates", query_string={"dataset_id": dataset["id"]}).get_json()
        assert body["default"] == default
        layers = body["templates"][0]["body"]["layers"]
        assert layers[0]["type"] == "Embedding"
        assert layers[0]["num_embeddings"] == dataset["meta"]["text"]["vocab_size"]
    assert client.get("/api/templates", query_string={"dataset_id": "iris"}).status_code == 400
    assert client.get("/api/templates").status_code == 404


def test_generate_refuses_a_network_that_is_not_a_language_model(client):
    network = client.post("/api/networks", json={"dataset_id": "iris"}).get_json()
    response = client.post(f"/api/networks/{network['network_id']}/generate", json={"prompt": "hi"})
    assert response.status_code == 400 and response.get_json()["error"] == "not_a_language_model"
    assert client.post("/api/networks/nope/generate", json={}).status_code == 404


def test_a_template_is_only_for_text_datasets(client):
    response = client.post("/api/networks", json={"dataset_id": "iris", "template": "auto"})
    assert response.status_code == 400 and response.get_json()["error"] == "no_template"
