"""API tokens over REST (admin scope), and who the caller is."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema, fields
from apiflask.validators import Length, OneOf
from flask import current_app
from marshmallow import RAISE

from livetrain.auth import SCOPES, requires
from livetrain.security import current_principal

bp = APIBlueprint("tokens", __name__, url_prefix="/api", tag="Tokens")


class TokenIn(Schema):
    class Meta:
        unknown = RAISE  # a misspelt `scope` must not create a token with the default

    name = fields.String(required=True, validate=Length(min=1, max=200))
    scope = fields.String(required=True, validate=OneOf(list(SCOPES)))
    expires_in = fields.String(load_default=None, metadata={"description": "e.g. 30d, 12h, 2w; default: never"})
    experiment_id = fields.String(load_default=None, validate=Length(min=1, max=64),
                                  metadata={"description": "limit the token to this experiment and its runs"})


def _tokens():
    return current_app.extensions["livetrain"].tokens


@bp.post("/tokens")
@bp.input(TokenIn, arg_name="body")
@requires("admin")
def create_token(body):
    """Create a token; the answer is the only time its secret is shown."""
    token, secret = _tokens().create(body["name"], body["scope"], expires_in=body["expires_in"],
                                     experiment_id=body["experiment_id"], created_by=current_principal().label)
    return {**token.to_dict(token.created_at), "token": secret,
            "message": "store the token now: it is not shown again"}, 201


@bp.get("/tokens")
@requires("admin")
def list_tokens():
    """Every token: name, prefix, scope, experiment, expiry, last use, state (never the secret)."""
    return {"tokens": _tokens().list()}


@bp.delete("/tokens/<token_id>")
@requires("admin")
def revoke_token(token_id: str):
    """Revoke a token: it stops working at once, in its page sessions and Socket.IO subscriptions too."""
    import time

    return _tokens().revoke(token_id).to_dict(time.time())


@bp.get("/auth/whoami")
def whoami():
    """The caller's token name, scope and experiment, and whether this server asks for a token."""
    principal = current_principal()
    return {"name": principal.name, "scope": principal.scope, "experiment_id": principal.experiment_id,
            "token_id": principal.token_id,
            "auth_required": current_app.extensions["livetrain"].auth_required()}
