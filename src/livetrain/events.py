"""The Socket.IO side: event names, the payload builders of a run's events, rooms, subscriptions,
and the one emitter every event goes through.

Every side builds a run's events here: a server node, and a Celery worker that reports its own runs
(`livetrain.services.reporting`). Names and payloads are described in docs/events.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from livetrain.jobs.protocol import Epoch, Progress, Started, Step, TrainingStats, WeightsUpdate
    from livetrain.services.metrics import Metrics
    from livetrain.store.entities import Run

from flask import request, session
from flask_socketio import ConnectionRefusedError, SocketIO, join_room, leave_room

ROOM_KEYS = ("run_id", "network_id", "experiment_id")
# every client whose token may read everything is in this room; "broadcast" events go to it, so a
# client limited to one experiment hears only that experiment's rooms
EVERYONE = "everyone"

# a run's events, in the order a run goes through them
RUN_CREATED = "run_created"
TRAINING_STARTED = "training_started"
TRAINING_PROGRESS = "training_progress"
TRAINING_UPDATE = "training_update"
TRAINING_COMPLETE = "training_complete"
TRAINING_ERROR = "training_error"
TRAINING_CANCELLED = "training_cancelled"
TRAINING_INTERRUPTED = "training_interrupted"
# the monitor's samples and the run's log lines (livetrain.training.monitor, livetrain.services.run_logs)
WEIGHTS_UPDATE = "weights_update"
TRAINING_STATS = "training_stats"
RUN_LOG = "run_log"
# every run event but progress is stored, so a client can catch up with `after_seq`
STORED_EVENTS = {RUN_CREATED, TRAINING_STARTED, TRAINING_UPDATE, TRAINING_COMPLETE, TRAINING_ERROR,
                 TRAINING_CANCELLED, TRAINING_INTERRUPTED, WEIGHTS_UPDATE, TRAINING_STATS, RUN_LOG}
# resource events: every client hears them
NETWORK_CREATED, NETWORK_DELETED = "network_created", "network_deleted"
DATASET_CREATED, DATASET_DELETED, DATASET_PROGRESS = "dataset_created", "dataset_deleted", "dataset_progress"
EXPERIMENT_CREATED, EXPERIMENT_DELETED = "experiment_created", "experiment_deleted"
# the model registry's resource events (livetrain.services.registry)
MODEL_REGISTERED, MODEL_VERSION_REGISTERED = "model_registered", "model_version_registered"
MODEL_ALIAS_MOVED, MODEL_FEEDBACK_RECEIVED = "model_alias_moved", "model_feedback_received"
MODEL_RETRAIN_STARTED, MODEL_RETRAIN_EVALUATED = "model_retrain_started", "model_retrain_evaluated"
MODEL_PROMOTED, MODEL_RETRAIN_REJECTED, MODEL_RETRAIN_FAILED = (
    "model_promoted", "model_retrain_rejected", "model_retrain_failed")
SERVER_INFO = "server_info"


def run_ids(run: Run) -> dict[str, Any]:
    """The ids every event of a run starts with (`job_id`: the original server's name for it)."""
    return {"run_id": run.id, "job_id": run.id, "network_id": run.network_id,
            "experiment_id": run.experiment_id, "algorithm": run.algorithm}


def progress_percent(run: Run, done_epochs: float) -> float:
    """How far a run is, 0-100, counting only its own epochs (a resumed run starts at 0)."""
    span = max(1, run.total_epochs - run.start_epoch)
    return round(100.0 * (done_epochs - run.start_epoch) / span, 2)


def run_created(run: Run) -> dict[str, Any]:
    """A run was queued."""
    return {"status": run.status, "total_epochs": run.total_epochs, "start_epoch": run.start_epoch,
            "dataset_id": run.dataset_id, "resumed_from": run.resumed_from, "rerun_of": run.rerun_of,
            "params": run.params, "seed": run.seed, "queue": run.queue}


def training_started(run: Run, msg: Started, worker: str | None) -> dict[str, Any]:
    """A worker loaded the run's data and model."""
    return {"status": "training", "epochs": run.total_epochs - run.start_epoch, "start_epoch": run.start_epoch,
            "total_epochs": run.total_epochs, "dataset_id": run.dataset_id, "params": run.params,
            "n_train": msg.n_train, "n_val": msg.n_val, "n_test": msg.n_test, "device": msg.device,
            "worker": worker}


def training_progress(run: Run, msg: Progress) -> dict[str, Any]:
    """A mini-batch boundary inside an epoch."""
    fraction = msg.batch / max(1, msg.batches)
    return {"epoch": msg.epoch, "total_epochs": run.total_epochs, "batch": msg.batch, "batches": msg.batches,
            "train_loss": msg.train_loss, "learning_rate": msg.learning_rate,
            "progress": progress_percent(run, msg.epoch - 1 + fraction)}


def epoch_update(run: Run, msg: Epoch) -> dict[str, Any]:
    """`training_update` of a network's epoch."""
    return {"epoch": msg.epoch, "total_epochs": msg.total_epochs, "accuracy": msg.accuracy, "correct": msg.correct,
            "total": msg.total, "elapsed_time": msg.elapsed_time, "eval_time": msg.eval_time,
            "train_loss": msg.train_loss, "val_loss": msg.val_loss, "progress": progress_percent(run, msg.epoch),
            **msg.extra, "held_out_split": msg.held_out_split, "learning_rate": msg.learning_rate,
            "threads": msg.threads,
            **({"best_epoch": msg.best_epoch} if msg.best_epoch is not None else {})}


def step_update(run: Run, msg: Step) -> dict[str, Any]:
    """`training_update` of a scikit-learn run's step (`run.total_epochs` already its step count)."""
    scores = msg.held_out
    accuracy = scores.get("accuracy")
    return {"epoch": msg.step, "total_epochs": msg.total_steps, "step": msg.step, "size": msg.size,
            "size_label": msg.size_label, "accuracy": accuracy,
            "correct": round(accuracy * scores["n"]) if accuracy is not None else None, "total": scores.get("n"),
            "elapsed_time": msg.elapsed_time, "eval_time": msg.eval_time, "train_loss": msg.loss,
            "val_loss": scores.get("log_loss", scores.get("rmse")), "progress": progress_percent(run, msg.step),
            "held_out_split": msg.held_out_split, "metrics": {"train": msg.train, msg.held_out_split: scores}}


def weights_update(msg: WeightsUpdate) -> dict[str, Any]:
    """The monitor's per-layer sample (docs/events.md#weights_update)."""
    return {"step": msg.step, "epoch": msg.epoch, "layers": msg.layers, "activations": msg.activations}


def training_stats(msg: TrainingStats) -> dict[str, Any]:
    """The run's global numbers at a monitored step (docs/events.md#training_stats)."""
    return {"step": msg.step, "epoch": msg.epoch, "grad_norm": msg.grad_norm, "learning_rate": msg.learning_rate,
            "loss": msg.loss, "warnings": msg.warnings}


def training_complete(run: Run, final: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The run trained to the end (`fields`: a network's losses and version, or a scikit-learn run's
    importances and warnings)."""
    return {"status": "completed", **fields, "progress": 100, "total_epochs": run.total_epochs, "metrics": final}


def training_error(error: str) -> dict[str, Any]:
    """The run failed."""
    return {"status": "failed", "error": error}


def training_cancelled(run: Run) -> dict[str, Any]:
    """The run stopped on request; its last whole epoch's checkpoint stays."""
    return {"status": "cancelled", "epochs_done": run.epochs_done, "checkpoint_epoch": run.checkpoint_epoch,
            "total_epochs": run.total_epochs}


def training_interrupted(run: Run, error: str) -> dict[str, Any]:
    """What ran the run went away; it can be resumed from its checkpoint."""
    return {"status": "interrupted", "error": error, "checkpoint_epoch": run.checkpoint_epoch}


def room_name(key: str, value: str) -> str:
    """`run:abc`, `network:def`, `experiment:ghi`."""
    return f"{key.removesuffix('_id')}:{value}"


class Emitter:
    """Sends events to the rooms that asked for them, and to everyone when broadcasting."""

    def __init__(self, socketio: SocketIO, broadcast: bool, metrics: Metrics | None = None) -> None:
        self.socketio = socketio
        self.broadcast = broadcast
        self.metrics = metrics

    def training(self, event: str, payload: dict[str, Any]) -> None:
        """A run's event: its run, network and experiment rooms (or everyone)."""
        rooms = [room_name(key, payload[key]) for key in ROOM_KEYS if payload.get(key)]
        if self.broadcast:
            rooms.append(EVERYONE)  # a client in several of these rooms gets the event once
        self.socketio.emit(event, payload, to=rooms)
        self._count(event, rooms)

    def resource(self, event: str, payload: dict[str, Any]) -> None:
        """A resource was created or deleted: every client that may read everything hears it, and the
        experiment's room when it belongs to one (a client limited to that experiment is there)."""
        rooms = [EVERYONE]
        if payload.get("experiment_id"):
            rooms.append(room_name("experiment_id", payload["experiment_id"]))
        self.socketio.emit(event, payload, to=rooms)
        self._count(event, rooms)

    def _count(self, event: str, rooms: list[str]) -> None:
        """One more `event` emitted, delivered to as many clients of this process as are in `rooms` (each
        once). Clients of other server nodes are theirs to count."""
        if self.metrics is None:
            return
        self.metrics.events_emitted.labels(event).inc()
        server = self.socketio.server
        if server is None or rooms == []:  # a Celery worker's emitter has no clients of its own
            return
        recipients = sum(1 for _ in server.manager.get_participants("/", rooms))
        if recipients:
            self.metrics.events_delivered.labels(event).inc(recipients)


def _connect_principal(services, auth: Any):
    """Who a connecting client is: the `token` of its connect payload, else its page session;
    ConnectionRefusedError with the reason when the server needs a token and has none that works."""
    from livetrain.auth import OPEN, Unauthorized

    if not services.auth_required():
        return OPEN
    secret = auth.get("token") if isinstance(auth, dict) else None
    if secret:
        try:
            return services.tokens.authenticate(secret)
        except Unauthorized as refused:
            raise _refused(refused.message) from None
    principal = services.tokens.principal(session.get("token_id"))
    if principal is None:
        raise _refused("this server needs a token: connect with auth={'token': 'lt_...'} "
                       "(or sign in on /login for the pages)")
    return principal


def _refused(message: str) -> ConnectionRefusedError:
    # the client's connect_error gets {"message": ..., "data": {"error", "message"}}
    return ConnectionRefusedError(message, {"error": "unauthorized", "message": message})


def _may_read(services, principal, key: str, value: str) -> bool:
    """Whether a client limited to one experiment may join a room (others may join any)."""
    if not principal.experiment_id:
        return True
    if key == "experiment_id":
        return value == principal.experiment_id
    if key == "run_id":
        run = services.store.get_run(value)
        return run is not None and run.experiment_id == principal.experiment_id
    return False


def register_handlers(socketio: SocketIO, services) -> None:
    """Attach connect / subscribe / unsubscribe handlers."""
    principals: dict[str, Any] = {}  # sid -> who connected

    @socketio.on("connect")
    def on_connect(auth=None):
        principal = _connect_principal(services, auth)
        principals[request.sid] = principal
        if not principal.experiment_id:
            join_room(EVERYONE)
        socketio.emit(SERVER_INFO, services.server_info(), to=request.sid)
        services.metrics.clients.inc()

    @socketio.on("disconnect")
    def on_disconnect(reason=None):
        principals.pop(request.sid, None)
        services.metrics.clients.dec()

    @socketio.on("subscribe")
    def on_subscribe(data=None):
        key, value, error = _room_request(data)
        if error:
            return {"ok": False, "error": "validation_error", "message": error}
        principal = principals.get(request.sid)
        if principal is None or (principal.token_id and services.tokens.principal(principal.token_id) is None):
            return {"ok": False, "error": "unauthorized", "message": "the token of this connection is no longer "
                                                                     "valid: connect again with a valid one"}
        if not _may_read(services, principal, key, value):
            return {"ok": False, "error": "forbidden",
                    "message": f"token {principal.name!r} is limited to experiment {principal.experiment_id!r}"}
        if not services.exists(key, value):
            return {"ok": False, "error": "not_found", "message": f"no {key.removesuffix('_id')} {value!r}"}
        join_room(room_name(key, value))
        return {"ok": True, "room": room_name(key, value)}

    @socketio.on("unsubscribe")
    def on_unsubscribe(data=None):
        key, value, error = _room_request(data)
        if error:
            return {"ok": False, "error": "validation_error", "message": error}
        leave_room(room_name(key, value))
        return {"ok": True, "room": room_name(key, value)}


def _room_request(data: Any) -> tuple[str, str, str | None]:
    if not isinstance(data, dict):
        return "", "", "send an object with run_id, network_id or experiment_id"
    keys = [key for key in ROOM_KEYS if key in data]
    if len(keys) != 1:
        return "", "", "send exactly one of run_id, network_id or experiment_id"
    value = data[keys[0]]
    if not isinstance(value, str) or not value or len(value) > 64:
        return "", "", f"{keys[0]} must be a non-empty string"
    return keys[0], value, None
