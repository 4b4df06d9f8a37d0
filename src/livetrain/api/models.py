"""The model registry: registered models, versions, aliases, predictions, feedback, retraining."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response, current_app, g

from livetrain.api.schemas import (
    AliasIn,
    FeedbackIn,
    ModelIn,
    ModelPredictIn,
    ModelVersionIn,
    PageQuery,
    PolicyIn,
    ReasonIn,
    present,
    refuse_head,
)
from livetrain.auth import requires

bp = APIBlueprint("models", __name__, url_prefix="/api/models", tag="Models")


def _registry():
    return current_app.extensions["livetrain"].registry


def who() -> str:
    """Who is asking, as records of alias moves and registrations name them."""
    principal = g.get("livetrain_principal")
    return getattr(principal, "label", None) or "anonymous"


@bp.post("")
@bp.input(ModelIn, arg_name="body")
def create_model(body):
    """Register a model name."""
    registry = _registry()
    return registry.summary(registry.create(body["name"], body.get("description"))), 201


@bp.get("")
def list_models():
    """Every registered model with its aliases."""
    registry = _registry()
    return {"models": [registry.summary(m) for m in registry.store.list_models()]}


@bp.get("/<name>")
def get_model(name: str):
    """A model: versions with their metrics side by side, aliases, alias history, policy, retrainings."""
    return _registry().describe(name)


@bp.delete("/<name>")
@requires("admin")
def delete_model(name: str):
    """Forget a registered model (its networks, runs and datasets stay)."""
    return _registry().delete(name)


@bp.post("/<name>/versions")
@bp.input(ModelVersionIn, arg_name="body")
def register_version(name: str, body):
    """Register a network version (network_id + version) or a completed run (run_id) as the next version."""
    return _registry().register(name, present(body), who()).to_dict(), 201


@bp.put("/<name>/aliases/<alias>")
@requires("admin")
@bp.input(AliasIn, arg_name="body")
def set_alias(name: str, alias: str, body):
    """Point an alias at a version (set or move it); the move is recorded with who and why."""
    return _registry().set_alias(name, alias, body["version"], who(), body.get("reason"))


@bp.delete("/<name>/aliases/<alias>")
@requires("admin")
def remove_alias(name: str, alias: str):
    """Remove an alias (recorded like a move)."""
    return _registry().remove_alias(name, alias, who())


@bp.post("/<name>/aliases/<alias>/rollback")
@requires("admin")
@bp.input(ReasonIn, arg_name="body")
def rollback_alias(name: str, alias: str, body):
    """Move an alias back to the version it pointed at before its last move."""
    return _registry().rollback(name, alias, who(), body.get("reason"))


@bp.get("/<name>/history")
def alias_history(name: str):
    """Every alias move of a model, newest first."""
    registry = _registry()
    registry.get(name)
    return {"model": name, "history": [m.to_dict() for m in registry.store.alias_history(name)]}


@bp.post("/<name>/predict")
@bp.input(ModelPredictIn, arg_name="body")
def predict(name: str, body):
    """Predict with the champion (or the version or alias named); each prediction has a prediction_id."""
    refuse_head(body, "a registered model's predict")
    return _registry().predict(name, present(body))


@bp.post("/<name>/feedback")
@bp.input(FeedbackIn, arg_name="body")
def add_feedback(name: str, body):
    """The true label of a prediction (prediction_id) or of an input."""
    return _registry().add_feedback(name, present(body)).to_dict(), 201


@bp.get("/<name>/feedback")
@bp.input(PageQuery, location="query", arg_name="query")
def list_feedback(name: str, query):
    """A model's feedback, oldest first, a page at a time."""
    return _registry().list_feedback(name, limit=query["limit"], offset=query["offset"])


@bp.get("/<name>/feedback.csv")
@bp.doc(responses={200: {"description": "CSV: id, created_at, prediction_id, version, predicted, label, note, input"}})
def feedback_csv(name: str):
    """Every piece of a model's feedback as CSV."""
    return Response(_registry().feedback_csv(name), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}-feedback.csv"'})


@bp.put("/<name>/policy")
@requires("admin")
@bp.input(PolicyIn, arg_name="body")
def set_policy(name: str, body):
    """Set the retraining policy: when to retrain, on what metric, by what margin a challenger must win."""
    return _registry().set_policy(name, present(body))


@bp.post("/<name>/retrain")
def retrain(name: str):
    """Retrain now from the unused feedback; answers at once (202) with the queued retraining."""
    return _registry().retraining.start(name).to_dict(), 202


@bp.get("/<name>/retrainings")
def list_retrainings(name: str):
    """A model's retrainings, newest first."""
    registry = _registry()
    registry.get(name)
    return {"model": name, "retrainings": [r.to_dict() for r in registry.store.list_retrainings(name)]}
