"""The app factory: isolated apps, the OpenAPI document and Swagger UI, CORS, Prometheus."""

from __future__ import annotations

from tests.helpers import create_network, events_named


def test_two_apps_in_one_process_share_nothing(make_app):
    first, second = make_app(), make_app()
    c1, c2 = first.test_client(), second.test_client()
    s1 = first.extensions["socketio"].test_client(first, flask_test_client=c1)
    s2 = second.extensions["socketio"].test_client(second, flask_test_client=c2)
    s1.get_received(), s2.get_received()
    network_id = create_network(c1, dataset_id="iris", layer_sizes=[4, 3])["network_id"]
    assert [n["network_id"] for n in c1.get("/api/networks").get_json()["networks"]] == [network_id]
    assert c2.get("/api/networks").get_json()["networks"] == []
    assert c2.get(f"/api/networks/{network_id}").status_code == 404
    assert [e["network_id"] for e in events_named(s1.get_received(), "network_created")] == [network_id]
    assert events_named(s2.get_received(), "network_created") == []
    s1.disconnect(), s2.disconnect()


def test_openapi_document_describes_the_api(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["info"]["title"] == "livetrain API"
    paths = spec["paths"]
    for path in ("/api/status", "/api/networks", "/api/networks/{network_id}", "/api/networks/{network_id}/train",
                 "/api/networks/{network_id}/predict", "/api/training/{job_id}", "/api/runs",
                 "/api/runs/{run_id}/metrics", "/api/runs/{run_id}/cancel", "/api/datasets"):
        assert path in paths, path
    assert {"get", "post", "delete"} <= set(paths["/api/networks"])
    body = paths["/api/networks/{network_id}/train"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body  # the train body is documented


def test_swagger_ui_is_served(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert "swagger" in response.get_data(as_text=True).lower()


def test_cross_origin_clients_may_call_the_api(client):
    response = client.get("/api/status", headers={"Origin": "http://elsewhere.example"})
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "http://elsewhere.example")


def test_datasets_are_listed_with_their_shapes(client):
    from tests.conftest import HAVE_MNIST

    body = client.get("/api/datasets").get_json()
    found = {d["id"]: d for d in body["datasets"]}
    assert {"digits", "iris", "wine", "breast_cancer", "diabetes"} <= set(found)
    assert ("mnist" in found) is HAVE_MNIST
    assert body["default"] == ("mnist" if HAVE_MNIST else "digits")
    if HAVE_MNIST:
        assert (found["mnist"]["n_train"], found["mnist"]["n_test"], found["mnist"]["input_shape"]) == (
            8000, 2000, [1, 28, 28])
    iris = client.get("/api/datasets/iris").get_json()
    assert (iris["n_features"], iris["n_classes"], iris["task"], iris["n_train"], iris["n_test"]) == (
        4, 3, "classification", 120, 30)
    missing = client.get("/api/datasets/imagenet")
    assert missing.status_code == 404 and "imagenet" in missing.get_json()["message"]


def test_prometheus_metrics_are_exposed(client):
    create_network(client, dataset_id="iris", layer_sizes=[4, 3])
    text = client.get("/metrics").get_data(as_text=True)
    assert "livetrain_active_runs 0.0" in text
    assert "livetrain_epochs_total 0.0" in text
