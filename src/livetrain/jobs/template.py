"""A preloaded template process from which worker processes are forked.

A worker started from scratch imports torch, scikit-learn, the readers and the trainer before it
says ready: about 3.5 s of a core, paid again for every worker the pool starts (a run beyond the
warm ones, a worker replacing one that was killed or cancelled, every worker of every server).
The first time a process needs a worker it starts this template instead, which imports all that
once and then forks each worker on request: a worker is ready in milliseconds, and the memory the
imports take is shared copy-on-write between the template and every worker.

The template never runs a job itself, so it starts no OpenMP or torch threads that a fork would
leave half-copied. It is used on Linux only (other systems' libraries are not safe to fork after
import); `fork_workers: false` turns it off, and a template that cannot start or dies is replaced
by plain worker processes (`python -m livetrain.jobs.worker`), never by a failed run.

Protocol, over a `SOCK_SEQPACKET` socket pair (one JSON object per message):
  template -> server: {"ready": pid}, then {"forked": pid, "id": n} or {"failed": why, "id": n}
                      per request, and {"exited": pid, "code": c} when a worker ends
  server -> template: {"id": n, "nice": k} with the new worker's end of its socket pair attached
A closed socket is the end: the template exits when its server does.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
READY_WAIT = 120.0  # seconds the template may take to import everything (a loaded machine)
FORK_WAIT = 30.0  # seconds a fork request may take before the pool starts a plain worker instead
RETRY_AFTER = 60.0  # seconds before a template that could not start is tried again
MESSAGE_BYTES = 4096
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])  # the folder holding the livetrain package


class TemplateUnavailable(RuntimeError):
    """The template could not fork a worker: the caller starts a plain worker process."""


def can_fork() -> bool:
    """Forking after torch's import is safe on Linux only."""
    return sys.platform.startswith("linux")


def worker_env(threads: int | None = None) -> dict[str, str]:
    """The environment of a worker process (and of the template): the package on the path and, for a
    plain worker, its thread count for the math libraries."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_PARENT, env.get("PYTHONPATH")]))
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(threads)
    return env


class ForkedProcess:
    """A worker forked by the template, with the part of `subprocess.Popen` the pool uses.

    The worker is the template's child, not this process's: its exit code comes from the template.
    When the template is gone too, a worker that is gone has the unknown exit code -1.
    """

    def __init__(self, template: WorkerTemplate, pid: int) -> None:
        self.template = template
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            code = self.template.exit_code(self.pid)
            if code is None and not self.template.alive and not pid_alive(self.pid):
                code = -1
            self.returncode = code
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
            self.template.wait_for_news(0.2 if left is None else min(0.2, left))
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerTemplate:
    """The server's end of the template process: one per server process, shared by its pools."""

    _shared: WorkerTemplate | None = None
    _shared_lock = threading.Lock()
    _failed_at: float | None = None

    def __init__(self, process: subprocess.Popen, sock: socket.socket) -> None:
        self.process = process
        self.sock = sock
        self.pid = process.pid
        self._send_lock = threading.Lock()
        self._news = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._codes: dict[int, int] = {}
        self._next_id = 0
        self._open = True

    @classmethod
    def shared(cls) -> WorkerTemplate | None:
        """This process's template, started on first use (or again after it died); None when it
        cannot be used here or could not start lately."""
        if not can_fork():
            return None
        with cls._shared_lock:
            template = cls._shared
            if template is not None and template.alive:
                return template
            if cls._failed_at is not None and time.monotonic() - cls._failed_at < RETRY_AFTER:
                return None
            try:
                cls._shared = template = cls.start()
                cls._failed_at = None
            except Exception:
                log.exception("could not start the worker template; workers start as separate processes")
                cls._shared, cls._failed_at = None, time.monotonic()
                return None
            return template

    @classmethod
    def start(cls) -> WorkerTemplate:
        """Start a template and wait until it has imported everything."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = subprocess.Popen(
            [sys.executable, "-m", "livetrain.jobs.template", "--fd", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], env=worker_env(), stdin=subprocess.DEVNULL)
        theirs.close()
        ours.settimeout(READY_WAIT)
        try:
            hello = json.loads(ours.recv(MESSAGE_BYTES) or b"{}")
        except (OSError, ValueError):
            hello = {}
        if hello.get("ready") != process.pid:
            process.kill()
            process.wait()
            ours.close()
            raise RuntimeError(f"the worker template did not say ready (exit code {process.poll()})")
        ours.settimeout(None)
        template = cls(process, ours)
        threading.Thread(target=template._read, name="livetrain-template-reader", daemon=True).start()
        return template

    @property
    def alive(self) -> bool:
        return self._open and self.process.poll() is None

    def _read(self) -> None:
        try:
            while True:
                data = self.sock.recv(MESSAGE_BYTES)
                if not data:
                    break
                message = json.loads(data)
                with self._news:
                    if "exited" in message:
                        self._codes[message["exited"]] = message["code"]
                    elif "id" in message:
                        if "forked" in message:
                            self._codes.pop(message["forked"], None)  # a reused pid is a new worker
                        self._replies[message["id"]] = message
                    self._news.notify_all()
        except (OSError, ValueError):
            pass
        with self._news:
            self._open = False
            self._news.notify_all()
        self.sock.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def fork(self, worker_fd: int, nice: int = 0) -> ForkedProcess:
        """Fork a worker that serves on `worker_fd` (its end of a socket pair, passed to it)."""
        with self._send_lock:
            self._next_id += 1
            request_id = self._next_id
            try:
                socket.send_fds(self.sock, [json.dumps({"id": request_id, "nice": nice}).encode()], [worker_fd])
            except OSError as exc:
                raise TemplateUnavailable(f"the worker template is gone ({exc})") from None
        deadline = time.monotonic() + FORK_WAIT
        with self._news:
            while request_id not in self._replies:
                left = deadline - time.monotonic()
                if not self._open or left <= 0:
                    raise TemplateUnavailable("the worker template did not answer")
                self._news.wait(left)
            reply = self._replies.pop(request_id)
        if "forked" not in reply:
            raise TemplateUnavailable(f"the worker template could not fork: {reply.get('failed')}")
        return ForkedProcess(self, reply["forked"])

    def exit_code(self, pid: int) -> int | None:
        """A forked worker's exit code, once the template has reported its end."""
        with self._news:
            return self._codes.get(pid)

    def wait_for_news(self, timeout: float) -> None:
        """Sleep until the template reports something or `timeout` passes."""
        with self._news:
            if self._open:
                self._news.wait(timeout)
            else:
                time.sleep(timeout)


# -- the template process -----------------------------------------------------------------------


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


def _reap(sock: socket.socket) -> None:
    """Collect every ended worker and tell the server how each ended (as Popen's returncode)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _become_worker(fd: int, nice: int, closing: list[int]) -> None:
    """In the forked child: leave the template's part behind and serve as a worker; never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for other in closing:
            os.close(other)
        _name_process("lt-worker")  # its command line stays the template's
        import random

        import numpy as np
        import torch

        # a fork copies the template's random state: each worker draws its own, as a new process would
        random.seed()
        np.random.seed()
        torch.seed()
        from livetrain.jobs.worker import serve_fd

        serve_fd(fd, nice)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _name_process(name: str) -> None:
    """The name `top` and `ps -o comm` show (Linux; at most 15 characters), so a forked worker is not
    taken for one more template."""
    try:
        Path("/proc/self/comm").write_text(name)
    except OSError:
        pass


def serve(sock: socket.socket) -> None:
    """Import what a worker needs, say ready, then fork a worker per request until the server goes."""
    from livetrain.jobs.worker import preload

    _name_process("lt-template")
    preload()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes the select below through wake_w
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the server, which closes this template
    _send(sock, {"ready": os.getpid()})
    while True:
        readable, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in readable:
            while True:
                try:
                    if not os.read(wake_r, 512):
                        break
                except BlockingIOError:
                    break
        _reap(sock)
        if sock not in readable:
            continue
        data, fds, _flags, _address = socket.recv_fds(sock, MESSAGE_BYTES, 4)
        if not data:
            return
        request = json.loads(data)
        try:
            if len(fds) != 1:
                raise ValueError(f"a fork request carries one socket, not {len(fds)}")
            pid = os.fork()
            if pid == 0:
                _become_worker(fds[0], int(request.get("nice", 0)), [sock.fileno(), wake_r, wake_w])
            _send(sock, {"forked": pid, "id": request["id"]})
        except (OSError, ValueError) as exc:
            _send(sock, {"failed": f"{type(exc).__name__}: {exc}", "id": request.get("id")})
        finally:
            for fd in fds:
                os.close(fd)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the template process."""
    parser = argparse.ArgumentParser(prog="livetrain-worker-template")
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    sock.setblocking(True)
    try:
        serve(sock)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server went away while this template answered
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
