"""The runs list (`/runs`): every run, newest first, filtered and paginated on the server."""

from __future__ import annotations

import re

from tests.helpers import wait_for_run


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-run-id="([^"]+)"', html)


def test_runs_are_filtered_like_the_api(client):
    tree = client.post("/api/experiments/default/runs", json={"algorithm": "decision_tree", "dataset_id": "iris",
                                                             "steps": 2}).get_json()
    knn = client.post("/api/experiments/default/runs", json={"algorithm": "knn", "dataset_id": "wine",
                                                            "steps": 2}).get_json()
    for job in (tree, knn):
        assert wait_for_run(client, job["run_id"])["status"] == "completed"
    assert _rows(client.get("/runs").get_data(as_text=True)) == [knn["run_id"], tree["run_id"]]
    only_knn = client.get("/runs?algorithm=knn").get_data(as_text=True)
    assert _rows(only_knn) == [knn["run_id"]]
    assert '<input name="algorithm" value="knn"' in only_knn
    assert _rows(client.get("/runs?dataset_id=iris").get_data(as_text=True)) == [tree["run_id"]]
    assert _rows(client.get("/runs?status=running").get_data(as_text=True)) == []
    assert "No runs match." in client.get("/runs?status=failed").get_data(as_text=True)


def test_an_unknown_status_filter_is_ignored_not_an_error(client):
    response = client.get("/runs?status=exploded")
    assert response.status_code == 200
    assert '<option value="">any</option>' in response.get_data(as_text=True)


def test_a_missing_run_page_says_so(client):
    response = client.get("/runs/doesnotexist")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "Not found" in html and "doesnotexist" in html
