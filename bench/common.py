"""What the benchmarks share: MNIST on disk, the network's starting weights, statistics,
and a real `livetrain serve` process that is always stopped.

Nothing here imports livetrain: the baselines are written from scratch, and the server is
driven from outside, over HTTP and Socket.IO on 127.0.0.1 only, like any client.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import platform
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"
N_TRAIN = 8000  # the first 8,000 test-set images train, the last 2,000 are held out

# The workload every side of a comparison runs (what issue 2 names).
LAYER_SIZES = [784, 30, 10]
EPOCHS = 10
MINI_BATCH = 10
ETA = 3.0
SEED = 0


def mnist_dir() -> Path:
    """Where the MNIST test-set IDX files are (LIVETRAIN_MNIST_DIR wins)."""
    return Path(os.environ.get("LIVETRAIN_MNIST_DIR") or DEFAULT_MNIST_DIR)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"{stem}(.gz) not found in {directory}; set LIVETRAIN_MNIST_DIR")


def load_mnist(directory: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test): 8,000 / 2,000 of the test set, float32 in [0, 1]."""
    directory = directory or mnist_dir()
    images = _read_idx(_find(directory, "t10k-images-idx3-ubyte")).reshape(-1, 784)
    labels = _read_idx(_find(directory, "t10k-labels-idx1-ubyte")).astype(np.int64)
    X = images.astype(np.float32) / np.float32(255)
    return (np.ascontiguousarray(X[:N_TRAIN]), labels[:N_TRAIN],
            np.ascontiguousarray(X[N_TRAIN:]), labels[N_TRAIN:])


def initial_parameters(sizes: list[int] = LAYER_SIZES, seed: int = SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight [out, in], bias [out]) per layer, float32: N(0, 1/fan_in) weights and N(0, 1)
    biases drawn from a seeded torch generator in the order the server draws them, so every
    side of a comparison starts from the same point."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        weight = torch.randn(fan_out, fan_in, generator=generator) * (1.0 / math.sqrt(fan_in))
        bias = torch.randn(fan_out, generator=generator)
        params.append((weight.numpy().copy(), bias.numpy().copy()))
    return params


def epoch_order(epoch: int, n: int, seed: int = SEED) -> np.ndarray:
    """The shuffle of epoch `epoch` (1-based); the same permutation on every side."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def summary(values: list[float]) -> dict[str, float]:
    """n, min, median, mean, p99 and max of a sample."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": min(values),
        "median": statistics.median(values),
        "mean": statistics.fmean(values),
        "p99": percentile(values, 99),
        "max": max(values),
    }


def markdown_table(rows: list[tuple[Any, ...]]) -> str:
    """Rows (the first is the header) as an aligned Markdown table, as docs/benchmarks.md shows them."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the numbers were taken on."""
    import torch

    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "gpu": bool(torch.cuda.is_available()),
        "load_average_at_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Fraction of all cores busy over `seconds` (from /proc/stat): how loaded the machine
    is by others just before a measurement. None where /proc/stat is missing."""
    def read() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total0, idle0 = read()
        time.sleep(seconds)
        total1, idle1 = read()
    except OSError:
        return None
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_json_subprocess(args: list[str], *, timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `python -m <args>` from the repository root; its last stdout line is JSON."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=full_env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class Server:
    """A running `livetrain serve` process."""

    process: subprocess.Popen
    port: int
    home: Path
    log_path: Path
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's output (for error messages)."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""


def _stop(process: subprocess.Popen) -> None:
    """SIGINT (the server closes its workers), then SIGTERM, then SIGKILL of its process group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
    # the process group is the server we started and its worker processes, nothing else
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def livetrain_server(*, env: dict[str, str] | None = None, start_timeout: float = 90.0,
                     home: Path | None = None) -> Iterator[Server]:
    """Start `python -m livetrain serve --async-mode eventlet` on a free port and a temporary
    home (or `home`, prepared beforehand); stop it (and its workers) when the block ends, even on error."""
    import requests

    with tempfile.TemporaryDirectory(prefix="livetrain-bench-") as tmp:
        home = home or Path(tmp) / "home"
        log_path = Path(tmp) / "server.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("LIVETRAIN_")}
        full_env["LIVETRAIN_MNIST_DIR"] = str(mnist_dir())
        full_env.update(env or {})
        process = None
        for _attempt in range(3):
            port = free_port()
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "livetrain", "serve", "--async-mode", "eventlet",
                     "--host", "127.0.0.1", "--port", str(port), "--home", str(home), "--log-level", "WARNING"],
                    cwd=tmp, env=full_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            server = Server(process, port, home, log_path)
            try:
                deadline = time.monotonic() + start_timeout
                while time.monotonic() < deadline and process.poll() is None:
                    with contextlib.suppress(requests.RequestException):
                        if requests.get(server.url + "/api/health", timeout=2).ok:  # no token needed
                            break
                    time.sleep(0.2)
                else:
                    raise RuntimeError(f"server did not come up (exit code {process.poll()}):\n{server.log_tail()}")
            except BaseException:
                _stop(process)
                if process.poll() is not None and "Address already in use" in server.log_tail():
                    continue  # someone took the port between our check and the bind
                raise
            try:
                yield server
            finally:
                _stop(process)
            return
        raise RuntimeError("could not find a free port for the server")


def api(server: Server, method: str, path: str, *, expect: int | tuple[int, ...] = (200,), **kwargs) -> dict:
    """One JSON request to the server; raises with the body when the status is unexpected."""
    import requests

    expect = (expect,) if isinstance(expect, int) else expect
    response = requests.request(method, server.url + path, timeout=kwargs.pop("timeout", 30), **kwargs)
    if response.status_code not in expect:
        raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
    return response.json()


class RunWatcher:
    """A python-socketio client that records the training events of the runs it watches."""

    EVENTS = ("run_created", "training_started", "training_update", "training_progress", "training_complete",
              "training_error", "training_cancelled")
    FINAL = {"training_complete", "training_error", "training_cancelled"}

    def __init__(self, server: Server) -> None:
        import socketio

        self.events: list[tuple[str, dict[str, Any], float]] = []
        self._cond = threading.Condition()
        self.client = socketio.Client(reconnection=False)
        for name in self.EVENTS:
            self.client.on(name, self._handler(name))
        self.client.connect(server.url, transports=["websocket"], wait_timeout=20)

    def _handler(self, name: str):
        def handle(payload):
            received = time.time()
            with self._cond:
                self.events.append((name, payload, received))
                self._cond.notify_all()
        return handle

    def of_run(self, run_id: str, name: str | None = None) -> list[dict[str, Any]]:
        """Payloads received for a run (optionally only one event name), in arrival order."""
        with self._cond:
            return [p for n, p, _ in self.events if p.get("run_id") == run_id and (name is None or n == name)]

    def received_at(self, run_id: str, name: str) -> float:
        """UNIX time the first event `name` of the run arrived."""
        with self._cond:
            return next(t for n, p, t in self.events if n == name and p.get("run_id") == run_id)

    def wait_final(self, run_id: str, timeout: float) -> str:
        """Wait until the run ends; the final event's name."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for name, payload, _ in self.events:
                    if name in self.FINAL and payload.get("run_id") == run_id:
                        return name
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"run {run_id} did not end within {timeout:.0f}s")
                self._cond.wait(min(left, 1.0))

    def wait_for(self, run_id: str, name: str, count: int, timeout: float) -> None:
        """Wait until `count` events `name` of the run have arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(1 for n, p, _ in self.events if n == name and p.get("run_id") == run_id) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"run {run_id}: fewer than {count} {name} within {timeout:.0f}s")
                self._cond.wait(min(left, 1.0))

    def close(self) -> None:
        """Disconnect."""
        with contextlib.suppress(Exception):
            self.client.disconnect()


def create_and_train(server: Server, train_body: dict[str, Any], *, layer_sizes: list[int] = LAYER_SIZES) -> str:
    """Create a [784,30,10] MNIST network and start a run; the run id."""
    network = api(server, "POST", "/api/networks", json={"layer_sizes": layer_sizes, "dataset_id": "mnist"},
                  expect=201)
    started = api(server, "POST", f"/api/networks/{network['network_id']}/train", json=train_body, expect=202)
    return started["job_id"]
