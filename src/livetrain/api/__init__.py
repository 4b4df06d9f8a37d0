"""REST API under /api: one blueprint per resource, one error format."""

from __future__ import annotations

from livetrain.api.datasets import bp as datasets_bp
from livetrain.api.experiments import algorithms_bp
from livetrain.api.experiments import bp as experiments_bp
from livetrain.api.models import bp as models_bp
from livetrain.api.networks import bp as networks_bp
from livetrain.api.runs import bp as runs_bp
from livetrain.api.status import bp as status_bp
from livetrain.api.tokens import bp as tokens_bp
from livetrain.api.training import bp as training_bp
from livetrain.api.vocabularies import bp as vocabularies_bp
from livetrain.api.vocabularies import text_bp

BLUEPRINTS = (status_bp, datasets_bp, networks_bp, runs_bp, training_bp, experiments_bp, algorithms_bp,
              tokens_bp, models_bp, vocabularies_bp, text_bp)


def register(app) -> None:
    """Attach every API blueprint."""
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
