"""Auth in one process: when tokens are asked, how they are kept, the page session and its CSRF
check, and the rate limits (the real-server side is tests/e2e/test_auth.py)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from livetrain.auth import parse_duration
from livetrain.config import Settings
from livetrain.errors import ValidationError

NETWORK = {"layer_sizes": [64, 5, 10], "dataset_id": "digits"}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_auto_asks_for_nothing_until_the_first_token_exists(app, client):
    assert client.get("/api/status").status_code == 200
    assert client.post("/api/networks", json=NETWORK).status_code == 201
    _, secret = app.extensions["livetrain"].tokens.create("first admin", "admin")
    refused = client.get("/api/networks")
    assert refused.status_code == 401 and refused.json["error"] == "unauthorized"
    assert refused.headers.get("Content-Type") == "application/json"
    assert len(client.get("/api/networks", headers=bearer(secret)).json["networks"]) == 1


def test_auth_off_never_asks_and_on_always_does(make_app):
    off = make_app(auth="off")
    off.extensions["livetrain"].tokens.create("admin", "admin")
    assert off.test_client().get("/api/networks").status_code == 200
    on = make_app(auth="on")
    assert on.test_client().get("/api/networks").status_code == 401


def test_only_the_hash_of_a_token_is_stored(app):
    tokens = app.extensions["livetrain"].tokens
    token, secret = tokens.create("ci", "write", expires_in="30d")
    with app.extensions["livetrain"].store.engine.connect() as db:
        rows = [tuple(map(str, r)) for r in db.execute(text("SELECT * FROM api_tokens"))]
    assert rows and not any(secret in cell for row in rows for cell in row)
    assert secret.startswith("lt_") and token.prefix == secret[:10]
    assert tokens.authenticate(secret).scope == "write"
    assert 29.9 * 86400 < token.expires_at - token.created_at <= 30 * 86400


@pytest.mark.parametrize("body, message", [
    ({"name": "x", "scope": "root"}, "scope"),
    ({"name": "", "scope": "read"}, "name"),
    ({"name": "x", "scope": "read", "expires_in": "soon"}, "duration"),
    ({"name": "x", "scope": "read", "scopes": "admin"}, "scopes"),
    ({"name": "x", "scope": "read", "experiment_id": "nope"}, "no experiment"),
    ({"name": "x", "scope": "admin", "experiment_id": "default"}, "cannot be limited"),
])
def test_a_bad_token_request_is_a_4xx_and_creates_nothing(app, client, body, message):
    response = client.post("/api/tokens", json=body)
    assert 400 <= response.status_code < 500 and message in response.json["message"], response.json
    assert app.extensions["livetrain"].tokens.list() == []


def test_durations():
    assert [parse_duration(t) for t in ("45s", "90m", "12h", "30d", "2w")] == [45, 5400, 43200, 2592000, 1209600]
    for bad in ("0d", "-1d", "30", "d", "1y"):
        with pytest.raises(ValidationError):
            parse_duration(bad)


def test_settings_refuse_an_unknown_auth_mode_or_rate_limit():
    with pytest.raises(ValueError, match="auth must be"):
        Settings.load({"auth": "maybe"})
    with pytest.raises(ValueError, match="rate_limit_writes"):
        Settings.load({"rate_limit_writes": "lots"})
    assert Settings.load({}, environ={"LIVETRAIN_RATE_LIMIT_WRITES": "off"}).rate_limit_writes == ""


def _sign_in(client, secret: str, next_path: str = "/"):
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/login", data={"token": secret, "csrf_token": csrf, "next": next_path})


def _page_csrf(client) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)


def test_the_page_session_needs_its_csrf_token_for_every_write(make_app):
    app = make_app(auth="on")
    _, secret = app.extensions["livetrain"].tokens.create("page user", "write")
    client = app.test_client()
    assert client.get("/").headers["Location"].startswith("/login?next=")
    signed = _sign_in(client, secret)
    assert signed.status_code == 302 and signed.headers["Location"] == "/"
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and secret not in cookie
    assert client.get("/").status_code == 200
    forged = client.post("/api/networks", json=NETWORK)
    assert forged.status_code == 403 and forged.json["error"] == "csrf_failed"
    assert client.get("/api/networks").json["networks"] == []
    made = client.post("/api/networks", json=NETWORK, headers={"X-CSRF-Token": _page_csrf(client)})
    assert made.status_code == 201


def test_signing_in_refuses_a_bad_token_and_a_foreign_next(make_app):
    app = make_app(auth="on")
    _, secret = app.extensions["livetrain"].tokens.create("reader", "read")
    client = app.test_client()
    refused = _sign_in(client, "lt_guess")
    assert refused.status_code == 401 and "unknown token" in refused.get_data(as_text=True)
    assert _sign_in(client, secret, "//evil.example/").headers["Location"] == "/"


def test_revoking_a_token_ends_its_page_sessions(make_app):
    app = make_app(auth="on")
    tokens = app.extensions["livetrain"].tokens
    token, secret = tokens.create("page user", "read")
    client = app.test_client()
    _sign_in(client, secret)
    assert client.get("/api/networks").status_code == 200
    tokens.revoke(token.id)
    assert client.get("/api/networks").status_code == 401
    assert client.get("/").status_code == 302


def test_writes_are_rate_limited_per_token_with_retry_after(make_app):
    app = make_app(auth="on", rate_limit_writes="3/minute")
    tokens = app.extensions["livetrain"].tokens
    _, first = tokens.create("busy", "write")
    _, second = tokens.create("calm", "write")
    client = app.test_client()
    codes = [client.post("/api/networks", json=NETWORK, headers=bearer(first)).status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    limited = client.post("/api/networks", json=NETWORK, headers=bearer(first))
    assert limited.json["error"] == "too_many_requests" and "3 per 1 minute" in limited.json["message"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert client.get("/api/networks", headers=bearer(first)).status_code == 200  # reads are not limited
    assert client.post("/api/networks", json=NETWORK, headers=bearer(second)).status_code == 201
    assert len(client.get("/api/networks", headers=bearer(second)).json["networks"]) == 4


def test_without_tokens_the_limit_counts_per_address(make_app):
    client = make_app(rate_limit_writes="2/minute").test_client()
    here = [client.post("/api/networks", json=NETWORK).status_code for _ in range(3)]
    there = client.post("/api/networks", json=NETWORK, environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code
    assert (here, there) == ([201, 201, 429], 201)


def test_a_cors_preflight_needs_no_token(make_app):
    client = make_app(auth="on", cors_origins="http://ui.example").test_client()
    preflight = client.options("/api/networks", headers={
        "Origin": "http://ui.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://ui.example"
    assert client.post("/api/networks", json=NETWORK).status_code == 401  # the request itself still needs one
