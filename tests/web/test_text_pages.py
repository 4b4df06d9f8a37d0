"""The pages for text datasets and vocabularies, as the server renders them."""

from __future__ import annotations

import re


def _qa(client):
    samples = [{"question": f"what is {i} plus 1?", "answer": str(i + 1)} for i in range(10)]
    return client.post("/api/datasets", json={"kind": "question_answering", "samples": samples,
                                              "name": "sums"}).get_json()


def test_the_datasets_page_has_a_form_for_each_text_kind(client):
    html = client.get("/datasets").get_data(as_text=True)
    assert 'id="text-form"' in html
    kinds = re.findall(r'<option value="([a-z_]+)" data-columns=', html)
    assert kinds == ["binary_classification", "multiclass_classification", "regression", "question_answering",
                     "summarization", "generation"]
    assert "/vocabularies" in html


def test_a_text_datasets_page_shows_its_tokens_a_sample_form_templates_and_generation(client):
    dataset = _qa(client)
    html = client.get(f"/datasets/{dataset['id']}").get_data(as_text=True)
    assert "characters" in html and f"/vocabularies/{dataset['meta']['text']['vocabulary_id']}" in html
    assert 'id="sample-question"' in html and 'id="sample-answer"' in html
    assert 'value="char_lm"' in html and 'value="transformer_lm"' in html
    assert 'id="generate-text-form"' in html
    assert "js/text.js" in html


def test_a_classification_dataset_has_no_generation_form(client):
    samples = [{"text": f"t {i}", "label": i % 2} for i in range(8)]
    dataset = client.post("/api/datasets", json={"kind": "binary_classification", "samples": samples}).get_json()
    html = client.get(f"/datasets/{dataset['id']}").get_data(as_text=True)
    assert 'value="gru_classifier"' in html and 'id="generate-text-form"' not in html
    assert '<datalist id="sample-classes">' in html


def test_the_vocabulary_pages_list_tokens_by_category(client):
    dataset = _qa(client)
    vid = dataset["meta"]["text"]["vocabulary_id"]
    listing = client.get("/vocabularies").get_data(as_text=True)
    assert f"/vocabularies/{vid}" in listing and "a dataset" in listing and "s own</small>" in listing
    page = client.get(f"/vocabularies/{vid}").get_data(as_text=True)
    assert "&lt;pad&gt;" in page and 'data-token-id="0"' in page
    assert "no token can be deleted" in page  # a dataset uses it
    numeric = client.get(f"/vocabularies/{vid}", query_string={"category": "numeric"}).get_data(as_text=True)
    assert 'data-category="alphabetic"' not in numeric and 'data-category="numeric"' in numeric
    assert client.get("/vocabularies/nope").status_code == 404


def test_the_train_forms_mini_batch_fits_a_small_text_dataset(client):
    samples = [{"text": f"t {i}", "label": i % 2} for i in range(8)]
    dataset = client.post("/api/datasets", json={"kind": "binary_classification", "samples": samples}).get_json()
    network = client.post("/api/networks", json={"dataset_id": dataset["id"]}).get_json()
    html = client.get(f"/networks/{network['network_id']}").get_data(as_text=True)
    value = int(re.search(r'id="train-batch"[^>]*value="(\d+)"', html, re.S).group(1))
    assert value == dataset["n_train"] < 32  # the form's default is one the server takes
