"""GET /api/training/{job_id}: the original server's job status, unchanged."""

from apiflask import APIBlueprint
from flask import current_app

from livetrain.services.runs import LEGACY_STATUS

bp = APIBlueprint("training", __name__, url_prefix="/api/training", tag="Runs")


@bp.get("/<job_id>")
def training_status(job_id: str):
    """Status of a training job in the original server's terms."""
    run = current_app.extensions["livetrain"].runs.get(job_id)
    body = {
        "job_id": run.id,
        "run_id": run.id,
        "network_id": run.network_id,
        "status": LEGACY_STATUS[run.status],
        "progress": run.progress,
        "epochs": run.total_epochs - run.start_epoch,
        "epochs_done": run.epochs_done - run.start_epoch,
        "accuracy": run.accuracy,
        "run_status": run.status,
    }
    if run.error:
        body["error"] = run.error
    return body
