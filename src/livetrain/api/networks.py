"""Networks: create, list, delete, train, predict, versions, weights, examples."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response, current_app

from livetrain.api.runs import run_started
from livetrain.api.schemas import ExamplesQuery, NetworkIn, NetworkPredictIn, TrainIn, present
from livetrain.auth import requires
from livetrain.services.common import whole_number
from livetrain.store import Network
from livetrain.training.spec import memory_estimate

bp = APIBlueprint("networks", __name__, url_prefix="/api/networks", tag="Networks")


def _svc():
    return current_app.extensions["livetrain"]


def network_summary(network: Network) -> dict:
    """The original server's fields first, then livetrain's."""
    return {
        "network_id": network.id,
        "architecture": network.architecture,
        "trained": network.trained,
        "accuracy": network.accuracy,
        "status": network.status,
        "name": network.name,
        "kind": network.kind,
        "dataset_id": network.dataset_id,
        "parameter_count": network.parameter_count,
        "parameters": network.parameter_count,
        "memory": memory_estimate(network.parameter_count, network.spec.get("optimizer", "sgd"),
                                  network.spec.get("momentum", 0.0)),
        "current_version": network.current_version,
        "created_at": network.created_at,
        "updated_at": network.updated_at,
    }


@bp.post("")
@bp.input(NetworkIn, arg_name="body")
def create_network(body):
    """Create a network from `layer_sizes` (Nielsen semantics) or from `layers`."""
    network = _svc().networks.create(present(body))
    return {**network_summary(network), "status": "created", "spec": network.spec,
            "layers": network.layer_table}, 201


@bp.get("")
def list_networks():
    """Every network."""
    return {"networks": [network_summary(n) for n in _svc().store.list_networks()]}


@bp.delete("")
@requires("admin")
def delete_all_networks():
    """Delete every network (runs stay as history)."""
    return _svc().networks.delete_all()


@bp.get("/<network_id>")
def get_network(network_id: str):
    """One network with its spec, layer table, versions and active run."""
    svc = _svc()
    network = svc.networks.get(network_id)
    active = svc.runs.active_for_network(network_id)
    return {
        **network_summary(network),
        "spec": network.spec,
        "layers": network.layer_table,
        "versions": [v.to_dict() for v in svc.store.list_versions(network_id)],
        "active_run": active.to_dict() if active else None,
    }


@bp.delete("/<network_id>")
def delete_network(network_id: str):
    """Delete a network, its versions and files (a run in progress is cancelled first)."""
    return _svc().networks.delete(network_id)


@bp.post("/<network_id>/train")
@bp.input(TrainIn, arg_name="body")
def train_network(network_id: str, body):
    """Start training; returns at once (202). Progress arrives as Socket.IO events."""
    return run_started(_svc().runs.start(network_id, present(body)))


@bp.get("/<network_id>/versions")
def list_versions(network_id: str):
    """Every version (one per completed run) with its metrics."""
    svc = _svc()
    network = svc.networks.get(network_id)
    return {"network_id": network.id, "current_version": network.current_version,
            "versions": [v.to_dict() for v in svc.store.list_versions(network_id)]}


def _weights_response(network_id: str, version: int | None) -> Response:
    svc = _svc()
    network = svc.networks.get(network_id)
    found, data = svc.networks.weights_bytes(network, version)
    return Response(data, mimetype="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{network.id}-v{found.version}.pt"',
        "X-Checksum-SHA256": found.weights_sha256,
    })


@bp.get("/<network_id>/weights")
@bp.doc(responses={200: {"description": "torch file: state_dict + architecture"}})
def download_latest_weights(network_id: str):
    """Download the latest version's weights (torch.load(..., map_location="cpu", weights_only=True) reads them)."""
    return _weights_response(network_id, None)


@bp.get("/<network_id>/versions/<int:version>/weights")
@bp.doc(responses={200: {"description": "torch file: state_dict + architecture"}})
def download_weights(network_id: str, version: int):
    """Download one version's weights."""
    return _weights_response(network_id, version)


@bp.post("/<network_id>/predict")
@bp.input(NetworkPredictIn, arg_name="body")
def predict(network_id: str, body):
    """Predict one input or a batch: with `version` if named, else the version a registered model's champion
    points at (when one points at this network), else the latest version."""
    svc = _svc()
    body = present(body)
    version = body.pop("version", None)
    if version is None:
        version = svc.registry.champion_network_version(network_id)
    else:
        version = whole_number(version, "version", 1, 2**31 - 1)
    return svc.networks.predict(network_id, body, version_number=version)


@bp.get("/<network_id>/examples")
@bp.input(ExamplesQuery, location="query", arg_name="query")
def list_examples(network_id: str, query):
    """Stored right or wrong held-out predictions (images as base64 PNG)."""
    items = _svc().networks.examples(network_id, query["kind"])
    return {"network_id": network_id, "kind": query["kind"], "examples": items}


@bp.get("/<network_id>/successful_example")
@bp.input(ExamplesQuery, location="query", arg_name="query")
def successful_example(network_id: str, query):
    """A held-out example the network classified correctly (404 when none)."""
    return _svc().networks.example(network_id, "right", query.get("index"))


@bp.get("/<network_id>/unsuccessful_example")
@bp.input(ExamplesQuery, location="query", arg_name="query")
def unsuccessful_example(network_id: str, query):
    """A held-out example the network got wrong (404 when none)."""
    return _svc().networks.example(network_id, "wrong", query.get("index"))
