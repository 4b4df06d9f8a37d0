"""What every request passes before its view: who is asking (a Bearer token, or the page's
session), whether their scope and experiment cover the request, the session's CSRF check, and
the rate limits on writes and uploads. docs/security.md describes it for operators.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, jsonify, redirect, request, session, url_for

from livetrain.auth import OPEN, READ_METHODS, Forbidden, Principal, Unauthorized, required_scope
from livetrain.config import Settings

# reachable without a token: the login page, static files, the API's description, the health check
PUBLIC_ENDPOINTS = {"static", "auth.login", "openapi.spec", "openapi.docs", "status.health"}
# what a token limited to one experiment may read besides that experiment and its runs
SHARED_READS = {"status.status", "algorithms.list_algorithms", "tokens.whoami"}
SESSION_TOKEN, SESSION_CSRF = "token_id", "csrf"
SECRET_FILE = ".livetrain-secret"


def secret_key(settings: Settings) -> str:
    """The key that signs session cookies: the setting, else one generated once and kept (0600) in
    the home folder, so sessions survive a restart and nodes sharing the home agree."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.home) / SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", opener=lambda p, flags: os.open(p, flags, 0o600)) as out:
            out.write(key)
    except FileExistsError:  # another node wrote it first
        return path.read_text().strip()
    return key


def csrf_token() -> str:
    """The session's CSRF token (created on first use); forms and the page's script send it back."""
    if SESSION_CSRF not in session:
        session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return session[SESSION_CSRF]


def csrf_ok(sent: str | None) -> bool:
    """Whether a form or header carries the session's CSRF token."""
    expected = session.get(SESSION_CSRF)
    return bool(expected and sent and hmac.compare_digest(str(sent), expected))


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer ...` header."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _experiment_of_request(container) -> str | None:
    """The experiment a request is about: named in the URL, or the experiment of the run it names."""
    args = request.view_args or {}
    if "experiment_id" in args:
        return args["experiment_id"]
    if "run_id" in args:
        run = container.store.get_run(args["run_id"])
        return run.experiment_id if run else None
    if request.method in READ_METHODS and request.endpoint == "runs.list_runs":
        return request.args.get("experiment_id")  # the list of that experiment's runs
    return None


def check_request() -> Any:
    """The before-request hook: sets `g.livetrain_principal`, or answers 401/403 (or sends a page
    to the login form)."""
    container = current_app.extensions["livetrain"]
    endpoint = request.endpoint
    if endpoint is None or endpoint in PUBLIC_ENDPOINTS or request.method == "OPTIONS":
        return None  # OPTIONS: a browser's CORS preflight, which never carries the token; no view runs
    if not container.auth_required():
        g.livetrain_principal = OPEN
        return None
    page = endpoint.startswith("web.")
    secret = bearer_token()
    if secret is not None:
        principal, by_session = container.tokens.authenticate(secret), False
    else:
        principal, by_session = container.tokens.principal(session.get(SESSION_TOKEN)), True
        if principal is None:
            if page:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            raise Unauthorized("this server needs a token: send Authorization: Bearer lt_... "
                               "(or sign in on /login for the pages)")
    if by_session and request.method not in READ_METHODS:
        if not csrf_ok(request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")):
            raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again",
                            code="csrf_failed")
    need = required_scope(current_app.view_functions.get(endpoint), request.method)
    if not principal.allows(need):
        raise Forbidden(f"this needs the {need} scope; token {principal.name!r} has {principal.scope}")
    if principal.experiment_id and endpoint not in SHARED_READS:
        if _experiment_of_request(container) != principal.experiment_id:
            raise Forbidden(f"token {principal.name!r} is limited to experiment {principal.experiment_id!r}")
    g.livetrain_principal = principal
    return None


def current_principal() -> Principal:
    """Who the current request is from (everyone, when auth is off)."""
    return g.get("livetrain_principal") or OPEN


def _rate_key() -> str:
    principal = g.get("livetrain_principal")
    if principal is not None and principal.token_id:
        return f"token:{principal.token_id}"
    return f"address:{request.remote_addr or 'unknown'}"


def _too_many(limit) -> Any:
    retry = max(1, int(limit.reset_at - time.time()))
    response = jsonify(error="too_many_requests",
                       message=f"rate limit of {limit.limit} reached; try again in {retry} s")
    response.status_code = 429
    response.headers["Retry-After"] = str(retry)
    return response


def init_rate_limits(app: Flask, settings: Settings) -> None:
    """Flask-Limiter on the API's writes and uploads, counted per token (else per address)."""
    from flask_limiter import ApplicationLimit, Limiter

    def not_a_write() -> bool:
        return request.method in READ_METHODS or not request.path.startswith("/api/")

    def not_an_upload() -> bool:
        return not_a_write() or request.mimetype != "multipart/form-data"

    limits = []
    if settings.rate_limit_writes:
        limits.append(ApplicationLimit(settings.rate_limit_writes, key_function=_rate_key, scope="writes",
                                       exempt_when=not_a_write, on_breach=_too_many))
    if settings.rate_limit_uploads:
        limits.append(ApplicationLimit(settings.rate_limit_uploads, key_function=_rate_key, scope="uploads",
                                       exempt_when=not_an_upload, on_breach=_too_many))
    storage = settings.rate_limit_storage or settings.message_queue or "memory://"
    limiter = Limiter(key_func=_rate_key, app=app, application_limits=limits, storage_uri=storage,
                      key_prefix=f"{settings.message_queue_channel}-limits", enabled=bool(limits))
    app.extensions["livetrain_limiter"] = limiter


def init_app(app: Flask, settings: Settings) -> None:
    """Session cookies, the auth check and the rate limits (after the check, so they count per token)."""
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_NAME="livetrain_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=12 * 3600,
    )
    app.before_request(check_request)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_principal"] = current_principal
    init_rate_limits(app, settings)
