"""Retraining a registered model from its feedback: a challenger trained through the ordinary run path on a
derived dataset (the champion's training rows plus the feedback's training part), judged against the
champion on the dataset's held-out split and on the held-out feedback, and promoted only if it wins by more
than the policy's margin.

Each retraining is a row in `retrainings` and a resource event at every step. The wait for the challenger's
run is a background task (`spawn`) that reads the run's row: the row is the truth whichever worker or node
reports the run, and the run path itself is not touched.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from livetrain import events
from livetrain.concurrency import run_blocking
from livetrain.data.stored import dataset_dir
from livetrain.errors import Conflict, LivetrainError
from livetrain.services.registry import CHALLENGER, CHAMPION, TRAIN_KEYS, held_out_scores
from livetrain.services.runs import training_controls
from livetrain.store import Dataset
from livetrain.store.entities import (
    DEFAULT_EXPERIMENT_ID,
    RETRAIN_ACTIVE,
    Feedback,
    ModelVersion,
    Retraining,
    RunStatus,
)
from livetrain.training.metrics import classification_metrics, higher_is_better, regression_metrics
from livetrain.training.spec import NetworkSpec

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.2  # seconds between looks at the challenger's run
SPLIT_SEED = 0


@dataclass
class FeedbackSplit:
    """The feedback of one retraining as features and labels: the part trained on and the part held out."""

    X_train: np.ndarray
    y_train: np.ndarray  # as the dataset stores targets (class indices, standardized values)
    X_holdout: np.ndarray
    y_holdout: np.ndarray  # class indices, or values in the target's units


class RetrainingService:
    """Starts retrainings, follows their runs in the background, evaluates and decides."""

    def __init__(self, *, registry, store, artifacts, datasets, networks, models, runs, emitter, spawn,
                 sleep) -> None:
        self.registry = registry
        self.store = store
        self.artifacts = artifacts
        self.datasets = datasets
        self.networks = networks
        self.models = models
        self.runs = runs
        self.emitter = emitter
        self.spawn = spawn
        self.sleep = sleep
        self.poll_interval = POLL_INTERVAL

    def _emit(self, event: str, retraining: Retraining, **extra: Any) -> None:
        self.emitter.resource(event, {"model": retraining.model_name, "retraining_id": retraining.id,
                                      "status": retraining.status, **extra, "ts": time.time()})

    def maybe_start(self, name: str) -> Retraining | None:
        """Start a retraining when the model has a policy and its unused feedback reached `min_feedback`."""
        model = self.store.get_model(name)
        if model is None or model.policy is None or CHAMPION not in self.store.aliases(name):
            return None
        unused = self.store.count_feedback(name, unused=True).get(name, 0)
        if unused < self.registry.policy(model)["min_feedback"]:
            return None
        try:
            return self.start(name, trigger="auto")
        except LivetrainError as exc:  # recorded as a failed retraining where it got that far
            if exc.code != "retraining":  # one already going will see this feedback next time
                log.warning("automatic retraining of model %s did not start: %s", name, exc)
            return None

    def start(self, name: str, trigger: str = "manual") -> Retraining:
        """Queue a retraining: derive the training set, start the challenger's run, follow it in the background."""
        model = self.registry.get(name)
        policy = self.registry.policy(model)
        number = self.store.aliases(name).get(CHAMPION)
        if number is None:
            raise Conflict(f"model {name} has no champion to retrain; set the champion alias first", code="no_champion")
        champion = self.registry.version(name, number)
        if self.store.list_retrainings(name, statuses=RETRAIN_ACTIVE, limit=1):
            raise Conflict(f"model {name} is already being retrained", code="retraining")
        feedback = self.store.list_feedback(name, unused=True)
        if not feedback:
            raise Conflict(f"model {name} has no feedback that a retraining has not used yet", code="no_feedback")
        retraining = Retraining(id=uuid.uuid4().hex[:12], model_name=name, status="queued", trigger=trigger,
                                champion_version=champion.version, metric=policy["metric"])
        if not self.store.create_retraining(retraining):
            raise Conflict(f"model {name} is already being retrained", code="retraining")
        self.store.claim_feedback([f.id for f in feedback], retraining.id)
        try:
            split = run_blocking(self._feedback_split, champion, feedback, policy["holdout_fraction"])
            dataset = run_blocking(self._derived_dataset, champion, split, retraining)
            # announced from here: the OS thread that wrote it must not emit
            self.emitter.resource("dataset_created", {"dataset_id": dataset.id, "name": dataset.name,
                                                      "task": dataset.task, "ts": time.time()})
            run = self._start_run(champion, dataset, policy, retraining)
        except BaseException as exc:
            self._fail(retraining.id, f"the challenger could not be started: {getattr(exc, 'message', exc)}")
            raise
        retraining = self.store.update_retraining(
            retraining.id, status="training", run_id=run.id, dataset_id=dataset.id,
            feedback_train=len(split.y_train), feedback_holdout=len(split.y_holdout))
        self._emit(events.MODEL_RETRAIN_STARTED, retraining, trigger=trigger, run_id=run.id, dataset_id=dataset.id,
                   champion_version=champion.version, feedback_train=retraining.feedback_train,
                   feedback_holdout=retraining.feedback_holdout)
        self.spawn(self._follow, retraining.id, champion, split, policy)
        return retraining

    # -- the challenger's training data --------------------------------------------------
    def _feedback_split(self, champion: ModelVersion, feedback: list[Feedback], fraction: float) -> FeedbackSplit:
        """Feedback through the same preprocessing predictions use, split (seeded) into training and held-out rows."""
        dataset = self.registry.input_dataset(champion)
        X = self.datasets.features(dataset, [f.input for f in feedback]).astype(np.float32)
        labels = [f.label for f in feedback]
        arrays = self.datasets.arrays(dataset)
        if dataset.task == "classification":
            classes = [str(c) for c in dataset.meta.get("classes") or []]
            y = np.asarray([classes.index(str(v)) if classes else int(v) for v in labels], dtype=np.int64)
            y_scaled = y
        else:
            y = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1)
            mean = np.asarray(arrays.preprocessing.get("target_mean", 0.0), dtype=np.float64)
            std = np.asarray(arrays.preprocessing.get("target_std", 1.0), dtype=np.float64)
            y_scaled = ((y - mean) / std).astype(np.float32)
            if arrays.y_train.ndim == 1:
                y, y_scaled = y[:, 0], y_scaled[:, 0]
        order = np.random.default_rng(SPLIT_SEED).permutation(len(feedback))
        n_holdout = int(round(len(feedback) * fraction))
        hold, train = order[:n_holdout], order[n_holdout:]
        return FeedbackSplit(X[train], y_scaled[train], X[hold], y[hold])

    def _derived_dataset(self, champion: ModelVersion, split: FeedbackSplit, retraining: Retraining) -> Dataset:
        """The champion's dataset with the feedback's training rows added to its training split; its validation
        and test splits unchanged. Stored like a generated dataset; its `parent_id` names the original."""
        source = self.registry.source_dataset(champion)
        root = self.datasets.input_dataset(source)
        arrays = self.datasets.arrays(source)
        width = arrays.X_train.shape[1]
        parts = {
            "X_train": np.concatenate([arrays.X_train, split.X_train.reshape(-1, width)]),
            "y_train": np.concatenate([arrays.y_train, split.y_train.astype(arrays.y_train.dtype)]),
            "X_val": arrays.X_val if arrays.has_val else np.zeros((0, width), np.float32),
            "y_val": arrays.y_val if arrays.has_val else np.zeros((0, *arrays.y_train.shape[1:]), arrays.y_train.dtype),
            "X_test": arrays.X_test, "y_test": arrays.y_test,
        }
        # a text dataset's tokens (and a sequence one's target texts) go with its arrays: the challenger's run
        # scores with the text metrics (f1 as text datasets define it) as the champion's did
        parts.update({k: v for k, v in arrays.preprocessing.items() if k.startswith("text_")})
        dataset_id = uuid.uuid4().hex[:12]
        ref = self.artifacts.write(f"{dataset_dir(dataset_id)}/arrays.npz", lambda fh: np.savez(fh, **parts))
        keep = ("classes", "feature_names", "n_outputs", "target_mean", "target_std", "image", "kind", "text")
        meta = {k: v for k, v in {**root.meta, **source.meta}.items() if k in keep}
        for key in ("target_mean", "target_std"):  # a built-in keeps these with its arrays, not in its row
            if key in arrays.preprocessing:
                meta[key] = arrays.preprocessing[key]
        meta.update(origin="retraining", parent_id=root.id, derived_from=source.id, model=retraining.model_name,
                    retraining_id=retraining.id, feedback_rows=int(len(split.y_train)))
        dataset = Dataset(
            id=dataset_id, name=f"{retraining.model_name} retraining {retraining.id}"[:200], task=source.task,
            source=f"derived: {source.id} + feedback", n_features=source.n_features, n_classes=source.n_classes,
            input_shape=list(source.input_shape), n_train=len(parts["y_train"]), n_test=len(parts["y_test"]),
            n_val=len(parts["y_val"]), meta=meta, builtin=False, content_sha256=ref.sha256,
            description=f"{source.name}'s training rows plus {len(split.y_train)} feedback row(s) of model "
                        f"{retraining.model_name}; the same validation and test rows",
            files={"arrays": {"path": ref.path, "sha256": ref.sha256}})
        return self.store.upsert_dataset(dataset)

    def _start_run(self, champion: ModelVersion, dataset: Dataset, policy: dict[str, Any], retraining: Retraining):
        """The challenger's run: the champion's network spec as a new network on the derived dataset, or the
        champion run's algorithm and parameters; trained with the policy's parameters over the champion's, and
        with the champion run's training controls (schedule, gradient clipping, early stopping, monitor)."""
        train = policy.get("train") or {}
        if champion.network_id is not None:
            network = self.networks.get(champion.network_id)
            version = self.networks.version(network, champion.network_version)
            source_run = self.store.get_run(version.run_id) if version.run_id else None
            ran = source_run.params if source_run else {}
            params = {k: v for k, v in ran.items() if k in TRAIN_KEYS}
            params.update(training_controls(ran, NetworkSpec.from_dict(network.spec)))
            challenger = self.networks.create({**network.spec, "dataset_id": dataset.id,
                                               "name": f"{retraining.model_name} challenger {retraining.id}"[:100]})
            return self.runs.start(challenger.id, {**params, **{k: v for k, v in train.items() if k in TRAIN_KEYS}})
        source_run = self.runs.get(champion.run_id)
        experiment_id = source_run.experiment_id if source_run.experiment_id and self.store.get_experiment(
            source_run.experiment_id) else DEFAULT_EXPERIMENT_ID
        return self.runs.start_algorithm(experiment_id, {
            "algorithm": source_run.algorithm, "dataset_id": dataset.id,
            "params": {**source_run.params, **(train.get("params") or {})}, "seed": source_run.seed or 0,
            "steps": train.get("steps", source_run.repro.get("steps", 10))})

    # -- following, evaluating, deciding ----------------------------------------------------
    def _follow(self, retraining_id: str, champion: ModelVersion, split: FeedbackSplit, policy: dict[str, Any]) -> None:
        """Wait for the challenger's run to end, then evaluate and decide. Every retraining ends."""
        retraining = self.store.update_retraining(retraining_id)
        try:
            while True:
                run = self.store.get_run(retraining.run_id)
                if run is None or not RunStatus(run.status).active:
                    break
                self.sleep(self.poll_interval)
            if run is None or run.status != RunStatus.COMPLETED.value:
                what = "was deleted" if run is None else f"ended {run.status}" + (f": {run.error}" if run.error else "")
                self._fail(retraining_id, f"the challenger's run {retraining.run_id} {what}")
                return
            self._evaluate(retraining, champion, run, split, policy)
        except Exception as exc:  # noqa: BLE001  (a retraining must end, recorded, whatever went wrong)
            log.exception("retraining %s of model %s failed", retraining_id, retraining.model_name)
            self._fail(retraining_id, f"evaluation failed: {getattr(exc, 'message', exc)}")

    def _evaluate(self, retraining: Retraining, champion: ModelVersion, run, split: FeedbackSplit,
                  policy: dict[str, Any]) -> None:
        who = f"retraining:{retraining.id}"
        if run.version is not None:
            candidate = ModelVersion(retraining.model_name, 0, network_id=run.network_id, network_version=run.version,
                                     metrics=held_out_scores(run.metrics), created_by=who)
        else:
            candidate = ModelVersion(retraining.model_name, 0, run_id=run.id, metrics=held_out_scores(run.metrics),
                                     created_by=who)
        challenger = self.registry.add_version(candidate)
        self.registry.move(retraining.model_name, CHALLENGER, challenger.version, who,
                            f"trained by retraining {retraining.id} (run {run.id})")
        self.store.update_retraining(retraining.id, status="evaluating", challenger_version=challenger.version)
        dataset = self.registry.input_dataset(champion)
        arrays = self.datasets.arrays(dataset)
        y_test = arrays.y_test if dataset.task == "classification" else arrays.unscale_target(arrays.y_test)
        scores = {}
        for role, version in (("champion", champion), ("challenger", challenger)):
            scores[role] = {
                "dataset": run_blocking(self._score, version, dataset, arrays.X_test, y_test),
                "feedback": run_blocking(self._score, version, dataset, split.X_holdout, split.y_holdout),
            }
        retraining = self.store.update_retraining(retraining.id, champion_metrics=scores["champion"],
                                                  challenger_metrics=scores["challenger"])
        self._emit(events.MODEL_RETRAIN_EVALUATED, retraining, champion_version=champion.version,
                   challenger_version=challenger.version, champion_metrics=scores["champion"],
                   challenger_metrics=scores["challenger"], metric=policy["metric"])
        promote, reason = decide(policy, scores["champion"], scores["challenger"], champion.version,
                                 challenger.version)
        if promote:
            self.registry.move(retraining.model_name, CHAMPION, challenger.version, who, reason)
            self.registry.move(retraining.model_name, CHALLENGER, None, who,
                                f"version {challenger.version} is now the champion")
        status = "promoted" if promote else "rejected"
        retraining = self.store.update_retraining(retraining.id, status=status, reason=reason,
                                                  finished_at=time.time())
        self._emit(events.MODEL_PROMOTED if promote else events.MODEL_RETRAIN_REJECTED, retraining, reason=reason,
                   champion_version=challenger.version if promote else champion.version,
                   challenger_version=challenger.version)

    def _score(self, version: ModelVersion, dataset: Dataset, X: np.ndarray, y_true: np.ndarray) -> dict[str, Any]:
        """The version's metrics on feature rows (empty for no rows)."""
        if len(y_true) == 0:
            return {"n": 0}
        if version.network_id is not None:
            predicted = self.networks.predict_features(version.network_id, version.network_version, X)
        else:
            predicted = self.models.predict_features(version.run_id, X)
        if dataset.task == "classification":
            out = classification_metrics(y_true, predicted, n_classes=dataset.n_classes or None)
            out.pop("confusion_matrix", None)
            return out
        return regression_metrics(y_true, predicted)

    def _fail(self, retraining_id: str, reason: str) -> None:
        """End a retraining as failed; its feedback goes back to the pool for the next one; no alias moves."""
        retraining = self.store.update_retraining(retraining_id, status="failed", reason=reason[:2000],
                                                  finished_at=time.time())
        self.store.release_feedback(retraining_id)
        if retraining is not None:
            self._emit(events.MODEL_RETRAIN_FAILED, retraining, reason=reason, run_id=retraining.run_id)

    def fail_abandoned(self) -> list[str]:
        """Retraining left going by a server that stopped (its follower went with it): marked failed."""
        ids = [r.id for r in self.store.list_retrainings(statuses=RETRAIN_ACTIVE, limit=1000)]
        for retraining_id in ids:
            self._fail(retraining_id, "the server stopped while this retraining was going")
        return ids


def decide(policy: dict[str, Any], champion: dict[str, Any], challenger: dict[str, Any], champion_version: int,
           challenger_version: int) -> tuple[bool, str]:
    """Whether the challenger beats the champion by more than the margin on the policy's metric and evaluation
    set (direction-aware), and the reason, with the numbers."""
    metric, margin, where = policy["metric"], float(policy["margin"]), policy["decide_on"]
    label = "dataset's held-out split" if where == "dataset" else "held-out feedback"
    old, new = champion.get(where, {}).get(metric), challenger.get(where, {}).get(metric)
    if old is None or new is None:
        return False, (f"not promoted: no {metric} on the {label} to compare (champion {old}, challenger {new}); "
                       f"version {challenger_version} stays challenger")
    gain = new - old if higher_is_better(metric) else old - new
    numbers = (f"{metric} on the {label}: challenger v{challenger_version} {new:.4f}, champion v{champion_version} "
               f"{old:.4f} ({'higher' if higher_is_better(metric) else 'lower'} is better; margin {margin:g})")
    if gain > margin:
        return True, f"promoted: {numbers}"
    return False, f"not promoted: {numbers}; version {challenger_version} stays challenger"
