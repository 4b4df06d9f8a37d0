"""Runs on Celery workers: `CeleryRunner` (a server node's side) and `WorkerRuntime` (`livetrain worker`).

A server node sends each run as one task, named by its run id, to the run's queue on the broker.
A worker takes it, claims the run in the database (a conditional update: a run never trains
twice at once), and executes it exactly as a local server would: a warm worker process of its
own (`livetrain.jobs.worker`) trains and reports over the same protocol, and the worker hands
every report to the same `RunReporter`, which writes PostgreSQL and emits through the Socket.IO
message queue, so every server node delivers it.

Cancellation is a flag in the run's row that the worker looks at twice a second (not a Celery
revoke, which may hit another task); a dead worker is found by its heartbeat row, not by the
broker (a Redis broker redelivers an unacknowledged task only after its visibility timeout).
See docs/architecture.md, "Scale-out".
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from celery import Celery

from livetrain.config import Settings, redact_url
from livetrain.jobs.protocol import Cancelled, ChannelClosed, Failed, Interrupted, RunJob, decode
from livetrain.store.entities import ACTIVE_STATUSES

log = logging.getLogger(__name__)
TASK_NAME = "livetrain.run"


def make_celery(settings: Settings) -> Celery:
    """The Celery app both sides use: JSON only (a task is never a pickle), one task reserved per
    free slot and acknowledged when it ends, no result backend (results are in the database)."""
    app = Celery("livetrain", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=settings.default_queue,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_redirect_stdouts=False,
    )
    app.task(name=TASK_NAME, bind=True)(_run_task)
    return app


def _run_task(task, wire: dict[str, Any]) -> None:
    """The one task: execute a run on this worker."""
    if WorkerRuntime.current is None:
        raise RuntimeError("livetrain task outside `livetrain worker`")
    WorkerRuntime.current.execute(decode(wire))


class CeleryRunner:
    """A server node's side: sends runs to the broker; the database says what is queued and running."""

    name = "celery"

    def __init__(self, settings: Settings, store) -> None:
        self.settings = settings
        self.store = store
        self.app = make_celery(settings)

    def submit(self, run_id: str, job: RunJob, queue: str | None = None) -> None:
        """Send a run to its queue; the first free worker listening on it takes it."""
        self.app.send_task(TASK_NAME, args=[job.to_wire()], queue=queue or self.settings.default_queue,
                           task_id=run_id)

    def cancel(self, run_id: str) -> bool:
        """Nothing runs here: the run's stop request (written by the caller) reaches its worker."""
        return False

    def _active(self, status: str) -> list[str]:
        return [r.id for r in self.store.list_runs(statuses=[status], newest_first=False, limit=10_000)
                if r.queue is not None]

    def queued(self) -> list[str]:
        """Runs in a broker queue, not yet taken by a worker."""
        return self._active("queued")

    def running(self) -> list[str]:
        """Runs a worker has."""
        return self._active("running")

    def workers(self) -> list[dict[str, Any]]:
        """The live workers, from their heartbeats."""
        return [_public(w) for w in self.store.list_servers("worker", 3 * self.settings.heartbeat_interval)]

    def warm_up(self) -> None:
        """Workers warm themselves."""

    def close(self) -> list[str]:
        """A server node stopping leaves the runs to their workers."""
        return []


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "owner"}
    out["kind"] = "celery"
    return out


@dataclass
class _Active:
    handle: Any = None
    stop: str | None = None  # the stop request seen for it


class WorkerRuntime:
    """What one `livetrain worker` process holds: its settings, the database, the reporter, warm
    worker processes, and the heartbeat and stop-request watchers."""

    current: WorkerRuntime | None = None

    def __init__(self, settings: Settings, *, name: str, queues: list[str], concurrency: int, device: str,
                 threads: int | None = None) -> None:
        from livetrain import extensions
        from livetrain.events import Emitter
        from livetrain.jobs.pool import WorkerPool
        from livetrain.services import Metrics
        from livetrain.services.reporting import RunReporter
        from livetrain.services.runs import owner_token
        from livetrain.store import ArtifactStore, MetadataStore

        self.settings = settings
        self.name = name
        self.queues = queues
        self.concurrency = concurrency
        self.device = device
        self.owner = owner_token()
        self.threads = threads or max(1, (os.cpu_count() or 1) // concurrency)
        settings.models_dir.mkdir(parents=True, exist_ok=True)
        self.store = MetadataStore(settings.resolved_database_url)
        self.store.create_schema()
        self.artifacts = ArtifactStore(settings.models_dir)
        socketio = extensions.new_socketio(message_queue=settings.message_queue,
                                           channel=settings.message_queue_channel)
        self.reporter = RunReporter(store=self.store, artifacts=self.artifacts,
                                    emitter=Emitter(socketio, settings.broadcast_events), metrics=Metrics.create(),
                                    worker=name, persist_seq=True)
        # nice 5, as on a server: the worker's own threads (reports, heartbeats) stay responsive
        self.pool = WorkerPool(warm=concurrency, threads=self.threads, spawn=_thread, nice=5,
                               fork=settings.fork_workers)
        self._active: dict[str, _Active] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.started_at = time.time()

    def info(self) -> dict[str, Any]:
        """What `GET /api/workers` shows of this worker."""
        with self._lock:
            runs = list(self._active)
        return {"name": self.name, "hostname": socket.gethostname(), "pid": os.getpid(), "queues": self.queues,
                "device": self.device, "concurrency": self.concurrency, "runs": runs,
                "torch_threads": self.threads}

    def start(self) -> None:
        """Register, warm the worker processes, start the watchers."""
        self.store.register_server(self.owner, "worker", self.info())
        WorkerRuntime.current = self
        self.pool.warm_up()
        _thread(self._heartbeat)
        _thread(self._watch_stop_requests)
        log.info("livetrain worker %s: queues %s, concurrency %d, device %s, database %s, message queue %s",
                 self.name, ",".join(self.queues), self.concurrency, self.device,
                 redact_url(self.settings.resolved_database_url), redact_url(self.settings.message_queue))

    def _heartbeat(self) -> None:
        while not self._closed:
            time.sleep(self.settings.heartbeat_interval)
            try:
                if not self.store.heartbeat(self.owner, self.info()):
                    # taken for dead (a pause longer than the servers wait): its runs were marked
                    # interrupted and may be resumed elsewhere, so stop them here
                    log.warning("this worker was taken for dead; stopping its runs")
                    self.store.register_server(self.owner, "worker", self.info())
                    with self._lock:
                        for active in self._active.values():
                            active.stop = active.stop or "cancel"
                            self._send_cancel(active)
            except Exception:  # a database hiccup must not end the heartbeat
                log.exception("heartbeat failed")

    def _watch_stop_requests(self) -> None:
        while not self._closed:
            time.sleep(self.settings.stop_poll_interval)
            with self._lock:
                ids = [run_id for run_id, active in self._active.items() if active.stop is None]
            if not ids:
                continue
            try:
                requests = self.store.stop_requests(ids)
            except Exception:
                log.exception("looking for stop requests failed")
                continue
            for run_id, what in requests.items():
                with self._lock:
                    active = self._active.get(run_id)
                    if active is None or active.stop is not None:
                        continue
                    active.stop = what
                log.info("run %s: stop requested (%s)", run_id, what)
                self._send_cancel(active)

    def _send_cancel(self, active: _Active) -> None:
        from livetrain.jobs.runner import send_cancel

        handle = active.handle
        if handle is None:
            return
        send_cancel(handle)

        def enforce() -> None:
            time.sleep(self.settings.cancel_grace)
            with self._lock:
                doomed = active.handle is handle and handle.alive
                if doomed:  # decided with the run's end (which clears `handle` under this lock)
                    handle.killed = True
            if doomed:
                log.warning("a run did not stop within %.1fs; killing its worker process", self.settings.cancel_grace)
                handle.kill()

        _thread(enforce)

    def execute(self, job: RunJob) -> None:
        """Claim the run, train it in a warm worker process, report everything; never raises for the
        run's own failure (that is reported), so Celery acknowledges the task."""
        from livetrain.jobs.runner import drive_job

        run = self.store.claim_run(job.run_id, self.owner, self.name)
        if run is None:
            log.info("run %s: no longer queued (cancelled, or taken by another worker); skipped", job.run_id)
            return
        # paths are this machine's: the artifact store is mounted here, maybe elsewhere than on the server
        job.models_dir = str(self.settings.models_dir)
        job.mnist_dir = str(self.settings.resolved_mnist_dir)
        job.torch_threads = self.threads
        job.adapt_threads = self.settings.adapt_threads
        job.device = self.device
        active = _Active()
        with self._lock:
            self._active[job.run_id] = active
        self._publish_info()
        handle = None
        try:
            # no refill: the process goes back to the pool after the run, so a replacement started
            # now would import torch for nothing, on the cores the run is training on
            handle = self.pool.acquire(refill=False)
            active.handle = handle
            if active.stop is None:
                stop = self.store.stop_requests([job.run_id]).get(job.run_id)
                if stop:
                    active.stop = stop
            if active.stop is not None:
                self.reporter.on_message(job.run_id, Cancelled(0))
            else:
                drive_job(handle, job, lambda message: self.reporter.on_message(job.run_id, message))
            with self._lock:
                active.handle = None
            self.pool.release(handle)
            handle = None
        except ChannelClosed:
            code = handle.exit_code() if handle else None
            if self._closed:
                self.reporter.on_message(job.run_id, Interrupted(f"the worker {self.name} stopped while this run "
                                                                 "was running"))
            elif active.stop is not None:
                self.reporter.on_message(job.run_id, Cancelled(None))
            else:
                self.reporter.on_message(job.run_id, Failed(f"the worker process died (exit code {code})"))
        except Exception as exc:  # every run ends: record why, keep serving
            log.exception("run %s failed in the worker", job.run_id)
            self.reporter.on_message(job.run_id, Failed(f"{type(exc).__name__}: {exc}"))
        finally:
            if handle is not None:
                self.pool.discard(handle)
            self.pool.warm_up()  # only starts one if a process was lost
            with self._lock:
                self._active.pop(job.run_id, None)
            self._publish_info()

    def _publish_info(self) -> None:
        """Show the worker's current runs in `GET /api/workers` now, not at the next heartbeat."""
        try:
            self.store.heartbeat(self.owner, self.info())
        except Exception:
            log.exception("could not update this worker's row")

    def close(self) -> None:
        """Stop: runs still training are marked interrupted (resumable elsewhere), workers killed."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            active = dict(self._active)
        for run_id, entry in active.items():
            if entry.handle is not None:
                entry.handle.kill()  # its execute() reports it interrupted
            else:
                run = self.store.get_run(run_id)
                if run is not None and run.status in ACTIVE_STATUSES:
                    self.reporter.on_message(run_id, Interrupted(f"the worker {self.name} stopped"))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self._lock:
                if not self._active:
                    break
            time.sleep(0.05)
        self.pool.close()
        self.store.remove_server(self.owner)
        self.store.close()


def _thread(fn, *args) -> None:
    threading.Thread(target=fn, args=args, daemon=True).start()


def run_worker(settings: Settings, *, name: str, queues: list[str], concurrency: int, device: str,
               threads: int | None = None, log_level: str = "INFO") -> int:
    """`livetrain worker`: a Celery worker (thread pool: each slot only drives a worker process)."""
    from celery import signals

    runtime = WorkerRuntime(settings, name=name, queues=queues, concurrency=concurrency, device=device,
                            threads=threads)
    app = make_celery(settings)

    @signals.worker_ready.connect(weak=False)
    def ready(**_):
        print(f"livetrain worker {name} ready (queues {','.join(queues)}, concurrency {concurrency}, "
              f"device {device})", flush=True)

    @signals.worker_shutting_down.connect(weak=False)
    def shutting_down(**_):
        runtime.close()

    runtime.start()
    try:
        app.worker_main(["worker", "--pool=threads", f"--concurrency={concurrency}", f"--queues={','.join(queues)}",
                         f"--hostname={name}", f"--loglevel={log_level}", "--without-gossip", "--without-mingle",
                         "--without-heartbeat"])
    finally:
        runtime.close()
    return 0
