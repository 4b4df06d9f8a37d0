"""Networks from the text templates really learn: a GRU classifier above chance, a character LM whose perplexity
falls and which then writes text, question answering scored by exact match and token F1 every epoch."""

from __future__ import annotations

import random

import pytest

from livetrain.store.entities import Dataset
from livetrain.training.model import build_model
from livetrain.training.spec import HyperParams, apply_dataset_defaults, parse_network_spec
from livetrain.training.text_templates import template_body
from livetrain.training.trainer import train
from tests.helpers import start_run, wait_for_run


class Recorder:
    def __init__(self) -> None:
        self.epochs = []

    def on_progress(self, *args) -> None:
        pass

    def on_epoch_end(self, result, checkpoint) -> None:
        self.epochs.append(result)

    def should_stop(self) -> bool:
        return False


def _dataset(client, **body) -> Dataset:
    response = client.post("/api/datasets", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _train(app, dataset_id: str, template: str, *, epochs: int, learning_rate: float, batch_size: int = 16):
    livetrain = app.extensions["livetrain"]
    info = livetrain.datasets.get(dataset_id)
    data = livetrain.datasets.arrays(info)
    body = template_body(info, template)
    spec = apply_dataset_defaults(parse_network_spec({**body, "learning_rate": learning_rate, "seed": 1}), text=True)
    model = build_model(spec, info.input_shape, info.task, info.n_classes, max_parameters=10_000_000)
    hp = HyperParams(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, optimizer="adam", seed=1)
    recorder = Recorder()
    train(model, spec, hp, data, recorder)
    return recorder.epochs


def test_a_gru_classifier_learns_which_words_mean_what(app, client):
    rng = random.Random(0)
    filler = ["the", "movie", "was", "a", "plot", "and", "cast", "it", "this", "story"]
    samples = []
    for i in range(100):
        positive = i % 2 == 0
        words = rng.sample(filler, 4) + [rng.choice(["great", "wonderful", "superb"] if positive
                                                    else ["awful", "boring", "dreadful"])]
        rng.shuffle(words)
        samples.append({"text": " ".join(words), "label": "pos" if positive else "neg"})
    dataset = _dataset(client, kind="binary_classification", samples=samples, max_len=8)
    network = client.post("/api/networks", json={"dataset_id": dataset["id"]}).get_json()  # the auto template
    assert [layer["type"] for layer in network["spec"]["layers"]] == ["Embedding", "GRU", "Linear"]
    run = start_run(client, network["network_id"], epochs=5, batch_size=16, learning_rate=0.01)
    finished = wait_for_run(client, run["run_id"], timeout=180)
    assert finished["status"] == "completed", finished.get("error")
    last = client.get(f"/api/runs/{run['run_id']}/metrics").get_json()["metrics"][-1]
    assert last["held_out_split"] == "val"
    assert last["accuracy"] >= 0.8  # chance is 0.5
    assert last["f1"] >= 0.8
    assert finished["metrics"]["test"]["accuracy"] >= 0.8
    predicted = client.post(f"/api/networks/{network['network_id']}/predict",
                            json={"rows": ["the movie was superb", {"text": "a boring plot"}]}).get_json()
    assert [p["predicted"] for p in predicted["predictions"]] == ["pos", "neg"]
    assert client.post(f"/api/networks/{network['network_id']}/predict", json={"row": ""}).status_code == 400


def test_a_character_lm_gets_less_perplexed_and_writes_text(app, client):
    story = "the cat sat on the mat. the dog sat on the log. " * 20
    dataset = _dataset(client, kind="generation", samples=[{"text": story}], max_len=48, name="story")
    network = client.post("/api/networks", json={"dataset_id": dataset["id"], "template": "auto"}).get_json()
    assert network["spec"]["layers"][1]["type"] == "GRU"
    run = start_run(client, network["network_id"], epochs=6, batch_size=8, learning_rate=0.01)
    finished = wait_for_run(client, run["run_id"], timeout=180)
    assert finished["status"] == "completed", finished.get("error")
    updates = client.get(f"/api/runs/{run['run_id']}/metrics").get_json()["metrics"]
    perplexity = [u["perplexity"] for u in updates]
    assert len(perplexity) == 6
    assert perplexity[-1] < perplexity[0] / 2
    assert perplexity[-1] < 4  # about a dozen characters to choose from, and they follow each other
    response = client.post(f"/api/networks/{network['network_id']}/generate",
                           json={"prompt": "the c", "temperature": 0.2, "max_tokens": 40, "seed": 3})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["tokens"] > 0 and body["text"] and body["stopped"] in ("eos", "max_tokens")
    assert set(body["text"]) <= set(story)
    assert " " in body["text"] and any(word in body["text"] for word in ("sat", "on", "the", "at"))
    again = client.post(f"/api/networks/{network['network_id']}/generate",
                        json={"prompt": "the c", "temperature": 0.2, "max_tokens": 40, "seed": 3}).get_json()
    assert again["text"] == body["text"]  # a seed repeats it


@pytest.mark.parametrize("body, field", [
    ({"temperature": 0}, "temperature"), ({"temperature": "hot"}, "temperature"), ({"max_tokens": 501}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"), ({"prompt": 5}, "prompt"), ({"seed": -1}, "seed"),
])
def test_generate_checks_its_parameters(client, body, field):
    dataset = _dataset(client, kind="generation", samples=["abc abc abc abc"] * 3, max_len=8)
    network = client.post("/api/networks", json={"dataset_id": dataset["id"]}).get_json()
    response = client.post(f"/api/networks/{network['network_id']}/generate", json=body)
    assert response.status_code == 400 and response.get_json()["detail"]["field"] == field


def test_generate_before_training_is_404(client):
    dataset = _dataset(client, kind="generation", samples=["abc abc abc abc"] * 3, max_len=8)
    network = client.post("/api/networks", json={"dataset_id": dataset["id"]}).get_json()
    response = client.post(f"/api/networks/{network['network_id']}/generate", json={"prompt": "a"})
    assert response.status_code == 404 and response.get_json()["error"] == "not_trained"


def test_question_answering_is_scored_by_exact_match_and_token_f1(app, client):
    samples = [{"question": f"{w} twice?", "answer": f"{w} {w}"} for w in ("ab", "ba", "aa", "bb", "abc", "cab")] * 4
    dataset = _dataset(client, kind="question_answering", samples=samples, max_len=24)
    epochs = _train(app, dataset["id"], "char_lm", epochs=3, learning_rate=0.01, batch_size=4)
    extra = epochs[-1].extra
    assert {"perplexity", "exact_match", "token_f1"} <= set(extra)
    assert 0.0 <= extra["exact_match"] <= 1.0 and 0.0 <= extra["token_f1"] <= 1.0
    assert extra["token_f1"] >= extra["exact_match"]  # an exact answer is also a full token match
    assert epochs[-1].extra["perplexity"] < epochs[0].extra["perplexity"]


def test_summarization_is_scored_by_rouge(app, client):
    samples = [{"article": f"today the {w} team won the final game at home", "summary": f"{w} won"}
               for w in ("red", "blue", "green", "gold", "black", "white")] * 3
    dataset = _dataset(client, kind="summarization", samples=samples, level="word", max_len=16)
    epochs = _train(app, dataset["id"], "char_lm", epochs=2, learning_rate=0.01, batch_size=4)
    extra = epochs[-1].extra
    assert {"rouge1", "rouge2", "rougeL", "perplexity"} <= set(extra)
    assert all(0.0 <= extra[k] <= 1.0 for k in ("rouge1", "rouge2", "rougeL"))
