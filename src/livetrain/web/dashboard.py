"""The dashboard: networks, recent runs, experiments and datasets at a glance."""

from __future__ import annotations

from flask import render_template

from livetrain.api.networks import network_summary
from livetrain.store.entities import ACTIVE_STATUSES
from livetrain.web import bp, page_of, svc

NETWORKS_PER_PAGE = 12
RUNS_PER_PAGE = 20
EXPERIMENTS_SHOWN = 6


@bp.get("/")
def dashboard():
    """Networks (paginated), recent runs (paginated), newest experiments and the datasets."""
    livetrain = svc()
    store = livetrain.store
    network_page = page_of("networks_page", NETWORKS_PER_PAGE, store.count_networks())
    run_page = page_of("runs_page", RUNS_PER_PAGE, store.count_runs())
    networks = [network_summary(n) for n in store.list_networks(limit=network_page.size, offset=network_page.offset)]
    shown = [n["network_id"] for n in networks]
    # the active run of every network on this page, whether or not it is among the recent runs
    active = [r.to_dict() for r in store.list_runs(statuses=ACTIVE_STATUSES) if r.network_id in shown]
    runs = [r.to_dict() for r in store.list_runs(limit=run_page.size, offset=run_page.offset)]
    experiments = [livetrain.experiments.describe(e) for e in store.list_experiments(limit=EXPERIMENTS_SHOWN)]
    return render_template(
        "dashboard.html",
        networks=networks, network_page=network_page,
        runs=runs, run_page=run_page, active_runs=active,
        experiments=experiments, experiment_total=store.count_experiments(),
        datasets=[d.to_dict() for d in livetrain.datasets.list()],
        default_dataset=livetrain.datasets.default_id(),
    )
