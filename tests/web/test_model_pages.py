"""The registry pages: the list, and a model's versions, aliases, history and retrainings."""

from __future__ import annotations

import pytest

from tests.helpers import create_network, start_run, wait_for_run


@pytest.fixture
def registered(client):
    network = create_network(client, dataset_id="iris", layers=[{"type": "Linear", "out_features": 3}])
    assert wait_for_run(client, start_run(client, network["network_id"], epochs=1)["run_id"])["status"] == "completed"
    client.post("/api/models", json={"name": "iris-page", "description": "flowers"})
    client.post("/api/models/iris-page/versions", json={"network_id": network["network_id"], "version": 1})
    client.put("/api/models/iris-page/aliases/champion", json={"version": 1, "reason": "the first one"})
    return network


def test_the_models_list_links_each_model_with_its_aliases(client, registered):
    html = client.get("/models").get_data(as_text=True)
    assert 'href="/models/iris-page"' in html and "champion → v1" in html and "flowers" in html
    assert 'href="/models" aria-current="page"' in html


def test_a_model_page_shows_versions_history_and_buttons(client, registered):
    response = client.get("/models/iris-page")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"network {registered['network_id']}</a> v1" in html
    assert "the first one" in html and "anonymous" in html
    assert '<button type="button" data-action="rollback" data-alias="champion">' in html
    assert "/api/models/iris-page/feedback.csv" in html and "js/model.js" in html


def test_an_unknown_model_is_a_readable_404_page(client):
    response = client.get("/models/nobody")
    assert response.status_code == 404 and "no registered model" in response.get_data(as_text=True)
