"""Runs: start, cancel, resume, rerun, delete. What workers report goes through
`livetrain.services.reporting.RunReporter`, the single path from worker to client.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import uuid
from typing import Any

from livetrain import events
from livetrain.errors import Conflict, NotFound, ValidationError
from livetrain.jobs.protocol import Cancelled, Interrupted, NetworkJob, Runner, SklearnJob
from livetrain.jobs.template import pid_alive
from livetrain.services.common import whole_number
from livetrain.services.reporting import RunReporter
from livetrain.store import Dataset, Network, Run, RunStatus
from livetrain.store.entities import ACTIVE_STATUSES, DEFAULT_EXPERIMENT_ID, NETWORK_ALGORITHM
from livetrain.training.monitor_options import THRESHOLDS
from livetrain.training.spec import CONTROLS, NetworkSpec, parse_hyperparams

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


DEFAULT_STEPS = 10
QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
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


def training_controls(params: dict[str, Any], spec: NetworkSpec) -> dict[str, Any]:
    """The training controls a run's stored `params` ran with, as a train request names them: the schedule,
    gradient clipping, early stopping, and the monitor as the run had it (kept in its params' extra; a run
    started with "monitor": false must not be sampled when it is continued or retrained, nor one given its
    own warning thresholds warn at the defaults)."""
    out = {k: params[k] for k in CONTROLS if params.get(k) is not None}
    monitor = (params.get("extra") or {}).get("monitor") or {}
    if spec.kind == "layers" and "enabled" in monitor:
        out["monitor"] = bool(monitor["enabled"])
    if spec.kind == "layers":
        for field, option in (("monitor_every", "every"), *THRESHOLDS.items()):
            if monitor.get(option) is not None:
                out[field] = monitor[option]
    return out


def owner_token() -> str:
    """Who runs a local job: host, process, and this server instance."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RunService:
    """Creates runs, feeds them to the runner, and turns worker reports into state and events."""

    def __init__(self, *, store, artifacts, settings, reporter: RunReporter, owner: str) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        self.reporter = reporter
        self.runner: Runner | None = None  # attached by the app factory
        self.owner = owner

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
        hp = parse_hyperparams(body, spec, max_epochs=self.settings.max_epochs, n_train=dataset.n_train,
                               task=dataset.task, text_kind=(dataset.meta.get("text") or {}).get("kind"))
        source = None
        if body.get("resume"):
            source = self.store.latest_checkpointed_run(network.id)
            if source is None:
                raise Conflict(f"network {network.id} has no checkpoint to resume from; train it first")
        queue = self.queue_name(body.get("queue"), source)
        return self._queue(network, hp.to_dict(), source, queue, experiment_id=experiment_id)

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
        queue = self.queue_name(body.get("queue"))
        return self._queue_algorithm(key, dataset, params, seed, steps, experiment_id, queue)

    def _queue_algorithm(self, key: str, dataset: Dataset, params: dict[str, Any], seed: int, steps: int,
                         experiment_id: str, queue: str | None, rerun_of: str | None = None) -> Run:
        from livetrain.training.algorithms import MAX_STEPS

        run = Run(
            id=uuid.uuid4().hex[:12], network_id=None, dataset_id=dataset.id, status=RunStatus.QUEUED.value,
            params=params, experiment_id=experiment_id, algorithm=key, seed=seed, total_epochs=steps,
            owner=self._owner(), rerun_of=rerun_of, queue=queue,
            repro={**self._repro(dataset, params, seed), "steps": steps},
        )
        self.store.create_run(run)
        job = SklearnJob(
            **self._job_basics(run, dataset, f"runs/{run.id}"),
            algorithm=key,
            task=dataset.task,
            params=params,
            seed=seed,
            # the MLP steps once per epoch whatever this says; the others take 1..MAX_STEPS
            steps=min(steps, MAX_STEPS),
        )
        self._announce(run)
        self.runner.submit(run.id, job, run.queue)
        return run

    def _job_basics(self, run: Run, dataset: Dataset, artifact_dir: str) -> dict[str, Any]:
        """What every run job carries (a Celery worker replaces the paths and threads with its own)."""
        return {"run_id": run.id, "dataset_id": dataset.id, "dataset": dataset_job(dataset),
                "mnist_dir": str(self.settings.resolved_mnist_dir), "models_dir": str(self.settings.models_dir),
                "artifact_dir": artifact_dir, "torch_threads": self.settings.torch_threads(),
                "adapt_threads": self.settings.adapt_threads}

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
                                         self.queue_name(None, source), rerun_of=source.id)
        if source.resumed_from:
            raise Conflict(f"run {run_id} continued run {source.resumed_from}; rerun that one instead")
        network, _ = self._network_and_dataset(source.network_id)
        self._check_idle(network)
        self._check_same_layers(network, source, "repeated")
        return self._queue(network, source.params, None, self.queue_name(None, source), experiment_id=experiment_id,
                           rerun_of=source.id)

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
        merged.update(training_controls(source.params, spec))
        merged["mini_batch_size"] = source.params.get("batch_size")
        merged["epochs"] = max(1, source.total_epochs - (source.checkpoint_epoch or 0))
        merged.update({k: v for k, v in body.items() if k not in ("resume", "queue")})
        hp = parse_hyperparams(merged, spec, max_epochs=self.settings.max_epochs, n_train=dataset.n_train,
                               task=dataset.task, text_kind=(dataset.meta.get("text") or {}).get("kind"))
        queue = self.queue_name(body.get("queue"), source)
        return self._queue(network, hp.to_dict(), source, queue)

    @staticmethod
    def _check_same_layers(network: Network, source: Run, doing: str) -> None:
        """Refuse to continue or repeat a run of an earlier spec: the network's layers were edited since, so
        its checkpoint no longer fits them (its versions stay; a new run starts from fresh weights)."""
        trained = source.repro.get("spec")
        if trained is not None and trained != network.spec:
            raise Conflict(f"network {network.id}'s layers were edited after run {source.id}, so it cannot be "
                           f"{doing}; train the network again (from fresh weights)", code="spec_changed",
                           detail={"run_id": source.id})

    def _queue(self, network: Network, params: dict[str, Any], source: Run | None, queue: str | None, *,
               experiment_id: str | None = None, rerun_of: str | None = None) -> Run:
        if source is not None:
            self._check_same_layers(network, source, "resumed")
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
            owner=self._owner(),
            queue=queue,
            resumed_from=source.id if source else None,
            checkpoint_path=init["path"] if init else None,
            checkpoint_sha256=init["sha256"] if init else None,
            checkpoint_epoch=start_epoch if init else None,
        )
        self.store.create_run(run)
        self.store.update_network(network.id, status="training")
        job = NetworkJob(
            **self._job_basics(run, dataset, f"networks/{network.id}/runs/{run.id}"),
            network_id=network.id,
            spec=network.spec,
            hyperparams=params,
            max_parameters=self.settings.max_parameters,
            keep_checkpoints=self.settings.keep_checkpoints,
            progress_interval=self.settings.progress_interval,
            init=init,
        )
        self._announce(run)
        self.runner.submit(run.id, job, run.queue)
        return run

    def queue_name(self, value: Any, source: Run | None = None) -> str | None:
        """The queue a new run is sent to: the one named, else its source run's, else the default;
        None with the local runner, which has one queue of its own."""
        if value is None:
            value = source.queue if source and source.queue else self.settings.default_queue
        if not isinstance(value, str) or not QUEUE_NAME.fullmatch(value):
            raise ValidationError("queue must be a name of letters, digits, '-', '_' or '.' (at most 100)",
                                  detail={"field": "queue"})
        if self.runner.name == "local":
            if value != self.settings.default_queue:
                raise ValidationError(f"this server runs every run in its own worker processes (queue "
                                      f"{self.settings.default_queue!r}); queues name Celery workers "
                                      "(livetrain serve --runner celery)", detail={"field": "queue"})
            return None
        return value

    def _owner(self) -> str | None:
        # a run in a Celery queue belongs to no server: the broker holds it until a worker claims it
        return self.owner if self.runner.name == "local" else None

    def _announce(self, run: Run) -> None:
        self.reporter.metrics.runs.labels("queued").inc()
        # a resource event (every client hears of a new run), and the first of the run's history
        payload = self.reporter.report(run, events.RUN_CREATED, events.run_created(run), to_everyone=True)
        unit = "epoch" if run.algorithm == NETWORK_ALGORITHM else "step"
        count = run.total_epochs - run.start_epoch
        text = f"queued: {count} {unit}{'' if count == 1 else 's'}"
        if run.resumed_from:
            text += f", continuing run {run.resumed_from} from epoch {run.start_epoch}"
        payload = self.reporter.log(run, "info", text) or payload
        run.last_seq = payload["seq"]  # the answer to the request shows what is stored

    def cancel(self, run_id: str) -> Run:
        """Stop a queued or running run; its last whole epoch's checkpoint stays."""
        run = self.get(run_id)
        if not RunStatus(run.status).active:
            raise Conflict(f"run {run_id} has already ended ({run.status})")
        self._stop(run, "cancel")
        return self.get(run_id)

    def _stop(self, run: Run, what: str) -> None:
        """Stop an active run wherever it is. The request is written to the run first, so a worker or
        server node that has it (this one or another) sees it within a second."""
        self.store.request_stop(run.id, what)
        if self.runner.cancel(run.id):
            return
        if run.status == RunStatus.QUEUED.value and self.reporter.cancel_queued(run):
            return  # no worker had taken it: it ends here
        run = self.store.get_run(run.id)
        if run is None or not RunStatus(run.status).active:
            return
        live = self.store.live_servers(3 * self.settings.heartbeat_interval)
        if run.owner is not None and run.owner in live and run.owner != self.owner:
            return  # its worker or server stops it and reports the end
        # nobody alive has it (a runner that died without telling the store): end it here
        self.reporter.on_message(run.id, Cancelled(None))

    def delete_runs(self, runs: list[Run | None]) -> int:
        """Remove ended runs with their events and the files only they use; how many went."""
        return self.reporter.delete_runs(runs)

    def cancel_and_delete(self, run_id: str) -> None:
        """Cancel an active run; its rows and files go once its worker has stopped and the end is recorded."""
        run = self.store.get_run(run_id)
        if run is not None and RunStatus(run.status).active and self.store.request_stop(run_id, "delete"):
            self._stop(run, "delete")
            return
        self.delete_runs([self.store.get_run(run_id)])  # it ended meanwhile: nothing more will come for it

    # -- start-up and shut-down ----------------------------------------------
    def _orphaned(self, run: Run, live: set[str]) -> bool:
        """True when the server that owns `run` is gone."""
        if run.owner == self.owner:
            return False
        if run.owner is None:
            return False  # queued in a Celery broker: no server or worker has it yet
        host, _, rest = (run.owner or "").partition(":")
        pid = rest.partition(":")[0]
        if host == socket.gethostname() and pid.isdigit():
            # same machine: the process tells at once (our own pid under another token is an
            # earlier life of this process, as after a container restart)
            return int(pid) == os.getpid() or not pid_alive(int(pid))
        return run.owner not in live  # another machine: its heartbeat tells

    def mark_interrupted(self, run_ids: list[str] | None = None, *, max_age: float = 15.0) -> list[str]:
        """Mark runs whose server or worker is gone as interrupted; with ids, exactly those. The row of
        an owner taken for dead goes too: if it was only paused, its heartbeat finds the row gone and
        it stops those runs rather than train on beside a resumed copy."""
        live = self.store.live_servers(max_age) if run_ids is None else set()
        marked, gone = [], set()
        for run in self.store.active_runs():
            if run_ids is not None and run.id not in run_ids:
                continue
            if run_ids is None and not self._orphaned(run, live):
                continue
            what = "queued" if run.status == RunStatus.QUEUED.value else "running"
            who = f"worker {run.worker}" if run.worker and run.owner != self.owner and run.queue else "server"
            self.reporter.on_message(run.id, Interrupted(f"the {who} stopped while this run was {what}"))
            marked.append(run.id)
            if run_ids is None and run.owner:
                gone.add(run.owner)
        for owner in gone:
            self.store.remove_server(owner)
        return marked
