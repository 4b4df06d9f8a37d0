"""Networks: create (validated by a dry run), list, delete, predict, examples, versions."""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from typing import Any

import numpy as np

from livetrain.concurrency import run_blocking
from livetrain.errors import NotFound, ValidationError
from livetrain.services.common import LruCache, numeric_rows, raw_rows
from livetrain.store import Network, NetworkVersion
from livetrain.training.spec import NetworkSpec, apply_dataset_defaults, parse_network_spec

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")
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
        spec = apply_dataset_defaults(parse_network_spec(body),
                                      text=bool(dataset.meta.get("text")) or dataset.task == "sequence")
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
            spec = NetworkSpec.from_dict(network.spec)
            model = build_model(spec, dataset.input_shape, dataset.task, dataset.n_classes,
                                max_parameters=self.settings.max_parameters,
                                n_outputs=int(dataset.meta.get("n_outputs", 1)))
            # the server predicts on the CPU; weights a GPU worker saved still name their device
            state = torch.load(self.artifacts.open_verified(version.weights_path, version.weights_sha256),
                               map_location="cpu", weights_only=True)
            model.load_state_dict(state["state_dict"])
            model.eval()
            return model

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
        return run_blocking(self._predict, network, version, dataset, X, bool(body.get("scaled", False)), single)

    def _predict_rows(self, network, dataset, body: dict[str, Any], version_number: int | None) -> dict[str, Any]:
        """Raw table rows (dicts by column, or lists in column order) through the dataset's pipeline."""
        rows, single = raw_rows(body, self.settings.max_batch_inputs)
        version = self.version(network, version_number)
        X = run_blocking(self.datasets.features, dataset, rows)
        result = run_blocking(self._predict, network, version, dataset, X, True, single)
        classes = dataset.meta.get("classes")
        if classes:
            for item in result["predictions"]:
                item["class_index"] = item["predicted"]
                item["predicted"] = classes[item["predicted"]]
            if single:
                result["prediction"] = result["predictions"][0]["predicted"]
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

    def _predict(self, network, version, dataset, X, scaled: bool, single: bool) -> dict[str, Any]:
        import torch

        from livetrain.training.model import input_shape_for

        arrays = self.datasets.arrays(dataset.id)
        model = self._model(network, version)
        spec = NetworkSpec.from_dict(network.spec)
        inputs = X if scaled else arrays.preprocess(X)
        with torch.no_grad():
            out = model(torch.from_numpy(np.ascontiguousarray(inputs)).reshape(
                -1, *input_shape_for(spec, dataset.input_shape))).numpy()
        predictions = []
        if dataset.task == "classification":
            for row in out:
                item = {"predicted": int(row.argmax()), "output": [float(v) for v in row]}
                if spec.kind == "layers" and spec.loss == "cross_entropy":
                    probs = np.exp(row - row.max())
                    item["probabilities"] = [float(v) for v in probs / probs.sum()]
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
        """One right ("successful") or wrong ("unsuccessful") example; 404 when none exists."""
        items = self.examples(network_id, kind)
        if not items:
            label = "correctly" if kind == "right" else "incorrectly"
            raise NotFound(f"network {network_id} classified no held-out example {label}", code="no_example")
        if index is not None:
            for item in items:
                if item["example_index"] == index:
                    return item
            raise NotFound(f"example {index} is not among the stored {kind} examples")
        return random.choice(items)
