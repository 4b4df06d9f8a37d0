"""Retraining a text classifier from feedback given as text: the challenger trains on a derived dataset that is
still a text dataset (its kind, its tokens, its text metrics), the feedback is encoded with the dataset's own
tokens, and the challenger's run keeps the champion run's training controls."""

from __future__ import annotations

import random

import numpy as np

from livetrain.data import text
from tests.helpers import start_run, wait_for_run, wait_until

FILLER = ["the", "movie", "was", "a", "plot", "and", "cast", "it", "this", "story"]
CONTROLS = {"lr_schedule": {"type": "step", "step_size": 1, "gamma": 0.9}, "clip_grad_norm": 1.0,
            "early_stopping": {"metric": "f1", "patience": 5}, "monitor": False}


def _samples(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        positive = i % 2 == 0
        words = rng.sample(FILLER, 4) + [rng.choice(["great", "superb"] if positive else ["awful", "boring"])]
        rng.shuffle(words)
        out.append({"text": " ".join(words), "label": "pos" if positive else "neg"})
    return out


def test_a_text_champion_is_retrained_on_a_text_dataset_with_its_controls(app, client):
    livetrain = app.extensions["livetrain"]
    created = client.post("/api/datasets", json={"kind": "binary_classification", "samples": _samples(40, 0),
                                                 "max_len": 8, "name": "reviews"})
    assert created.status_code == 201, created.get_json()
    root = created.get_json()
    network = client.post("/api/networks", json={"dataset_id": root["id"]}).get_json()
    run = start_run(client, network["network_id"], epochs=2, batch_size=8, learning_rate=0.01, **CONTROLS)
    champion_run = wait_for_run(client, run["run_id"], timeout=120)
    assert champion_run["status"] == "completed", champion_run.get("error")

    name = "reviews-model"
    assert client.post("/api/models", json={"name": name}).status_code == 201
    r = client.post(f"/api/models/{name}/versions", json={"network_id": network["network_id"], "version": 1})
    assert r.status_code == 201, r.get_json()
    assert client.put(f"/api/models/{name}/aliases/champion", json={"version": 1}).status_code == 200
    assert client.put(f"/api/models/{name}/policy", json={"min_feedback": 1000, "holdout_fraction": 0.25,
                                                         "epochs": 2}).status_code == 200
    # feedback as text, with words the dataset has never seen ("zzyzx", "marvellous")
    feedback = [{"text": f"zzyzx {s['text']} marvellous", "label": s["label"]} for s in _samples(8, 1)]
    for item in feedback:
        r = client.post(f"/api/models/{name}/feedback", json={"input": item["text"], "label": item["label"]})
        assert r.status_code == 201, r.get_json()
    queued = client.post(f"/api/models/{name}/retrain")
    assert queued.status_code == 202, queued.get_json()

    def ended():
        record = client.get(f"/api/models/{name}/retrainings").get_json()["retrainings"][0]
        return record if record["status"] not in ("queued", "training", "evaluating") else None

    record = wait_until(ended, timeout=120, what="the retraining's end")
    assert record["status"] in ("promoted", "rejected"), record

    # the derived dataset is a text dataset: the same kind, vocabulary and tokens as the original
    derived = livetrain.datasets.get(record["dataset_id"])
    assert derived.meta["parent_id"] == root["id"]
    assert derived.meta["text"] == root["meta"]["text"]
    original_arrays = livetrain.datasets.arrays(livetrain.datasets.get(root["id"]))
    arrays = livetrain.datasets.arrays(derived)
    np.testing.assert_array_equal(arrays.preprocessing["text_vocab"], original_arrays.preprocessing["text_vocab"])
    # the feedback rows trained on are the texts in the dataset's own tokens, unknown words as <unk>
    vocab = text.vocab_from_array(original_arrays.preprocessing["text_vocab"], root["meta"]["text"]["level"])
    encoded = text.encode_texts(vocab, [f["text"] for f in feedback], root["meta"]["text"]["max_len"])
    added = arrays.X_train[len(original_arrays.X_train):]
    assert len(added) == record["feedback_train"] == 6
    assert all(any(np.array_equal(row, e) for e in encoded) for row in added)
    assert (added[:, 0] == text.UNK_ID).all()
    # it has no samples of its own to append to (its original has)
    r = client.post(f"/api/datasets/{derived.id}/samples", json={"text": "a great movie", "label": "pos"})
    assert r.status_code == 400 and r.get_json()["error"] == "derived_dataset", r.get_json()

    # the challenger's run trained with the champion run's controls and reports the same metrics
    challenger_run = client.get(f"/api/runs/{record['run_id']}").get_json()
    for key in ("lr_schedule", "clip_grad_norm", "early_stopping"):
        assert challenger_run["params"][key] == champion_run["params"][key], key
    assert challenger_run["params"]["extra"]["monitor"] == champion_run["params"]["extra"]["monitor"]
    epochs = {which: client.get(f"/api/runs/{r['run_id']}/metrics").get_json()["metrics"][-1]
              for which, r in (("champion", champion_run), ("challenger", challenger_run))}
    assert "f1" in epochs["champion"]
    assert set(epochs["challenger"]) == set(epochs["champion"])
    model = client.get(f"/api/models/{name}").get_json()
    versions = {v["version"]: v for v in model["versions"]}
    champion_metrics, challenger_metrics = versions[1]["metrics"], versions[record["challenger_version"]]["metrics"]
    assert set(challenger_metrics) == set(champion_metrics) and champion_metrics["split"] == "val"
    # f1 as a text dataset defines it for two classes (class 1's F1), on both sides, from the same val rows
    for run_body in (champion_run, client.get(f"/api/runs/{record['run_id']}").get_json()):
        val = run_body["metrics"]["val"]
        (tn, fp), (fn, tp) = val["confusion_matrix"]
        assert sum(map(sum, val["confusion_matrix"])) == root["n_val"]
        assert val["f1"] == (2 * tp / (2 * tp + fp + fn) if tp else 0.0)
