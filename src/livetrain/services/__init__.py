"""The service layer: one `Livetrain` object per app holds the stores, the runner and the services."""

from __future__ import annotations

import logging
import time

from livetrain import __version__
from livetrain.auth import TokenService
from livetrain.config import Settings
from livetrain.services.datasets import DatasetService
from livetrain.services.experiments import ExperimentService
from livetrain.services.metrics import Metrics
from livetrain.services.models import ModelService
from livetrain.services.networks import NetworkService
from livetrain.services.registry import RegistryService
from livetrain.services.reporting import RunReporter
from livetrain.services.retraining import RetrainingService
from livetrain.services.runs import RunService, owner_token
from livetrain.services.text_datasets import TextDatasetService
from livetrain.services.vocabularies import VocabularyService
from livetrain.store import ArtifactStore, MetadataStore
from livetrain.store.entities import ACTIVE_STATUSES

log = logging.getLogger(__name__)

RETENTION_FIRST_DELAY = 60.0  # seconds after start, so a restart loop does not collect over and over
RETENTION_INTERVAL = 24 * 3600.0


class Livetrain:
    """Everything one app instance owns."""

    def __init__(self, settings: Settings, emitter, *, spawn, sleep, async_mode: str,
                 metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.async_mode = async_mode
        self.started_at = time.time()
        settings.models_dir.mkdir(parents=True, exist_ok=True)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = MetadataStore(settings.resolved_database_url)
        self.store.create_schema()
        self.tokens = TokenService(self.store)
        self.artifacts = ArtifactStore(settings.models_dir)
        self.artifacts.clear_spool()  # uploads a crash cut off
        self.metrics = metrics or Metrics.create()
        self.emitter = emitter
        self.datasets = DatasetService(store=self.store, artifacts=self.artifacts, settings=settings,
                                       emitter=emitter, spawn=spawn, sleep=sleep)
        owner = owner_token()
        self.reporter = RunReporter(store=self.store, artifacts=self.artifacts, emitter=emitter, metrics=self.metrics,
                                    worker=owner, persist_seq=settings.distributed)
        self.runs = RunService(store=self.store, artifacts=self.artifacts, settings=settings, reporter=self.reporter,
                               owner=owner)
        self.networks = NetworkService(store=self.store, artifacts=self.artifacts, settings=settings,
                                       emitter=emitter, datasets=self.datasets, runs=self.runs)
        self.vocabularies = VocabularyService(store=self.store, emitter=emitter)
        self.text_datasets = TextDatasetService(store=self.store, artifacts=self.artifacts, settings=settings,
                                                emitter=emitter, datasets=self.datasets,
                                                vocabularies=self.vocabularies, networks=self.networks)
        self.datasets.text = self.networks.text = self.text_datasets
        self.experiments = ExperimentService(store=self.store, artifacts=self.artifacts, emitter=emitter,
                                             runs=self.runs)
        self.models = ModelService(store=self.store, artifacts=self.artifacts, settings=settings,
                                   datasets=self.datasets, networks=self.networks, runs=self.runs)
        self.registry = RegistryService(store=self.store, emitter=emitter, datasets=self.datasets,
                                        networks=self.networks, models=self.models, runs=self.runs, settings=settings)
        self.registry.retraining = RetrainingService(
            registry=self.registry, store=self.store, artifacts=self.artifacts, datasets=self.datasets,
            networks=self.networks, models=self.models, runs=self.runs, emitter=emitter, spawn=spawn, sleep=sleep)
        self.runner = self._make_runner(spawn, sleep)
        self.runs.runner = self.runner
        self.datasets.prepare_in_worker = getattr(self.runner, "prepare_dataset", None)
        self.datasets.register_builtins()
        self.experiments.ensure_default()
        self.store.register_server(self.runs.owner)
        self._closed = False
        self._interrupted = False
        self._sleep = sleep
        self._reap_orphans()
        if not settings.distributed:  # alone on its database: a retraining still going was this server's
            self.registry.retraining.fail_abandoned()
        self.metrics.active_runs.set_function(lambda: self.store.count_runs(statuses=ACTIVE_STATUSES))
        self.metrics.watch(self)
        spawn(self._heartbeat)
        if settings.retention_seconds():
            spawn(self._collect_daily)
        if settings.distributed and self.runner.name == "local":
            spawn(self._watch_stop_requests)

    def _make_runner(self, spawn, sleep):
        if self.settings.runner == "celery":
            from livetrain.jobs.celery_app import CeleryRunner

            return CeleryRunner(self.settings, self.store)
        from livetrain.jobs.runner import LocalRunner

        return LocalRunner(
            max_concurrent=self.settings.max_concurrent_runs,
            warm_workers=self.settings.resolved_warm_workers,
            torch_threads=self.settings.torch_threads(),
            cancel_grace=self.settings.cancel_grace,
            worker_nice=self.settings.worker_nice,
            fork_workers=self.settings.fork_workers,
            spawn=spawn,
            sleep=sleep,
            on_message=self.reporter.on_message,
            worker_name=self.runs.owner,
            total_threads=self.settings.resolved_training_threads,
        )

    def _watch_stop_requests(self) -> None:
        """With several server nodes, a cancel may be asked of another node: it writes the request to
        the run, and the node whose worker process has the run stops it from here."""
        asked: set[str] = set()
        while not self._closed:
            self._sleep(self.settings.stop_poll_interval)
            try:
                mine = self.runner.running() + self.runner.queued()
                for run_id in self.store.stop_requests(mine):
                    if run_id not in asked:
                        asked.add(run_id)
                        self.runner.cancel(run_id)
                asked &= set(mine)
            except Exception:  # a database hiccup must not end the watch
                log.exception("looking for stop requests failed")

    def _reap_orphans(self) -> None:
        interrupted = self.runs.mark_interrupted(max_age=self._max_age)
        if interrupted:
            log.warning("marked %d run(s) interrupted: %s", len(interrupted), ", ".join(interrupted))

    def _heartbeat(self) -> None:
        """Keep this server marked alive; take over the bookkeeping of servers that died."""
        while True:
            self._sleep(self.settings.heartbeat_interval)
            if self._closed:
                return
            try:
                if not self.store.heartbeat(self.runs.owner):  # taken for dead during a long pause
                    self.store.register_server(self.runs.owner)
                self._reap_orphans()
            except Exception:  # a database hiccup must not end the heartbeat
                log.exception("heartbeat failed")

    def _collect_daily(self) -> None:
        """With `retention` set: remove what is past it a minute after start, then once a day."""
        from livetrain.services.retention import protected_by_registry, run_gc, table

        delay = RETENTION_FIRST_DELAY
        while True:
            self._sleep(delay)
            delay = RETENTION_INTERVAL
            if self._closed:
                return
            try:
                removals, freed = run_gc(self.store, self.artifacts, self.settings.retention_seconds(),
                                         protected=protected_by_registry(self.store))
                if removals:
                    log.info("retention %s removed %d item(s), freed %d bytes:\n%s", self.settings.retention,
                             len(removals), freed, table(removals))
            except Exception:  # a failed collection is retried tomorrow; the server goes on
                log.exception("retention: collecting failed")

    def auth_required(self) -> bool:
        """Whether requests need a token: `auth` on, or auto and some token exists (docs/security.md)."""
        if self.settings.auth == "auto":
            return self.tokens.any_usable()
        return self.settings.auth == "on"

    def status(self) -> dict:
        """What GET /api/status reports (the original server's three fields first)."""
        networks, active = self.store.counts()
        workers = self.workers()
        out = {
            "status": "online",
            "active_networks": networks,
            "training_jobs": active,
            "version": __version__,
            "async_mode": self.async_mode,
            "runner": self.runner.name,
            "max_concurrent_runs": self.settings.max_concurrent_runs,
            "running": len(self.runner.running()),
            "queued": len(self.runner.queued()),
            "workers": len(workers),
            "worker_slots": sum(w["concurrency"] for w in workers),
            "server_nodes": len(self.store.list_servers("server", self._max_age)),
            "message_queue": bool(self.settings.message_queue),
        }
        pool = getattr(self.runner, "pool", None)
        if pool is not None:  # this server's own worker processes
            out.update({"warm_workers": pool.warm, "idle_workers": len(pool.idle_pids()),
                        "starting_workers": pool.starting})
        out["uptime"] = round(time.time() - self.started_at, 3)
        return out

    @property
    def _max_age(self) -> float:
        """A server or worker silent for longer than this is taken for dead."""
        return 3 * self.settings.heartbeat_interval

    def workers(self) -> list[dict]:
        """What executes runs: this server's worker processes, or the live Celery workers."""
        return self.runner.workers()

    def server_info(self) -> dict:
        """Sent to every client on connect."""
        return {"version": __version__, "broadcast_events": self.emitter.broadcast, "ts": time.time()}

    def exists(self, key: str, value: str) -> bool:
        """Whether a run, network or experiment of that id exists (for subscriptions)."""
        if key == "run_id":
            return self.store.get_run(value) is not None
        if key == "network_id":
            return self.store.get_network(value) is not None
        return self.store.get_experiment(value) is not None

    def interrupt_runs(self) -> list[str]:
        """Stop the workers: runs that were queued or running are marked interrupted (resumable)
        and `training_interrupted` is emitted for each; their ids. The server calls this on its way
        down while it still delivers events; `close()` does it too, once."""
        if self._interrupted:
            return []
        self._interrupted = True
        ids = self.runner.close()
        return self.runs.mark_interrupted(ids) if ids else []

    def close(self) -> None:
        """Stop workers (see `interrupt_runs`), leave the servers table, close the database."""
        if self._closed:
            return
        self.interrupt_runs()
        self._closed = True
        self.store.remove_server(self.runs.owner)
        self.store.close()
