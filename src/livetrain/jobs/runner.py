"""`LocalRunner`: runs jobs in worker processes of this server, at most N at a time, the rest in a
FIFO queue.

Each running job has an orchestration task (a green thread under eventlet) that reads the
worker's reports and hands them to `on_message`; it never computes. The worker does.
`drive_job` is that task's loop, shared with the Celery worker (`livetrain.jobs.celery`).

The runs in progress share the machine's cores: a run that trains alone gets all of them, and
when another starts or ends every run's share is recomputed (`share_threads`) and sent to the
workers whose share changed; a worker applies it at its next mini-batch.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livetrain.errors import LivetrainError
from livetrain.jobs.pool import WorkerHandle, WorkerPool
from livetrain.jobs.protocol import (
    ENDINGS,
    Cancel,
    Cancelled,
    ChannelClosed,
    Failed,
    Prepared,
    PrepareJob,
    Refused,
    RunJob,
    RunReport,
    SetThreads,
    StageReached,
)

log = logging.getLogger(__name__)


def share_threads(threads: int, runs: int) -> list[int]:
    """Torch threads for each of `runs` runs in progress, oldest first: `threads` split evenly, the
    remainder to the oldest runs, and never fewer than one each."""
    if runs <= 0:
        return []
    each, extra = divmod(threads, runs)
    return [max(1, each + (1 if index < extra else 0)) for index in range(runs)]


def drive_job(handle: WorkerHandle, job: RunJob, on_message: Callable[[RunReport], None], *,
              send: bool = True) -> None:
    """Send `job` to a worker process (unless the caller has: `send` False) and hand each report to
    `on_message` until the run ends. Raises `ChannelClosed` if the process dies first."""
    if send:
        handle.send(job)
    while True:
        message = handle.recv()
        on_message(message)
        if isinstance(message, ENDINGS):
            return


def send_cancel(handle: WorkerHandle) -> None:
    """Ask a worker process to stop its run (it may already be gone)."""
    try:
        handle.send(Cancel())
    except OSError:
        pass


@dataclass
class _Active:
    handle: WorkerHandle | None = None
    cancel_requested: bool = False
    threads: int = 1  # its share of the cores
    sent: bool = False  # its worker has the job (so a new share goes to it as a message)


class LocalRunner:
    """Queue, concurrency limit and cancellation for jobs run by local worker processes."""

    name = "local"

    def __init__(
        self,
        *,
        max_concurrent: int,
        warm_workers: int,
        torch_threads: int,
        cancel_grace: float,
        worker_nice: int = 0,
        fork_workers: bool = False,
        spawn: Callable[..., Any],
        sleep: Callable[[float], None],
        on_message: Callable[[str, RunReport], None],
        worker_name: str = "local",
        total_threads: int | None = None,
    ) -> None:
        self.max_concurrent = max_concurrent
        # the threads the runs in progress share; by default what max_concurrent runs of torch_threads take
        self.total_threads = total_threads or torch_threads * max_concurrent
        self.cancel_grace = cancel_grace
        self._spawn = spawn
        self._sleep = sleep
        self._on_message = on_message
        self.pool = WorkerPool(warm=warm_workers, threads=torch_threads, spawn=spawn, nice=worker_nice,
                               fork=fork_workers)
        self.worker_name = worker_name
        self._queue: deque[tuple[str, RunJob]] = deque()
        self._running: dict[str, _Active] = {}
        self._lock = threading.Lock()
        self._closing = False

    def prepare_dataset(self, job: dict[str, Any], stage: Callable[[str], None]) -> dict[str, Any]:
        """Prepare an upload (`livetrain.data.prepare.prepare_upload`) in a worker process, passing its stages
        to `stage`; the worker exits afterwards, so the memory a big table took goes with it. Its
        replacement starts after it, not beside it: starting a worker takes a core for seconds."""
        handle = self.pool.acquire(refill=False)
        try:
            handle.send(PrepareJob(job))
            while True:
                message = handle.recv()
                if isinstance(message, StageReached):
                    stage(message.stage)
                elif isinstance(message, Prepared):
                    return message.result
                elif isinstance(message, Refused):
                    raise LivetrainError(message.message, code=message.code, status=message.status,
                                         detail=message.detail)
                elif isinstance(message, Failed):
                    raise RuntimeError(f"preparing the dataset failed in its worker: {message.error}\n"
                                       f"{message.traceback}")
        except ChannelClosed:
            raise LivetrainError(f"the worker process preparing the file stopped (exit code {handle.exit_code()}); "
                                 "it may have run out of memory. Try a smaller file or a machine with more memory.",
                                 code="worker_lost", status=503) from None
        finally:
            self.pool.discard(handle)
            self.pool.warm_up()

    def warm_up(self) -> None:
        """Start the warm workers now rather than at the first run."""
        self.pool.warm_up()

    def submit(self, run_id: str, job: RunJob, queue: str | None = None) -> None:
        """Queue a job; it starts as soon as a slot is free (this runner has one queue: `queue` is None)."""
        with self._lock:
            self._queue.append((run_id, job))
        self._pump()

    def queued(self) -> list[str]:
        """Run ids waiting for a slot, in order."""
        with self._lock:
            return [run_id for run_id, _ in self._queue]

    def running(self) -> list[str]:
        """Run ids with a worker."""
        with self._lock:
            return list(self._running)

    def cancel(self, run_id: str) -> bool:
        """Stop a queued or running job; False if this runner does not have it."""
        with self._lock:
            for item in self._queue:
                if item[0] == run_id:
                    self._queue.remove(item)
                    break
            else:
                item = None
            active = self._running.get(run_id)
            if active is not None:
                active.cancel_requested = True
        if item is not None:
            self._on_message(run_id, Cancelled(0))
            return True
        if active is None:
            return False
        if active.handle is not None:
            send_cancel(active.handle)
            self._spawn(self._enforce_cancel, run_id, active.handle)
        return True

    def threads(self) -> dict[str, int]:
        """Each run in progress's share of the cores (torch threads), by run id."""
        with self._lock:
            return {run_id: active.threads for run_id, active in self._running.items()}

    def workers(self) -> list[dict[str, Any]]:
        """This server's worker processes, as one worker of `max_concurrent` slots."""
        return [{"name": self.worker_name, "kind": "local", "queues": [], "device": "cpu",
                 "concurrency": self.max_concurrent, "runs": self.running(),
                 "idle_processes": len(self.pool.idle_pids()), "threads": self.total_threads,
                 "run_threads": self.threads()}]

    def _enforce_cancel(self, run_id: str, handle: WorkerHandle) -> None:
        self._sleep(self.cancel_grace)
        with self._lock:
            still = self._running.get(run_id)
            doomed = still is not None and still.handle is handle and handle.alive
            if doomed:  # decided with the run's end (which clears `handle` under this lock): never pooled again
                handle.killed = True
        if doomed:
            log.warning("run %s did not stop within %.1fs; killing its worker", run_id, self.cancel_grace)
            handle.kill()

    def _free_slots(self) -> int:
        """Runs that could start now without waiting for one to end."""
        with self._lock:
            return self.max_concurrent - len(self._running)

    def _share_locked(self) -> None:
        """Recompute every run's share of the cores; tell the workers whose share changed. Called
        with the lock held, so a job and the shares that follow it reach a worker in order."""
        shares = share_threads(self.total_threads, len(self._running))
        for active, threads in zip(self._running.values(), shares):
            if active.threads == threads:
                continue
            active.threads = threads
            if active.sent and active.handle is not None:
                try:
                    active.handle.send(SetThreads(threads))
                except OSError:
                    pass  # the process is gone: its run's task finds out

    def _pump(self) -> None:
        starting = []
        with self._lock:
            while not self._closing and self._queue and len(self._running) < self.max_concurrent:
                run_id, job = self._queue.popleft()
                self._running[run_id] = _Active(threads=0)
                starting.append((run_id, job))
            self._share_locked()
        for run_id, job in starting:
            self._spawn(self._execute, run_id, job)

    def _execute(self, run_id: str, job: RunJob) -> None:
        active = self._running[run_id]
        handle: WorkerHandle | None = None
        try:
            # no refill beyond the slots still free: a worker started now would import torch on the
            # cores this run trains on (a core for seconds), for a run that cannot start before one ends
            handle = self.pool.acquire(refill=False)
            self.pool.warm_up(self._free_slots())
            with self._lock:
                active.handle = handle
                if not active.cancel_requested:
                    job.torch_threads = active.threads  # its share now; later changes follow as messages
                    handle.send(job)
                    active.sent = True
            if active.cancel_requested and not active.sent:
                self.pool.release(handle)
                handle = None
                self._on_message(run_id, Cancelled(0))
                return
            drive_job(handle, job, lambda message: self._on_message(run_id, message), send=False)
            # the run has ended: a pending cancel timer must not kill this worker while it exits
            with self._lock:
                active.handle = None
            self.pool.release(handle)
            handle = None
        except ChannelClosed:
            if self._closing:
                return
            code = handle.exit_code() if handle else None
            if active.cancel_requested:
                self._on_message(run_id, Cancelled(None))
            else:
                self._on_message(run_id, Failed(f"the worker process died (exit code {code})"))
        except Exception as exc:  # every job ends: record why, keep serving
            log.exception("run %s failed in the runner", run_id)
            if not self._closing:
                self._on_message(run_id, Failed(f"{type(exc).__name__}: {exc}"))
        finally:
            if handle is not None:
                self.pool.discard(handle)
            with self._lock:
                self._running.pop(run_id, None)
            self._pump()
            if not self._closing:
                self.pool.warm_up(self._free_slots())  # a worker discarded, or one freed: ready for the next

    def close(self) -> list[str]:
        """Stop everything; returns the ids of runs that were queued or running."""
        with self._lock:
            self._closing = True
            ids = [run_id for run_id, _ in self._queue] + list(self._running)
            self._queue.clear()
            handles = [a.handle for a in self._running.values() if a.handle is not None]
        for handle in handles:
            handle.kill()
        self.pool.close()
        return ids
