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


def test_other_origins_are_not_allowed_by_default(client):
    # by default a page elsewhere cannot read the API through a visitor's browser; pages served from
    # this machine (a client on http://localhost:3000, like the original server's) can
    response = client.get("/api/status", headers={"Origin": "http://elsewhere.example"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    for local in ("http://localhost:3000", "http://127.0.0.1:8080"):
        allowed = client.get("/api/status", headers={"Origin": local})
        assert allowed.headers["Access-Control-Allow-Origin"] == local
    assert "Access-Control-Allow-Origin" not in client.get(
        "/api/status", headers={"Origin": "http://localhost.evil.example"}).headers


def test_socketio_takes_the_same_origins(app):
    from livetrain.app import _socket_origins

    check = _socket_origins(app.config["LIVETRAIN"].cors_origin_list())
    here = {"HTTP_HOST": "train.example:8000", "wsgi.url_scheme": "http"}
    assert check("http://train.example:8000", here) and check("http://localhost:3000", here)
    assert check(None, here)  # python clients send no Origin
    assert not check("http://elsewhere.example", here)
    proxied = {**here, "HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "ml.example"}
    assert check("https://ml.example", proxied)


def test_configured_origins_may_call_the_api(make_app):
    client = make_app(cors_origins="http://ui.example, http://other.example").test_client()
    allowed = client.get("/api/status", headers={"Origin": "http://ui.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://ui.example"
    refused = client.get("/api/status", headers={"Origin": "http://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in refused.headers
    anyone = make_app(cors_origins="*").test_client().get("/api/status", headers={"Origin": "http://x.example"})
    assert anyone.headers["Access-Control-Allow-Origin"] in ("*", "http://x.example")


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
