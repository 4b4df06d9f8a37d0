"""Vocabularies over REST: specials always there, categories, tokens added and deleted, built from a dataset."""

from __future__ import annotations

import pytest

SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>", "<sep>"]


def _tokens(client, vocabulary_id, **query):
    body = client.get(f"/api/vocabularies/{vocabulary_id}", query_string=query).get_json()
    return {t["token"]: t for t in body["tokens"]}


def _dataset(client, **extra):
    samples = [{"text": f"a good film {i % 3}", "label": "pos"} for i in range(6)] + \
              [{"text": f"a bad film, sadly {i % 3}", "label": "neg"} for i in range(6)]
    body = {"kind": "binary_classification", "samples": samples, **extra}
    response = client.post("/api/datasets", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_new_vocabulary_has_the_specials_with_fixed_ids(client):
    response = client.post("/api/vocabularies", json={"name": "mine", "level": "word"})
    assert response.status_code == 201
    body = response.get_json()
    assert [(t["id"], t["token"], t["category"]) for t in body["tokens"]] == [
        (i, t, "special") for i, t in enumerate(SPECIALS)]
    assert body["size"] == 5 and body["used_by"] == []
    assert body["vocabulary_id"] in [v["id"] for v in client.get("/api/vocabularies").get_json()["vocabularies"]]


def test_tokens_get_the_next_ids_and_a_category_each(client):
    vid = client.post("/api/vocabularies", json={"level": "word"}).get_json()["id"]
    response = client.post(f"/api/vocabularies/{vid}/tokens", json={"tokens": ["cat", "42", "?", "x1", "cat"]})
    assert response.status_code == 201
    body = response.get_json()
    assert [(t["id"], t["token"], t["category"]) for t in body["added"]] == [
        (5, "cat", "alphabetic"), (6, "42", "numeric"), (7, "?", "punctuation"), (8, "x1", "general")]
    again = client.post(f"/api/vocabularies/{vid}/tokens", json={"token": "<pad>"}).get_json()
    assert again["added"] == [] and again["existing"] == ["<pad>"]
    assert _tokens(client, vid, category="numeric").keys() == {"42"}


def test_a_deleted_tokens_id_is_not_given_out_again(client):
    vid = client.post("/api/vocabularies", json={"tokens": ["a", "b"]}).get_json()["id"]
    assert client.delete(f"/api/vocabularies/{vid}/tokens/a").status_code == 200
    added = client.post(f"/api/vocabularies/{vid}/tokens", json={"token": "c"}).get_json()["added"]
    assert added[0]["id"] == 7
    assert set(_tokens(client, vid)) == {*SPECIALS, "b", "c"}
    assert client.delete(f"/api/vocabularies/{vid}/tokens/zzz").status_code == 404


@pytest.mark.parametrize("token", SPECIALS)
def test_special_tokens_cannot_be_deleted(client, token):
    vid = client.post("/api/vocabularies", json={}).get_json()["id"]
    response = client.delete(f"/api/vocabularies/{vid}/tokens", query_string={"token": token})
    assert response.status_code == 409 and response.get_json()["error"] == "special_token"
    assert token in _tokens(client, vid)


def test_tokens_a_url_path_cannot_carry_are_deleted_by_query(client):
    vid = client.post("/api/vocabularies", json={"tokens": [".", "/", "?"]}).get_json()["id"]
    assert client.delete(f"/api/vocabularies/{vid}/tokens", query_string={"token": "."}).status_code == 200
    assert client.delete(f"/api/vocabularies/{vid}/tokens", query_string={"token": "/"}).status_code == 200
    assert client.delete(f"/api/vocabularies/{vid}/tokens/%3F").status_code == 200  # URL-encoded in the path
    assert set(_tokens(client, vid)) == set(SPECIALS)


def test_tokens_must_fit_the_level(client):
    vid = client.post("/api/vocabularies", json={"level": "char"}).get_json()["id"]
    response = client.post(f"/api/vocabularies/{vid}/tokens", json={"token": "ab"})
    assert response.status_code == 400 and response.get_json()["error"] == "bad_token"
    wid = client.post("/api/vocabularies", json={"level": "word"}).get_json()["id"]
    assert client.post(f"/api/vocabularies/{wid}/tokens", json={"token": "a b"}).status_code == 400
    assert client.post(f"/api/vocabularies/{wid}/tokens", json={"tokens": []}).status_code == 400
    assert client.post(f"/api/vocabularies/{wid}/tokens", json={"token": ""}).status_code == 400


def test_a_vocabulary_a_dataset_uses_keeps_its_tokens_but_takes_new_ones(client):
    dataset = _dataset(client)
    vid = dataset["meta"]["text"]["vocabulary_id"]
    response = client.delete(f"/api/vocabularies/{vid}/tokens/good")
    assert response.status_code == 409 and response.get_json()["error"] == "vocabulary_in_use"
    assert client.delete(f"/api/vocabularies/{vid}").status_code == 409
    assert client.post(f"/api/vocabularies/{vid}/tokens", json={"token": "great"}).status_code == 201
    detail = client.get(f"/api/vocabularies/{vid}").get_json()
    assert detail["used_by"] == [dataset["id"]] and detail["dataset_id"] == dataset["id"]


def test_a_datasets_own_vocabulary_goes_with_it(client):
    dataset = _dataset(client)
    vid = dataset["meta"]["text"]["vocabulary_id"]
    assert client.delete(f"/api/datasets/{dataset['id']}").status_code == 200
    assert client.get(f"/api/vocabularies/{vid}").status_code == 404


def test_a_shared_vocabulary_outlives_the_dataset_it_was_built_for(client):
    first = _dataset(client)
    vid = first["meta"]["text"]["vocabulary_id"]
    second = _dataset(client, vocabulary_id=vid)
    client.delete(f"/api/datasets/{first['id']}")
    detail = client.get(f"/api/vocabularies/{vid}").get_json()
    assert detail["dataset_id"] is None and detail["used_by"] == [second["id"]]


def test_build_from_a_dataset_with_min_freq_and_max_size(client):
    dataset = _dataset(client, split=[0.5, 0.25, 0.25])
    vid = client.post("/api/vocabularies", json={"name": "built"}).get_json()["id"]
    response = client.post(f"/api/vocabularies/{vid}/build",
                           json={"dataset_id": dataset["id"], "min_freq": 2, "max_size": 9})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    tokens = _tokens(client, vid)
    assert body["size"] == 9 and len(tokens) == 9 and body["level"] == "word"
    # the most frequent training tokens first: "a" and "film" are in every sample
    assert tokens["a"]["id"] == 5 and tokens["film"]["id"] == 6
    assert all(t["count"] >= 2 for t in tokens.values() if t["category"] != "special")
    # a character build into a word vocabulary is refused
    refused = client.post(f"/api/vocabularies/{vid}/build", json={"dataset_id": dataset["id"], "level": "char"})
    assert refused.status_code == 400


def test_unknown_words_map_to_unk_in_a_dataset_encoded_with_a_given_vocabulary(app, client):
    vid = client.post("/api/vocabularies", json={"level": "word", "tokens": ["good", "bad"]}).get_json()["id"]
    dataset = _dataset(client, vocabulary_id=vid)
    arrays = app.extensions["livetrain"].datasets.arrays(dataset["id"])
    ids = set(arrays.X_train.ravel().astype(int).tolist())
    assert ids <= {0, 1, 5, 6}  # padding, <unk>, good, bad
    assert dataset["unknown_share"] > 0.5  # "a", "film", "sadly", the digits and "," are not in it
    assert dataset["meta"]["text"]["vocab_size"] == 7


@pytest.mark.parametrize("body, code", [
    ({"level": "sentence"}, 400), ({"name": "../x"}, 400), ({"tokens": "x" * 101}, 400),
])
def test_bad_vocabularies_are_refused(client, body, code):
    assert client.post("/api/vocabularies", json=body).status_code == code


def test_unknown_vocabulary_is_404(client):
    assert client.get("/api/vocabularies/nope").status_code == 404
    assert client.post("/api/vocabularies/nope/tokens", json={"token": "a"}).status_code == 404
