"""Worker processes, kept warm (and forked from a preloaded template) so a run starts without paying
for torch's import."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
from collections import deque
from typing import Any

from livetrain.jobs.protocol import ChannelClosed, Exit, Ready, Wire, decode, recv_message, send_message
from livetrain.jobs.template import ForkedProcess, TemplateUnavailable, WorkerTemplate, worker_env

log = logging.getLogger(__name__)
STARTING_WAIT = 30.0  # seconds to wait for a starting warm worker before starting another


class WorkerHandle:
    """The server's end of one worker process."""

    def __init__(self, process: subprocess.Popen | ForkedProcess, sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self.pid = process.pid
        self.forked = isinstance(process, ForkedProcess)
        self.killed = False  # once set, the pool never hands this worker out again
        self._send_lock = threading.Lock()  # a job, a share of the cores and a cancel may be sent at once

    @classmethod
    def start(cls, threads: int, nice: int = 0, fork: bool = False) -> WorkerHandle:
        """Start a worker and wait until it has imported torch: forked from this process's worker
        template with `fork` (`livetrain.jobs.template`), else, or when the template is unavailable,
        as a process of its own."""
        ours, theirs = socket.socketpair()
        process: subprocess.Popen | ForkedProcess | None = None
        template = WorkerTemplate.shared() if fork else None
        if template is not None:
            try:
                process = template.fork(theirs.fileno(), nice)
            except TemplateUnavailable as exc:
                log.warning("%s; starting a worker process of its own", exc)
        if process is None:
            process = subprocess.Popen(
                [sys.executable, "-m", "livetrain.jobs.worker", "--fd", str(theirs.fileno()), "--nice", str(nice)],
                pass_fds=[theirs.fileno()],
                env=worker_env(threads),
                stdin=subprocess.DEVNULL,
            )
        theirs.close()
        handle = cls(process, ours)
        try:
            hello = handle.recv()
        except ChannelClosed:
            handle.kill()
            raise RuntimeError(f"worker process exited at start (exit code {process.poll()})") from None
        if not isinstance(hello, Ready):
            handle.kill()
            raise RuntimeError(f"worker said {hello!r} instead of ready")
        return handle

    def send(self, message: Wire) -> None:
        """Send a command or a job."""
        with self._send_lock:
            send_message(self.sock, message.to_wire())

    def recv(self) -> Any:
        """Wait for the next report (a `livetrain.jobs.protocol` message); `ChannelClosed` when the
        process is gone or says something this side cannot read."""
        try:
            return decode(recv_message(self.sock))
        except (OSError, ValueError):
            raise ChannelClosed() from None

    @property
    def alive(self) -> bool:
        """True while the process runs and has not been told to die (the end of a killed worker is
        known a moment after the signal: from its template, or when it is collected)."""
        return not self.killed and self.process.poll() is None

    def exit_code(self) -> int | None:
        """The process's exit code, waiting briefly for it to be known."""
        try:
            return self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """Stop the process now."""
        self.killed = True
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.sock.close()

    def close(self) -> None:
        """Ask the process to exit, killing it if it does not."""
        try:
            self.send(Exit())
            self.process.wait(timeout=3)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class WorkerPool:
    """Hands out worker processes and keeps `warm` idle ones ready."""

    def __init__(self, *, warm: int, threads: int, spawn, nice: int = 0, fork: bool = False) -> None:
        self.warm = warm
        self.threads = threads
        self.nice = nice
        self.fork = fork  # fork workers from the template instead of starting each from scratch
        self._spawn = spawn
        self._idle: deque[WorkerHandle] = deque()
        self._all: set[WorkerHandle] = set()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._starting = 0  # warm workers being started in the background
        self._waiting = 0  # acquire() calls waiting for one
        self._closed = False

    def _start(self) -> WorkerHandle:
        handle = WorkerHandle.start(self.threads, self.nice, self.fork)
        with self._lock:
            if self._closed:
                handle.kill()
                raise RuntimeError("worker pool is closed")
            self._all.add(handle)
        return handle

    def warm_up(self, limit: int | None = None) -> None:
        """Start idle workers in the background until `warm` (at most `limit`) are ready or on their way."""
        with self._lock:
            wanted = self.warm if limit is None else min(self.warm, max(0, limit))
            missing = wanted - len(self._idle) - self._starting
            if self._closed or missing <= 0:
                return
            self._starting += missing
        for _ in range(missing):
            self._spawn(self._start_idle)

    def _start_idle(self) -> None:
        try:
            handle = self._start()
        except Exception:
            if not self._closed:  # closing while a worker starts is no error
                log.exception("could not start a warm worker")
            with self._lock:
                self._starting -= 1
                self._ready.notify_all()
            return
        with self._lock:
            self._starting -= 1
            # Workers given back while this one started may have filled the pool already: then it
            # is one too many (the ones that ran a job have their caches; this one has none),
            # unless a caller waiting for a worker has yet to take one of those.
            surplus = len(self._idle) >= self.warm + self._waiting
            if surplus:
                self._all.discard(handle)
            else:
                self._idle.append(handle)
            # every waiting caller looks again: one takes a worker, the others start their own if
            # nothing more is on its way (rather than sleep until STARTING_WAIT runs out)
            self._ready.notify_all()
        if surplus:
            handle.close()

    def idle_pids(self) -> list[int]:
        """Process ids of the idle workers, the next one handed out first."""
        with self._lock:
            return [handle.pid for handle in self._idle]

    @property
    def starting(self) -> int:
        """How many warm workers are being started right now."""
        with self._lock:
            return self._starting

    def acquire(self, refill: bool = True) -> WorkerHandle:
        """An idle live worker (waiting for one that is starting), or a new one; refills the pool unless
        `refill` is False (the caller calls `warm_up` when its job is done)."""
        handle = None
        with self._lock:
            while handle is None:
                while self._idle and handle is None:
                    candidate = self._idle.popleft()
                    if candidate.alive:
                        handle = candidate
                    else:
                        self._all.discard(candidate)
                if handle is not None or self._starting == 0 or self._closed:
                    break
                # a warm worker is on its way (or one is given back): sooner than a new one
                self._waiting += 1
                try:
                    woken = self._ready.wait(timeout=STARTING_WAIT)
                finally:
                    self._waiting -= 1
                if not woken:
                    break
        if handle is None:
            handle = self._start()
        if refill:
            self.warm_up()
        return handle

    def release(self, handle: WorkerHandle) -> None:
        """Give a worker back after a job; beyond `warm` idle workers, the least used ones exit.

        The worker that just ran a job goes to the front: it has its modules imported and its
        dataset cached, so it starts the next run faster than a fresh process would.
        """
        surplus: list[WorkerHandle] = []
        with self._lock:
            if self._closed or not handle.alive:
                self._all.discard(handle)
                surplus.append(handle)
            else:
                self._idle.appendleft(handle)
                self._ready.notify_all()  # a caller waiting for a starting worker can have this one now
            while len(self._idle) > self.warm:
                extra = self._idle.pop()
                self._all.discard(extra)
                surplus.append(extra)
        for extra in surplus:
            self._spawn(extra.close)  # closing waits for the process: not on the run's path

    def discard(self, handle: WorkerHandle) -> None:
        """Kill a worker that cannot be reused."""
        with self._lock:
            self._all.discard(handle)
        handle.kill()

    def close(self) -> None:
        """Kill every worker."""
        with self._lock:
            self._closed = True
            handles = list(self._all)
            self._all.clear()
            self._idle.clear()
        for handle in handles:
            handle.kill()
