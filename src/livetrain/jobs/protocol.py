"""The job protocol: what a runner sends a worker process, what the worker reports back, and the
length-prefixed JSON framing both travel in.

Every runner (local processes, Celery workers) speaks it with the same worker code
(`livetrain.jobs.worker`), and every report ends in the same handler
(`livetrain.services.reporting.RunReporter`). Jobs and messages are dataclasses; on the wire
each is a JSON object whose `type` names its class.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

HEADER = struct.Struct(">I")
MAX_MESSAGE = 64 * 1024 * 1024


class ChannelClosed(Exception):
    """The other side went away."""


def send_message(sock: socket.socket, message: dict[str, Any]) -> None:
    """Write one message."""
    data = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(HEADER.pack(len(data)) + data)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ChannelClosed()
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def recv_message(sock: socket.socket) -> dict[str, Any]:
    """Read one message; raises `ChannelClosed` at end of stream."""
    (size,) = HEADER.unpack(_recv_exact(sock, HEADER.size))
    if size > MAX_MESSAGE:
        raise ChannelClosed()
    return json.loads(_recv_exact(sock, size))


# -- the wire form ---------------------------------------------------------------------------
_TYPES: dict[str, type[Wire]] = {}


class Wire:
    """A dataclass that travels as a JSON object tagged with its `type`."""

    type: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type" in cls.__dict__:
            _TYPES[cls.type] = cls

    def to_wire(self) -> dict[str, Any]:
        """The JSON object sent for this message."""
        return {"type": self.type, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}


def decode(data: dict[str, Any]) -> Any:
    """The message or job a wire object stands for; ValueError for an unknown type."""
    cls = _TYPES.get(data.get("type", ""))
    if cls is None:
        raise ValueError(f"unknown message type {data.get('type')!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class FileRef(Wire):
    """A file the worker wrote to the artifact store, with the SHA-256 its reader checks."""

    type: ClassVar[str] = "file"
    path: str
    sha256: str
    epoch: int | None = None


# -- jobs ----------------------------------------------------------------------------------
@dataclass
class RunJob(Wire):
    """What any worker needs to run one run; paths inside the artifact store are relative, so the
    job means the same on every machine that mounts the store (`models_dir` and `mnist_dir` are
    where the submitting node has them; a Celery worker uses its own)."""

    type: ClassVar[str] = "run"
    run_id: str
    dataset_id: str
    dataset: dict[str, Any]
    mnist_dir: str
    models_dir: str
    artifact_dir: str
    torch_threads: int
    device: str = "cpu"
    adapt_threads: bool = True  # use fewer threads while other processes keep cores busy


@dataclass
class NetworkJob(RunJob):
    """Train a torch network, checkpointing every epoch (`init`: the checkpoint it continues from)."""

    type: ClassVar[str] = "network_run"
    network_id: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    hyperparams: dict[str, Any] = field(default_factory=dict)
    max_parameters: int = 0
    keep_checkpoints: int = 3
    progress_interval: float = 0.25
    init: dict[str, Any] | None = None


@dataclass
class SklearnJob(RunJob):
    """Train a scikit-learn algorithm in live steps."""

    type: ClassVar[str] = "sklearn_run"
    algorithm: str = ""
    task: str = "classification"
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    steps: int = 10


@dataclass
class PrepareJob(Wire):
    """Prepare an uploaded file into a dataset's files (`livetrain.data.prepare.prepare_upload`)."""

    type: ClassVar[str] = "prepare"
    spec: dict[str, Any]


@dataclass
class Cancel(Wire):
    """Stop the current run between two mini-batches."""

    type: ClassVar[str] = "cancel"


@dataclass
class SetThreads(Wire):
    """Train with this many torch threads from the next mini-batch on (the runner shares the cores
    among the runs in progress: more runs, fewer threads each)."""

    type: ClassVar[str] = "threads"
    threads: int


@dataclass
class Exit(Wire):
    """Leave the serve loop."""

    type: ClassVar[str] = "exit"


# -- reports from a worker -----------------------------------------------------------------
@dataclass
class Ready(Wire):
    """The worker has imported what it needs and takes jobs."""

    type: ClassVar[str] = "ready"
    pid: int
    at: float


@dataclass
class Started(Wire):
    """The run's data and model are loaded; training begins (`device`: where it trains)."""

    type: ClassVar[str] = "started"
    pid: int
    start_epoch: int
    total_epochs: int
    n_train: int
    n_val: int
    n_test: int
    device: str = "cpu"


@dataclass
class Progress(Wire):
    """A mini-batch boundary inside an epoch (throttled by the job's `progress_interval`)."""

    type: ClassVar[str] = "progress"
    epoch: int
    batch: int
    batches: int
    train_loss: float | None
    learning_rate: float | None = None


@dataclass
class Epoch(Wire):
    """A network's epoch ended and its checkpoint is written."""

    type: ClassVar[str] = "epoch"
    epoch: int
    total_epochs: int
    train_loss: float | None
    val_loss: float | None
    accuracy: float | None
    correct: int | None
    total: int | None
    elapsed_time: float
    eval_time: float
    checkpoint: dict[str, Any]
    held_out_split: str = "test"
    extra: dict[str, Any] = field(default_factory=dict)
    learning_rate: float | None = None  # the rate the epoch trained with
    best_epoch: int | None = None  # with early stopping: the best epoch so far
    threads: int | None = None  # torch threads the worker trained with at the epoch's end


@dataclass
class Step(Wire):
    """A scikit-learn run's step (trees grown, rows added, an epoch) with its scores."""

    type: ClassVar[str] = "step"
    step: int
    total_steps: int
    size: int
    size_label: str
    train: dict[str, Any]
    held_out: dict[str, Any]
    held_out_split: str
    loss: float | None
    elapsed_time: float
    eval_time: float


@dataclass
class Completed(Wire):
    """The run trained to the end; its final metrics and files (weights and examples for a network,
    the joblib model for scikit-learn)."""

    type: ClassVar[str] = "completed"
    final: dict[str, Any]
    epochs_done: int
    accuracy: float | None = None
    val_loss: float | None = None
    train_loss: float | None = None
    weights: dict[str, Any] | None = None
    examples: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    importances: list[float] | None = None
    warnings: list[str] = field(default_factory=list)
    # with early stopping: the epoch whose weights are the model (its scores are accuracy and the
    # losses above), its checkpoint (a FileRef), and why the run ended before its last epoch if it did
    best_epoch: int | None = None
    best_checkpoint: dict[str, Any] | None = None
    stop_reason: str | None = None


@dataclass
class Cancelled(Wire):
    """The run stopped on request (`epochs_done` None when the worker could not say)."""

    type: ClassVar[str] = "cancelled"
    epochs_done: int | None = None


@dataclass
class Failed(Wire):
    """The run ended with an error."""

    type: ClassVar[str] = "failed"
    error: str
    traceback: str = ""


@dataclass
class Interrupted(Wire):
    """Whatever ran the run went away (a server that stopped, a worker that died); never sent by a
    worker, written by whoever finds out."""

    type: ClassVar[str] = "interrupted"
    error: str


@dataclass
class WeightsUpdate(Wire):
    """The monitor sampled the network's layers (`livetrain.training.monitor`): per-layer weight and
    gradient statistics, histograms on some samples, update ratios, activation health."""

    type: ClassVar[str] = "weights"
    step: int
    epoch: int
    layers: list[dict[str, Any]]
    activations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TrainingStats(Wire):
    """The run as a whole at a monitored step: global gradient norm, learning rate, the batch's loss,
    and warnings (exploding or vanishing gradients)."""

    type: ClassVar[str] = "training_stats"
    step: int
    epoch: int
    grad_norm: float | None
    learning_rate: float | None
    loss: float | None
    warnings: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LogLine(Wire):
    """A line of the run's log written by the worker (`source`: worker, trainer, monitor); `time` is
    when it happened, on the worker's clock."""

    type: ClassVar[str] = "log"
    level: str
    message: str
    source: str = "worker"
    time: float = 0.0
    data: dict[str, Any] | None = None


@dataclass
class StageReached(Wire):
    """A prepare job reached a stage (reading, preparing, storing)."""

    type: ClassVar[str] = "stage"
    stage: str


@dataclass
class Prepared(Wire):
    """A prepare job's result."""

    type: ClassVar[str] = "prepared"
    result: dict[str, Any]


@dataclass
class Refused(Wire):
    """A prepare job refused the user's file: the same 4xx as when the server prepares it."""

    type: ClassVar[str] = "refused"
    code: str
    status: int
    message: str
    detail: dict[str, Any] | None = None


RunReport = (Started | Progress | Epoch | Step | WeightsUpdate | TrainingStats | LogLine | Completed | Cancelled
             | Failed | Interrupted)
ENDINGS = (Completed, Cancelled, Failed, Interrupted)


class Runner(Protocol):
    """What executes runs: `LocalRunner` (worker processes of this node) and `CeleryRunner`
    (Celery workers on any machine). Both hand every report to the same `RunReporter`."""

    name: str

    def submit(self, run_id: str, job: RunJob, queue: str | None = None) -> None:
        """Queue a run; it starts when a worker is free."""

    def cancel(self, run_id: str) -> bool:
        """Ask a queued or running run to stop; False if no worker of this runner has it."""

    def queued(self) -> list[str]:
        """Run ids waiting for a worker."""

    def running(self) -> list[str]:
        """Run ids on a worker."""

    def workers(self) -> list[dict[str, Any]]:
        """The workers this runner knows of (`GET /api/workers`)."""

    def warm_up(self) -> None:
        """Get workers ready before the first run."""

    def close(self) -> list[str]:
        """Stop; the ids of runs that were queued or running here."""
