"""Tokens and scopes against a real server with auth on: each scope on each endpoint family, expiry
and revocation, Socket.IO refusal and room filtering, the refusal to serve publicly without auth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests
import socketio

from tests.e2e.helpers import Api, LiveClient, ServerProcess, free_port, livetrain_env, wait_until

SCOPES = ("read", "write", "admin")
MISSING = "00000000000000000000000000000000"


def create_token(home, name: str, scope: str, *extra: str) -> str:
    """`livetrain tokens create` on the server's database directly, as an operator makes the first one."""
    done = subprocess.run([sys.executable, "-m", "livetrain", "tokens", "create", "--home", str(home), "--name", name,
                           "--scope", scope, *extra], capture_output=True, text=True, timeout=60,
                          env=livetrain_env(home, {}))
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert secret.startswith("lt_") and "not shown again" in done.stderr
    return secret


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """A server with auth on, a token of each scope, and an admin Api."""
    folder = tmp_path_factory.mktemp("auth")
    home = folder / "home"
    home.mkdir()
    tokens = {scope: create_token(home, f"{scope}-token", scope) for scope in SCOPES}
    server = ServerProcess(home, folder / "server.log", {"LIVETRAIN_AUTH": "on"}).start()
    admin = Api(server.url, tokens["admin"])
    yield server, tokens, admin
    admin.close()
    server.stop()


def test_without_a_token_every_endpoint_family_answers_401(secured):
    server, _, _ = secured
    for method, path in (("GET", "/api/status"), ("GET", "/api/networks"), ("POST", "/api/networks"),
                         ("GET", "/api/runs"), ("GET", "/api/tokens"), ("GET", "/metrics"), ("GET", "/api/datasets")):
        answer = requests.request(method, server.url + path, json={} if method == "POST" else None, timeout=10)
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.json()["error"] == "unauthorized" and "token" in answer.json()["message"]
    wrong = requests.get(server.url + "/api/status", headers={"Authorization": "Bearer lt_not-a-real-one"}, timeout=10)
    assert (wrong.status_code, wrong.json()["message"]) == (401, "unknown token")
    # the API's description stays readable, so clients can be generated
    assert requests.get(server.url + "/api/openapi.json", timeout=10).status_code == 200


def _family_table(admin: Api) -> list[tuple[str, str, str, object, str]]:
    """(family, method, path, body, scope needed): every endpoint family, with real ids where it matters."""
    network = admin.create_network(name="scoped")
    experiment = admin.post("/api/experiments", {"name": "scoped"}, expect=201)
    admin.post("/api/models", {"name": "scoped"}, expect=201)
    return [
        ("status", "GET", "/api/status", None, "read"),
        ("status", "GET", "/api/workers", None, "read"),
        ("status", "GET", "/metrics", None, "read"),
        ("datasets", "GET", "/api/datasets", None, "read"),
        ("datasets", "GET", "/api/datasets/iris", None, "read"),
        ("datasets", "POST", "/api/datasets", {"generator": "blobs", "n_samples": 60}, "write"),
        ("datasets", "DELETE", f"/api/datasets/{MISSING}", None, "write"),
        ("networks", "GET", "/api/networks", None, "read"),
        ("networks", "GET", f"/api/networks/{network['network_id']}", None, "read"),
        ("networks", "POST", "/api/networks", {"layer_sizes": [64, 5, 10], "dataset_id": "digits"}, "write"),
        ("networks", "DELETE", f"/api/networks/{MISSING}", None, "write"),
        ("builder", "GET", f"/api/networks/{network['network_id']}/layers", None, "read"),
        ("builder", "GET", f"/api/networks/{network['network_id']}/revisions", None, "read"),
        ("builder", "POST", f"/api/networks/{MISSING}/layers", {"layer": {"type": "ReLU"}}, "write"),
        ("builder", "PUT", f"/api/networks/{MISSING}/layers/order", {"order": [0]}, "write"),
        ("builder", "DELETE", f"/api/networks/{MISSING}/heads/out", None, "write"),
        ("text", "GET", "/api/vocabularies", None, "read"),
        ("text", "POST", "/api/vocabularies", {"name": "by scope"}, "write"),
        ("text", "POST", f"/api/vocabularies/{MISSING}/tokens", {"tokens": ["x"]}, "write"),
        ("text", "GET", "/api/templates?dataset_id=iris", None, "read"),
        ("text", "POST", f"/api/datasets/{MISSING}/samples", {"samples": [{"text": "a", "label": "b"}]}, "write"),
        ("text", "POST", f"/api/networks/{MISSING}/generate", {"prompt": "a"}, "write"),
        ("networks", "POST", f"/api/networks/{network['network_id']}/predict", {"input": [0.0] * 64}, "write"),
        ("training", "POST", f"/api/networks/{MISSING}/train", {"epochs": 1}, "write"),
        ("training", "GET", f"/api/training/{MISSING}", None, "read"),
        ("experiments", "GET", "/api/experiments", None, "read"),
        ("experiments", "GET", f"/api/experiments/{experiment['id']}/leaderboard", None, "read"),
        ("experiments", "POST", "/api/experiments", {"name": "by scope"}, "write"),
        ("experiments", "DELETE", f"/api/experiments/{MISSING}", None, "write"),
        ("algorithms", "GET", "/api/algorithms", None, "read"),
        ("runs", "GET", "/api/runs", None, "read"),
        ("runs", "GET", f"/api/runs/{MISSING}/events", None, "read"),
        ("runs", "GET", f"/api/runs/{MISSING}/logs", None, "read"),
        ("runs", "POST", f"/api/runs/{MISSING}/cancel", None, "write"),
        ("runs", "POST", f"/api/runs/{MISSING}/resume", None, "write"),
        ("tokens", "GET", "/api/tokens", None, "admin"),
        ("tokens", "POST", "/api/tokens", {"name": "made by test", "scope": "read"}, "admin"),
        ("tokens", "DELETE", f"/api/tokens/{MISSING}", None, "admin"),
        ("tokens", "GET", "/api/auth/whoami", None, "read"),
        ("models", "GET", "/api/models", None, "read"),
        ("models", "GET", "/api/models/scoped", None, "read"),
        ("models", "POST", "/api/models", {"name": "made-by-scope"}, "write"),
        ("models", "POST", "/api/models/scoped/predict", {"input": [0.0] * 64}, "write"),
        ("models", "POST", "/api/models/scoped/feedback", {"input": [0.0] * 64, "label": 3}, "write"),
        ("models", "PUT", "/api/models/scoped/aliases/champion", {"version": 1, "reason": "scope"}, "admin"),
        ("models", "POST", "/api/models/scoped/aliases/champion/rollback", {}, "admin"),
        ("models", "DELETE", "/api/models/scoped/aliases/challenger", None, "admin"),
        ("models", "PUT", "/api/models/scoped/policy", {"min_feedback": 10}, "admin"),
        ("models", "DELETE", f"/api/models/{MISSING}", None, "admin"),
        ("networks", "DELETE", "/api/networks", None, "admin"),  # delete-all: last, it empties the server
    ]


def test_each_scope_on_each_endpoint_family(secured):
    server, tokens, admin = secured
    table = _family_table(admin)
    for scope in SCOPES:
        caller = Api(server.url, tokens[scope])
        for family, method, path, body, need in table:
            if need == "admin" and method == "DELETE" and path == "/api/networks" and scope == "admin":
                continue  # checked below, once the others have run
            answer = caller.request(method, path, json=body)
            allowed = SCOPES.index(scope) >= SCOPES.index(need)
            what = f"{scope} token, {family}: {method} {path} -> {answer.status_code} {answer.text[:200]}"
            if allowed:
                assert answer.status_code not in (401, 403) and answer.status_code < 500, what
            else:
                assert answer.status_code == 403, what
                assert answer.json()["error"] == "forbidden" and f"needs the {need} scope" in answer.json()["message"]
        caller.close()
    # refused writes changed nothing: delete-all by a write token left the networks there
    assert admin.get("/api/networks")["networks"]
    admin.delete("/api/networks")
    assert admin.get("/api/networks")["networks"] == []


def test_expired_and_revoked_tokens_stop_working(secured):
    server, _, admin = secured
    short = admin.post("/api/tokens", {"name": "short-lived", "scope": "read", "expires_in": "2s"}, expect=201)
    assert short["token"].startswith("lt_") and short["prefix"] == short["token"][:10]
    kept = admin.post("/api/tokens", {"name": "to revoke", "scope": "write"}, expect=201)
    short_api, kept_api = Api(server.url, short["token"]), Api(server.url, kept["token"])
    assert short_api.get("/api/status")["status"] == "online"
    assert kept_api.get("/api/auth/whoami")["name"] == "to revoke"

    admin.delete(f"/api/tokens/{kept['id']}")
    refused = kept_api.request("GET", "/api/status")
    assert refused.status_code == 401 and "revoked" in refused.json()["message"]
    wait_until(lambda: short_api.request("GET", "/api/status").status_code == 401, timeout=15,
               what="the 2 s token to expire")
    assert "expired" in short_api.request("GET", "/api/status").json()["message"]
    states = {t["name"]: t["state"] for t in admin.get("/api/tokens")["tokens"]}
    assert (states["short-lived"], states["to revoke"]) == ("expired", "revoked")
    short_api.close()
    kept_api.close()


def test_tokens_are_listed_without_their_secrets(secured):
    server, tokens, admin = secured
    listed = admin.get("/api/tokens")["tokens"]
    names = {t["name"]: t for t in listed}
    assert {"read-token", "write-token", "admin-token"} <= set(names)
    text = str(listed)
    assert not any(secret in text for secret in tokens.values())
    assert names["admin-token"]["last_used_at"] is not None and names["admin-token"]["state"] == "active"
    assert names["read-token"]["created_by"] == "cli"


def test_socketio_refuses_a_connect_without_a_valid_token_and_says_why(secured):
    server, tokens, _ = secured
    for auth, reason in ((None, "needs a token"), ({"token": "lt_wrong"}, "unknown token")):
        client = socketio.Client(reconnection=False)
        said = []
        client.on("connect_error", said.append)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(server.url, auth=auth, wait_timeout=10)
        assert said and reason in said[0]["message"] and said[0]["data"]["error"] == "unauthorized", said
        client.shutdown()
    reader = LiveClient(server.url).connect(token=tokens["read"])
    assert reader.wait_for("server_info")
    reader.disconnect()


def test_a_token_limited_to_one_experiment_hears_and_reaches_only_that_experiment(secured):
    server, tokens, admin = secured
    mine = admin.post("/api/experiments", {"name": "team a"}, expect=201)["id"]
    other = admin.post("/api/experiments", {"name": "team b"}, expect=201)["id"]
    limited = admin.post("/api/tokens", {"name": "team a", "scope": "write", "experiment_id": mine}, expect=201)
    api = Api(server.url, limited["token"])
    assert api.get(f"/api/experiments/{mine}")["id"] == mine
    assert api.request("GET", f"/api/experiments/{other}").status_code == 403
    assert api.request("GET", "/api/networks").status_code == 403
    assert api.get("/api/auth/whoami")["experiment_id"] == mine
    assert "linear" in str(api.get("/api/algorithms"))
    assert api.request("POST", f"/api/experiments/{other}/runs", json={"algorithm": "linear",
                                                                       "dataset_id": "iris"}).status_code == 403

    everyone = LiveClient(server.url).connect(token=tokens["read"])
    team = LiveClient(server.url).connect(token=limited["token"])
    assert team.subscribe(experiment_id=other)["error"] == "forbidden"
    assert team.subscribe(network_id=MISSING)["error"] == "forbidden"
    assert team.subscribe(experiment_id=mine)["ok"] is True

    body = {"algorithm": "linear", "dataset_id": "iris", "steps": 2}
    theirs = admin.post(f"/api/experiments/{other}/runs", body, expect=202)["run_id"]
    own = api.post(f"/api/experiments/{mine}/runs", body, expect=202)["run_id"]
    everyone.wait_for("training_complete", theirs, timeout=90)
    team.wait_for("training_complete", own, timeout=90)
    assert [name for name, _ in team.events(run_id=own)][0] == "run_created"
    assert team.events(run_id=theirs) == []  # broadcast is on: the unlimited client heard it, this one did not
    assert everyone.events(run_id=own)
    assert api.get(f"/api/runs/{own}")["status"] == "completed"
    assert api.request("GET", f"/api/runs/{theirs}").status_code == 403
    assert {r["run_id"] for r in api.get(f"/api/runs?experiment_id={mine}")["runs"]} == {own}
    for client in (everyone, team):
        client.disconnect()
    api.close()


def _serve(tmp_path, *args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    process = subprocess.Popen([sys.executable, "-m", "livetrain", "serve", "--port", str(port), "--home", str(home),
                                *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=livetrain_env(home, {}), start_new_session=True)
    return process, port


def _answer(port: int) -> requests.Response:
    def ready():
        try:
            return [requests.get(f"http://127.0.0.1:{port}/api/status", timeout=2)]  # a 401 response is falsy
        except requests.RequestException:
            return None
    return wait_until(ready, timeout=60, what="the server to answer", interval=0.2)[0]


def test_serving_on_a_public_address_without_auth_is_refused_in_one_line(tmp_path):
    process, _ = _serve(tmp_path, "--host", "0.0.0.0", "--auth", "off")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "refusing to listen on 0.0.0.0" in lines[0] and "--insecure" in lines[0]


@pytest.mark.parametrize("args, status", [(("--host", "0.0.0.0"), 401),
                                          (("--host", "0.0.0.0", "--auth", "off", "--insecure"), 200)])
def test_a_public_address_asks_for_tokens_unless_insecure(tmp_path, args, status):
    process, port = _serve(tmp_path, *args)
    try:
        assert _answer(port).status_code == status
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    if status == 401:
        assert "livetrain tokens create --name admin --scope admin" in output
    else:
        assert "WARNING: auth is off on 0.0.0.0" in output


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livetrain", *args], capture_output=True, text=True, timeout=60,
                          env={**livetrain_env(Path("/nonexistent"), {}), **(env or {})})


def test_the_terminal_client_sends_its_token_and_manages_tokens_over_rest(secured):
    server, tokens, admin = secured
    refused = _cli("--url", server.url, "networks", "list")
    assert refused.returncode == 5 and "needs a token" in refused.stderr
    assert _cli("--url", server.url, "networks", "list", env={"LIVETRAIN_TOKEN": tokens["read"]}).returncode == 0

    made = _cli("--token", tokens["admin"], "tokens", "create", "--server", server.url, "--name", "over rest",
                "--scope", "read", "--expires", "1d")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    listed = _cli("--token", tokens["admin"], "tokens", "list", "--server", server.url)
    assert "over rest" in listed.stdout and secret not in listed.stdout and secret[:10] in listed.stdout
    assert _cli("--token", tokens["write"], "tokens", "list", "--server", server.url).returncode == 5
    revoked = _cli("--token", tokens["admin"], "tokens", "revoke", secret[:10], "--server", server.url)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert Api(server.url, secret).request("GET", "/api/status").status_code == 401


def test_alias_moves_and_a_rollback_are_recorded_with_who_and_why_and_pushed(secured):
    server, tokens, admin = secured
    listener = LiveClient(server.url).connect(token=tokens["read"])
    runs = []
    for neighbours in (1, 15):
        body = {"algorithm": "knn", "dataset_id": "iris", "steps": 1, "params": {"n_neighbors": neighbours}}
        run_id = admin.post("/api/experiments/default/runs", body, expect=202)["run_id"]
        admin.wait_for_run(run_id)
        runs.append(run_id)
    admin.post("/api/models", {"name": "iris-knn"}, expect=201)
    for run_id in runs:
        admin.post("/api/models/iris-knn/versions", {"run_id": run_id}, expect=201)
    admin.call("PUT", "/api/models/iris-knn/aliases/champion", json={"version": 1, "reason": "first"})
    moved = admin.call("PUT", "/api/models/iris-knn/aliases/champion", json={"version": 2, "reason": "smoother"})
    assert (moved["from_version"], moved["version"], moved["who"]) == (1, 2, "token:admin-token")
    assert Api(server.url, tokens["write"]).request(
        "POST", "/api/models/iris-knn/aliases/champion/rollback", json={}).status_code == 403
    back = admin.post("/api/models/iris-knn/aliases/champion/rollback", {"reason": "worse on feedback"})
    assert (back["from_version"], back["version"]) == (2, 1) and "worse on feedback" in back["reason"]

    served = admin.post("/api/models/iris-knn/predict", {"input": [5.1, 3.5, 1.4, 0.2]})
    assert served["version"] == 1 and served["alias"] == "champion"
    history = admin.get("/api/models/iris-knn")["history"]
    assert [(h["from_version"], h["to_version"], h["who"]) for h in history][:3] == [
        (2, 1, "token:admin-token"), (1, 2, "token:admin-token"), (None, 1, "token:admin-token")]
    pushed = wait_until(lambda: [p for _, p in listener.events("model_alias_moved") if p["model"] == "iris-knn"]
                        if len(listener.events("model_alias_moved")) >= 3 else None, timeout=15,
                        what="three model_alias_moved events")
    assert [(p["from_version"], p["to_version"]) for p in pushed] == [(None, 1), (1, 2), (2, 1)]
    listener.disconnect()
