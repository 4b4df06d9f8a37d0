"""Several livetrain processes sharing PostgreSQL, Redis and one artifact folder: server nodes and
Celery workers, each a real `python -m livetrain ...` process in its own process group.

Each cluster has its own PostgreSQL database, its own Socket.IO channel and its own Celery
queue on the machine's Redis, so parallel test runs do not hear each other.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN, PG_NEEDS
from tests.e2e.helpers import (
    READY_TIMEOUT,
    STOP_TIMEOUT,
    ServerProcess,
    _group_members,
    livetrain_env,
    wait_until,
)

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_NEEDS = f"needs Redis on {REDIS_HOST}:{REDIS_PORT} (redis-server)"
REDIS_DB = 9  # the broker's keys; pub/sub channels ignore the number, so each cluster has its own channel


def redis_or_skip(host: str = REDIS_HOST, port: int = REDIS_PORT) -> None:
    """Skip the test, saying what it needs, unless a Redis server answers PING there."""
    try:
        with socket.create_connection((host, port), timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            if not conn.recv(16).startswith(b"+PONG"):
                pytest.skip(f"{REDIS_NEEDS}; something else answers on that port")
    except OSError as exc:
        pytest.skip(f"{REDIS_NEEDS}; connecting failed: {exc}")


class PostgresDatabase:
    """A fresh database on the machine's PostgreSQL, dropped by `drop()`."""

    def __init__(self) -> None:
        psycopg = pytest.importorskip("psycopg", reason="needs psycopg: pip install 'psycopg[binary]'")
        try:
            self.admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
        except psycopg.OperationalError as exc:
            pytest.skip(f"{PG_NEEDS}; connecting failed: {str(exc).strip()}")
        self.name = f"livetrain_test_{uuid.uuid4().hex[:10]}"
        self.admin.execute(f'CREATE DATABASE "{self.name}"')
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.name}"

    def drop(self) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.close()


class WorkerProcess:
    """One `python -m livetrain worker` (a Celery worker and its warm worker processes)."""

    def __init__(self, name: str, home: Path, log_path: Path, env: dict[str, str], args: list[str]) -> None:
        self.name = name
        self.home = home
        self.log_path = log_path
        self.env = env
        self.args = args
        self.process: subprocess.Popen | None = None

    def launch(self) -> WorkerProcess:
        """Start the process (`wait_ready` waits for it)."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "livetrain", "worker", "--home", str(self.home), "--name", self.name,
                 *self.args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env, cwd=self.home,
                start_new_session=True)
        return self

    def wait_ready(self) -> None:
        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"livetrain worker {self.name} exited at start:\n{self.log_tail()}")
            return f"livetrain worker {self.name} ready" in self.log_path.read_text(errors="replace")
        wait_until(ready, timeout=READY_TIMEOUT, what=f"worker {self.name} to be ready", interval=0.1)

    def log_tail(self, lines: int = 120) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9 the worker and its worker processes, as if its machine had gone."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        wait_until(lambda: all(state == "Z" for _, state in _group_members(self.process.pid)),
                   timeout=STOP_TIMEOUT, what=f"the processes of worker {self.name} to exit")

    def stop(self) -> None:
        """SIGTERM (what a service manager sends), then kill what is left."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


class Cluster:
    """Server nodes and Celery workers on one database, one artifact folder, one Redis channel."""

    def __init__(self, folder: Path, *, runner: str = "celery", broadcast: bool = True,
                 redis_url: str = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}") -> None:
        self.folder = folder
        self.home = folder / "shared-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.database = PostgresDatabase()
        tag = uuid.uuid4().hex[:10]
        self.queue = f"livetrain-test-{tag}"
        self.redis_url = redis_url
        self.env = {
            "LIVETRAIN_DATABASE_URL": self.database.url,
            "LIVETRAIN_MESSAGE_QUEUE": redis_url,
            "LIVETRAIN_MESSAGE_QUEUE_CHANNEL": f"livetrain-test-{tag}",
            "LIVETRAIN_DEFAULT_QUEUE": self.queue,
            "LIVETRAIN_BROADCAST_EVENTS": "true" if broadcast else "false",
            "LIVETRAIN_HEARTBEAT_INTERVAL": "2",
            "LIVETRAIN_MAX_CONCURRENT_RUNS": "1",
            "LIVETRAIN_WARM_WORKERS": "1",
        }
        if runner == "celery":
            self.env.update({"LIVETRAIN_RUNNER": "celery", "LIVETRAIN_BROKER_URL": redis_url})
        self.servers: list[ServerProcess] = []
        self.workers: list[WorkerProcess] = []

    def start_server(self) -> ServerProcess:
        n = len(self.servers)
        server = ServerProcess(self.home, self.folder / f"server{n}.log", self.env)
        self.servers.append(server)
        return server.start()

    def start_workers(self, count: int) -> list[WorkerProcess]:
        """Start `count` workers at once and wait until each is ready."""
        started = []
        for _ in range(count):
            n = len(self.workers)
            worker = WorkerProcess(f"w{n}-{self.queue[-4:]}", self.home, self.folder / f"worker{n}.log",
                                   livetrain_env(self.home, self.env),
                                   ["--broker", self.redis_url, "--message-queue", self.redis_url,
                                    "--queues", self.queue, "--concurrency", "1"])
            self.workers.append(worker)
            started.append(worker.launch())
        for worker in started:
            worker.wait_ready()
        return started

    def worker_named(self, name: str) -> WorkerProcess:
        return next(w for w in self.workers if w.name == name)

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        for worker in self.workers:
            worker.stop()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the database is dropped once nobody holds a connection
            try:
                self.database.drop()
                return
            except Exception:
                time.sleep(0.5)
