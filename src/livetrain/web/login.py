"""Signing in to the pages with a token, and out again.

The form takes an API token; a valid one starts a session (a signed cookie, HttpOnly,
SameSite=Lax) that holds the token's id, never the token. Every request re-checks that the
token is still usable, so revoking it ends its sessions too.
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from livetrain.auth import Unauthorized
from livetrain.security import SESSION_TOKEN, csrf_ok, csrf_token

auth_bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server, never another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("web.dashboard")


@auth_bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form (GET) and its submission (POST: token, CSRF token, next)."""
    container = current_app.extensions["livetrain"]
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next=target, error=None, required=container.auth_required())
    error, status = None, 200
    if not csrf_ok(request.form.get("csrf_token")):
        error, status = "The form expired: try again.", 400
    else:
        try:
            principal = container.tokens.authenticate(request.form.get("token", "").strip())
        except Unauthorized as refused:
            error, status = f"Not signed in: {refused.message}.", 401
        else:
            session.clear()
            session[SESSION_TOKEN] = principal.token_id
            csrf_token()  # a new CSRF token for the new session
            session.permanent = True
            return redirect(target)
    return render_template("login.html", next=target, error=error,
                           required=container.auth_required()), status


@auth_bp.post("/logout")
def logout():
    """End the page session (the CSRF token is checked before, like every form)."""
    session.clear()
    return redirect(url_for("auth.login"))
