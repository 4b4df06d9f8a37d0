"""The builder over REST: insert, replace, delete and reorder a network's layers (and heads) while it is not
training, each change re-validated by a dry-run build, recorded as a revision and pushed as events."""

from __future__ import annotations

import dataclasses
import io

import pytest
import torch

from livetrain.training.spec import NetworkSpec
from tests.helpers import create_network, events_named, start_run, wait_for_run

IRIS_LAYERS = [{"type": "Linear", "out_features": 8}, {"type": "ReLU"}, {"type": "Linear", "out_features": 3}]
HEADS = "heads" in {f.name for f in dataclasses.fields(NetworkSpec)}
needs_heads = pytest.mark.skipif(not HEADS, reason="this tree's network specs have no heads yet")


@pytest.fixture
def net(client):
    """An untrained iris network of three layers."""
    return create_network(client, dataset_id="iris", layers=IRIS_LAYERS, name="builder net")


def base(net) -> str:
    return f"/api/networks/{net['network_id']}"


def types(client, net) -> list[str]:
    return [layer["type"] for layer in client.get(base(net) + "/layers").get_json()["layers"]]


def spec_of(client, net) -> dict:
    return client.get(base(net)).get_json()["spec"]


def test_layers_lists_each_layer_with_its_shape_and_parameters(client, net):
    body = client.get(base(net) + "/layers").get_json()
    assert body["revision"] == 1 and body["editable"] is True and body["heads"] == []
    assert [(row["index"], row["type"], row["output_shape"], row["parameters"]) for row in body["layers"]] == [
        (0, "Linear", [8], 4 * 8 + 8), (1, "ReLU", [8], 0), (2, "Linear", [3], 8 * 3 + 3)]
    assert body["layers"][0]["spec"] == {"type": "Linear", "out_features": 8, "bias": True}
    assert body["parameter_count"] == 40 + 27


def test_insert_defaults_to_just_before_the_output_layer(client, net):
    response = client.post(base(net) + "/layers", json={"layer": {"type": "Dropout", "p": 0.2}})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert [row["type"] for row in body["layers"]] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert body["revision"] == 2
    assert body["change"] == {"op": "layer_created", "index": 2, "layer": {"type": "Dropout", "p": 0.2},
                              "summary": "added layers[2] (Dropout)"}
    assert spec_of(client, net)["layers"][2] == {"type": "Dropout", "p": 0.2}


def test_insert_at_an_index_grows_the_parameter_count(client, net):
    body = client.post(base(net) + "/layers", json={"layer": {"type": "Linear", "out_features": 16},
                                                    "index": 2}).get_json()
    assert [(row["type"], row["output_shape"]) for row in body["layers"]] == [
        ("Linear", [8]), ("ReLU", [8]), ("Linear", [16]), ("Linear", [3])]
    assert body["parameter_count"] == 40 + (8 * 16 + 16) + (16 * 3 + 3)
    assert client.get(base(net)).get_json()["parameter_count"] == body["parameter_count"]


def test_replace_a_layers_parameters(client, net):
    response = client.put(base(net) + "/layers/0", json={"layer": {"out_features": 12}})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["layers"][0]["spec"] == {"type": "Linear", "out_features": 12, "bias": True}
    assert body["layers"][0]["output_shape"] == [12]
    assert body["change"]["op"] == "layer_updated"
    assert body["change"]["previous"]["out_features"] == 8


def test_delete_a_layer(client, net):
    response = client.delete(base(net) + "/layers/1")
    assert response.status_code == 200, response.get_json()
    assert types(client, net) == ["Linear", "Linear"]
    assert response.get_json()["change"] == {"op": "layer_deleted", "index": 1, "layer": {"type": "ReLU"},
                                             "summary": "removed layers[1] (ReLU)"}


def test_reorder(client, net):
    client.post(base(net) + "/layers", json={"layer": {"type": "Dropout", "p": 0.1}})  # Linear ReLU Dropout Linear
    response = client.put(base(net) + "/layers/order", json={"order": [0, 2, 1, 3]})
    assert response.status_code == 200, response.get_json()
    assert types(client, net) == ["Linear", "Dropout", "ReLU", "Linear"]
    assert response.get_json()["change"] == {"op": "layers_reordered", "order": [0, 2, 1, 3],
                                             "summary": "reordered the layers: 0, 2, 1, 3"}


@pytest.mark.parametrize("method, path, body", [
    ("put", "/layers/3", {"layer": {"type": "ReLU"}}),
    ("delete", "/layers/3", None),
    ("delete", "/layers/99999999999", None),
])
def test_a_layer_that_is_not_there_is_404_and_changes_nothing(client, net, method, path, body):
    response = getattr(client, method)(base(net) + path, json=body)
    assert response.status_code == 404, response.get_json()
    assert "layers[" in response.get_json()["message"]
    assert types(client, net) == ["Linear", "ReLU", "Linear"]


@pytest.mark.parametrize("index", [4, -1])
def test_an_insert_position_out_of_range_is_400(client, net, index):
    response = client.post(base(net) + "/layers", json={"layer": {"type": "ReLU"}, "index": index})
    assert response.status_code == 400
    assert types(client, net) == ["Linear", "ReLU", "Linear"]


@pytest.mark.parametrize("order", [[0, 1], [0, 1, 1], [0, 1, 2, 3], [2, 1, 5], ["a", 1, 0], "012", [0.5, 1, 2]])
def test_an_order_that_is_not_a_permutation_is_400_and_changes_nothing(client, net, order):
    response = client.put(base(net) + "/layers/order", json={"order": order})
    assert response.status_code == 400, response.get_json()
    assert types(client, net) == ["Linear", "ReLU", "Linear"]
    assert client.get(base(net) + "/revisions").get_json()["revision"] == 1


@pytest.mark.parametrize("method, path, body, names", [
    # the output layer narrowed: 5 outputs for 3 classes
    ("put", "/layers/2", {"layer": {"out_features": 5}}, "layers[2] (Linear): the last layer must give 3"),
    # a 2-d layer in a flat network
    ("post", "/layers", {"layer": {"type": "Conv2d", "out_channels": 2, "kernel_size": 3}, "index": 1}, "layers[1]"),
    # an unknown type
    ("post", "/layers", {"layer": {"type": "Wobble"}}, "layers[2]"),
    # an Embedding anywhere but first
    ("post", "/layers", {"layer": {"type": "Embedding", "num_embeddings": 10, "embedding_dim": 2}, "index": 1},
     "layers[1]"),
    # the output layer moved first: the last layer then gives 8 outputs
    ("put", "/layers/order", {"order": [2, 0, 1]}, "layers[2] (ReLU): the last layer must give 3"),
    # removing the output layer leaves 8 outputs
    ("delete", "/layers/2", None, "layers[1] (ReLU): the last layer must give 3"),
])
def test_an_invalid_change_is_400_naming_the_layer_and_leaves_the_spec_unchanged(client, net, method, path, body,
                                                                               names):
    before = client.get(base(net)).get_json()
    response = getattr(client, method)(base(net) + path, json=body)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()
    assert names in error["message"]
    after = client.get(base(net)).get_json()
    assert after["spec"] == before["spec"] and after["layers"] == before["layers"]
    assert after["parameter_count"] == before["parameter_count"]
    assert client.get(base(net) + "/revisions").get_json()["revision"] == 1


def test_a_refusal_says_which_current_row_it_is_about(client, net):
    # Linear(8) ReLU Linear(3): moving the output first makes the last layer (a ReLU) give 8 outputs;
    # that layer is layers[2] of the proposed order and layers[1] of the current one
    error = client.put(base(net) + "/layers/order", json={"order": [2, 0, 1]}).get_json()
    assert error["detail"]["layer"] == 2 and error["detail"]["current_index"] == 1
    # an inserted layer that does not fit is no current row
    error = client.post(base(net) + "/layers", json={"layer": {"type": "Linear", "out_features": 4},
                                                     "index": 3}).get_json()
    assert error["detail"]["layer"] == 3 and error["detail"]["current_index"] is None


def test_revisions_record_every_accepted_change(client, net):
    assert client.get(base(net) + "/revisions").get_json()["revisions"] == [{
        "network_id": net["network_id"], "revision": 1, "spec": net["spec"],
        "change": {"op": "created", "summary": "created"}, "author": None,
        "created_at": client.get(base(net)).get_json()["created_at"]}]
    client.post(base(net) + "/layers", json={"layer": {"type": "Dropout"}})
    client.put(base(net) + "/layers/order", json={"order": [0, 1, 2, 3]})
    client.put(base(net) + "/layers/2", json={"layer": {"p": 0.3}})
    client.put(base(net) + "/layers/order", json={"order": [0, 9, 1]})  # refused: not recorded
    client.delete(base(net) + "/layers/2")
    body = client.get(base(net) + "/revisions").get_json()
    assert body["revision"] == 5
    assert [(r["revision"], r["change"]["op"]) for r in body["revisions"]] == [
        (1, "created"), (2, "layer_created"), (3, "layers_reordered"), (4, "layer_updated"), (5, "layer_deleted")]
    assert body["revisions"][3]["spec"]["layers"][2] == {"type": "Dropout", "p": 0.3}
    assert body["revisions"][-1]["spec"] == spec_of(client, net)
    assert body["revisions"][0]["spec"]["layers"] == net["spec"]["layers"]
    assert all(r["created_at"] > 0 for r in body["revisions"])
    assert client.get(base(net)).get_json()["revision"] == 5


def test_a_change_against_an_old_revision_is_409(client, net):
    client.post(base(net) + "/layers", json={"layer": {"type": "Dropout"}, "revision": 1})
    response = client.put(base(net) + "/layers/order", json={"order": [1, 0, 2, 3], "revision": 1})
    assert response.status_code == 409
    assert response.get_json()["detail"] == {"revision": 2}
    assert client.delete(base(net) + "/layers/2?revision=1").status_code == 409
    assert client.delete(base(net) + "/layers/2?revision=2").status_code == 200


def test_a_layer_sizes_network_cannot_be_edited(client):
    network = create_network(client, dataset_id="iris", layer_sizes=[4, 5, 3])
    listed = client.get(f"/api/networks/{network['network_id']}/layers").get_json()
    assert listed["editable"] is False and [row["type"] for row in listed["layers"]] == [
        "Linear", "Sigmoid", "Linear", "Sigmoid"]
    response = client.post(f"/api/networks/{network['network_id']}/layers", json={"layer": {"type": "ReLU"}})
    assert response.status_code == 400
    assert "create a network from 'layers'" in response.get_json()["message"]
    assert client.get(f"/api/networks/{network['network_id']}/heads").get_json()["heads"] == []


def test_unknown_network_is_404(client):
    assert client.get("/api/networks/nope/layers").status_code == 404
    assert client.post("/api/networks/nope/layers", json={"layer": {"type": "ReLU"}}).status_code == 404
    assert client.get("/api/networks/nope/revisions").status_code == 404


def test_edits_push_resource_events_to_everyone(client, socket_client, net):
    socket_client.get_received()
    client.post(base(net) + "/layers", json={"layer": {"type": "Dropout", "p": 0.25}, "index": 1})
    client.put(base(net) + "/layers/1", json={"layer": {"p": 0.5}})
    client.put(base(net) + "/layers/order", json={"order": [0, 2, 1, 3]})  # Linear ReLU Dropout Linear
    client.delete(base(net) + "/layers/1")
    client.put(base(net) + "/layers/order", json={"order": [2, 0, 1]})  # refused: no event
    received = socket_client.get_received()
    names = [e["name"] for e in received]
    assert names == ["layer_created", "network_updated", "layer_updated", "network_updated",
                     "layers_reordered", "network_updated", "layer_deleted", "network_updated"]
    created = events_named(received, "layer_created")[0]
    assert created["network_id"] == net["network_id"] and created["revision"] == 2
    assert created["index"] == 1 and created["layer"] == {"type": "Dropout", "p": 0.25}
    updates = events_named(received, "network_updated")
    assert [u["revision"] for u in updates] == [2, 3, 4, 5]
    assert updates[-1]["spec"] == spec_of(client, net)
    assert [row["type"] for row in updates[-1]["layers"]] == ["Linear", "Dropout", "Linear"]
    assert events_named(received, "layers_reordered")[0]["order"] == [0, 2, 1, 3]
    assert events_named(received, "layer_deleted")[0]["layer"] == {"type": "ReLU"}


def test_training_locks_the_network_and_a_trained_version_survives_an_edit(client, net):
    run = start_run(client, net["network_id"], epochs=2, learning_rate=0.05)
    # queued or running: every edit is refused
    for method, path, body in [("post", "/layers", {"layer": {"type": "ReLU"}}), ("delete", "/layers/1", None),
                               ("put", "/layers/order", {"order": [1, 0, 2]}),
                               ("put", "/layers/0", {"layer": {"out_features": 4}})]:
        response = getattr(client, method)(base(net) + path, json=body)
        if client.get(f"/api/runs/{run['run_id']}").get_json()["status"] in ("queued", "running"):
            assert response.status_code == 409, response.get_json()
            assert run["run_id"] in response.get_json()["message"]
    finished = wait_for_run(client, run["run_id"])
    assert finished["status"] == "completed", finished
    assert types(client, net) == ["Linear", "ReLU", "Linear"]
    before = client.post(base(net) + "/predict", json={"input": [5.1, 3.5, 1.4, 0.2]}).get_json()

    # idle again: the edit goes through; version 1 keeps its own architecture
    widened = client.put(base(net) + "/layers/0", json={"layer": {"out_features": 32}})
    assert widened.status_code == 200, widened.get_json()
    weights = client.get(base(net) + "/versions/1/weights")
    assert weights.status_code == 200
    state = torch.load(io.BytesIO(weights.data), map_location="cpu", weights_only=True)
    assert state["state_dict"]["0.weight"].shape == (8, 4)
    after = client.post(base(net) + "/predict", json={"input": [5.1, 3.5, 1.4, 0.2]}).get_json()
    assert after == before  # still version 1's answer, from version 1's layers

    # its checkpoint no longer fits: resuming is refused, a new run trains the new layers from scratch
    refused = client.post(base(net) + "/train", json={"resume": True})
    assert refused.status_code == 409 and refused.get_json()["error"] == "spec_changed", refused.get_json()
    rerun = client.post(f"/api/runs/{run['run_id']}/rerun")
    assert rerun.status_code == 409 and rerun.get_json()["error"] == "spec_changed"
    second = wait_for_run(client, start_run(client, net["network_id"], epochs=1, learning_rate=0.05)["run_id"])
    assert second["status"] == "completed", second
    weights = client.get(base(net) + "/versions/2/weights")
    state = torch.load(io.BytesIO(weights.data), map_location="cpu", weights_only=True)
    assert state["state_dict"]["0.weight"].shape == (32, 4)
    assert client.get(base(net) + "/versions").get_json()["current_version"] == 2


def test_deleting_a_network_forgets_its_revisions(app, client, net):
    client.post(base(net) + "/layers", json={"layer": {"type": "Dropout"}})
    assert client.delete(base(net)).status_code == 200
    assert app.extensions["livetrain"].store.list_network_revisions(net["network_id"]) == []


@needs_heads
def test_heads_are_added_listed_reordered_and_deleted(client, socket_client, net):
    url = base(net)
    assert client.get(url + "/heads").get_json()["heads"] == []
    socket_client.get_received()
    added = client.post(url + "/heads", json={"head": {"name": "species", "task": "classification"}})
    assert added.status_code == 201, added.get_json()
    head = added.get_json()["heads"][0]
    assert head["name"] == "species" and head["spec"]["attach"] == 2 and head["output_shape"] == [3]
    second = client.post(url + "/heads", json={"head": {"name": "again", "task": "classification", "weight": 0.5,
                                                        "attach": 1}})
    assert second.status_code == 201, second.get_json()
    assert [h["name"] for h in client.get(url + "/heads").get_json()["heads"]] == ["species", "again"]
    taken = client.post(url + "/heads", json={"head": {"name": "species", "task": "classification"}})
    assert taken.status_code == 400 and "species" in taken.get_json()["message"]
    wrong = client.post(url + "/heads", json={"head": {"name": "size", "task": "regression", "loss": "cross_entropy"}})
    assert wrong.status_code == 400 and "heads[2]" in wrong.get_json()["message"]
    # a layer a head reads from moves with it, and cannot be deleted under it
    client.post(url + "/layers", json={"layer": {"type": "Dropout", "p": 0.1}, "index": 0})
    assert [h["spec"]["attach"] for h in client.get(url + "/heads").get_json()["heads"]] == [3, 2]
    assert client.delete(url + "/layers/2").status_code == 400
    assert client.put(url + "/heads/order", json={"order": ["again", "species"]}).status_code == 200
    assert client.put(url + "/heads/order", json={"order": ["again"]}).status_code == 400
    assert [h["name"] for h in client.get(url + "/heads").get_json()["heads"]] == ["again", "species"]
    assert client.put(url + "/heads/again", json={"head": {"task": "classification", "weight": 2.0,
                                                          "attach": 2}}).status_code == 200
    assert client.get(url + "/heads").get_json()["heads"][0]["spec"]["weight"] == 2.0
    assert client.delete(url + "/heads/nope").status_code == 404
    assert client.delete(url + "/heads/again").status_code == 200
    assert client.delete(url + "/heads/species").status_code == 200
    assert client.get(url + "/heads").get_json()["heads"] == []
    names = [e["name"] for e in socket_client.get_received() if e["name"] != "network_updated"]
    assert names == ["head_created", "head_created", "layer_created", "heads_reordered", "head_updated",
                     "head_deleted", "head_deleted"]
    assert [r["change"]["op"] for r in client.get(url + "/revisions").get_json()["revisions"]] == [
        "created", "head_created", "head_created", "layer_created", "heads_reordered", "head_updated",
        "head_deleted", "head_deleted"]


def test_reading_needs_read_editing_needs_write_and_the_author_is_the_tokens_name(app, client, net):
    tokens = app.extensions["livetrain"].tokens
    _, reader = tokens.create("viewer", "read")
    _, writer = tokens.create("alice", "write")
    as_reader = {"Authorization": f"Bearer {reader}"}
    as_writer = {"Authorization": f"Bearer {writer}"}
    assert client.get(base(net) + "/layers").status_code == 401
    assert client.get(base(net) + "/layers", headers=as_reader).status_code == 200
    assert client.get(base(net) + "/revisions", headers=as_reader).status_code == 200
    for method, path, body in [("post", "/layers", {"layer": {"type": "ReLU"}}), ("delete", "/layers/1", None),
                               ("put", "/layers/order", {"order": [0, 1, 2]}),
                               ("put", "/layers/0", {"layer": {"out_features": 4}}),
                               ("post", "/heads", {"head": {"name": "x", "task": "classification"}}),
                               ("delete", "/heads/x", None)]:
        response = getattr(client, method)(base(net) + path, json=body, headers=as_reader)
        assert response.status_code == 403, (method, path, response.get_json())
    assert client.post(base(net) + "/layers", json={"layer": {"type": "Dropout"}}, headers=as_writer).status_code == 201
    revisions = client.get(base(net) + "/revisions", headers=as_reader).get_json()["revisions"]
    assert [(r["revision"], r["author"]) for r in revisions] == [(1, None), (2, "alice")]
