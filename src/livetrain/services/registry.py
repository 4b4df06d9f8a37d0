"""The model registry: named models whose numbered versions point at network versions or scikit-learn runs,
aliases (`champion`, `challenger`, ...) with every move recorded, predictions kept for feedback, feedback,
and each model's retraining policy. Retraining itself is `livetrain.services.retraining`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import uuid
from typing import Any

from livetrain import events
from livetrain.errors import Conflict, NotFound, ValidationError
from livetrain.services.common import whole_number
from livetrain.store import Dataset
from livetrain.store.entities import (
    NETWORK_ALGORITHM,
    AliasMove,
    Feedback,
    ModelVersion,
    Prediction,
    RegisteredModel,
    RunStatus,
)
from livetrain.training.metrics import higher_is_better

MODEL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
ALIAS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
CHAMPION, CHALLENGER = "champion", "challenger"
MAX_NOTE = 2000
MAX_REASON = 2000
# what a policy may judge a challenger by (computed from predicted labels or values alone)
POLICY_METRICS = {"classification": ("accuracy", "precision", "recall", "f1"), "regression": ("r2", "mae", "rmse")}
DEFAULT_METRIC = {"classification": "accuracy", "regression": "rmse"}
DECIDE_ON = ("dataset", "feedback")
TRAIN_KEYS = ("epochs", "learning_rate", "batch_size", "mini_batch_size", "optimizer", "momentum", "weight_decay",
              "seed")
FEEDBACK_CSV_COLUMNS = ("id", "created_at", "prediction_id", "version", "predicted", "label", "note", "input")


def check_model_name(name: Any) -> str:
    """A registered model's name: 1-100 letters, digits, `-`, `_`, `.` (not only dots)."""
    if not isinstance(name, str) or not MODEL_NAME.match(name) or not name.strip("."):
        raise ValidationError("a model name is 1-100 letters, digits, '-', '_' or '.' (not only dots)",
                              code="bad_name", detail={"field": "name"})
    return name


def check_alias(alias: Any) -> str:
    """An alias: a lowercase letter, then up to 39 lowercase letters, digits, `_` or `-`."""
    if not isinstance(alias, str) or not ALIAS_NAME.match(alias):
        raise ValidationError("an alias is a lowercase letter followed by up to 39 lowercase letters, digits, "
                              "'_' or '-' (like champion)", code="bad_alias", detail={"field": "alias"})
    return alias


def _text(value: Any, field: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise ValidationError(f"{field} must be text of at most {limit} characters", detail={"field": field})
    return value


def held_out_scores(metrics: dict[str, Any]) -> dict[str, Any]:
    """A run's held-out split scores (validation when it has one, else test), without the confusion matrix."""
    split = "val" if "val" in (metrics or {}) else "test"
    scores = (metrics or {}).get(split) or {}
    return {"split": split, **{k: v for k, v in scores.items() if k != "confusion_matrix"}} if scores else {}


class RegistryService:
    """Registered models, versions, aliases, kept predictions, feedback and policies."""

    def __init__(self, *, store, emitter, datasets, networks, models, runs, settings) -> None:
        self.store = store
        self.emitter = emitter
        self.datasets = datasets
        self.networks = networks
        self.models = models
        self.runs = runs
        self.settings = settings
        self.retraining = None  # the RetrainingService, attached by the container

    def _emit(self, event: str, payload: dict[str, Any]) -> None:
        self.emitter.resource(event, {**payload, "ts": time.time()})

    # -- models ---------------------------------------------------------------------
    def create(self, name: Any, description: Any = None) -> RegisteredModel:
        """Register a new model name (409 when it is taken)."""
        model = RegisteredModel(name=check_model_name(name), description=_text(description, "description", 2000))
        if not self.store.create_model(model):
            raise Conflict(f"a model named {model.name!r} is already registered", code="model_exists")
        self._emit(events.MODEL_REGISTERED, {"model": model.name, "description": model.description})
        return model

    def get(self, name: str) -> RegisteredModel:
        """The registered model, or 404."""
        model = self.store.get_model(name) if isinstance(name, str) else None
        if model is None:
            raise NotFound(f"no registered model {name!r}")
        return model

    def summary(self, model: RegisteredModel) -> dict[str, Any]:
        """A model for lists: its fields, aliases, latest version and feedback count."""
        versions = self.store.list_model_versions(model.name)
        return {"name": model.name, "description": model.description, "created_at": model.created_at,
                "aliases": self.store.aliases(model.name), "latest_version": versions[-1].version if versions else None,
                "feedback_count": self.store.count_feedback(model.name).get(model.name, 0)}

    def describe(self, name: str) -> dict[str, Any]:
        """A model with its versions (metrics side by side), aliases, alias history, policy and retrainings."""
        model = self.get(name)
        aliases = self.store.aliases(name)
        by_version: dict[int, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        versions = [{**v.to_dict(), "aliases": by_version.get(v.version, [])}
                    for v in self.store.list_model_versions(name)]
        return {
            **self.summary(model),
            "versions": versions,
            "metric_names": sorted({k for v in versions for k, value in v["metrics"].items()
                                    if isinstance(value, int | float) and not isinstance(value, bool)}),
            "history": [m.to_dict() for m in self.store.alias_history(name)],
            "policy": self.policy(model),
            "policy_set": model.policy is not None,
            "unused_feedback": self.store.count_feedback(name, unused=True).get(name, 0),
            "retrainings": [r.to_dict() for r in self.store.list_retrainings(name, limit=20)],
        }

    def delete(self, name: str) -> dict[str, Any]:
        """Forget a registered model (its networks, runs and datasets stay)."""
        self.get(name)
        if self.store.list_retrainings(name, statuses=("queued", "training", "evaluating"), limit=1):
            raise Conflict(f"model {name} is being retrained; wait for the retraining to end", code="retraining")
        self.store.delete_model(name)
        self._emit("model_deleted", {"model": name})
        return {"name": name, "deleted": True}

    # -- versions -------------------------------------------------------------------
    def register(self, name: str, body: dict[str, Any], who: str) -> ModelVersion:
        """Register a network version (`network_id` + `version`) or a completed scikit-learn run (`run_id`)."""
        self.get(name)
        has_network, has_run = body.get("network_id") is not None, body.get("run_id") is not None
        if has_network == has_run:
            raise ValidationError("send either network_id and version (a network version) or run_id "
                                  "(a completed run)", code="bad_source")
        if has_run:
            run = self.runs.get(str(body["run_id"]))
            if run.status != RunStatus.COMPLETED.value or (run.model_path is None and run.version is None):
                raise Conflict(f"run {run.id} is {run.status} and has no model; only a completed run can be "
                               "registered", code="no_model")
            if run.algorithm == NETWORK_ALGORITHM:  # a network's run is registered as the version it made
                network_id, number = run.network_id, run.version
                self.networks.get(network_id)
            else:
                return self.add_version(ModelVersion(name, 0, run_id=run.id, metrics=held_out_scores(run.metrics),
                                                      created_by=who))
        else:
            network = self.networks.get(str(body["network_id"]))
            number = whole_number(body.get("version"), "version", 1, 2**31 - 1)
            run_id = self.networks.version(network, number).run_id
            network_id = network.id
            run = self.store.get_run(run_id) if run_id else None
        metrics = held_out_scores(run.metrics) if run is not None else {}
        return self.add_version(ModelVersion(name, 0, network_id=network_id, network_version=number,
                                              metrics=metrics, created_by=who))

    def add_version(self, version: ModelVersion) -> ModelVersion:
        for existing in self.store.list_model_versions(version.model_name):
            if existing.source == version.source:
                raise Conflict(f"that source is already version {existing.version} of model {version.model_name}",
                               code="already_registered", detail={"version": existing.version})
        self.store.add_model_version(version)
        self._emit(events.MODEL_VERSION_REGISTERED, {"model": version.model_name, **version.to_dict()})
        return version

    def version(self, name: str, number: Any) -> ModelVersion:
        """One version of a model, or 404."""
        number = whole_number(number, "version", 1, 2**31 - 1)
        version = self.store.get_model_version(name, number)
        if version is None:
            raise NotFound(f"model {name} has no version {number}")
        return version

    # -- aliases --------------------------------------------------------------------
    def set_alias(self, name: str, alias: Any, version: Any, who: str, reason: Any = None) -> dict[str, Any]:
        """Point an alias at a version (set or move it); recorded and announced."""
        self.get(name)
        alias = check_alias(alias)
        target = self.version(name, version).version
        return self.move(name, alias, target, who, _text(reason, "reason", MAX_REASON))

    def remove_alias(self, name: str, alias: Any, who: str, reason: Any = None) -> dict[str, Any]:
        """Remove an alias (404 when it is not set)."""
        self.get(name)
        alias = check_alias(alias)
        if alias not in self.store.aliases(name):
            raise NotFound(f"model {name} has no alias {alias!r}")
        return self.move(name, alias, None, who, _text(reason, "reason", MAX_REASON))

    def rollback(self, name: str, alias: Any, who: str, reason: Any = None) -> dict[str, Any]:
        """Move an alias back to the version it pointed at before its last move."""
        self.get(name)
        alias = check_alias(alias)
        current = self.store.aliases(name).get(alias)
        if current is None:
            raise NotFound(f"model {name} has no alias {alias!r}")
        last = next(iter(self.store.alias_history(name, alias, limit=1)), None)
        if last is None or last.from_version is None:
            raise Conflict(f"alias {alias} of model {name} has pointed at no other version; nothing to roll back to",
                           code="no_previous_version")
        if self.store.get_model_version(name, last.from_version) is None:
            raise Conflict(f"version {last.from_version} of model {name} is gone", code="no_previous_version")
        said = _text(reason, "reason", MAX_REASON)
        text = f"rollback: back from version {current} to version {last.from_version}" + (f": {said}" if said else "")
        return self.move(name, alias, last.from_version, who, text)

    def move(self, name: str, alias: str, target: int | None, who: str, reason: str) -> dict[str, Any]:
        current = self.store.aliases(name).get(alias)
        if current == target:
            return {"model": name, "alias": alias, "version": target, "moved": False}
        move = AliasMove(name, alias, current, target, who, reason)
        if not self.store.move_alias(move, expect_from=current):
            raise Conflict(f"alias {alias} of model {name} was moved meanwhile; look again and retry",
                           code="alias_moved")
        self._emit(events.MODEL_ALIAS_MOVED, {"model": name, **{k: v for k, v in move.to_dict().items()
                                                                 if k not in ("model_name", "id")}})
        return {"model": name, "alias": alias, "version": target, "moved": True, "from_version": current,
                "who": who, "reason": reason, "at": move.at}

    def resolve(self, name: str, *, version: Any = None, alias: Any = None) -> tuple[ModelVersion, str | None]:
        """The version a request means: the one named, else the alias named, else `champion`."""
        self.get(name)
        if version is not None and alias is not None:
            raise ValidationError("name either a version or an alias, not both", code="bad_parameter")
        if version is not None:
            return self.version(name, version), None
        alias = check_alias(alias) if alias is not None else CHAMPION
        number = self.store.aliases(name).get(alias)
        if number is None:
            raise NotFound(f"model {name} has no alias {alias!r}; set one with PUT /api/models/{name}/aliases/{alias}"
                           " or name a version", code="no_alias")
        return self.version(name, number), alias

    def champion_network_version(self, network_id: str) -> int | None:
        """The version of this network a registered model's `champion` points at, if any."""
        return self.store.champion_of_network(network_id, CHAMPION)

    # -- sources ---------------------------------------------------------------------
    def source_dataset(self, version: ModelVersion) -> Dataset:
        """The dataset the version's source trained on."""
        if version.network_id is not None:
            return self.datasets.get(self.networks.get(version.network_id).dataset_id)
        return self.datasets.get(self.runs.get(version.run_id).dataset_id)

    def input_dataset(self, version: ModelVersion) -> Dataset:
        """The dataset whose raw inputs and labels the version takes (a derived dataset's original)."""
        return self.datasets.input_dataset(self.source_dataset(version))

    # -- predictions -----------------------------------------------------------------
    def predict(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Predict with the champion (or the `version` / `alias` named); every row is kept with an id."""
        version, alias = self.resolve(name, version=body.pop("version", None), alias=body.pop("alias", None))
        if body.get("scaled"):
            raise ValidationError("a registered model takes raw inputs (its feedback is kept as sent); "
                                  "leave out scaled", code="bad_input")
        if version.network_id is not None:
            result = self.networks.predict(version.network_id, body, version_number=version.network_version)
        else:
            result = self.models.predict(version.run_id, body)
        rows = self._rows(body)
        kept = [Prediction(uuid.uuid4().hex, name, version.version, alias, row, item["predicted"])
                for row, item in zip(rows, result["predictions"])]
        self.store.add_predictions(kept)
        for item, prediction in zip(result["predictions"], kept):
            item["prediction_id"] = prediction.id
        result.pop("version", None)  # a network's own version number: `source` says it
        out = {"model": name, "version": version.version, "alias": alias, "source": version.source, **result}
        if len(kept) == 1 and ("input" in body or "row" in body):
            out["prediction_id"] = kept[0].id
        return out

    @staticmethod
    def _rows(body: dict[str, Any]) -> list:
        for one in ("input", "row"):
            if one in body:
                return [body[one]]
        return list(body.get("inputs", body.get("rows")) or [])

    # -- feedback --------------------------------------------------------------------
    def add_feedback(self, name: str, body: dict[str, Any]) -> Feedback:
        """The true label of a kept prediction (`prediction_id`) or of an `input`; may start a retraining."""
        self.get(name)
        note = _text(body.get("note"), "note", MAX_NOTE)
        if (body.get("prediction_id") is None) == (body.get("input", body.get("row")) is None):
            raise ValidationError("send either prediction_id (of a prediction by this model) or input",
                                  code="bad_feedback")
        if "label" not in body or body["label"] is None:
            raise ValidationError("send label: the true label (a class name or index, or the target value)",
                                  code="bad_feedback", detail={"field": "label"})
        if body.get("prediction_id") is not None:
            prediction = self.store.get_prediction(str(body["prediction_id"]))
            if prediction is None or prediction.model_name != name:
                raise NotFound(f"model {name} served no prediction {body['prediction_id']!r}")
            feedback = Feedback(name, prediction.input, body["label"], prediction.id, prediction.version,
                                prediction.output, note)
            version = self.store.get_model_version(name, prediction.version)
        else:
            version, _ = self.resolve(name)
            feedback = Feedback(name, body.get("input", body.get("row")), body["label"], note=note)
        if version is not None:
            dataset = self.input_dataset(version)
            self.datasets.features(dataset, [feedback.input])  # refused now rather than at the retraining
            feedback.label = label_value(dataset, feedback.label)
        self.store.add_feedback(feedback)
        self._emit(events.MODEL_FEEDBACK_RECEIVED, {"model": name, "feedback_id": feedback.id,
                                                    "prediction_id": feedback.prediction_id,
                                                    "version": feedback.version, "label": feedback.label})
        if self.retraining is not None:
            self.retraining.maybe_start(name)
        return feedback

    def list_feedback(self, name: str, *, limit: int, offset: int) -> dict[str, Any]:
        """A page of a model's feedback, oldest first, with the total."""
        self.get(name)
        items = self.store.list_feedback(name, limit=limit, offset=offset)
        return {"model": name, "total": self.store.count_feedback(name).get(name, 0), "limit": limit,
                "offset": offset, "feedback": [f.to_dict() for f in items]}

    def feedback_csv(self, name: str) -> str:
        """Every piece of a model's feedback as CSV (inputs, predictions and labels as JSON)."""
        self.get(name)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FEEDBACK_CSV_COLUMNS)
        for f in self.store.list_feedback(name):
            writer.writerow([f.id, f"{f.created_at:.3f}", f.prediction_id or "", "" if f.version is None else f.version,
                             "" if f.predicted is None else json.dumps(f.predicted), json.dumps(f.label), f.note,
                             json.dumps(f.input)])
        return out.getvalue()

    # -- the retraining policy ---------------------------------------------------------
    def task(self, name: str) -> str | None:
        """The champion's task (classification or regression), or None without a champion."""
        number = self.store.aliases(name).get(CHAMPION)
        version = self.store.get_model_version(name, number) if number else None
        return self.source_dataset(version).task if version else None

    def policy(self, model: RegisteredModel) -> dict[str, Any]:
        """The model's retraining policy, defaults filled in."""
        policy = dict(model.policy or {})
        task = self.task(model.name) or "classification"
        policy.setdefault("min_feedback", 50)
        policy.setdefault("metric", DEFAULT_METRIC[task])
        policy.setdefault("margin", 0.0)
        policy.setdefault("holdout_fraction", 0.2)
        policy.setdefault("decide_on", "dataset")
        policy.setdefault("train", {})
        policy["higher_is_better"] = higher_is_better(policy["metric"])
        return policy

    def set_policy(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Validate and store a model's retraining policy; the policy with its defaults."""
        model = self.get(name)
        metric = body.get("metric")
        task = self.task(name)
        allowed = POLICY_METRICS[task] if task else POLICY_METRICS["classification"] + POLICY_METRICS["regression"]
        if metric is not None and metric not in allowed:
            raise ValidationError(f"metric must be one of {', '.join(allowed)}"
                                  + (f" for this {task} model" if task else ""), code="bad_policy",
                                  detail={"field": "metric"})
        policy: dict[str, Any] = {"min_feedback": whole_number(body.get("min_feedback", 50), "min_feedback", 1,
                                                               1_000_000)}
        if metric is not None:
            policy["metric"] = metric
        policy["margin"] = _fraction(body.get("margin", 0.0), "margin", high=None)
        policy["holdout_fraction"] = _fraction(body.get("holdout_fraction", 0.2), "holdout_fraction", high=0.9)
        decide_on = body.get("decide_on", "dataset")
        if decide_on not in DECIDE_ON:
            raise ValidationError("decide_on must be dataset (the held-out split) or feedback (the held-out "
                                  "feedback)", code="bad_policy", detail={"field": "decide_on"})
        policy["decide_on"] = decide_on
        train = {k: body[k] for k in TRAIN_KEYS if body.get(k) is not None}
        train.update(body.get("train") or {})
        if "epochs" in train:
            train["epochs"] = whole_number(train["epochs"], "epochs", 1, self.settings.max_epochs)
        unknown = set(train) - set(TRAIN_KEYS) - {"params", "steps"}
        if unknown:
            raise ValidationError(f"unknown training parameter(s): {', '.join(sorted(unknown))}", code="bad_policy",
                                  detail={"field": "train"})
        policy["train"] = train
        self.store.set_model_policy(name, policy)
        model.policy = policy
        return self.policy(model)

    # -- what the ops metrics read ----------------------------------------------------------
    def counts(self) -> dict[str, dict[str, int]]:
        """Predictions served and feedback received, per model: {model: {"predictions": n, "feedback": n}}."""
        predictions, feedback = self.store.count_predictions(), self.store.count_feedback()
        return {model: {"predictions": predictions.get(model, 0), "feedback": feedback.get(model, 0)}
                for model in sorted(set(predictions) | set(feedback))}

    def champion_metrics(self) -> dict[str, tuple[str, float | None]]:
        """Each model's champion's held-out value of its policy's metric: {model: (metric, value)}."""
        out = {}
        for model in self.store.list_models():
            number = self.store.aliases(model.name).get(CHAMPION)
            version = self.store.get_model_version(model.name, number) if number else None
            if version is None:
                continue
            metric = self.policy(model)["metric"]
            out[model.name] = (metric, version.metrics.get(metric))
        return out


def _fraction(value: Any, field: str, *, high: float | None) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or value < 0 or (high is not None and value > high):
        bound = f"between 0 and {high}" if high is not None else "a number of at least 0"
        raise ValidationError(f"{field} must be {bound}", code="bad_policy", detail={"field": field})
    return float(value)


def label_value(dataset: Dataset, label: Any) -> Any:
    """A feedback label as the model's outputs say it: a class name (or index) of the dataset, or a number."""
    if dataset.task == "classification":
        classes = dataset.meta.get("classes")
        if classes:
            if label in classes or str(label) in [str(c) for c in classes]:
                return classes[[str(c) for c in classes].index(str(label))]
            raise ValidationError(f"label must be one of the classes {', '.join(map(str, classes))}",
                                  code="bad_label", detail={"field": "label"})
        return whole_number(label, "label", 0, max(0, dataset.n_classes - 1))
    n_outputs = int(dataset.meta.get("n_outputs", 1))
    values = label if isinstance(label, list) else [label]
    if len(values) != n_outputs or any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        raise ValidationError(f"label must be {'a number' if n_outputs == 1 else f'{n_outputs} numbers'}",
                              code="bad_label", detail={"field": "label"})
    return [float(v) for v in values] if isinstance(label, list) else float(label)
