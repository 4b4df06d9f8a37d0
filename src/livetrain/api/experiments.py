"""Experiments: groups of runs to compare, their runs, and the leaderboard; the algorithm catalog."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import current_app

from livetrain.api.runs import run_started
from livetrain.api.schemas import ExperimentIn, ExperimentRunIn, LeaderboardQuery, PageQuery, present

bp = APIBlueprint("experiments", __name__, url_prefix="/api/experiments", tag="Experiments")
algorithms_bp = APIBlueprint("algorithms", __name__, url_prefix="/api/algorithms", tag="Algorithms")


def _svc():
    return current_app.extensions["livetrain"]


@bp.post("")
@bp.input(ExperimentIn, arg_name="body")
def create_experiment(body):
    """Create an experiment."""
    svc = _svc()
    return svc.experiments.describe(svc.experiments.create(present(body))), 201


@bp.get("")
@bp.input(PageQuery, location="query", arg_name="query")
def list_experiments(query):
    """Experiments, newest first, with their run counts."""
    svc = _svc()
    items = svc.store.list_experiments(limit=query["limit"], offset=query["offset"])
    return {"experiments": [svc.experiments.describe(e) for e in items], "total": svc.store.count_experiments(),
            "limit": query["limit"], "offset": query["offset"]}


@bp.get("/<experiment_id>")
def get_experiment(experiment_id: str):
    """One experiment with its runs (newest first)."""
    svc = _svc()
    experiment = svc.experiments.get(experiment_id)
    runs = svc.store.list_runs(experiment_id=experiment.id, limit=500)
    return {**svc.experiments.describe(experiment), "run_list": [r.to_dict() for r in runs]}


@bp.delete("/<experiment_id>")
def delete_experiment(experiment_id: str):
    """Delete an experiment with its runs (active ones are cancelled first); not the default one."""
    return _svc().experiments.delete(experiment_id)


@bp.post("/<experiment_id>/runs")
@bp.input(ExperimentRunIn, arg_name="body")
def start_run(experiment_id: str, body):
    """Start a run in this experiment: a scikit-learn `algorithm` on a dataset, or a `network_id`."""
    return run_started(_svc().runs.start_algorithm(experiment_id, present(body)))


@bp.get("/<experiment_id>/leaderboard")
@bp.input(LeaderboardQuery, location="query", arg_name="query")
def leaderboard(experiment_id: str, query):
    """The experiment's runs ranked by one metric on one split (ties share a rank)."""
    return _svc().experiments.leaderboard(experiment_id, query.get("metric"), query["split"], query.get("limit"))


@algorithms_bp.get("")
def list_algorithms():
    """Every scikit-learn algorithm: tunable parameters (type, range, default), fixed ones, explanations.

    `networks` describes the other kind of run an experiment takes: one of the project's torch networks.
    """
    from livetrain.training.algorithms import NETWORK_RUNS, catalog

    return {"algorithms": catalog(), "networks": NETWORK_RUNS}
