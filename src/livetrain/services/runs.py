"""Runs: start, cancel, resume, and `report()`, the single path from worker to client.

Every event of a run is stored first (with the run's new state, in one transaction) and
emitted second, so what a client sees live and what it fetches later cannot disagree.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from livetrain.errors import Conflict, NotFound, ValidationError
from livetrain.services.common import whole_number
from livetrain.store import Dataset, Network, NetworkVersion, Run, RunEvent, RunStatus
from livetrain.store.entities import ACTIVE_STATUSES, DEFAULT_EXPERIMENT_ID, NETWORK_ALGORITHM
from livetrain.training.spec import NetworkSpec, parse_hyperparams

log = logging.getLogger(__name__)

# what GET /api/training/{job_id} says, as the original server did
LEGACY_STATUS = {
    RunStatus.QUEUED.value: "pending",
    RunStatus.RUNNING.value: "training",
    RunStatus.COMPLETED.value: "completed",
    RunStatus.FAILED.value: "failed",
    RunStatus.CANCELLED.value: "cancelled",
    RunStatus.INTERRUPTED.value: "failed",
}
STORED_EVENTS = {"run_created", "training_started", "training_update", "training_complete", "training_error",
                 "training_cancelled", "training_interrupted"}


DEFAULT_STEPS = 10
LIBRARIES = ("numpy", "scikit-learn", "torch", "pandas", "joblib")


def library_versions() -> dict[str, str]:
    """The versions a run's numbers depend on, recorded with the run."""
    import platform
    from importlib import metadata

    from livetrain import __version__

    versions = {"python": platform.python_version(), "livetrain": __version__}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def dataset_job(dataset: Dataset) -> dict[str, Any]:
    """What a worker needs to load a dataset's arrays (files included, which the API never shows)."""
    return {**dataset.to_dict(), "files": dataset.files}


def owner_token() -> str:
    """Who runs a local job: host, process, and this server instance."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunService:
    """Creates runs, feeds them to the runner, and turns worker reports into state and events."""

    def __init__(self, *, store, artifacts, settings, emitter, metrics) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        self.emitter = emitter
        self.metrics = metrics
        self.runner = None  # attached by the app factory
        self.owner = owner_token()
        self._seq: dict[str, int] = {}
        self._running: dict[str, Run] = {}  # last loaded state of runs in progress
        self._discard: set[str] = set()  # runs to delete as soon as their end is recorded
        self._lock = threading.Lock()

    # -- queries ------------------------------------------------------------
    def get(self, run_id: str) -> Run:
        """The run, or 404."""
        run = self.store.get_run(run_id)
        if run is None:
            raise NotFound(f"no run {run_id!r}")
        return run

    def describe(self, run_id: str) -> dict[str, Any]:
        """The run as the API shows it: feature importances, if any, named by feature and largest first."""
        run = self.get(run_id)
        out = run.to_dict()
        if run.importances:
            dataset = self.store.get_dataset(run.dataset_id)
            names = (dataset.meta.get("feature_names") if dataset else None) or [
                f"x{i}" for i in range(len(run.importances))]
            out["feature_importances"] = sorted(
                ({"feature": n, "importance": v} for n, v in zip(names, run.importances)),
                key=lambda item: -item["importance"])
        return out

    def active_for_network(self, network_id: str) -> Run | None:
        """The queued or running run of a network, if any."""
        runs = self.store.list_runs(network_id=network_id, statuses=ACTIVE_STATUSES, limit=1)
        return runs[0] if runs else None

    # -- commands -----------------------------------------------------------
    def _network_and_dataset(self, network_id: str | None):
        network = self.store.get_network(network_id) if network_id else None
        if network is None:
            raise NotFound(f"no network {network_id!r}")
        dataset = self.store.get_dataset(network.dataset_id)
        if dataset is None:
            raise NotFound(f"network {network.id} is bound to dataset {network.dataset_id!r}, which is gone")
        return network, dataset

    def _check_idle(self, network: Network) -> None:
        busy = self.active_for_network(network.id)
        if busy is not None:
            raise Conflict(f"network {network.id} is already training (run {busy.id}); "
                           "cancel it first or wait for it to end", detail={"run_id": busy.id})

    def experiment_id(self, value: Any) -> str:
        """The experiment a new run goes to: the one named (it must exist), else the default."""
        if value is None:
            return DEFAULT_EXPERIMENT_ID
        if not isinstance(value, str) or self.store.get_experiment(value) is None:
            raise NotFound(f"no experiment {value!r}", detail={"field": "experiment_id"})
        return value

    def _experiment_of(self, source: Run) -> str:
        """Where a run that continues or repeats `source` goes: its experiment, or the default if that is gone."""
        if source.experiment_id and self.store.get_experiment(source.experiment_id) is not None:
            return source.experiment_id
        return DEFAULT_EXPERIMENT_ID

    def start(self, network_id: str, body: dict[str, Any]) -> Run:
        """Queue a run of a network (from fresh weights, or its latest checkpoint with `resume`)."""
        network, dataset = self._network_and_dataset(network_id)
        experiment_id = self.experiment_id(body.get("experiment_id"))
        self._check_idle(network)
        spec = NetworkSpec.from_dict(network.spec)
        hp = parse_hyperparams(body, spec, max_epochs=self.settings.max_epochs, n_train=dataset.n_train)
        source = None
        if body.get("resume"):
            source = self.store.latest_checkpointed_run(network.id)
            if source is None:
                raise Conflict(f"network {network.id} has no checkpoint to resume from; train it first")
        return self._queue(network, hp.to_dict(), source, experiment_id=experiment_id)

    def start_algorithm(self, experiment_id: str, body: dict[str, Any]) -> Run:
        """Queue a run of a scikit-learn algorithm on a dataset, in an experiment."""
        from livetrain.training.algorithms import get_algorithm, resolve_params, resolve_steps

        if body.get("network_id") is not None:
            return self.start(body["network_id"], {**body, "experiment_id": experiment_id})
        experiment_id = self.experiment_id(experiment_id)
        key = body.get("algorithm")
        if not isinstance(key, str):
            raise ValidationError("send 'algorithm' (see GET /api/algorithms) or 'network_id'",
                                  code="unknown_algorithm", detail={"field": "algorithm"})
        algorithm = get_algorithm(key)
        dataset_id = body.get("dataset_id") or body.get("dataset")
        if not isinstance(dataset_id, str):
            raise ValidationError("send 'dataset_id' (see GET /api/datasets)", code="bad_parameter",
                                  detail={"field": "dataset_id"})
        dataset = self.store.get_dataset(dataset_id)
        if dataset is None:
            raise NotFound(f"no dataset {dataset_id!r}", detail={"field": "dataset_id"})
        params = resolve_params(key, dataset.task, body.get("params"))
        if dataset.task == "regression" and dataset.meta.get("n_outputs", 1) > 1 and not algorithm.multi_output:
            raise ValidationError(f"{key} does not predict several targets at once; dataset {dataset.id} has "
                                  f"{dataset.meta['n_outputs']}", code="unsupported_task")
        seed = whole_number(body.get("seed", 0), "seed", 0, 2**31 - 1)
        steps = int(params["epochs"]) if algorithm.strategy == "epochs" else resolve_steps(
            body.get("steps", DEFAULT_STEPS))
        return self._queue_algorithm(key, dataset, params, seed, steps, experiment_id)

    def _queue_algorithm(self, key: str, dataset: Dataset, params: dict[str, Any], seed: int, steps: int,
                         experiment_id: str, rerun_of: str | None = None) -> Run:
        from livetrain.training.algorithms import MAX_STEPS

        run = Run(
            id=uuid.uuid4().hex[:12], network_id=None, dataset_id=dataset.id, status=RunStatus.QUEUED.value,
            params=params, experiment_id=experiment_id, algorithm=key, seed=seed, total_epochs=steps,
            owner=self.owner, rerun_of=rerun_of,
            repro={**self._repro(dataset, params, seed), "steps": steps},
        )
        self.store.create_run(run)
        job = {
            "kind": "sklearn",
            "run_id": run.id,
            "dataset_id": dataset.id,
            "dataset": dataset_job(dataset),
            "mnist_dir": str(self.settings.resolved_mnist_dir),
            "models_dir": str(self.settings.models_dir),
            "artifact_dir": f"runs/{run.id}",
            "algorithm": key,
            "task": dataset.task,
            "params": params,
            "seed": seed,
            # the MLP steps once per epoch whatever this says; the others take 1..MAX_STEPS
            "steps": min(steps, MAX_STEPS),
            "torch_threads": self.settings.torch_threads(),
        }
        self._announce(run)
        self.runner.submit(run.id, job)
        return run

    def _repro(self, dataset: Dataset, params: dict[str, Any], seed: int | None) -> dict[str, Any]:
        return {"dataset_id": dataset.id, "dataset_sha256": dataset.content_sha256, "params": params, "seed": seed,
                "versions": library_versions()}

    def rerun(self, run_id: str) -> Run:
        """Repeat a finished run: same data, parameters and seed, so the same numbers."""
        source = self.get(run_id)
        if RunStatus(source.status).active:
            raise Conflict(f"run {run_id} is still {source.status}; rerun it once it has ended")
        dataset = self.store.get_dataset(source.dataset_id)
        if dataset is None:
            raise Conflict(f"run {run_id} trained on dataset {source.dataset_id!r}, which has been deleted")
        recorded = source.repro.get("dataset_sha256")
        if recorded and dataset.content_sha256 and recorded != dataset.content_sha256:
            raise Conflict(f"dataset {dataset.id} no longer holds the data run {run_id} trained on")
        experiment_id = self._experiment_of(source)
        if source.algorithm != NETWORK_ALGORITHM:
            return self._queue_algorithm(source.algorithm, dataset, source.params, source.seed or 0,
                                         source.repro.get("steps", source.total_epochs), experiment_id,
                                         rerun_of=source.id)
        if source.resumed_from:
            raise Conflict(f"run {run_id} continued run {source.resumed_from}; rerun that one instead")
        network, _ = self._network_and_dataset(source.network_id)
        self._check_idle(network)
        return self._queue(network, source.params, None, experiment_id=experiment_id, rerun_of=source.id)

    def resume(self, run_id: str, body: dict[str, Any]) -> Run:
        """Continue a finished run from its own last checkpoint (by default for its remaining epochs)."""
        source = self.get(run_id)
        if RunStatus(source.status).active:
            raise Conflict(f"run {run_id} is still {source.status}")
        if source.algorithm != NETWORK_ALGORITHM:
            raise Conflict(f"run {run_id} is a scikit-learn run ({source.algorithm}); those train in one go "
                           "and cannot be resumed: rerun it, or start a run with more estimators")
        if source.checkpoint_path is None:
            raise Conflict(f"run {run_id} left no checkpoint to resume from")
        network, dataset = self._network_and_dataset(source.network_id)
        self._check_idle(network)
        spec = NetworkSpec.from_dict(network.spec)
        merged = {k: v for k, v in source.params.items() if k in ("learning_rate", "optimizer", "momentum",
                                                                     "weight_decay", "seed")}
        merged["mini_batch_size"] = source.params.get("batch_size")
        merged["epochs"] = max(1, source.total_epochs - (source.checkpoint_epoch or 0))
        merged.update({k: v for k, v in body.items() if k != "resume"})
        hp = parse_hyperparams(merged, spec, max_epochs=self.settings.max_epochs, n_train=dataset.n_train)
        return self._queue(network, hp.to_dict(), source)

    def _queue(self, network: Network, params: dict[str, Any], source: Run | None, *,
               experiment_id: str | None = None, rerun_of: str | None = None) -> Run:
        init = {"path": source.checkpoint_path, "sha256": source.checkpoint_sha256} if source else None
        start_epoch = (source.checkpoint_epoch or 0) if source else 0
        dataset = self.store.get_dataset(network.dataset_id)
        if experiment_id is None:
            experiment_id = self._experiment_of(source) if source else DEFAULT_EXPERIMENT_ID
        run = Run(
            id=uuid.uuid4().hex[:12],
            network_id=network.id,
            dataset_id=network.dataset_id,
            status=RunStatus.QUEUED.value,
            params=params,
            experiment_id=experiment_id,
            seed=params.get("seed"),
            rerun_of=rerun_of,
            repro={**self._repro(dataset, params, params.get("seed")), "spec": network.spec},
            total_epochs=start_epoch + params["epochs"],
            start_epoch=start_epoch,
            epochs_done=start_epoch,
            owner=self.owner,
            resumed_from=source.id if source else None,
            checkpoint_path=init["path"] if init else None,
            checkpoint_sha256=init["sha256"] if init else None,
            checkpoint_epoch=start_epoch if init else None,
        )
        self.store.create_run(run)
        self.store.update_network(network.id, status="training")
        job = {
            "run_id": run.id,
            "network_id": network.id,
            "dataset_id": network.dataset_id,
            "dataset": dataset_job(dataset),
            "mnist_dir": str(self.settings.resolved_mnist_dir),
            "models_dir": str(self.settings.models_dir),
            "artifact_dir": f"networks/{network.id}/runs/{run.id}",
            "spec": network.spec,
            "hyperparams": params,
            "max_parameters": self.settings.max_parameters,
            "keep_checkpoints": self.settings.keep_checkpoints,
            "progress_interval": self.settings.progress_interval,
            "torch_threads": self.settings.torch_threads(),
            "init": init,
        }
        self._announce(run)
        self.runner.submit(run.id, job)
        return run

    def _announce(self, run: Run) -> None:
        self.metrics.runs.labels("queued").inc()
        # a resource event (every client hears of a new run), and the first of the run's history
        payload = self.report(run, "run_created", {
            "status": run.status, "total_epochs": run.total_epochs, "start_epoch": run.start_epoch,
            "dataset_id": run.dataset_id, "resumed_from": run.resumed_from, "rerun_of": run.rerun_of,
            "params": run.params, "seed": run.seed}, to_everyone=True)
        run.last_seq = payload["seq"]  # the answer to the request shows what is stored

    def cancel(self, run_id: str) -> Run:
        """Stop a queued or running run; its last whole epoch's checkpoint stays."""
        run = self.get(run_id)
        if not RunStatus(run.status).active:
            raise Conflict(f"run {run_id} has already ended ({run.status})")
        if not self.runner.cancel(run_id):
            # not ours (a runner that died without telling the store): end it here
            self.on_message(run_id, {"type": "cancelled", "epochs_done": None})
        return self.get(run_id)

    # -- the report path ------------------------------------------------------
    def _ids(self, run: Run) -> dict[str, Any]:
        return {"run_id": run.id, "job_id": run.id, "network_id": run.network_id,
                "experiment_id": run.experiment_id, "algorithm": run.algorithm}

    def _next_seq(self, run: Run) -> int:
        with self._lock:
            seq = max(self._seq.get(run.id, 0), run.last_seq) + 1
            self._seq[run.id] = seq
            return seq

    def report(self, run: Run, event: str, fields: dict[str, Any], run_values: dict[str, Any] | None = None,
               *, to_everyone: bool = False) -> dict:
        """Store (when the event is kept) then emit one event of a run (to all clients if `to_everyone`)."""
        payload = {**self._ids(run), **fields}
        payload["seq"] = self._next_seq(run)
        # one stamp for both: a client catching up over REST must get the payload it would have been pushed
        payload["ts"] = time.time()
        if event in STORED_EVENTS:
            self.store.record_event(RunEvent(run.id, payload["seq"], event, payload, payload["ts"]),
                                    run_values or {})
        elif run_values:
            self.store.update_run(run.id, **run_values)
        (self.emitter.resource if to_everyone else self.emitter.training)(event, payload)
        return payload

    def on_message(self, run_id: str, message: dict[str, Any]) -> None:
        """Handle one report from a worker (called by the runner's orchestration task)."""
        run = self._running.get(run_id) if message["type"] == "progress" else None
        if run is None:
            # progress needs only what a run never changes (ids, epoch span): the others reload
            run = self.store.get_run(run_id)
            if run is None:
                return
            self._running[run_id] = run
        handler = getattr(self, f"_on_{message['type']}", None)
        if handler is None:
            log.warning("run %s: unknown worker message %r", run_id, message.get("type"))
            return
        handler(run, message)

    def _progress(self, run: Run, done_epochs: float) -> float:
        span = max(1, run.total_epochs - run.start_epoch)
        return round(100.0 * (done_epochs - run.start_epoch) / span, 2)

    def _on_started(self, run: Run, msg: dict[str, Any]) -> None:
        now = time.time()
        self.report(run, "training_started", {
            "status": "training",
            "epochs": run.total_epochs - run.start_epoch,
            "start_epoch": run.start_epoch,
            "total_epochs": run.total_epochs,
            "dataset_id": run.dataset_id,
            "params": run.params,
            "n_train": msg.get("n_train"),
            "n_val": msg.get("n_val", 0),
            "n_test": msg.get("n_test"),
        }, {"status": RunStatus.RUNNING.value, "started_at": now, "worker_pid": msg.get("pid")})
        self.metrics.runs.labels("running").inc()

    def _on_progress(self, run: Run, msg: dict[str, Any]) -> None:
        fraction = msg["batch"] / max(1, msg["batches"])
        self.report(run, "training_progress", {
            "epoch": msg["epoch"],
            "total_epochs": run.total_epochs,
            "batch": msg["batch"],
            "batches": msg["batches"],
            "train_loss": msg.get("train_loss"),
            "progress": self._progress(run, msg["epoch"] - 1 + fraction),
        })

    def _on_epoch(self, run: Run, msg: dict[str, Any]) -> None:
        progress = self._progress(run, msg["epoch"])
        fields = {
            "epoch": msg["epoch"],
            "total_epochs": msg["total_epochs"],
            "accuracy": msg["accuracy"],
            "correct": msg["correct"],
            "total": msg["total"],
            "elapsed_time": msg["elapsed_time"],
            "eval_time": msg["eval_time"],
            "train_loss": msg["train_loss"],
            "val_loss": msg["val_loss"],
            "progress": progress,
            **msg.get("extra", {}),
        }
        checkpoint = msg["checkpoint"]
        held_out = msg.get("held_out_split", "test")
        latest = {"accuracy": msg["accuracy"], "loss": msg["val_loss"], **msg.get("extra", {})}
        fields["held_out_split"] = held_out
        self.report(run, "training_update", fields, {
            "metrics": {held_out: {k: v for k, v in latest.items() if v is not None}},
            "epochs_done": msg["epoch"],
            "progress": progress,
            "accuracy": msg["accuracy"],
            "train_loss": msg["train_loss"],
            "val_loss": msg["val_loss"],
            "checkpoint_path": checkpoint["path"],
            "checkpoint_sha256": checkpoint["sha256"],
            "checkpoint_epoch": checkpoint["epoch"],
        })
        self.metrics.epochs.inc()

    def _on_step(self, run: Run, msg: dict[str, Any]) -> None:
        """One step of a scikit-learn run (trees grown, rows added, an MLP epoch): stored, then emitted."""
        held_out = msg["held_out_split"]
        scores = msg[held_out]
        # fewer steps than asked when there are fewer trees, stages or rows than steps
        run.total_epochs = msg["total_steps"]
        progress = self._progress(run, msg["step"])
        accuracy = scores.get("accuracy")
        fields = {
            "epoch": msg["step"],
            "total_epochs": msg["total_steps"],
            "step": msg["step"],
            "size": msg["size"],
            "size_label": msg["size_label"],
            "accuracy": accuracy,
            "correct": round(accuracy * scores["n"]) if accuracy is not None else None,
            "total": scores.get("n"),
            "elapsed_time": msg["elapsed_time"],
            "eval_time": msg["eval_time"],
            "train_loss": msg.get("loss"),
            "val_loss": scores.get("log_loss", scores.get("rmse")),
            "progress": progress,
            "held_out_split": held_out,
            "metrics": {"train": msg["train"], held_out: scores},
        }
        self.report(run, "training_update", fields, {
            "epochs_done": msg["step"], "total_epochs": run.total_epochs, "progress": progress, "accuracy": accuracy,
            "train_loss": fields["train_loss"], "val_loss": fields["val_loss"],
            "metrics": {"train": msg["train"], held_out: scores},
        })
        self.metrics.epochs.inc()

    def _on_completed(self, run: Run, msg: dict[str, Any]) -> None:
        if run.algorithm != NETWORK_ALGORITHM:
            self._complete_algorithm(run, msg)
            return
        final = msg.get("final", {})
        for split, scores in (run.metrics or {}).items():  # the last epoch's held-out loss, same weights
            if split in final and scores.get("loss") is not None:
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
                    weights_path=msg["weights"]["path"],
                    weights_sha256=msg["weights"]["sha256"],
                    examples_path=msg["examples"]["path"],
                    examples_sha256=msg["examples"]["sha256"],
                    metrics={"accuracy": msg.get("accuracy"), "val_loss": msg.get("val_loss"),
                             "train_loss": msg.get("train_loss"), "epochs": run.total_epochs},
                ),
                {"current_version": version_number, "accuracy": msg.get("accuracy"), "status": "trained"},
            )
        self.report(run, "training_complete", {
            "status": "completed",
            "accuracy": msg.get("accuracy"),
            "val_loss": msg.get("val_loss"),
            "train_loss": msg.get("train_loss"),
            "progress": 100,
            "version": version_number,
            "total_epochs": run.total_epochs,
            "metrics": final,
        }, {"status": RunStatus.COMPLETED.value, "finished_at": time.time(), "progress": 100.0,
            "version": version_number, "metrics": final,
            # the run's model is its version's weights file: the same SHA-256 the download sends
            "model_sha256": msg["weights"]["sha256"] if version_number else None})
        self.metrics.runs.labels("completed").inc()
        self._forget(run.id)

    def _complete_algorithm(self, run: Run, msg: dict[str, Any]) -> None:
        final = msg["final"]
        # `accuracy` is held-out accuracy, as for networks: validation when the dataset has it, else test
        held_out = final.get("val") or final.get("test", {})
        self.report(run, "training_complete", {
            "status": "completed",
            "accuracy": held_out.get("accuracy"),
            "progress": 100,
            "total_epochs": run.total_epochs,
            "metrics": final,
            "feature_importances": msg.get("importances"),
            "warnings": msg.get("warnings", []),
        }, {"status": RunStatus.COMPLETED.value, "finished_at": time.time(), "progress": 100.0,
            "epochs_done": msg.get("steps_done", run.total_epochs), "accuracy": held_out.get("accuracy"),
            "metrics": final, "importances": msg.get("importances"),
            "model_path": msg["model"]["path"], "model_sha256": msg["model"]["sha256"]})
        self.metrics.runs.labels("completed").inc()
        self._forget(run.id)

    def _end_network_training(self, run: Run) -> None:
        if not run.network_id:
            return
        network = self.store.get_network(run.network_id)
        if network is None:
            # deleted while this run was stopping: drop what its worker wrote meanwhile
            self.artifacts.delete(f"networks/{run.network_id}")
        elif network.status == "training":
            self.store.update_network(network.id, status="trained" if network.trained else "created")

    def _on_failed(self, run: Run, msg: dict[str, Any]) -> None:
        if msg.get("traceback"):
            log.error("run %s failed:\n%s", run.id, msg["traceback"])
        self.report(run, "training_error", {"status": "failed", "error": msg["error"]},
                    {"status": RunStatus.FAILED.value, "error": msg["error"], "finished_at": time.time()})
        self._end_network_training(run)
        self.metrics.runs.labels("failed").inc()
        self._forget(run.id)

    def _on_cancelled(self, run: Run, msg: dict[str, Any]) -> None:
        self.report(run, "training_cancelled", {
            "status": "cancelled",
            "epochs_done": run.epochs_done,
            "checkpoint_epoch": run.checkpoint_epoch,
            "total_epochs": run.total_epochs,
        }, {"status": RunStatus.CANCELLED.value, "finished_at": time.time()})
        self._end_network_training(run)
        self.metrics.runs.labels("cancelled").inc()
        self._forget(run.id)

    def _forget(self, run_id: str) -> None:
        with self._lock:
            self._seq.pop(run_id, None)
            self._running.pop(run_id, None)
            discard = run_id in self._discard
            self._discard.discard(run_id)
        if discard:
            self.delete_runs([self.store.get_run(run_id)])

    def delete_runs(self, runs: list[Run | None]) -> int:
        """Remove ended runs with their events and the files only they use; how many went."""
        runs = [r for r in runs if r is not None]
        for run in runs:
            if run.network_id is None:
                self.artifacts.delete(f"runs/{run.id}")
            elif run.version is None:  # checkpoints of a run that made no version
                self.artifacts.delete(f"networks/{run.network_id}/runs/{run.id}")
        return self.store.delete_runs([r.id for r in runs])

    def cancel_and_delete(self, run_id: str) -> None:
        """Cancel an active run; its rows and files go once its worker has stopped and the end is recorded."""
        with self._lock:
            self._discard.add(run_id)
        run = self.store.get_run(run_id)
        if run is not None and RunStatus(run.status).active:
            if not self.runner.cancel(run_id):  # not ours: end it here (which deletes it)
                self.on_message(run_id, {"type": "cancelled", "epochs_done": None})
            return
        with self._lock:  # it ended meanwhile: nothing more will come for it
            self._discard.discard(run_id)
        self.delete_runs([run])

    # -- start-up and shut-down ----------------------------------------------
    def _orphaned(self, run: Run, live: set[str]) -> bool:
        """True when the server that owns `run` is gone."""
        if run.owner == self.owner:
            return False
        host, _, rest = (run.owner or "").partition(":")
        pid = rest.partition(":")[0]
        if host == socket.gethostname() and pid.isdigit():
            # same machine: the process tells at once (our own pid under another token is an
            # earlier life of this process, as after a container restart)
            return int(pid) == os.getpid() or not _pid_alive(int(pid))
        return run.owner not in live  # another machine: its heartbeat tells

    def mark_interrupted(self, run_ids: list[str] | None = None, *, max_age: float = 15.0) -> list[str]:
        """Mark runs whose server is gone as interrupted; with ids, exactly those."""
        live = self.store.live_servers(max_age) if run_ids is None else set()
        marked = []
        for run in self.store.active_runs():
            if run_ids is not None and run.id not in run_ids:
                continue
            if run_ids is None and not self._orphaned(run, live):
                continue
            message = ("the server stopped while this run was "
                       f"{'queued' if run.status == RunStatus.QUEUED.value else 'running'}")
            self.report(run, "training_interrupted", {
                "status": "interrupted",
                "error": message,
                "checkpoint_epoch": run.checkpoint_epoch,
            }, {"status": RunStatus.INTERRUPTED.value, "error": message, "finished_at": time.time()})
            self._end_network_training(run)
            self._forget(run.id)
            marked.append(run.id)
        return marked
