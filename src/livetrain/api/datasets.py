"""Datasets: the built-ins available on this server."""

from apiflask import APIBlueprint
from flask import current_app

bp = APIBlueprint("datasets", __name__, url_prefix="/api/datasets", tag="Datasets")


@bp.get("")
def list_datasets():
    """Every dataset with its shape, task and split sizes."""
    svc = current_app.extensions["livetrain"]
    return {"datasets": [d.to_dict() for d in svc.datasets.list()], "default": svc.datasets.default_id()}


@bp.get("/<dataset_id>")
def get_dataset(dataset_id: str):
    """One dataset."""
    return current_app.extensions["livetrain"].datasets.get(dataset_id).to_dict()
