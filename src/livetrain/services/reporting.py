"""`RunReporter`: the single path from a worker's reports to stored state and emitted events.

Whatever executes a run (a local worker process read by this server, or a Celery worker that
reports its own runs), each report becomes the run's new state and event in one transaction,
and the event is emitted second, so what a client sees live and what it fetches later cannot
disagree. The events' payloads are built in `livetrain.events`.

`seq` counts a run's events, progress included. Only one reporter writes a running run (the one
that owns it); with `persist_seq` every emitted `seq` is written to the run, so a reporter that
takes over a run whose owner died (to mark it interrupted) continues without a gap or a repeat.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from livetrain import events
from livetrain.jobs.protocol import (
    Cancelled,
    Completed,
    Epoch,
    Failed,
    Interrupted,
    LogLine,
    Progress,
    RunReport,
    Started,
    Step,
    TrainingStats,
    WeightsUpdate,
)
from livetrain.services import run_logs
from livetrain.store import NetworkVersion, Run, RunEvent, RunStatus
from livetrain.store.entities import NETWORK_ALGORITHM

log = logging.getLogger(__name__)

# what a worker's report does to a run, by message class
_HANDLERS = {Started: "_on_started", Progress: "_on_progress", Epoch: "_on_epoch", Step: "_on_step",
             Completed: "_on_completed", Failed: "_on_failed", Cancelled: "_on_cancelled",
             Interrupted: "_on_interrupted", WeightsUpdate: "_on_weights", TrainingStats: "_on_training_stats",
             LogLine: "_on_log"}
# reports that need only what a run never changes (its ids, its epoch span): the run is not reloaded
_LIGHT = (Progress, WeightsUpdate, TrainingStats, LogLine)


class RunReporter:
    """Turns worker reports into run state, stored events and emitted events."""

    def __init__(self, *, store, artifacts, emitter, metrics, worker: str | None = None,
                 persist_seq: bool = False) -> None:
        self.store = store
        self.artifacts = artifacts
        self.emitter = emitter
        self.metrics = metrics
        self.worker = worker  # who runs what this reporter reports (shown in the run and its events)
        self.persist_seq = persist_seq
        self._seq: dict[str, int] = {}
        self._running: dict[str, Run] = {}  # last loaded state of runs in progress
        self._lock = threading.Lock()

    def _next_seq(self, run: Run) -> int:
        with self._lock:
            seq = max(self._seq.get(run.id, 0), run.last_seq) + 1
            self._seq[run.id] = seq
            return seq

    def report(self, run: Run, event: str, fields: dict[str, Any], run_values: dict[str, Any] | None = None,
               *, to_everyone: bool = False, expect_status: str | None = None) -> dict | None:
        """Store (when the event is kept) then emit one event of a run (to all clients if `to_everyone`).
        With `expect_status`, only if the run still has that status: None, nothing stored or emitted,
        when another node changed it first."""
        payload = {**events.run_ids(run), **fields}
        payload["seq"] = self._next_seq(run)
        # one stamp for both: a client catching up over REST must get the payload it would have been pushed
        payload["ts"] = time.time()
        if event in events.STORED_EVENTS:
            stored = self.store.record_event(RunEvent(run.id, payload["seq"], event, payload, payload["ts"]),
                                             run_values or {}, expect_status=expect_status)
            if not stored:
                self._drop(run.id)
                return None
        elif run_values or self.persist_seq:
            self.store.update_run(run.id, **(run_values or {}), **({"last_seq": payload["seq"]}
                                                                   if self.persist_seq else {}))
        (self.emitter.resource if to_everyone else self.emitter.training)(event, payload)
        return payload

    def on_message(self, run_id: str, message: RunReport) -> None:
        """Handle one report of a run (from the runner's orchestration task)."""
        run = self._running.get(run_id) if isinstance(message, _LIGHT) else None
        if run is None:
            # progress and the monitor's reports need only what a run never changes: the others reload
            run = self.store.get_run(run_id)
            if run is None:
                return
            self._running[run_id] = run
        handler = _HANDLERS.get(type(message))
        if handler is None:
            log.warning("run %s: unexpected worker message %r", run_id, message)
            return
        getattr(self, handler)(run, message)

    def log(self, run: Run, level: str, message: str, source: str = "server", data: dict[str, Any] | None = None,
            at: float | None = None) -> dict | None:
        """Store then emit one line of a run's log (`run_log`; `at`: when it happened, default now)."""
        return self.report(run, events.RUN_LOG, run_logs.line(level, message, source, at or time.time(), data))

    def _on_started(self, run: Run, msg: Started) -> None:
        self.report(run, events.TRAINING_STARTED, events.training_started(run, msg, self.worker),
                    {"status": RunStatus.RUNNING.value, "started_at": time.time(), "worker_pid": msg.pid,
                     "device": msg.device, "worker": self.worker})
        self.metrics.runs.labels("running").inc()
        unit = "epoch" if run.algorithm == NETWORK_ALGORITHM else "step"
        count = run.total_epochs - run.start_epoch
        held = f"{msg.n_val:,} validation" if msg.n_val else f"{msg.n_test:,} test"
        self.log(run, "info", f"started on {self.worker or 'a local worker'} (pid {msg.pid}, {msg.device}): "
                              f"{count} {unit}{'' if count == 1 else 's'} on {msg.n_train:,} training rows, "
                              f"scored on {held} rows", "worker")

    def _on_weights(self, run: Run, msg: WeightsUpdate) -> None:
        self.report(run, events.WEIGHTS_UPDATE, events.weights_update(msg))

    def _on_training_stats(self, run: Run, msg: TrainingStats) -> None:
        self.report(run, events.TRAINING_STATS, events.training_stats(msg))

    def _on_log(self, run: Run, msg: LogLine) -> None:
        try:
            self.log(run, msg.level, msg.message, msg.source, msg.data, msg.time or None)
        except ValueError:
            log.warning("run %s: a worker log line with an unknown level or source: %r", run.id, msg)

    def _on_progress(self, run: Run, msg: Progress) -> None:
        self.report(run, events.TRAINING_PROGRESS, events.training_progress(run, msg))

    def _on_epoch(self, run: Run, msg: Epoch) -> None:
        fields = events.epoch_update(run, msg)
        checkpoint = msg.checkpoint
        latest = {"accuracy": msg.accuracy, "loss": msg.val_loss, **msg.extra}
        self.report(run, events.TRAINING_UPDATE, fields, {
            "metrics": {msg.held_out_split: {k: v for k, v in latest.items() if v is not None}},
            "epochs_done": msg.epoch,
            "progress": fields["progress"],
            "accuracy": msg.accuracy,
            "train_loss": msg.train_loss,
            "val_loss": msg.val_loss,
            "checkpoint_path": checkpoint["path"],
            "checkpoint_sha256": checkpoint["sha256"],
            "checkpoint_epoch": checkpoint["epoch"],
        })
        self.metrics.epochs.inc()
        self.log(run, "info", epoch_line(msg), "trainer")

    def _on_step(self, run: Run, msg: Step) -> None:
        """One step of a scikit-learn run (trees grown, rows added, an MLP epoch): stored, then emitted."""
        # fewer steps than asked when there are fewer trees, stages or rows than steps
        run.total_epochs = msg.total_steps
        fields = events.step_update(run, msg)
        self.report(run, events.TRAINING_UPDATE, fields, {
            "epochs_done": msg.step, "total_epochs": run.total_epochs, "progress": fields["progress"],
            "accuracy": fields["accuracy"], "train_loss": fields["train_loss"], "val_loss": fields["val_loss"],
            "metrics": fields["metrics"],
        })
        self.metrics.steps.inc()
        self.log(run, "info", step_line(msg, fields), "trainer")

    def _on_completed(self, run: Run, msg: Completed) -> None:
        if not RunStatus(run.status).active:  # ended meanwhile (taken for lost): its end is recorded
            self._drop(run.id)
            return
        if run.algorithm != NETWORK_ALGORITHM:
            self._complete_algorithm(run, msg)
            return
        final = msg.final
        for split, scores in (run.metrics or {}).items():  # the last epoch's held-out loss, same weights
            if msg.best_epoch is None and split in final and scores.get("loss") is not None:
                final[split]["loss"] = scores["loss"]
        network = self.store.get_network(run.network_id) if run.network_id else None
        version_number = None
        if network is None:
            self._end_network_training(run)
        else:
            version_number = network.current_version + 1
            self.store.add_version(
                NetworkVersion(
                    network_id=network.id,
                    version=version_number,
                    run_id=run.id,
                    weights_path=msg.weights["path"],
                    weights_sha256=msg.weights["sha256"],
                    examples_path=msg.examples["path"],
                    examples_sha256=msg.examples["sha256"],
                    metrics={"accuracy": msg.accuracy, "val_loss": msg.val_loss, "train_loss": msg.train_loss,
                             "epochs": run.total_epochs,
                             **({"best_epoch": msg.best_epoch} if msg.best_epoch is not None else {})},
                ),
                {"current_version": version_number, "accuracy": msg.accuracy, "status": "trained"},
            )
        values: dict[str, Any] = {}
        if msg.best_epoch is not None:
            # early stopping: the run's model, scores and checkpoint (what a resume continues from) are
            # its best epoch's, not the last one's
            values = {"best_epoch": msg.best_epoch, "stop_reason": msg.stop_reason, "accuracy": msg.accuracy,
                      "val_loss": msg.val_loss, "train_loss": msg.train_loss}
            if msg.best_checkpoint:
                values.update(checkpoint_path=msg.best_checkpoint["path"],
                              checkpoint_sha256=msg.best_checkpoint["sha256"],
                              checkpoint_epoch=msg.best_checkpoint["epoch"])
        stopping = {"stop_reason": msg.stop_reason, "best_epoch": msg.best_epoch} if msg.best_epoch else {}
        # the last line of its log first: once a run has ended, its whole log is stored
        score = f"accuracy {msg.accuracy:.1%}" if msg.accuracy is not None else _loss_text(msg.val_loss, "loss")
        self.log(run, "info", f"completed: {score}" + (f", version {version_number}" if version_number else "")
                 + (f"; {msg.stop_reason}, best epoch {msg.best_epoch} kept" if msg.stop_reason else ""))
        self.report(run, events.TRAINING_COMPLETE, events.training_complete(
            run, final, accuracy=msg.accuracy, val_loss=msg.val_loss, train_loss=msg.train_loss,
            version=version_number, epochs_done=msg.epochs_done + run.start_epoch, **stopping,
        ), {"status": RunStatus.COMPLETED.value, "finished_at": time.time(), "progress": 100.0,
            "version": version_number, "metrics": final, **values,
            # the run's model is its version's weights file: the same SHA-256 the download sends
            "model_sha256": msg.weights["sha256"] if version_number else None})
        self.metrics.runs.labels("completed").inc()
        self._ended(run.id)

    def _complete_algorithm(self, run: Run, msg: Completed) -> None:
        final = msg.final
        # `accuracy` is held-out accuracy, as for networks: validation when the dataset has it, else test
        held_out = final.get("val") or final.get("test", {})
        for warning in msg.warnings:
            self.log(run, "warning", warning, "trainer")
        accuracy = held_out.get("accuracy")
        self.log(run, "info", "completed: " + (f"accuracy {accuracy:.1%}" if accuracy is not None
                                               else _loss_text(held_out.get("r2"), "r2")))
        self.report(run, events.TRAINING_COMPLETE, events.training_complete(
            run, final, accuracy=held_out.get("accuracy"), feature_importances=msg.importances,
            warnings=msg.warnings,
        ), {"status": RunStatus.COMPLETED.value, "finished_at": time.time(), "progress": 100.0,
            "epochs_done": msg.epochs_done, "accuracy": held_out.get("accuracy"),
            "metrics": final, "importances": msg.importances,
            "model_path": msg.model["path"], "model_sha256": msg.model["sha256"]})
        self.metrics.runs.labels("completed").inc()
        self._ended(run.id)

    def _end_network_training(self, run: Run) -> None:
        if not run.network_id:
            return
        network = self.store.get_network(run.network_id)
        if network is None:
            # deleted while this run was stopping: drop what its worker wrote meanwhile
            self.artifacts.delete(f"networks/{run.network_id}")
        elif network.status == "training":
            self.store.update_network(network.id, status="trained" if network.trained else "created")

    def _end(self, run: Run, event: str, fields: dict[str, Any], status: RunStatus, expect_status: str,
             line: tuple[str, str], **values: Any) -> bool:
        """Record a run's end unless another node recorded one first (guarded by `expect_status`:
        a node may end a queued run while the node that queued it cancels it too, and several nodes
        may find the same dead worker at once); False when it had. `line`: (level, message) of its log,
        written first: once a run has ended, every line of its log is stored."""
        if expect_status is not None and self._status_now(run.id) != expect_status:
            self._drop(run.id)
            return False
        self.log(run, *line)
        if self.report(run, event, fields, {"status": status.value, "finished_at": time.time(), **values},
                       expect_status=expect_status) is None:
            return False
        self._end_network_training(run)
        if status is not RunStatus.INTERRUPTED:
            self.metrics.runs.labels(status.value).inc()
        self._ended(run.id)
        return True

    def _status_now(self, run_id: str) -> str | None:
        run = self.store.get_run(run_id)
        return run.status if run is not None else None

    def _on_failed(self, run: Run, msg: Failed) -> None:
        if msg.traceback:
            log.error("run %s failed:\n%s", run.id, msg.traceback)
        self._end(run, events.TRAINING_ERROR, events.training_error(msg.error), RunStatus.FAILED, run.status,
                  ("error", f"failed: {msg.error}"), error=msg.error)

    def _on_cancelled(self, run: Run, msg: Cancelled) -> None:
        self._end(run, events.TRAINING_CANCELLED, events.training_cancelled(run), RunStatus.CANCELLED, run.status,
                  ("info", cancelled_line(run)))

    def _on_interrupted(self, run: Run, msg: Interrupted) -> None:
        self._end(run, events.TRAINING_INTERRUPTED, events.training_interrupted(run, msg.error),
                  RunStatus.INTERRUPTED, run.status, ("error", f"interrupted: {msg.error}"), error=msg.error)

    def cancel_queued(self, run: Run) -> bool:
        """End a run that no worker has taken yet; False if one took it (or it ended) meanwhile."""
        return self._end(run, events.TRAINING_CANCELLED, events.training_cancelled(run), RunStatus.CANCELLED,
                         RunStatus.QUEUED.value, ("info", "cancelled before it started"))

    def _drop(self, run_id: str) -> None:
        with self._lock:
            self._seq.pop(run_id, None)
            self._running.pop(run_id, None)

    def _ended(self, run_id: str) -> None:
        self._drop(run_id)
        run = self.store.get_run(run_id)
        if run is not None and run.stop_requested == "delete":  # deleted while it was stopping
            self.delete_runs([run])

    def delete_runs(self, runs: list[Run | None]) -> int:
        """Remove ended runs with their events and the files only they use; how many went."""
        runs = [r for r in runs if r is not None]
        for run in runs:
            if run.network_id is None:
                self.artifacts.delete(f"runs/{run.id}")
            elif run.version is None:  # checkpoints of a run that made no version
                self.artifacts.delete(f"networks/{run.network_id}/runs/{run.id}")
        return self.store.delete_runs([r.id for r in runs])


# -- log lines of a run's life -------------------------------------------------------------------

def _loss_text(value: float | None, name: str) -> str:
    return f"{name} {value:.4g}" if value is not None else f"no {name}"


def epoch_line(msg: Epoch) -> str:
    """An epoch's summary: "epoch 3/10: loss 0.3121, val loss 0.2950, accuracy 91.2% (1.3 s)"."""
    parts = [f"epoch {msg.epoch}/{msg.total_epochs}:"]
    scores = []
    if msg.train_loss is not None:
        scores.append(f"loss {msg.train_loss:.4g}")
    if msg.val_loss is not None:
        scores.append(f"{msg.held_out_split} loss {msg.val_loss:.4g}")
    if msg.accuracy is not None:
        scores.append(f"accuracy {msg.accuracy:.1%}")
    elif msg.extra.get("r2") is not None:
        scores.append(f"r2 {msg.extra['r2']:.4g}")
    parts.append(", ".join(scores) or "no scores")
    parts.append(f"({msg.elapsed_time:.1f} s)")
    return " ".join(parts)


def step_line(msg: Step, fields: dict[str, Any]) -> str:
    """A scikit-learn step's summary: "step 2/10 (40 trees): accuracy 93.1%"."""
    size = f" ({msg.size:,} {msg.size_label})" if msg.size_label not in (None, "epoch") else ""
    score = (f"accuracy {fields['accuracy']:.1%}" if fields.get("accuracy") is not None
             else _loss_text(msg.held_out.get("r2"), "r2"))
    return f"step {msg.step}/{msg.total_steps}{size}: {score} ({msg.elapsed_time:.1f} s)"


def cancelled_line(run: Run) -> str:
    """What a stopped run kept."""
    unit = "epoch" if run.algorithm == NETWORK_ALGORITHM else "step"
    done = max(0, (run.epochs_done or 0) - (run.start_epoch or 0))
    text = f"cancelled after {done} {unit}{'' if done == 1 else 's'}"
    if run.checkpoint_epoch is not None and run.algorithm == NETWORK_ALGORITHM:
        text += f", checkpoint at epoch {run.checkpoint_epoch}"
    return text
