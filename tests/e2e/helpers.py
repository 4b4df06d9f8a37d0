"""What the end-to-end tests drive the real server with: the process, an HTTP client, a Socket.IO client.

Nothing here imports eventlet: the server is a separate process and the pytest process stays
un-patched. The Socket.IO client is python-socketio's threaded `Client`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import engineio
import requests
import socketio

from tests.conftest import HAVE_MNIST, MNIST_DIR

T = TypeVar("T")
FINAL = {"completed", "failed", "cancelled", "interrupted"}
READY_TIMEOUT = 60.0  # a cold start imports torch; generous for a busy 2-core machine
STOP_TIMEOUT = 15.0
# A run long enough to act on while it trains; the tests cancel or kill it early.
LONG_EPOCHS = 200


def free_port() -> int:
    """A TCP port nobody listens on right now (the server retries if it is taken meanwhile)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; that value. Fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, state) of every process in a process group, read from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may contain spaces: split after it
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:
            members.append((int(entry), fields[0]))
    return members


def parent_pid(pid: int) -> int | None:
    """The parent of a live process, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[1])


def livetrain_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """The environment of a livetrain process the tests start: none of this shell's LIVETRAIN_*
    variables, then `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVETRAIN_")}
    # without MNIST, point at an empty folder so the default dataset is digits for sure
    env["LIVETRAIN_MNIST_DIR"] = str(MNIST_DIR) if HAVE_MNIST else str(home / "no-mnist")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class PortTaken(Exception):
    """The server could not bind its port (someone took it between probe and start)."""


class ServerProcess:
    """One `python -m livetrain serve` process in its own session (so its workers share its group)."""

    def __init__(self, home: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.home = Path(home)
        self.log_path = Path(log_path)
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self.port = 0
        self._api: Api | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The server's process id (also its process group id)."""
        assert self.process is not None
        return self.process.pid

    @property
    def api(self) -> Api:
        """An HTTP client for this server."""
        if self._api is None:
            self._api = Api(self.url)
        return self._api

    def _env(self) -> dict[str, str]:
        return livetrain_env(self.home, self.extra_env)

    def start(self) -> ServerProcess:
        """Start the server and wait until GET /api/status answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                log.write(f"---- starting on port {self.port}, home {self.home}\n".encode())
                log.flush()
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "livetrain", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                     "--home", str(self.home),
                     "--async-mode", self.extra_env.get("LIVETRAIN_ASYNC_MODE", "eventlet")],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=self._env(), cwd=self.home, start_new_session=True,
                )
            try:
                self._wait_ready()
                return self
            except PortTaken:
                self.stop()
            except BaseException:
                self.stop()
                raise
        raise RuntimeError(f"could not find a free port for the server; see {self.log_path}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            code = self.process.poll()
            if code is not None:
                log = self.log_tail()
                if "Address already in use" in log:
                    raise PortTaken()
                raise RuntimeError(f"livetrain serve exited with code {code} at start:\n{log}")
            try:
                response = requests.get(self.url + "/api/status", timeout=2)
                if response.status_code == 200 and response.json().get("status") == "online":
                    return
                if response.status_code == 401 and response.json().get("error") == "unauthorized":
                    return  # it answers, and asks for a token
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"livetrain serve did not answer within {READY_TIMEOUT:.0f}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 200) -> str:
        """The end of the server's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Ctrl-C the server (it stops its workers), then make sure nothing of its group is left."""
        if self._api is not None:
            self._api.close()
            self._api = None
        if self.process is None:
            return
        if self.process.poll() is None:
            began = time.monotonic()
            self.process.send_signal(signal.SIGINT)
            try:
                code = self.process.wait(timeout=STOP_TIMEOUT)
                self._note(f"stopped by SIGINT in {time.monotonic() - began:.1f}s, exit code {code}")
            except subprocess.TimeoutExpired:
                self._note(f"still running {STOP_TIMEOUT:.0f}s after SIGINT; killing its process group")
        self._kill_group()

    def _note(self, text: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"---- {text}\n")

    def kill(self) -> None:
        """kill -9 the server and every process of its group (its workers), as a power cut would."""
        if self._api is not None:
            self._api.close()
            self._api = None
        self._kill_group()

    def _kill_group(self) -> None:
        pgid = self.process.pid
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        # orphaned workers are reaped by init; wait until none is left running
        wait_until(lambda: all(state == "Z" for _, state in _group_members(pgid)),
                   timeout=STOP_TIMEOUT, what=f"the processes of server group {pgid} to exit")


class Api:
    """requests against one server, with the error body in every failure message."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.http.request(method, self.base_url + path, **kwargs)

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        """The JSON body of a request that must answer `expect`."""
        response = self.request(method, path, **kwargs)
        assert response.status_code == expect, (
            f"{method} {path} answered {response.status_code}, expected {expect}: {response.text[:500]}")
        return response.json()

    def get(self, path: str, expect: int = 200, **kwargs: Any) -> Any:
        return self.call("GET", path, expect, **kwargs)

    def post(self, path: str, json: Any = None, expect: int = 200, **kwargs: Any) -> Any:
        return self.call("POST", path, expect, json=json, **kwargs)

    def delete(self, path: str, expect: int = 200, **kwargs: Any) -> Any:
        return self.call("DELETE", path, expect, **kwargs)

    # -- what most tests do ----------------------------------------------------
    def create_network(self, **body: Any) -> dict:
        """A Nielsen network on the real data: MNIST [784,30,10] when present, else digits [64,30,10]."""
        body = {**default_network_body(), **body}
        return self.post("/api/networks", body, expect=201)

    def train(self, network_id: str, **body: Any) -> dict:
        """POST .../train; the 202 body."""
        return self.post(f"/api/networks/{network_id}/train", body, expect=202)

    def run(self, run_id: str) -> dict:
        return self.get(f"/api/runs/{run_id}")

    def wait_for_run(self, run_id: str, statuses=FINAL, timeout: float = 90.0) -> dict:
        """Poll GET /api/runs/{id} until its status is one of `statuses`."""
        def check():
            run = self.run(run_id)
            return run if run["status"] in statuses else None
        return wait_until(check, timeout=timeout, what=f"run {run_id} to be {'/'.join(sorted(statuses))}")

    def stored_events(self, run_id: str, after_seq: int = 0) -> list[dict]:
        return self.get(f"/api/runs/{run_id}/events", params={"after_seq": after_seq})["events"]


def default_network_body() -> dict:
    """The create body of the tests' usual network."""
    if HAVE_MNIST:
        return {"dataset_id": "mnist", "layer_sizes": [784, 30, 10]}
    return {"dataset_id": "digits", "layer_sizes": [64, 30, 10]}


class _InOrderEngineIO(engineio.Client):
    """python-engineio hands every message to a new thread, so a list filled by handlers would
    record thread scheduling, not arrival. The tests check arrival order: handle in the reader."""

    def _trigger_event(self, event, *args, **kwargs):
        kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class _InOrderClient(socketio.Client):
    def _engineio_client_class(self):
        return _InOrderEngineIO


TRAINING_EVENTS = {"training_started", "training_update", "training_progress", "training_complete",
                   "training_error", "training_cancelled", "training_interrupted"}
# every event of a run that goes to its rooms: the above, its log lines and the monitor's samples
RUN_ROOM_EVENTS = TRAINING_EVENTS | {"run_log", "weights_update", "training_stats"}


class LiveClient:
    """A python-socketio client that records every event in arrival order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = _InOrderClient(reconnection=False, handle_sigint=False)
        self.sio.on("*", self._record)
        self._events: list[tuple[str, Any]] = []
        self._changed = threading.Condition()

    def _record(self, event: str, data: Any = None) -> None:
        with self._changed:
            self._events.append((event, data))
            self._changed.notify_all()

    def connect(self, token: str | None = None) -> LiveClient:
        self.sio.connect(self.url, wait_timeout=15, auth={"token": token} if token else None)
        return self

    def disconnect(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()

    def subscribe(self, **room: str) -> dict:
        """Send `subscribe` and return the server's acknowledgement."""
        return self.sio.call("subscribe", room, timeout=15)

    def events(self, name: str | set[str] | None = None, run_id: str | None = None) -> list[tuple[str, Any]]:
        """(name, payload) of recorded events, in arrival order, optionally filtered."""
        names = {name} if isinstance(name, str) else name
        with self._changed:
            events = list(self._events)
        return [(n, p) for n, p in events
                if (names is None or n in names)
                and (run_id is None or (isinstance(p, dict) and p.get("run_id") == run_id))]

    def payloads(self, name: str, run_id: str | None = None) -> list[dict]:
        return [p for _, p in self.events(name, run_id)]

    def wait_for(self, name: str, run_id: str | None = None, where: Callable[[dict], bool] = lambda p: True,
                 timeout: float = 90.0) -> dict:
        """The first recorded `name` event (of `run_id`) matching `where`, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for n, payload in self._events:
                    if n == name and (run_id is None or payload.get("run_id") == run_id) and where(payload):
                        return payload
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(n, p.get("run_id"), p.get("epoch")) for n, p in self._events if isinstance(p, dict)]
                    raise AssertionError(f"no {name} event for run {run_id} within {timeout:.0f}s; got {seen[-20:]}")
                self._changed.wait(left)
