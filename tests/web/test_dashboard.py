"""The dashboard (`/`) and the static files the pages load."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import wait_for_run


def _page(client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def _initial_state(html: str) -> dict:
    pattern = r'<script id="initial-state" type="application/json">(.*?)</script>'
    match = re.search(pattern, html, re.S)
    assert match, "the page embeds its initial state for the script"
    return json.loads(match.group(1))


def test_page_without_networks_says_so(client):
    html = _page(client)
    assert "No networks yet" in html
    assert 'id="networks-empty" class="empty">' in html  # shown, not hidden
    assert _initial_state(html)["networks"] == []


def test_page_lists_every_dataset_and_selects_the_default(client):
    body = client.get("/api/datasets").get_json()
    html = _page(client)
    for dataset in body["datasets"]:
        assert f'data-dataset-id="{dataset["id"]}"' in html
        assert f'<option value="{dataset["id"]}"' in html
    default = re.search(r'<option value="([^"]+)"[^>]*\sselected>', html)
    assert default and default.group(1) == body["default"]


def test_page_shows_a_created_network(client):
    created = client.post("/api/networks", json={"dataset_id": "iris", "layer_sizes": [4, 5, 3],
                                                 "name": "iris-small"}).get_json()
    html = _page(client)
    network_id = created["network_id"]
    card_pattern = rf'<article class="card network" data-network-id="{network_id}".*?</article>'
    card = re.search(card_pattern, html, re.S)
    assert card, "the network has a card"
    text = card.group(0)
    assert "iris-small" in text
    assert "4 → 5 → 3" in text
    assert 'data-status="created"' in text
    assert ">iris<" in text
    assert f">{created['parameter_count']:,}<" in text
    assert 'data-action="train"' in text
    assert 'id="networks-empty" class="empty" hidden' in html
    state = _initial_state(html)
    assert [n["network_id"] for n in state["networks"]] == [created["network_id"]]


def test_page_shows_a_layers_network_architecture(client):
    layers = [{"type": "Linear", "out_features": 16}, {"type": "ReLU"},
              {"type": "Linear", "out_features": 3}]
    created = client.post("/api/networks", json={"dataset_id": "iris", "layers": layers}).get_json()
    html = _page(client)
    assert created["network_id"] in html
    assert "Linear(16) → ReLU → Linear(3)" in html


def test_page_shows_a_finished_run_with_status_and_progress(client):
    body = {"dataset_id": "iris", "layer_sizes": [4, 5, 3]}
    created = client.post("/api/networks", json=body).get_json()
    started = client.post(f"/api/networks/{created['network_id']}/train", json={"epochs": 2})
    started = started.get_json()
    run = wait_for_run(client, started["run_id"])
    assert run["status"] == "completed"
    html = _page(client)
    row_pattern = rf'<tr data-run-id="{started["run_id"]}" data-status="completed">.*?</tr>'
    row = re.search(row_pattern, html, re.S)
    assert row, "the run has a row"
    text = row.group(0)
    assert 'aria-valuenow="100.0"' in text
    assert "2 / 2 epochs" in text
    assert f"{run['accuracy'] * 100:.1f}%" in text
    card = re.search(rf'data-network-id="{created["network_id"]}".*?</article>', html, re.S)
    card = card.group(0)
    assert 'data-status="trained"' in card
    assert ">v1<" in card


@pytest.mark.parametrize("path, mimetype, marker", [
    ("/static/js/live.js", "text/javascript", "training_update"),
    ("/static/js/dashboard.js", "text/javascript", "network_created"),
    ("/static/js/charts.js", "text/javascript", "lineChart"),
    ("/static/vendor/chart.js/chart.umd.min.js", "text/javascript", "Chart.js v4."),
    ("/static/vendor/chart.js/LICENSE.md", None, "MIT License"),
    ("/static/css/app.css", "text/css", ".badge"),
    ("/static/vendor/socket.io/socket.io.min.js", "text/javascript", "Socket.IO v4."),
    ("/static/vendor/socket.io/LICENSE", None, "MIT License"),
])
def test_static_assets_are_served(client, path, mimetype, marker):
    with client.get(path) as response:
        assert response.status_code == 200
        if mimetype:
            assert response.mimetype == mimetype
        assert marker in response.get_data(as_text=True)


def test_page_loads_its_assets_from_this_server(client):
    html = _page(client)
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    local = [s for s in sources if not s.startswith("data:")]
    assert local, "the page loads scripts and styles"
    assert all(s.startswith("/static/") for s in local), f"no CDN: {local}"
    for source in local:
        with client.get(source) as response:
            assert response.status_code == 200, source


def test_a_scikit_learn_run_shows_its_algorithm_and_counts_steps(client):
    job = client.post("/api/experiments/default/runs", json={
        "algorithm": "decision_tree", "dataset_id": "iris", "steps": 3}).get_json()
    run = wait_for_run(client, job["run_id"])
    assert run["status"] == "completed"
    html = _page(client)
    row = re.search(rf'<tr data-run-id="{run["run_id"]}".*?</tr>', html, re.S)
    assert row, "the run has a row on the page"
    assert "decision_tree" in row.group(0) and "None" not in row.group(0)
    assert "3 / 3 steps" in row.group(0)


def _history(app, count: int) -> list[str]:
    """`count` finished runs stored directly (as years of use would leave them), newest last."""
    from livetrain.store import Run

    store = app.extensions["livetrain"].store
    ids = []
    for i in range(count):
        run = Run(id=f"old{i:05d}", network_id=None, dataset_id="iris", status="completed", algorithm="knn",
                  experiment_id="default", total_epochs=3, epochs_done=3, progress=100.0, accuracy=0.9,
                  created_at=1_700_000_000.0 + i)
        store.create_run(run)
        ids.append(run.id)
    return ids


def test_thousands_of_runs_are_paginated_on_the_server(app, client):
    ids = _history(app, 2000)
    html = _page(client)
    rows = re.findall(r'<tr data-run-id="([^"]+)"', html)
    assert rows == ids[::-1][:20], "the first page holds the 20 newest runs, newest first"
    assert "1–20 of 2,000 · page 1 of 100" in html
    second = client.get("/?runs_page=2").get_data(as_text=True)
    assert re.findall(r'<tr data-run-id="([^"]+)"', second) == ids[::-1][20:40]
    assert 'href="/?runs_page=3" rel="next"' in second
    last = client.get("/?runs_page=5000").get_data(as_text=True)  # past the end: the last page
    assert re.findall(r'<tr data-run-id="([^"]+)"', last) == ids[::-1][1980:]
    assert "page 100 of 100" in last


@pytest.mark.parametrize("bad", ["0", "-3", "abc", "99999999999999999999"])
def test_a_bad_page_number_shows_the_first_page(app, client, bad):
    ids = _history(app, 25)
    html = client.get(f"/?runs_page={bad}").get_data(as_text=True)
    assert re.findall(r'<tr data-run-id="([^"]+)"', html) == ids[::-1][:20]
