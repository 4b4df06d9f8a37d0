"""Networks: create, list, delete, train, predict, versions, weights, examples, and the builder's edits of
layers and heads with their revisions."""

from __future__ import annotations

from apiflask import APIBlueprint, fields
from apiflask.validators import Range
from flask import Response, current_app

from livetrain.api.runs import run_started
from livetrain.api.schemas import (
    MAX_INDEX,
    ExamplesQuery,
    Loose,
    NetworkIn,
    NetworkPredictIn,
    TrainIn,
    WholeNumber,
    present,
)
from livetrain.auth import requires
from livetrain.security import current_principal
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
        "revision": svc.networks.revision_number(network),
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
    """A held-out example the network classified correctly (404 when none; 409 when it does not classify)."""
    return _svc().networks.example(network_id, "right", query.get("index"))


@bp.get("/<network_id>/unsuccessful_example")
@bp.input(ExamplesQuery, location="query", arg_name="query")
def unsuccessful_example(network_id: str, query):
    """A held-out example the network got wrong (404 when none; 409 when it does not classify)."""
    return _svc().networks.example(network_id, "wrong", query.get("index"))


# -- the builder: a network's layers and heads, edited while it is not training -------------------------
# The schemas live here, beside the only routes that use them.


class _Edit(Loose):
    revision = WholeNumber(load_default=None, validate=Range(min=1, max=MAX_INDEX), metadata={
        "description": "the revision this change was made against; 409 if the network has moved on"})


class LayerIn(_Edit):
    layer = fields.Dict(required=True, metadata={"description": "a layer spec, e.g. {'type': 'Dropout', 'p': 0.2}"})
    index = WholeNumber(load_default=None, validate=Range(min=0, max=MAX_INDEX), metadata={
        "description": "insert before this position (default: before the output layer; the layer count appends)"})


class LayerUpdateIn(_Edit):
    layer = fields.Dict(required=True, metadata={
        "description": "the layer's parameters (all of them: left-out ones take their defaults); 'type' may be "
                       "left out to keep it"})


class OrderIn(_Edit):
    order = fields.List(fields.Raw(), required=True, metadata={
        "description": "the current positions (heads: or names) in their new order: a permutation of all"})


class HeadIn(_Edit):
    head = fields.Dict(required=True, metadata={"description": "a head: name, attach, task, loss, weight, target"})
    index = WholeNumber(load_default=None, validate=Range(min=0, max=MAX_INDEX),
                        metadata={"description": "position among the heads (default: last)"})


class HeadUpdateIn(_Edit):
    head = fields.Dict(required=True, metadata={"description": "the head's settings (it keeps its name)"})


class RevisionQuery(Loose):
    revision = fields.Integer(load_default=None, validate=Range(min=1, max=MAX_INDEX), metadata={
        "description": "the revision this change was made against; 409 if the network has moved on"})


def _author() -> str | None:
    """Who made a change, when the server knows (a token's name); None with auth off."""
    principal = current_principal()
    return principal.name if principal.token_id else None


@bp.get("/<network_id>/layers")
def list_layers(network_id: str):
    """The layers and heads in order, each with its spec, output shape and parameter count, and the revision."""
    return _svc().networks.structure(network_id)


@bp.post("/<network_id>/layers")
@bp.input(LayerIn, arg_name="body")
def add_layer(network_id: str, body):
    """Insert a layer (409 while a run of the network is queued or running; 400 naming the layer if the
    network would not build)."""
    return _svc().networks.add_layer(network_id, body["layer"], body["index"], who=_author(),
                                     expect=body["revision"]), 201


@bp.put("/<network_id>/layers/order")
@bp.input(OrderIn, arg_name="body")
def reorder_layers(network_id: str, body):
    """Reorder the layers: `order` lists their current positions in the new order."""
    return _svc().networks.reorder_layers(network_id, body["order"], who=_author(), expect=body["revision"])


@bp.put("/<network_id>/layers/<int:index>")
@bp.input(LayerUpdateIn, arg_name="body")
def update_layer(network_id: str, index: int, body):
    """Replace a layer's parameters."""
    return _svc().networks.update_layer(network_id, index, body["layer"], who=_author(), expect=body["revision"])


@bp.delete("/<network_id>/layers/<int:index>")
@bp.input(RevisionQuery, location="query", arg_name="query")
def delete_layer(network_id: str, index: int, query):
    """Remove a layer."""
    return _svc().networks.delete_layer(network_id, index, who=_author(), expect=query["revision"])


@bp.get("/<network_id>/heads")
def list_heads(network_id: str):
    """The network's named heads in order (an empty list for a network without heads)."""
    structure = _svc().networks.structure(network_id)
    return {key: structure[key] for key in ("network_id", "revision", "editable", "heads")}


@bp.post("/<network_id>/heads")
@bp.input(HeadIn, arg_name="body")
def add_head(network_id: str, body):
    """Attach a named head."""
    return _svc().networks.add_head(network_id, body["head"], body["index"], who=_author(),
                                    expect=body["revision"]), 201


@bp.put("/<network_id>/heads/order")
@bp.input(OrderIn, arg_name="body")
def reorder_heads(network_id: str, body):
    """Reorder the heads: `order` lists their names (or current positions) in the new order."""
    return _svc().networks.reorder_heads(network_id, body["order"], who=_author(), expect=body["revision"])


@bp.put("/<network_id>/heads/<name>")
@bp.input(HeadUpdateIn, arg_name="body")
def update_head(network_id: str, name: str, body):
    """Replace a head's settings."""
    return _svc().networks.update_head(network_id, name, body["head"], who=_author(), expect=body["revision"])


@bp.delete("/<network_id>/heads/<name>")
@bp.input(RevisionQuery, location="query", arg_name="query")
def delete_head(network_id: str, name: str, query):
    """Remove a head."""
    return _svc().networks.delete_head(network_id, name, who=_author(), expect=query["revision"])


@bp.get("/<network_id>/revisions")
def list_revisions(network_id: str):
    """Every revision of the network's spec, oldest first: number, whole spec, what changed, who, when."""
    svc = _svc()
    revisions = svc.networks.revisions(network_id)
    return {"network_id": network_id, "revision": revisions[-1].revision,
            "revisions": [r.to_dict() for r in revisions]}
