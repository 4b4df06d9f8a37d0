"""The registry pages: every registered model, and one model with its versions, aliases, history and
retrainings (promote and roll back buttons)."""

from __future__ import annotations

from flask import render_template

from livetrain.web import bp, svc


@bp.get("/models")
def models_page():
    """Every registered model with its aliases and feedback count."""
    registry = svc().registry
    return render_template("models.html", models=[registry.summary(m) for m in registry.store.list_models()])


@bp.get("/models/<name>")
def model_page(name: str):
    """One model: versions with their metrics side by side, aliases, alias history, feedback, retrainings."""
    return render_template("model.html", model=svc().registry.describe(name))
