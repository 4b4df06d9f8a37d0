"""The builder page (`/networks/<id>/builder`) as the server renders it, before any script runs."""

from __future__ import annotations

import html as html_lib
import json
import re

from tests.helpers import create_network

LAYERS = [{"type": "Linear", "out_features": 8}, {"type": "ReLU"}, {"type": "Linear", "out_features": 3}]


def _text(fragment: str) -> str:
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _page(client, network_id: str) -> str:
    response = client.get(f"/networks/{network_id}/builder")
    assert response.status_code == 200 and response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_the_layers_their_shapes_and_the_revisions_are_on_the_page(client):
    network = create_network(client, dataset_id="iris", layers=LAYERS, name="iris mlp")
    client.post(f"/api/networks/{network['network_id']}/layers", json={"layer": {"type": "Dropout", "p": 0.3}})
    html = _page(client, network["network_id"])
    rows = re.findall(r'<li class="builder-row" data-index="\d+">(.*?)</li>', html, re.S)
    assert [_text(row) for row in rows] == [
        "0 Linear out_features 8, bias true 8 40", "1 ReLU 8 0", "2 Dropout p 0.3 8 0",
        "3 Linear out_features 3, bias true 3 27"]
    assert "Input: 4" in _text(html)
    assert 'id="revision">revision 2<' in html
    assert _text(re.search(r'<tbody id="revisions">(.*?)</tbody>', html, re.S).group(1)).startswith(
        "2 added layers[2] (Dropout) —")
    state = json.loads(re.search(r'<script id="builder-state" type="application/json">(.*?)</script>', html,
                                 re.S).group(1))
    assert state["structure"]["revision"] == 2 and state["locked"] is False
    assert {"name": "out_features", "kind": "int", "required": True, "default": None,
            "choices": []} in state["catalog"]["Linear"]
    assert 'id="add-layer-form"' in html
    # the network page links here
    assert f'href="/networks/{network["network_id"]}/builder"' in client.get(
        f"/networks/{network['network_id']}").get_data(as_text=True)


def test_a_layer_sizes_network_is_shown_without_edit_controls(client):
    network = create_network(client, dataset_id="iris", layer_sizes=[4, 5, 3])
    html = _page(client, network["network_id"])
    assert "has no layer list to edit" in _text(html) and 'id="add-layer-form"' not in html
    assert len(re.findall(r'<li class="builder-row"', html)) == 4  # Linear, Sigmoid, Linear, Sigmoid


def test_an_unknown_network_is_404(client):
    assert client.get("/networks/nope/builder").status_code == 404
