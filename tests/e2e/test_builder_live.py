"""The builder's resource events on a real server: every connected client hears each accepted edit of a
network's layers, in order, with the revision and the new spec; a refused edit is heard by nobody."""

from __future__ import annotations

import uuid

LAYERS = [{"type": "Linear", "out_features": 16}, {"type": "ReLU"}, {"type": "Linear", "out_features": 10}]
EDIT_EVENTS = {"layer_created", "layer_updated", "layer_deleted", "layers_reordered", "network_updated"}


def test_every_client_hears_each_edit_in_order(server, connect):
    api = server.api
    network = api.post("/api/networks", {"dataset_id": "digits", "layers": LAYERS,
                                         "name": f"live-builder-{uuid.uuid4().hex[:6]}"}, expect=201)
    url = f"/api/networks/{network['network_id']}"
    watcher, other = connect(server), connect(server)
    assert other.subscribe(network_id=network["network_id"])["ok"]  # in the network's room as well: heard once

    api.post(url + "/layers", {"layer": {"type": "Dropout", "p": 0.1}, "index": 2}, expect=201)
    api.call("PUT", url + "/layers/0", json={"layer": {"out_features": 24}})
    api.call("PUT", url + "/layers/order", json={"order": [0, 2, 1, 3]})
    api.call("PUT", url + "/layers/order", json={"order": [3, 0, 1, 2]}, expect=400)  # refused: no event
    api.delete(url + "/layers/1")
    final = api.get(url)

    for client in (watcher, other):
        last = client.wait_for("network_updated", where=lambda p: p["network_id"] == network["network_id"]
                               and p["revision"] == 5, timeout=30)
        heard = [(name, p["revision"]) for name, p in client.events(EDIT_EVENTS)
                 if p["network_id"] == network["network_id"]]
        assert heard == [("layer_created", 2), ("network_updated", 2), ("layer_updated", 3), ("network_updated", 3),
                         ("layers_reordered", 4), ("network_updated", 4), ("layer_deleted", 5),
                         ("network_updated", 5)]
        assert last["spec"] == final["spec"]
        assert [row["output_shape"] for row in last["layers"]] == [[24], [24], [10]]
        assert last["change"]["summary"] == "removed layers[1] (Dropout)"
        created = client.payloads("layer_created")[-1]
        assert created["layer"] == {"type": "Dropout", "p": 0.1} and created["index"] == 2
        assert isinstance(created["ts"], float)
