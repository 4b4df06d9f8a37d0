"""GET /api/status and the Prometheus endpoint."""

from apiflask import APIBlueprint
from flask import Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from livetrain.auth import requires

bp = APIBlueprint("status", __name__, tag="Status")


@bp.get("/api/status")
def status():
    """Server status: online, how many networks, how many runs queued or running."""
    return current_app.extensions["livetrain"].status()


@bp.get("/api/workers")
def workers():
    """What executes runs: each worker with its queues, device, concurrency and current runs (the
    live Celery workers, or this server's own worker processes with the local runner)."""
    container = current_app.extensions["livetrain"]
    return {"runner": container.runner.name, "workers": container.workers()}


@bp.get("/metrics")
@bp.doc(hide=True)
@requires("read")  # said outright: a scrape sees counts of everything (LIVETRAIN_METRICS_BIND serves it apart)
def prometheus():
    """Prometheus metrics (docs/api.md lists the series)."""
    registry = current_app.extensions["livetrain"].metrics.registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/api/health")
def health():
    """Whether the server answers (no token needed: for health checks and load balancers)."""
    return {"status": "online"}
