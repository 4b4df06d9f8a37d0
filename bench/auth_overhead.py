"""Benchmark 12: what API tokens cost a request: auth on against auth off, side by side.

Two real `livetrain serve` (eventlet) on fresh homes, started together: one with
`LIVETRAIN_AUTH=off`, one with `LIVETRAIN_AUTH=on` and an admin token made beforehand with
`python -m livetrain tokens create` on its home. With auth on every request's token is hashed
(SHA-256) and looked up in the database (no cache, so a revocation counts at once); the write
rate limit (Flask-Limiter) counts on both servers, keyed per token on one and per address on the
other. Each side trains a [64,30,10] network on `digits` for one epoch, so that it can predict,
and waits until its worker pool is back at rest. Then, alternating between the two servers
request by request (the order of each pair swapped every round, so neither always goes first):

- (a) `GET /api/status` on a kept-alive `requests.Session` per server;
- (b) `POST /api/networks/{id}/predict` with one input;
- (c) a Socket.IO connect: a new python-socketio `Client` over the websocket transport, from the
  call to `connect()` until it returns (the namespace is connected, where the token is checked),
  then a disconnect that is not timed.

The first requests of each kind are warm-up and not counted (the token's first use is written
to the database then; afterwards at most once a minute). Each server's own CPU time over each
part is read from /proc. Last, in this process, the token check alone is timed on the auth-on
server's database (SHA-256, lookup, `TokenService.authenticate`), to say where its cost goes.
Checks that auth is really on and off: a request without a token gets 401 from one and 200 from
the other, and a token-less Socket.IO connect is refused by one.
`common.livetrain_server` is not used because it waits for an open `GET /api/status`; this
waits for `GET /api/health`, which needs no token.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from bench.common import Server, api, livetrain_server, mnist_dir, summary

LAYER_SIZES = [64, 30, 10]
TRAIN_BODY = {"epochs": 1, "mini_batch_size": 10, "learning_rate": 3.0}
INPUT = [float((7 * i) % 17) for i in range(64)]  # one digits row: 8x8 pixels in 0..16
TARGETS = {"rest_p50_ratio": 1.15, "connect_p50_ratio": 1.2}


def _env(auth: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVETRAIN_")}
    env["LIVETRAIN_MNIST_DIR"] = str(mnist_dir())
    env["LIVETRAIN_AUTH"] = auth
    return env


def _create_token(home: Path, env: dict[str, str]) -> str:
    """An admin token made on the home's database before the server starts (what an operator does)."""
    done = subprocess.run([sys.executable, "-m", "livetrain", "tokens", "create", "--home", str(home),
                           "--name", "bench", "--scope", "admin"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"tokens create exited {done.returncode}:\n{done.stderr[-3000:]}")
    token = done.stdout.strip().splitlines()[0]
    if not token.startswith("lt_"):
        raise RuntimeError(f"tokens create printed {done.stdout[:200]!r}")
    return token


@contextlib.contextmanager
def auth_server(auth: bool, start_timeout: float = 90.0) -> Iterator[tuple[Server, dict[str, str]]]:
    """A server with auth on (and a token) or off, on a fresh home; the headers its requests send.
    Stopped (with its workers) when the block ends, even on error."""
    with tempfile.TemporaryDirectory(prefix="livetrain-bench-auth-") as tmp:
        home = Path(tmp) / "home"
        env = _env("on" if auth else "off")
        headers = {"Authorization": "Bearer " + _create_token(home, env)} if auth else {}
        with livetrain_server(env={"LIVETRAIN_AUTH": env["LIVETRAIN_AUTH"]}, home=home,
                              start_timeout=start_timeout) as server:
            yield server, headers


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (the server's own, not its worker processes')."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _train(server: Server, headers: dict[str, str], timeout: float = 180.0) -> str:
    """A [64,30,10] digits network trained one epoch (a version to predict with); its id."""
    network = api(server, "POST", "/api/networks", json={"layer_sizes": LAYER_SIZES, "dataset_id": "digits"},
                  headers=headers, expect=201)
    run = api(server, "POST", f"/api/networks/{network['network_id']}/train", json=TRAIN_BODY, headers=headers,
              expect=202)
    deadline = time.monotonic() + timeout
    while (status := api(server, "GET", f"/api/runs/{run['run_id']}", headers=headers)["status"]) != "completed":
        if status in ("failed", "cancelled", "interrupted") or time.monotonic() > deadline:
            raise RuntimeError(f"the one-epoch run ended {status}:\n{server.log_tail()}")
        time.sleep(0.1)
    return network["network_id"]


def _at_rest(server: Server, headers: dict[str, str], timeout: float = 120.0) -> None:
    """Wait until no run is active and the worker pool is back to its warm processes, none starting
    (a run's start has its pool start a replacement process, which imports torch: seconds of CPU)."""
    deadline = time.monotonic() + timeout
    while True:
        status = api(server, "GET", "/api/status", headers=headers)
        if (status["training_jobs"] == 0 and status["idle_workers"] >= status["warm_workers"]
                and status["starting_workers"] == 0):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server did not come to rest within {timeout:.0f}s: {status}")
        time.sleep(0.2)


def alternate(calls: dict[str, Callable[[], float]], count: int, interval: float, warmup: int,
              pids: dict[str, int]) -> dict[str, Any]:
    """`count` timed calls per side (after `warmup` untimed ones), one side then the other, a pair
    every `interval` seconds; latencies in ms and each server's CPU per call."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    cpu_before = {name: _cpu_seconds(pids[name]) for name in names}
    latencies: dict[str, list[float]] = {name: [] for name in names}
    started = time.perf_counter()
    for k in range(count):
        delay = started + k * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        for name in names if k % 2 == 0 else reversed(names):
            latencies[name].append(calls[name]() * 1000.0)
    cpu = {name: (_cpu_seconds(pids[name]) - cpu_before[name]) * 1000.0 / count for name in names}
    return {name: {"ms": summary(latencies[name]), "server_cpu_ms_per_call": cpu[name]} for name in names}


def _ratios(sides: dict[str, Any]) -> dict[str, Any]:
    on, off = sides["on"], sides["off"]
    return {**sides,
            "p50_ratio": on["ms"]["median"] / off["ms"]["median"],
            "p99_ratio": on["ms"]["p99"] / off["ms"]["p99"],
            "server_cpu_ratio": (on["server_cpu_ms_per_call"] / off["server_cpu_ms_per_call"]
                                 if off["server_cpu_ms_per_call"] else None)}


def _timed(call: Callable[[], requests.Response], check: Callable[[dict[str, Any]], bool]) -> Callable[[], float]:
    def run() -> float:
        t0 = time.perf_counter()
        response = call()
        latency = time.perf_counter() - t0
        if response.status_code != 200 or not check(response.json()):
            raise RuntimeError(f"{response.request.method} {response.url} -> {response.status_code}: "
                               f"{response.text[:300]}")
        return latency
    return run


def _connect(url: str, token: str | None) -> Callable[[], float]:
    import socketio

    def run() -> float:
        client = socketio.Client(reconnection=False)
        try:
            t0 = time.perf_counter()
            client.connect(url, transports=["websocket"], auth={"token": token} if token else None, wait_timeout=20)
            latency = time.perf_counter() - t0
            if not client.connected:
                raise RuntimeError(f"Socket.IO connect to {url} did not connect")
        finally:
            client.disconnect()
        return latency
    return run


def _refused_without_token(url: str) -> bool:
    """Whether a Socket.IO connect without a token is refused."""
    import socketio

    client = socketio.Client(reconnection=False)
    try:
        client.connect(url, transports=["websocket"], wait_timeout=10)
    except socketio.exceptions.ConnectionError:
        return True
    client.disconnect()
    return False


def check_cost(home: Path, token: str, count: int = 2000) -> dict[str, float]:
    """In this process, on the auth-on server's database: microseconds (median of `count`) of the
    token's SHA-256, of the lookup by hash, and of `TokenService.authenticate` (both, plus the checks)."""
    from livetrain.auth import TokenService, hash_token
    from livetrain.config import Settings
    from livetrain.store import MetadataStore

    store = MetadataStore(Settings.load({"home": home}, environ={}).resolved_database_url)
    try:
        tokens = TokenService(store)
        tokens.authenticate(token)  # the first use is written (then at most once a minute), as on the server
        digest = hash_token(token)
        out = {}
        for name, call in (("sha256_us", lambda: hash_token(token)), ("lookup_us", lambda: store.token_by_hash(digest)),
                           ("authenticate_us", lambda: tokens.authenticate(token))):
            times = []
            for _ in range(count):
                t0 = time.perf_counter()
                call()
                times.append((time.perf_counter() - t0) * 1e6)
            out[name] = summary(times)["median"]
        return out
    finally:
        store.close()


def run(requests_per_side: int = 300, connects: int = 30, interval: float = 0.02,
        connect_interval: float = 0.1, warmup: int = 20) -> dict[str, Any]:
    """Both servers up, a trained network on each, then (a), (b) and (c) alternated between them."""
    with contextlib.ExitStack() as stack:
        servers = {"off": stack.enter_context(auth_server(False)), "on": stack.enter_context(auth_server(True))}
        networks = {name: _train(server, headers) for name, (server, headers) in servers.items()}
        for server, headers in servers.values():
            _at_rest(server, headers)
        checks = {
            "status_without_token_off": requests.get(servers["off"][0].url + "/api/status", timeout=10).status_code,
            "status_without_token_on": requests.get(servers["on"][0].url + "/api/status", timeout=10).status_code,
            "socketio_without_token_refused_on": _refused_without_token(servers["on"][0].url),
            "socketio_without_token_refused_off": _refused_without_token(servers["off"][0].url),
        }
        if (checks["status_without_token_off"], checks["status_without_token_on"]) != (200, 401) or \
                not checks["socketio_without_token_refused_on"] or checks["socketio_without_token_refused_off"]:
            raise RuntimeError(f"auth is not on on one side and off on the other: {checks}")
        pids = {name: server.process.pid for name, (server, _) in servers.items()}
        sessions = {name: stack.enter_context(requests.Session()) for name in servers}
        for name, (_, headers) in servers.items():
            sessions[name].headers.update(headers)

        def status_call(name: str) -> Callable[[], float]:
            url = servers[name][0].url + "/api/status"
            return _timed(lambda: sessions[name].get(url, timeout=10), lambda body: body.get("status") == "online")

        def predict_call(name: str) -> Callable[[], float]:
            url = f"{servers[name][0].url}/api/networks/{networks[name]}/predict"
            return _timed(lambda: sessions[name].post(url, json={"input": INPUT}, timeout=10),
                          lambda body: isinstance(body.get("prediction"), int) and len(body.get("output", [])) == 10)

        # (b) is writes: warm-up + timed calls stay under the write limit of 600 a minute per key
        status = _ratios(alternate({n: status_call(n) for n in servers}, requests_per_side, interval, warmup, pids))
        predict = _ratios(alternate({n: predict_call(n) for n in servers}, requests_per_side, interval, warmup, pids))
        tokens = {name: headers.get("Authorization", "").removeprefix("Bearer ") or None
                  for name, (_, headers) in servers.items()}
        connect = _ratios(alternate({n: _connect(servers[n][0].url, tokens[n]) for n in servers}, connects,
                                    connect_interval, 2, pids))
        in_process = check_cost(servers["on"][0].home, tokens["on"])
    met = {
        "status": status["p50_ratio"] <= TARGETS["rest_p50_ratio"],
        "predict": predict["p50_ratio"] <= TARGETS["rest_p50_ratio"],
        "connect": connect["p50_ratio"] <= TARGETS["connect_p50_ratio"],
    }
    return {
        "status": status,
        "predict": predict,
        "connect": connect,
        "checks": checks,
        "check_in_process": in_process,
        "workload": {"requests_per_side": requests_per_side, "connects_per_side": connects, "warmup": warmup,
                     "interval_seconds": interval, "layer_sizes": LAYER_SIZES, "dataset": "digits"},
        "targets": {"rest_p50_ratio": f"<= {TARGETS['rest_p50_ratio']}",
                    "connect_p50_ratio": f"<= {TARGETS['connect_p50_ratio']}"},
        "met": met,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), default=str))
