"""A body over the limit gets its 413 answer on a real server, never a connection reset.

The server answers before reading the body; eventlet then reads and discards what the client still
sends (the connection is kept alive), so a client that sends its whole body before reading, as
`requests` does, reads the answer. These tests keep that true.
"""

from __future__ import annotations

import io
import json

import pytest
import requests

MAX_JSON = 100_000
MAX_UPLOAD = 200_000
ROUNDS = 5


@pytest.fixture(scope="module")
def small_limits(tmp_path_factory):
    from tests.e2e.helpers import ServerProcess

    folder = tmp_path_factory.mktemp("too-large")
    server = ServerProcess(folder / "home", folder / "server.log", {
        "LIVETRAIN_MAX_CONTENT_LENGTH": str(MAX_JSON), "LIVETRAIN_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "LIVETRAIN_WARM_WORKERS": "0"})
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("megabytes", [1, 8])
def test_an_oversized_json_body_is_answered_413(small_limits, megabytes):
    body = json.dumps({"layer_sizes": [4, 3], "name": "x" * (megabytes << 20)})
    for _ in range(ROUNDS):
        response = requests.post(f"{small_limits.url}/api/networks", data=body, timeout=60,
                                 headers={"Content-Type": "application/json"})
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"
        assert str(MAX_JSON) in response.json()["message"]
    assert requests.get(f"{small_limits.url}/api/networks", timeout=30).json()["networks"] == []


@pytest.mark.parametrize("megabytes", [1, 8])
def test_an_oversized_upload_is_answered_413(small_limits, megabytes):
    data = b"a,b\n" + b"1,2\n" * (megabytes << 18)
    for _ in range(ROUNDS):
        response = requests.post(f"{small_limits.url}/api/datasets", files={"file": ("big.csv", io.BytesIO(data))},
                                 timeout=60)
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"
        assert "LIVETRAIN_MAX_UPLOAD_BYTES" in response.json()["message"]
    # the server goes on answering, and kept nothing of the refused uploads
    assert requests.get(f"{small_limits.url}/api/status", timeout=30).status_code == 200
    assert not list((small_limits.home / "models" / ".spool").glob("*"))
