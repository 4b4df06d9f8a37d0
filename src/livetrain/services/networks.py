"""Networks: create (validated by a dry run), edit while idle (the builder), list, delete, predict, examples,
versions."""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from typing import Any

import numpy as np

from livetrain.concurrency import run_blocking
from livetrain.errors import Conflict, NotFound, ValidationError
from livetrain.services.common import LruCache, numeric_rows, raw_rows
from livetrain.store import Network, NetworkVersion
from livetrain.store.entities import NetworkRevision
from livetrain.training.spec import NetworkSpec, apply_dataset_defaults, parse_network_spec

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")
HEAD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")  # as the spec parser takes them (metrics say head.<name>)
MODEL_CACHE_SIZE = 8
# what a network on a factorization dataset is when the user names no layers: an embedding over the
# digits and a regression head giving the two factors
FACTORIZATION_NETWORK = {
    "layers": [{"type": "Embedding", "num_embeddings": 10, "embedding_dim": 8}, {"type": "Flatten"},
               {"type": "Linear", "out_features": 128}, {"type": "ReLU"},
               {"type": "Linear", "out_features": 64}, {"type": "ReLU"},
               {"type": "Linear", "out_features": 2}],
    "loss": "mse", "optimizer": "adam", "learning_rate": 0.003,
}


def check_name(name: Any, what: str = "name") -> str:
    """A display name: letters, digits, space, `_`, `.`, `-`; no path characters."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or ".." in name:
        raise ValidationError(f"{what} must be 1-100 letters, digits, spaces, '_', '.' or '-' "
                              "(no slashes or '..')", detail={"field": what})
    return name


def change_summary(change: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> str:
    """One line saying what a revision changed, for people: "added layers[2] (Dropout)"."""
    op = change["op"]
    index = change.get("index")
    if op == "layers_reordered":
        return f"reordered the layers: {', '.join(str(i) for i in change['order'])}"
    if op == "heads_reordered":
        return f"reordered the heads: {', '.join(change['order'])}"
    if op.startswith("layer_"):
        layers = (before if op == "layer_deleted" else after).get("layers") or []
        kind = layers[index]["type"] if 0 <= index < len(layers) else "?"
        verb = {"layer_created": "added", "layer_updated": "changed", "layer_deleted": "removed"}[op]
        return f"{verb} layers[{index}] ({kind})"
    verb = {"head_created": "added", "head_updated": "changed", "head_deleted": "removed"}.get(op, op)
    return f"{verb} head {change.get('name')!r}"


class NetworkService:
    """Everything about networks that is not a run."""

    def __init__(self, *, store, artifacts, settings, emitter, datasets, runs) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        self.emitter = emitter
        self.datasets = datasets
        self.runs = runs
        self.text = None  # the TextDatasetService: templates for text datasets (set by the container)
        self._models = LruCache(MODEL_CACHE_SIZE)  # (network id, version) -> torch model

    def get(self, network_id: str) -> Network:
        """The network, or 404."""
        network = self.store.get_network(network_id)
        if network is None:
            raise NotFound(f"no network {network_id!r}")
        return network

    def create(self, body: dict[str, Any]) -> Network:
        """Validate, build once to check shapes (and count parameters per layer), store."""
        from livetrain.training.model import build_model, describe_layers, parameter_count

        dataset_id = body.get("dataset_id") or body.get("dataset") or self.datasets.default_id()
        dataset = self.datasets.get(dataset_id)
        body = dict(body)
        n_outputs = int(dataset.meta.get("n_outputs", 1))
        template = body.pop("template", None)
        if template is not None and (body.get("layers") is not None or body.get("layer_sizes") is not None):
            raise ValidationError("give a template or layers (or layer_sizes), not both", detail={"field": "template"})
        if dataset.meta.get("text") and self.text is not None and body.get("layers") is None:
            # a text dataset's network: a template's layers, optimizer settings the body does not name
            if body.get("layer_sizes") is not None:
                raise ValidationError("a text dataset needs layers starting with an Embedding; send a template "
                                      "(GET /api/templates?dataset_id=...) or layers", detail={"field": "layer_sizes"})
            made = self.text.template(dataset, template or "auto")
            body = {**{k: v for k, v in made.items() if k not in ("template", "description")}, **body}
        elif template is not None:
            raise ValidationError(f"templates are for text datasets; dataset {dataset.id} is not one",
                                  code="no_template", detail={"field": "template"})
        if body.get("layer_sizes") is None and body.get("layers") is None:
            if dataset.meta.get("kind") == "factorization":
                body.update(FACTORIZATION_NETWORK)
            elif dataset.task == "regression":  # sigmoid outputs cannot reach standardized targets
                body.update(layers=[{"type": "Linear", "out_features": 64}, {"type": "ReLU"},
                                    {"type": "Linear", "out_features": n_outputs}], loss="mse")
            else:
                body["layer_sizes"] = ([784, 30, 10] if dataset.id == "mnist"
                                       else [dataset.n_features, 30, max(dataset.n_classes, 1)])
        spec = self._parse_for(body, dataset)
        name = check_name(body["name"]) if body.get("name") is not None else None

        def build():
            model = build_model(spec, dataset.input_shape, dataset.task, dataset.n_classes,
                                max_parameters=self.settings.max_parameters, n_outputs=n_outputs)
            return parameter_count(model), describe_layers(model, spec, dataset.input_shape)

        count, layers = run_blocking(build)
        network_id = uuid.uuid4().hex[:12]
        network = Network(
            id=network_id,
            name=name or f"network-{network_id[:6]}",
            kind=spec.kind,
            spec=spec.to_dict(),
            dataset_id=dataset.id,
            parameter_count=count,
            layer_table=layers,
        )
        self.store.create_network(network)
        self.emitter.resource("network_created", {"network_id": network.id, "architecture": network.architecture,
                                                  "name": network.name, "ts": time.time()})
        return network

    def delete(self, network_id: str) -> dict[str, Any]:
        """Cancel its run, remove its row, versions and files."""
        network = self.store.get_network(network_id)
        if network is None:
            raise NotFound(f"no network {network_id!r}")
        active = self.runs.active_for_network(network_id)
        if active is not None:
            self.runs.cancel(active.id)
        deleted = self.store.delete_network(network_id)
        self.store.delete_network_revisions(network_id)
        on_disk = self.artifacts.delete(f"networks/{network_id}")
        self._models.drop(lambda key: key[0] == network_id)
        self.emitter.resource("network_deleted", {"network_id": network_id, "ts": time.time()})
        return {"network_id": network_id, "deleted_from_memory": deleted, "deleted_from_disk": on_disk}

    def delete_all(self) -> dict[str, Any]:
        """Delete every network."""
        results = [self.delete(n.id) for n in self.store.list_networks()]
        ids = [r["network_id"] for r in results]
        return {
            "deleted_count": len(ids),
            "network_ids": ids,
            "deleted_from_disk": sum(1 for r in results if r["deleted_from_disk"]),
            "message": f"deleted {len(ids)} network(s)",
        }

    # -- editing while idle (the builder) --------------------------------------------
    def revision_number(self, network: Network) -> int:
        """The network's current spec revision (1 until its first edit)."""
        return self.store.latest_network_revision(network.id) or 1

    def revisions(self, network_id: str) -> list[NetworkRevision]:
        """Every spec revision of a network, oldest first; revision 1 is the spec it was created with."""
        network = self.get(network_id)
        return self.store.list_network_revisions(network.id) or [self._first_revision(network)]

    @staticmethod
    def _first_revision(network: Network) -> NetworkRevision:
        # a network never edited records no revision: its spec is still the one it was created with
        return NetworkRevision(network_id=network.id, revision=1, spec=network.spec,
                               change={"op": "created", "summary": "created"}, author=None,
                               created_at=network.created_at)

    def structure(self, network_id: str) -> dict[str, Any]:
        """The layers and heads in order, each with its spec, output shape and parameter count."""
        network = self.get(network_id)
        return self._structure(network, self.revision_number(network))

    def _structure(self, network: Network, revision: int) -> dict[str, Any]:
        table = list(network.layer_table or [])
        if network.kind != "layers":
            layers = [{"index": i, "spec": None, "type": row.get("type"), "output_shape": row.get("output_shape"),
                       "parameters": row.get("parameters")} for i, row in enumerate(table)]
            heads: list[dict[str, Any]] = []
        else:
            specs = network.spec.get("layers") or []
            head_specs = network.spec.get("heads") or []
            # the dry run describes the body's layers, then one row per head
            head_rows = {row.get("name"): row for row in table if row.get("type") == "Head"}
            body_rows = [row for row in table if row.get("type") != "Head"]
            layers = []
            for i, layer in enumerate(specs):
                row = body_rows[i] if len(body_rows) == len(specs) else {}
                layers.append({"index": i, "spec": layer, "type": layer["type"],
                               "output_shape": row.get("output_shape"), "parameters": row.get("parameters")})
            heads = []
            for i, head in enumerate(head_specs):
                row = head_rows.get(head.get("name"), {})
                heads.append({"index": i, "name": head.get("name"), "spec": head,
                              "output_shape": row.get("output_shape"), "parameters": row.get("parameters")})
        return {"network_id": network.id, "kind": network.kind, "editable": network.kind == "layers",
                "revision": revision, "parameter_count": network.parameter_count, "layers": layers, "heads": heads}

    def _editable(self, network_id: str, expect: int | None) -> tuple[Network, int]:
        """The network and its revision, if it may be edited now: a layer-spec network with no run queued
        or running, at revision `expect` when the client names one."""
        network = self.get(network_id)
        if network.kind != "layers":
            raise ValidationError(f"network {network.id} is a layer_sizes network (Nielsen semantics), which has no "
                                  "layer list to edit: create a network from 'layers' to edit it layer by layer",
                                  code="not_editable")
        busy = self.runs.active_for_network(network.id)
        if busy is not None:
            raise Conflict(f"network {network.id} is training (run {busy.id}, {busy.status}); edit it once the run "
                           "has ended or been stopped", detail={"run_id": busy.id})
        revision = self.revision_number(network)
        if expect is not None and expect != revision:
            raise Conflict(f"network {network.id} is at revision {revision}, not {expect}: someone changed it "
                           "meanwhile; reload and try again", code="stale_revision", detail={"revision": revision})
        return network, revision

    @staticmethod
    def _layers_and_heads(network: Network) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return [dict(layer) for layer in network.spec.get("layers") or []], [
            dict(head) for head in network.spec.get("heads") or []]

    @staticmethod
    def _layer_index(layers: list, index: Any, network_id: str) -> int:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(layers):
            raise NotFound(f"network {network_id} has no layers[{index}] (it has {len(layers)} layers, "
                           f"0 to {len(layers) - 1})", code="no_such_layer")
        return index

    @staticmethod
    def _head_position(heads: list, name: str, network_id: str) -> int:
        for i, head in enumerate(heads):
            if head.get("name") == name:
                return i
        names = ", ".join(repr(h.get("name")) for h in heads) or "none"
        raise NotFound(f"network {network_id} has no head {name!r} (its heads: {names})", code="no_such_head")

    @staticmethod
    def _permutation(order: Any, length: int, what: str, names: list[str] | None = None) -> list[int]:
        """`order` (old positions, or names for heads) as a list of old positions; 400 unless it is a
        permutation of all of them."""
        if not isinstance(order, list):
            raise ValidationError(f"order must be a list of the {what}' current positions in their new order",
                                  code="bad_order", detail={"field": "order"})
        positions = []
        for item in order:
            if names is not None and isinstance(item, str) and item in names:
                positions.append(names.index(item))
            elif isinstance(item, int) and not isinstance(item, bool):
                positions.append(item)
            else:
                raise ValidationError(f"order holds {item!r}, which is not one of the {what}' positions "
                                      f"0 to {length - 1}" + (" or names" if names is not None else ""),
                                      code="bad_order", detail={"field": "order"})
        if sorted(positions) != list(range(length)):
            raise ValidationError(f"order must name each of the {length} {what} exactly once (positions 0 to "
                                  f"{length - 1} in their new order); got {order}", code="bad_order",
                                  detail={"field": "order"})
        return positions

    def add_layer(self, network_id: str, layer: Any, index: Any = None, *, who: str | None = None,
                  expect: int | None = None) -> dict[str, Any]:
        """Insert a layer at `index` (default: before the output layer, or last when heads read the body)."""
        network, revision = self._editable(network_id, expect)
        layers, heads = self._layers_and_heads(network)
        if index is None:
            index = len(layers) if heads else len(layers) - 1
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= len(layers):
            raise ValidationError(f"index must be a position from 0 to {len(layers)} (before which layer to insert; "
                                  f"{len(layers)} appends)", code="bad_index", detail={"field": "index"})
        if not isinstance(layer, dict):
            raise ValidationError("layer must be an object with a 'type', e.g. {'type': 'ReLU'}",
                                  detail={"field": "layer", "layer": index})
        origin: list[int | None] = list(range(len(layers)))
        last = len(layers) - 1
        layers.insert(index, layer)
        origin.insert(index, None)
        for head in heads:  # a head stays on the layer it read from, wherever that layer now is...
            if isinstance(head.get("attach"), int) and head["attach"] >= index:
                head["attach"] += 1
            elif index == last + 1 and head.get("attach") == last:
                head["attach"] = index  # ...except that a head on the body's output reads the appended layer
        return self._commit(network, revision, layers, heads, origin, who,
                            {"op": "layer_created", "index": index}, lambda spec: {"layer": spec["layers"][index]})

    def update_layer(self, network_id: str, index: int, layer: Any, *, who: str | None = None,
                     expect: int | None = None) -> dict[str, Any]:
        """Replace a layer's parameters (its type too, when `layer` names another)."""
        network, revision = self._editable(network_id, expect)
        layers, heads = self._layers_and_heads(network)
        index = self._layer_index(layers, index, network.id)
        if not isinstance(layer, dict):
            raise ValidationError("layer must be an object of the layer's parameters",
                                  detail={"field": "layer", "layer": index})
        previous = layers[index]
        layers[index] = {"type": previous["type"], **layer}
        return self._commit(network, revision, layers, heads, list(range(len(layers))), who,
                            {"op": "layer_updated", "index": index, "previous": previous},
                            lambda spec: {"layer": spec["layers"][index]})

    def delete_layer(self, network_id: str, index: int, *, who: str | None = None,
                     expect: int | None = None) -> dict[str, Any]:
        """Remove a layer (not the only one, nor one a head reads from)."""
        network, revision = self._editable(network_id, expect)
        layers, heads = self._layers_and_heads(network)
        index = self._layer_index(layers, index, network.id)
        if len(layers) == 1:
            raise ValidationError(f"layers[0] ({layers[0]['type']}) is the network's only layer: a network needs "
                                  "at least one", detail={"layer": 0, "current_index": 0})
        for head in heads:
            if head.get("attach") == index:
                raise ValidationError(f"layers[{index}] ({layers[index]['type']}) feeds head {head.get('name')!r}: "
                                      "attach the head elsewhere or delete it first",
                                      detail={"layer": index, "current_index": index, "head_name": head.get("name")})
            if isinstance(head.get("attach"), int) and head["attach"] > index:
                head["attach"] -= 1
        removed = layers.pop(index)
        origin: list[int | None] = [i for i in range(len(layers) + 1) if i != index]
        return self._commit(network, revision, layers, heads, origin, who,
                            {"op": "layer_deleted", "index": index, "layer": removed}, lambda spec: {})

    def reorder_layers(self, network_id: str, order: Any, *, who: str | None = None,
                       expect: int | None = None) -> dict[str, Any]:
        """Put the layers in a new order: `order` lists their current positions in the new order."""
        network, revision = self._editable(network_id, expect)
        layers, heads = self._layers_and_heads(network)
        positions = self._permutation(order, len(layers), "layers")
        for head in heads:
            if isinstance(head.get("attach"), int) and 0 <= head["attach"] < len(layers):
                head["attach"] = positions.index(head["attach"])
        return self._commit(network, revision, [layers[i] for i in positions], heads, list(positions), who,
                            {"op": "layers_reordered", "order": positions}, lambda spec: {})

    def _check_head(self, head: Any, heads: list[dict[str, Any]], *, index: int) -> dict[str, Any]:
        if not isinstance(head, dict):
            raise ValidationError("head must be an object with a 'name', e.g. {'name': 'label', 'task': "
                                  "'classification'}", detail={"field": "head", "head": index})
        name = head.get("name")
        if not isinstance(name, str) or not HEAD_NAME.match(name):
            raise ValidationError("a head's name is 1-40 letters, digits, '_' or '-'",
                                  detail={"field": "head.name", "head": index})
        if any(other.get("name") == name for other in heads):
            raise ValidationError(f"the network already has a head named {name!r}; head names are unique",
                                  detail={"field": "head.name", "head": index})
        return dict(head)

    def add_head(self, network_id: str, head: Any, index: Any = None, *, who: str | None = None,
                 expect: int | None = None) -> dict[str, Any]:
        """Attach a named head (default: after the others)."""
        network, revision = self._editable(network_id, expect)
        layers, heads = self._layers_and_heads(network)
        if index is None:
            index = len(heads)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= len(heads):
            raise ValidationError(f"index must be a position from 0 to {len(heads)}", code="bad_index",
                                  detail={"field": "index"})
        head = self._check_head(head, heads, index=index)
        heads.insert(index, head)
        return self._commit(network, revision, layers, heads, list(range(len(layers))), who,
                            {"op": "head_created", "index": index, "name": head["name"]},
                            lambda spec: {"head": spec["heads"][index]})

    def update_head(self, network_id: str, name: str, head: Any, *, who: str | None = None,
                    expect: int | None = None) -> dict[str, Any]:
        """Replace a head's settings (it keeps its name)."""
        network, revision = self._editable(network_id, expect)
        layers, heads = self._layers_and_heads(network)
        index = self._head_position(heads, name, network.id)
        if not isinstance(head, dict):
            raise ValidationError("head must be an object of the head's settings",
                                  detail={"field": "head", "head": index})
        if head.get("name", name) != name:
            raise ValidationError(f"a head keeps its name: delete head {name!r} and add one named "
                                  f"{head.get('name')!r} instead", detail={"field": "head.name", "head": index})
        previous = heads[index]
        heads[index] = {**head, "name": name}
        return self._commit(network, revision, layers, heads, list(range(len(layers))), who,
                            {"op": "head_updated", "index": index, "name": name, "previous": previous},
                            lambda spec: {"head": spec["heads"][index]})

    def delete_head(self, network_id: str, name: str, *, who: str | None = None,
                    expect: int | None = None) -> dict[str, Any]:
        """Remove a head."""
        network, revision = self._editable(network_id, expect)
        layers, heads = self._layers_and_heads(network)
        index = self._head_position(heads, name, network.id)
        removed = heads.pop(index)
        return self._commit(network, revision, layers, heads, list(range(len(layers))), who,
                            {"op": "head_deleted", "index": index, "name": name, "head": removed}, lambda spec: {})

    def reorder_heads(self, network_id: str, order: Any, *, who: str | None = None,
                      expect: int | None = None) -> dict[str, Any]:
        """Put the heads in a new order: `order` lists their names (or current positions) in the new order."""
        network, revision = self._editable(network_id, expect)
        layers, heads = self._layers_and_heads(network)
        positions = self._permutation(order, len(heads), "heads", [h.get("name") for h in heads])
        return self._commit(network, revision, layers, [heads[i] for i in positions], list(range(len(layers))),
                            who, {"op": "heads_reordered", "order": [heads[i].get("name") for i in positions]},
                            lambda spec: {})

    @staticmethod
    def _parse_for(body: dict[str, Any], dataset) -> NetworkSpec:
        """The spec an edited network's body gives on its dataset: the parse a new network goes through."""
        return apply_dataset_defaults(parse_network_spec(body),
                                      text=bool(dataset.meta.get("text")) or dataset.task == "sequence")

    def _validated(self, network: Network, layers: list, heads: list, origin: list[int | None], focus: int | None):
        """(spec, parameter count, layer table) of the edited network, by the same parse and dry-run build as
        at create time; a refusal names the layer, in the new list (`layer`) and in the current one
        (`current_index`: None for a layer being inserted)."""
        from livetrain.training.model import build_model, describe_layers, parameter_count

        dataset = self.datasets.get(network.dataset_id)
        body = {key: value for key, value in network.spec.items() if key not in ("layers", "heads", "layer_sizes")}
        body["layers"] = layers
        if heads:
            body["heads"] = heads
        n_outputs = int(dataset.meta.get("n_outputs", 1))

        def build():
            spec = self._parse_for(body, dataset)
            model = build_model(spec, dataset.input_shape, dataset.task, dataset.n_classes,
                                max_parameters=self.settings.max_parameters, n_outputs=n_outputs)
            return spec, parameter_count(model), describe_layers(model, spec, dataset.input_shape)

        try:
            spec, count, table = run_blocking(build)
        except ValidationError as refused:
            detail = dict(refused.detail) if isinstance(refused.detail, dict) else {}
            if "layer" not in detail and "head" not in detail and focus is not None:
                detail["layer"] = focus  # a refusal of the whole network, caused by the layer this change is about
            where = detail.get("layer")
            if isinstance(where, int) and 0 <= where < len(layers):
                detail.setdefault("current_index", origin[where])
                label = f"layers[{where}]"
                if label not in refused.message:  # e.g. "the last layer must give 3 outputs": say which it is
                    kind = layers[where].get("type") if isinstance(layers[where], dict) else None
                    refused.message = f"{label} ({kind}): {refused.message}"
                    refused.args = (refused.message,)
            refused.detail = detail
            raise
        new_spec = spec.to_dict()
        if heads and not new_spec.get("heads"):
            raise ValidationError("this server's networks have no heads: their last layer is the output",
                                  code="heads_unsupported", detail={"field": "head"})
        return new_spec, count, table

    def _commit(self, network: Network, revision: int, layers: list, heads: list, origin: list[int | None],
                who: str | None, change: dict[str, Any], fields_of) -> dict[str, Any]:
        """Validate the edited spec, record it as the next revision, update the network, tell everyone."""
        focus = change.get("index") if change["op"] in ("layer_created", "layer_updated") else None
        new_spec, count, table = self._validated(network, layers, heads, origin, focus)
        number = revision + 1
        change = {**change, **fields_of(new_spec)}
        change["summary"] = change_summary(change, network.spec, new_spec)
        base = self.store.latest_network_revision(network.id)
        records = [] if base else [self._first_revision(network)]
        records.append(NetworkRevision(network_id=network.id, revision=number, spec=new_spec, change=change,
                                       author=who, created_at=time.time()))
        if not self.store.add_network_revisions(network.id, records, base, {
                "spec": new_spec, "parameter_count": count, "layer_table": table}):
            busy = self.runs.active_for_network(network.id)
            if busy is not None:
                raise Conflict(f"network {network.id} started training (run {busy.id}) while this change was "
                               "checked; edit it once the run has ended", detail={"run_id": busy.id})
            self.get(network.id)  # 404 if it was deleted meanwhile
            raise Conflict(f"network {network.id} was changed by someone else meanwhile; reload and try again",
                           code="stale_revision")
        network = self.get(network.id)
        ts = time.time()
        fields = {key: value for key, value in change.items() if key not in ("op", "previous")}
        self.emitter.resource(change["op"], {"network_id": network.id, "revision": number, **fields,
                                             "author": who, "ts": ts})
        self.emitter.resource("network_updated", {
            "network_id": network.id, "name": network.name, "revision": number, "spec": new_spec,
            "change": change, "layers": table, "parameter_count": count, "author": who, "ts": ts})
        return {**self._structure(network, number), "change": change}

    # -- versions and weights ---------------------------------------------------
    def version(self, network: Network, number: int | None = None) -> NetworkVersion:
        """A version (the latest by default), or 404."""
        if number is None:
            number = network.current_version
        if number < 1:
            raise NotFound(f"network {network.id} has not been trained yet", code="not_trained")
        if number > network.current_version:  # also keeps huge numbers from reaching the database
            raise NotFound(f"network {network.id} has no version {number} (latest: {network.current_version})")
        version = self.store.get_version(network.id, number)
        if version is None:
            raise NotFound(f"network {network.id} has no version {number}")
        return version

    def weights_bytes(self, network: Network, number: int | None = None) -> tuple[NetworkVersion, bytes]:
        """The verified weights file of a version."""
        version = self.version(network, number)
        return version, self.artifacts.open_verified(version.weights_path, version.weights_sha256).getvalue()

    def _model(self, network: Network, version: NetworkVersion):
        import torch

        from livetrain.training.model import build_model

        def load():
            dataset = self.datasets.get(network.dataset_id)
            # the server predicts on the CPU; weights a GPU worker saved still name their device
            state = torch.load(self.artifacts.open_verified(version.weights_path, version.weights_sha256),
                               map_location="cpu", weights_only=True)
            # a version is built as it was trained: the network's layers may have been edited since
            spec = NetworkSpec.from_dict(state.get("architecture") or network.spec)
            model = build_model(spec, dataset.input_shape, dataset.task, dataset.n_classes,
                                max_parameters=self.settings.max_parameters,
                                n_outputs=int(dataset.meta.get("n_outputs", 1)))
            model.load_state_dict(state["state_dict"])
            model.eval()
            return model, spec

        return self._models.get_or_load((network.id, version.version), load)

    def predict_features(self, network_id: str, version_number: int, X: np.ndarray) -> list[Any]:
        """What a version predicts for preprocessed feature rows: class indices, or values in target units."""
        network = self.get(network_id)
        dataset = self.datasets.input_dataset(self.datasets.get(network.dataset_id))
        result = self._predict(network, self.version(network, version_number), dataset, X, True, False)
        return [item["predicted"] for item in result["predictions"]]

    def predict(self, network_id: str, body: dict[str, Any], version_number: int | None = None) -> dict[str, Any]:
        """Outputs for one input (`input`) or a batch (`inputs`), in the dataset's raw units."""
        network = self.get(network_id)
        # a network a retraining trained on a derived dataset takes the raw inputs of its original
        dataset = self.datasets.input_dataset(self.datasets.get(network.dataset_id))
        if dataset.meta.get("kind") == "factorization" and "n" in body:
            if body.get("head") is not None:  # the factors are both heads' outputs together
                raise ValidationError("head applies to input/inputs, not to n: n's answer is made of every "
                                      "head's output", detail={"field": "head"})
            return self.factorize(network, dataset, body["n"], version_number)
        if not dataset.builtin and not dataset.meta.get("passthrough"):
            return self._predict_rows(network, dataset, body, version_number)
        # `row` and `rows` too: POST /api/runs/{id}/predict takes those, for a network's run as for any other
        single = "input" in body or "row" in body
        if single == ("inputs" in body or "rows" in body):
            raise ValidationError("send either 'input' (one example; alias 'row') or 'inputs' "
                                  "(a list of examples; alias 'rows')")
        rows = [body.get("input", body.get("row"))] if single else body.get("inputs", body.get("rows"))
        if not isinstance(rows, list) or not rows:
            raise ValidationError("inputs must be a non-empty list")
        if len(rows) > self.settings.max_batch_inputs:
            raise ValidationError(f"at most {self.settings.max_batch_inputs} inputs per request")
        X = numeric_rows(rows, dataset, noun="input", single=single)
        version = self.version(network, version_number)
        return run_blocking(self._predict, network, version, dataset, X, bool(body.get("scaled", False)), single,
                            body.get("head"))

    def _predict_rows(self, network, dataset, body: dict[str, Any], version_number: int | None) -> dict[str, Any]:
        """Raw table rows (dicts by column, or lists in column order) through the dataset's pipeline."""
        rows, single = raw_rows(body, self.settings.max_batch_inputs)
        version = self.version(network, version_number)
        X = run_blocking(self.datasets.features, dataset, rows)
        result = run_blocking(self._predict, network, version, dataset, X, True, single, body.get("head"))
        classes = dataset.meta.get("classes")
        if classes:
            # every head of a classification dataset predicts a class index (binary: 0 or 1) of its labels
            for answer in result["heads"].values() if "heads" in result else [result]:
                for item in answer["predictions"]:
                    item["class_index"] = item["predicted"]
                    item["predicted"] = classes[item["predicted"]]
                if single:
                    answer["prediction"] = answer["predictions"][0]["predicted"]
        return result

    def factorize(self, network, dataset, n: Any, version_number: int | None = None) -> dict[str, Any]:
        """The factors a factorization network predicts for `n`, its raw outputs, and whether they multiply to n."""
        from livetrain.data.generators import encode_number

        if isinstance(n, bool) or not isinstance(n, int) or n < 4:
            raise ValidationError("n must be a whole number of at least 4", code="bad_input", detail={"field": "n"})
        digits = encode_number(n, int(dataset.meta["n_digits"]))
        version = self.version(network, version_number)
        X = np.asarray([digits], dtype=np.float32)
        result = run_blocking(self._predict, network, version, dataset, X, True, True)
        raw = [float(v) for v in result["predictions"][0]["predicted"]]
        factors = sorted(max(0, round(v)) for v in raw)
        return {
            "network_id": network.id, "version": version.version, "n": n, "digits": digits,
            "factors": factors, "raw_outputs": raw, "product": factors[0] * factors[1],
            "correct": factors[0] * factors[1] == n and factors[0] > 1,
            "in_range": dataset.meta.get("low", 0) <= n <= dataset.meta.get("high", n),
            "note": "a demonstration: the network guesses factors from digit patterns; it does not factorize",
        }

    def _predict(self, network, version, dataset, X, scaled: bool, single: bool,
                 head: str | None = None) -> dict[str, Any]:
        """The network's outputs as predictions; with `head`, that head's own (or, "*", every head's)."""
        import torch

        from livetrain.training.model import input_shape_for

        arrays = self.datasets.arrays(dataset.id)
        model, spec = self._model(network, version)
        inputs = X if scaled else arrays.preprocess(X)
        x = torch.from_numpy(np.ascontiguousarray(inputs)).reshape(-1, *input_shape_for(spec, dataset.input_shape))
        if head is not None:
            return self._predict_heads(network, version, spec, model, arrays, x, head, single)
        with torch.no_grad():
            out = model(x).numpy()
        predictions = []
        if dataset.task == "classification":
            for row in out:
                item = {"predicted": int(row.argmax()), "output": [float(v) for v in row]}
                if spec.kind == "layers" and spec.loss == "cross_entropy":
                    item["probabilities"] = _softmax(row)
                predictions.append(item)
        else:
            # the whole (rows, targets) block at once: the target's mean and std are a number for a
            # built-in and one per target for an upload, and only a block broadcasts against both
            values = np.asarray(arrays.unscale_target(out), dtype=np.float64).reshape(len(out), -1)
            several = arrays.n_outputs > 1
            for row, value in zip(out, values):
                predictions.append({"predicted": [float(v) for v in value] if several else float(value[0]),
                                    "output": [float(v) for v in row]})
        result: dict[str, Any] = {"network_id": network.id, "version": version.version, "predictions": predictions}
        if single:
            result.update(prediction=predictions[0]["predicted"], output=predictions[0]["output"])
        return result

    def _predict_heads(self, network, version, spec, model, arrays, x, head: str, single: bool) -> dict[str, Any]:
        """Named heads' predictions, each as its own task gives it: what a multi-task client asks for,
        where the network's default answer is only its first classifying head (or its regression columns)."""
        import torch

        heads = _asked_heads(network, version, spec, head)
        with torch.no_grad():
            outs = model.forward_heads(x)
        answers = {h["name"]: _head_answer(h, outs[h["name"]].numpy(), arrays, single) for h in heads}
        result: dict[str, Any] = {"network_id": network.id, "version": version.version}
        if head == ALL_HEADS:
            return {**result, "heads": answers}
        return {**result, "head": head, **answers[head]}

    # -- examples -------------------------------------------------------------
    def examples(self, network_id: str, kind: str) -> list[dict[str, Any]]:
        """Stored right or wrong held-out predictions of the latest version."""
        network = self.get(network_id)
        version = self.version(network)
        if not version.examples_path:
            return []
        data = json.loads(self.artifacts.open_verified(version.examples_path, version.examples_sha256).getvalue())
        return [{"network_id": network.id, "version": version.version, **e} for e in data.get(kind, [])]

    def example(self, network_id: str, kind: str, index: int | None = None) -> dict[str, Any]:
        """One right ("successful") or wrong ("unsuccessful") example; 409 when the network does not
        classify (nothing is right or wrong), 404 when none exists."""
        items = self.examples(network_id, kind)
        if not items:
            task = self.datasets.get(self.get(network_id).dataset_id).task
            if task != "classification":
                what = "generates token sequences" if task == "sequence" else f"predicts {task} targets"
                raise Conflict(f"network {network_id} {what}: right and wrong examples are kept for "
                               "classifying networks only", code="not_a_classifier")
            label = "correctly" if kind == "right" else "incorrectly"
            raise NotFound(f"network {network_id} classified no held-out example {label}", code="no_example")
        if index is not None:
            for item in items:
                if item["example_index"] == index:
                    return item
            raise NotFound(f"example {index} is not among the stored {kind} examples")
        return random.choice(items)


ALL_HEADS = "*"  # predict's `head` for every head at once (a head's name has no "*")


def _asked_heads(network, version, spec, head: str) -> list[dict[str, Any]]:
    """The heads `head` names, from the version's own spec (the network's heads may have been edited since)."""
    where = f"network {network.id} version {version.version}"
    if not spec.heads:
        raise ValidationError(f"{where} has no heads (its last layer is its output): leave out head",
                              detail={"field": "head"})
    names = [h["name"] for h in spec.heads]
    if head != ALL_HEADS and head not in names:
        raise ValidationError(f"{where} has no head {head!r}; its heads: {', '.join(names)} "
                              f"(or {ALL_HEADS!r} for all)", detail={"field": "head", "heads": names})
    asked = [h for h in spec.heads if head in (ALL_HEADS, h["name"])]
    tokens = [h["name"] for h in asked if h["task"] == "sequence"]
    if tokens:  # logits per position and token: a language model answers by generating, not here
        raise ValidationError(f"{where}: head(s) {', '.join(tokens)} predict tokens per position; head takes "
                              "classification, binary and regression heads", detail={"field": "head"})
    return asked


def _head_answer(head: dict[str, Any], out: np.ndarray, arrays, single: bool) -> dict[str, Any]:
    """One head's predictions from its (rows, outputs) block, shaped by its task."""
    task = head["task"]
    if task == "classification":
        predictions = []
        for row in out:
            item = {"predicted": int(row.argmax()), "output": [float(v) for v in row]}
            if head["loss"] == "cross_entropy":
                item["probabilities"] = _softmax(row)
            predictions.append(item)
    elif task == "binary":
        probability = 1.0 / (1.0 + np.exp(-out[:, 0].astype(np.float64)))
        predictions = [{"predicted": int(row[0] > 0), "probability": float(p), "output": [float(row[0])]}
                       for row, p in zip(out, probability)]
    else:  # regression
        # the target's scaling is per column for an upload: unscale the head's column in its own place
        values = np.asarray(arrays.unscale_target(np.repeat(out, arrays.n_outputs, axis=1)),
                            dtype=np.float64).reshape(len(out), -1)[:, head["target"]]
        predictions = [{"predicted": float(value), "output": [float(row[0])]} for row, value in zip(out, values)]
    answer: dict[str, Any] = {"task": task, "predictions": predictions}
    if single:
        answer.update(prediction=predictions[0]["predicted"], output=predictions[0]["output"])
    return answer


def _softmax(logits: np.ndarray) -> list[float]:
    """Probabilities from one row of logits."""
    exp = np.exp(logits - logits.max())
    return [float(v) for v in exp / exp.sum()]
