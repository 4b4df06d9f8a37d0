"""A run's model: download it, or predict with it on raw rows through the dataset's stored preprocessing."""

from __future__ import annotations

from typing import Any

from livetrain.concurrency import run_blocking
from livetrain.errors import Conflict
from livetrain.services.common import LruCache, raw_rows
from livetrain.store import Run
from livetrain.store.entities import NETWORK_ALGORITHM

MODEL_CACHE_SIZE = 8


class ModelService:
    """Models of completed runs: scikit-learn as joblib files the server wrote, networks as versions."""

    def __init__(self, *, store, artifacts, settings, datasets, networks, runs) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        self.datasets = datasets
        self.networks = networks
        self.runs = runs
        self._models = LruCache(MODEL_CACHE_SIZE)  # model SHA-256 -> fitted estimator

    def _finished(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run.model_path is None and run.version is None:
            raise Conflict(f"run {run_id} has no model ({run.status}); only a completed run has one",
                           code="no_model")
        return run

    def file(self, run_id: str) -> tuple[str, bytes, str]:
        """(file name, bytes, mimetype) of a run's model, after its checksum."""
        run = self._finished(run_id)
        if run.algorithm == NETWORK_ALGORITHM:
            network = self.networks.get(run.network_id)
            _, data = self.networks.weights_bytes(network, run.version)
            return f"run-{run.id}-{network.id}-v{run.version}.pt", data, "application/octet-stream"
        data = self.artifacts.open_verified(run.model_path, run.model_sha256).getvalue()
        return f"run-{run.id}-{run.algorithm}.joblib", data, "application/octet-stream"

    def _estimator(self, run: Run):
        import joblib

        # our own file, written by our worker; loaded only once its SHA-256 matches the recorded one
        return self._models.get_or_load(
            run.model_sha256, lambda: joblib.load(self.artifacts.open_verified(run.model_path, run.model_sha256)))

    def predict(self, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Predictions of a run's model for raw rows (`rows`, or `row` for one)."""
        run = self._finished(run_id)
        if run.algorithm == NETWORK_ALGORITHM:
            result = self.networks.predict(run.network_id, body, version_number=run.version)
            return {"run_id": run.id, **result}
        rows, single = raw_rows(body, self.settings.max_batch_inputs)
        dataset = self.datasets.input_dataset(self.datasets.get(run.dataset_id))
        return run_blocking(self._predict, run, dataset, rows, single)

    def predict_features(self, run_id: str, X) -> list[Any]:
        """What a run's model predicts for preprocessed feature rows: class indices, or values in target units."""
        from livetrain.training.estimators import predict_rows

        run = self._finished(run_id)
        dataset = self.datasets.input_dataset(self.datasets.get(run.dataset_id))
        return predict_rows(self._estimator(run), dataset.task, X, data=self.datasets.arrays(dataset))["predicted"]

    def _predict(self, run: Run, dataset, rows: list, single: bool) -> dict[str, Any]:
        from livetrain.training.estimators import predict_rows

        X = self.datasets.features(dataset, rows)
        model = self._estimator(run)
        out = predict_rows(model, dataset.task, X, data=self.datasets.arrays(dataset))
        classes = dataset.meta.get("classes")
        predictions = []
        for i, value in enumerate(out["predicted"]):
            if dataset.task == "classification":
                index = int(value)
                item: dict[str, Any] = {"predicted": classes[index] if classes else index, "class_index": index}
                if out.get("probabilities") is not None:
                    probs = out["probabilities"][i]
                    item["probabilities"] = ({str(c): float(p) for c, p in zip(classes, probs)} if classes
                                             else [float(p) for p in probs])
            else:
                item = {"predicted": value}
            predictions.append(item)
        result: dict[str, Any] = {"run_id": run.id, "algorithm": run.algorithm, "predictions": predictions}
        if single:
            result["prediction"] = predictions[0]["predicted"]
        return result
