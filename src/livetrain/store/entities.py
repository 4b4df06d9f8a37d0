"""Typed entities the stores hand to services and views (never ORM rows)."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any


class RunStatus(enum.StrEnum):
    """Where a run is in its life; the last four are final."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def active(self) -> bool:
        """True while the run may still produce events."""
        return self in (RunStatus.QUEUED, RunStatus.RUNNING)


ACTIVE_STATUSES = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


def _asdict(obj) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


@dataclass
class Dataset:
    """A named set of arrays with a fixed train/test split."""

    id: str
    name: str
    task: str  # "classification" | "regression"
    source: str
    n_features: int
    n_classes: int
    input_shape: list[int]
    n_train: int
    n_test: int
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    builtin: bool = True
    created_at: float = 0.0
    n_val: int = 0
    content_sha256: str | None = None  # of the data itself: a run records it, so a rerun can tell
    files: dict[str, Any] = field(default_factory=dict)  # artifact refs: arrays, pipeline, csv

    def to_dict(self) -> dict[str, Any]:
        """JSON for the API (file paths stay server-side)."""
        out = _asdict(self)
        out.pop("files")
        return out


DEFAULT_EXPERIMENT_ID = "default"


@dataclass
class Experiment:
    """A named group of runs that are compared with each other."""

    id: str
    name: str
    description: str = ""
    created_at: float = 0.0

    @property
    def is_default(self) -> bool:
        """The experiment runs land in when none is named; it cannot be deleted."""
        return self.id == DEFAULT_EXPERIMENT_ID

    def to_dict(self) -> dict[str, Any]:
        """JSON for the API."""
        return {"experiment_id": self.id, "id": self.id, "name": self.name, "description": self.description,
                "created_at": self.created_at, "is_default": self.is_default}


@dataclass
class Network:
    """A PyTorch architecture bound to a dataset, with its version history."""

    id: str
    name: str
    kind: str  # "layer_sizes" (Nielsen semantics) | "layers"
    spec: dict[str, Any]
    dataset_id: str
    parameter_count: int
    layer_table: list[dict[str, Any]] = field(default_factory=list)  # type, output shape, parameters
    status: str = "created"  # created | training | trained
    accuracy: float | None = None
    current_version: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def trained(self) -> bool:
        """True once a run has produced a version."""
        return self.current_version > 0

    @property
    def architecture(self) -> Any:
        """`layer_sizes` for Nielsen networks (as the original server showed), else the layers."""
        return self.spec["layer_sizes"] if self.kind == "layer_sizes" else self.spec["layers"]


@dataclass
class NetworkVersion:
    """Weights a completed run produced, with the metrics they scored."""

    network_id: str
    version: int
    run_id: str | None
    weights_path: str
    weights_sha256: str
    metrics: dict[str, Any] = field(default_factory=dict)
    examples_path: str | None = None
    examples_sha256: str | None = None
    created_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON for the API (paths stay server-side)."""
        return {
            "network_id": self.network_id,
            "version": self.version,
            "run_id": self.run_id,
            "metrics": self.metrics,
            "weights_sha256": self.weights_sha256,
            "created_at": self.created_at,
        }


@dataclass
class NetworkRevision:
    """One accepted change to a network's spec: the whole spec after it, what changed, who and when.

    Revision 1 is the spec the network was created with; every edit of its layers or heads adds one.
    """

    network_id: str
    revision: int
    spec: dict[str, Any]
    change: dict[str, Any] = field(default_factory=dict)  # {"op": "layer_created", "index": 2, ...}
    author: str | None = None
    created_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON for the API."""
        return {"network_id": self.network_id, "revision": self.revision, "spec": self.spec,
                "change": self.change, "author": self.author, "created_at": self.created_at}


NETWORK_ALGORITHM = "network"


@dataclass
class Run:
    """One training of a network or a scikit-learn algorithm on a dataset with given parameters."""

    id: str
    network_id: str | None
    dataset_id: str
    status: str = RunStatus.QUEUED.value
    params: dict[str, Any] = field(default_factory=dict)
    experiment_id: str | None = None
    algorithm: str = NETWORK_ALGORITHM  # "network" or a key of GET /api/algorithms
    seed: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # {"train", "val", "test"}: latest step, test at the end
    importances: list[float] | None = None
    model_path: str | None = None
    model_sha256: str | None = None
    repro: dict[str, Any] = field(default_factory=dict)  # dataset hash, library versions: what a rerun repeats
    rerun_of: str | None = None
    total_epochs: int = 0
    start_epoch: int = 0
    epochs_done: int = 0
    progress: float = 0.0
    accuracy: float | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    error: str | None = None
    last_seq: int = 0
    owner: str | None = None
    resumed_from: str | None = None
    checkpoint_path: str | None = None
    checkpoint_sha256: str | None = None
    checkpoint_epoch: int | None = None
    version: int | None = None
    worker_pid: int | None = None
    queue: str | None = None  # the Celery queue it was sent to (None: the local runner)
    device: str | None = None  # where it trained: cpu, cuda:0 ...
    worker: str | None = None  # the worker that ran it: a Celery worker's name, or this server
    stop_requested: str | None = None  # "cancel" or "delete", seen by whichever worker has the run
    stop_reason: str | None = None  # why a completed run ended before its last epoch (early stopping)
    best_epoch: int | None = None  # with early stopping: the epoch whose weights are the run's model
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON for the API (paths stay server-side)."""
        out = _asdict(self)
        out.pop("checkpoint_path")
        out.pop("checkpoint_sha256")
        out.pop("owner")
        out.pop("model_path")
        out.pop("stop_requested")
        out["has_model"] = self.model_path is not None or self.version is not None
        out["run_id"] = out.pop("id")
        out["job_id"] = out["run_id"]
        out["epochs"] = self.total_epochs - self.start_epoch  # this run's own, as /api/training counts
        out["has_checkpoint"] = self.checkpoint_path is not None
        return out


@dataclass(frozen=True)
class RunTally:
    """How many stored runs share a status, a queue and a kind, and the epochs (or steps) they trained."""

    status: str
    queue: str | None  # None: the local runner's runs
    network: bool  # a network's runs count epochs; a scikit-learn run's count steps
    runs: int
    trained: int  # epochs (steps) done by these runs themselves, a resumed run's earlier ones left out


@dataclass
class RunEvent:
    """A stored event of a run, exactly as it was emitted."""

    run_id: str
    seq: int
    type: str
    payload: dict[str, Any]
    ts: float


@dataclass
class Token:
    """An API token's record: never the token itself, only what identifies and limits it."""

    id: str
    name: str
    prefix: str
    scope: str  # "read" | "write" | "admin"
    experiment_id: str | None = None  # limited to one experiment when set
    created_by: str | None = None
    created_at: float = 0.0
    expires_at: float | None = None
    last_used_at: float | None = None
    revoked_at: float | None = None

    def state(self, now: float) -> str:
        """"active", "expired" or "revoked"."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_dict(self, now: float) -> dict[str, Any]:
        """JSON for the API and `livetrain tokens list`."""
        return {**_asdict(self), "state": self.state(now)}


# -- the model registry (livetrain.services.registry) ------------------------------------


@dataclass
class RegisteredModel:
    """A name users predict with; its versions point at network versions or scikit-learn runs."""

    name: str
    description: str = ""
    created_at: float = 0.0
    policy: dict[str, Any] | None = None  # the retraining policy, once an admin has set one

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)


@dataclass
class ModelVersion:
    """Version `version` of a registered model: a network version (network_id + network_version) or a run."""

    model_name: str
    version: int
    network_id: str | None = None
    network_version: int | None = None
    run_id: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # the source's held-out metrics when registered
    created_by: str = "anonymous"
    created_at: float = 0.0

    @property
    def source(self) -> dict[str, Any]:
        """What serves this version."""
        if self.network_id is not None:
            return {"kind": "network", "network_id": self.network_id, "version": self.network_version}
        return {"kind": "run", "run_id": self.run_id}

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "source": self.source, "metrics": self.metrics,
                "created_by": self.created_by, "created_at": self.created_at}


@dataclass
class AliasMove:
    """One change of an alias: set, moved, rolled back or removed (`to_version` None)."""

    model_name: str
    alias: str
    from_version: int | None
    to_version: int | None
    who: str
    reason: str = ""
    at: float = 0.0
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)


@dataclass
class Prediction:
    """One row predicted by a registered model, kept so that feedback can name it."""

    id: str
    model_name: str
    version: int
    alias: str | None
    input: Any
    output: Any
    created_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)


@dataclass
class Feedback:
    """The true label of an input a model saw (by prediction id) or of a new input."""

    model_name: str
    input: Any
    label: Any
    prediction_id: str | None = None
    version: int | None = None
    predicted: Any = None
    note: str = ""
    retraining_id: str | None = None  # the retraining that used it (for training or holding out)
    created_at: float = 0.0
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)


RETRAIN_ACTIVE = ("queued", "training", "evaluating")


@dataclass
class Retraining:
    """One retraining of a model: a challenger trained on the champion's data plus feedback, then judged."""

    id: str
    model_name: str
    status: str  # queued, training, evaluating, promoted, rejected, failed
    trigger: str  # "manual" or "auto"
    champion_version: int
    metric: str
    run_id: str | None = None
    dataset_id: str | None = None  # the derived dataset the challenger trained on
    challenger_version: int | None = None
    feedback_train: int = 0
    feedback_holdout: int = 0
    champion_metrics: dict[str, Any] = field(default_factory=dict)  # {"dataset": {...}, "feedback": {...}}
    challenger_metrics: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    created_at: float = 0.0
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)


# -- vocabularies (livetrain.services.vocabularies) -----------------------------------------------


@dataclass
class Vocabulary:
    """A named set of tokens with stable ids: a project's own, or the one a text dataset was built with."""

    id: str
    name: str
    level: str | None = None  # "word" | "char"; set by the first build or dataset that uses it
    dataset_id: str | None = None  # the dataset it belongs to (deleted with it); None: a project vocabulary
    description: str = ""
    next_id: int = 5  # ids are never reused, so a deleted token's id stays free
    created_at: float = 0.0
    updated_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"vocabulary_id": self.id, **_asdict(self)}


@dataclass
class VocabularyToken:
    """One token of a vocabulary: its id, text, category and (when built from data) how often it was seen."""

    vocabulary_id: str
    token_id: int
    text: str
    category: str
    count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.token_id, "token": self.text, "category": self.category, "count": self.count}
