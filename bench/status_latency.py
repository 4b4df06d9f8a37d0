"""Benchmark 3: GET /api/status latency while two runs train on the server.

A real `livetrain serve` (eventlet). First a short idle sample for context; then two
[784,30,10] MNIST runs start (more epochs than the window needs: they are cancelled
after it), and once both have finished an epoch, GET /api/status is sent every
`interval` seconds for `window` seconds, alternating between a kept-alive connection
(a `requests.Session`, like a browser) and a new connection per request (like a script
calling `requests.get`). Every response is checked to say both runs are training; the
runs' epochs during the window are counted, to show the server was really busy.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from bench.common import ETA, MINI_BATCH, RunWatcher, api, create_and_train, livetrain_server, summary


def _sample(url: str, session: requests.Session, count: int | None, window: float, interval: float,
            expect_jobs: int | None) -> dict[str, Any]:
    """Paced GETs; latencies in seconds per connection kind, and how many saw `expect_jobs`."""
    kept, fresh, jobs_seen = [], [], []
    started = time.perf_counter()
    k = 0
    while (count is None or k < count) and time.perf_counter() - started < window:
        due = started + k * interval
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t0 = time.perf_counter()
        if k % 2 == 0:
            response = session.get(url, timeout=10)
        else:
            response = requests.get(url, timeout=10)
        latency = time.perf_counter() - t0
        response.raise_for_status()
        (kept if k % 2 == 0 else fresh).append(latency)
        body = response.json()
        if body.get("status") != "online":
            raise RuntimeError(f"unexpected status body {body}")
        jobs_seen.append(body.get("training_jobs"))
        k += 1
    all_ = kept + fresh
    out = {
        "all_ms": _ms(summary(all_)),
        "keep_alive_ms": _ms(summary(kept)),
        "new_connection_ms": _ms(summary(fresh)),
        "requests": len(all_),
        "seconds": time.perf_counter() - started,
    }
    if expect_jobs is not None:
        out["responses_with_both_runs_active"] = sum(1 for j in jobs_seen if j == expect_jobs)
    return out


def _ms(stats: dict[str, float]) -> dict[str, float]:
    return {k: (v * 1000.0 if k != "n" else v) for k, v in stats.items()}


def run(window: float = 10.0, interval: float = 0.02, run_epochs: int = 500, timeout: float = 120.0) -> dict[str, Any]:
    """Idle sample, then the sample under two training runs."""
    with livetrain_server() as server:
        url = server.url + "/api/status"
        watcher = RunWatcher(server)
        session = requests.Session()
        run_ids: list[str] = []
        try:
            session.get(url, timeout=10).raise_for_status()
            idle = _sample(url, session, 200, 30.0, interval, None)
            body = {"epochs": run_epochs, "mini_batch_size": MINI_BATCH, "learning_rate": ETA}
            run_ids = [create_and_train(server, body) for _ in range(2)]
            for run_id in run_ids:
                watcher.wait_for(run_id, "training_update", 1, timeout)
            epochs_before = {r: len(watcher.of_run(r, "training_update")) for r in run_ids}
            busy = _sample(url, session, None, window, interval, 2)
            epochs_in_window = {r: len(watcher.of_run(r, "training_update")) - epochs_before[r] for r in run_ids}
            still_running = [api(server, "GET", f"/api/runs/{r}")["status"] == "running" for r in run_ids]
            if not all(still_running):
                raise RuntimeError("a run ended before the measurement window did: raise run_epochs")
            elapsed = [u["elapsed_time"] for r in run_ids for u in watcher.of_run(r, "training_update")]
        finally:
            for run_id in run_ids:
                try:
                    api(server, "POST", f"/api/runs/{run_id}/cancel", expect=(200, 409))
                    watcher.wait_final(run_id, 15)
                except (RuntimeError, TimeoutError, requests.RequestException):
                    pass  # the server is stopped next anyway
            session.close()
            watcher.close()
    p99 = busy["all_ms"]["p99"]
    return {
        "idle": idle,
        "two_runs": busy,
        "window_seconds": window,
        "interval_seconds": interval,
        "epochs_in_window": epochs_in_window,
        "epoch_seconds_while_measured": summary(elapsed),
        "p99_ms": p99,
        "target": "p99 <= 50 ms",
        "met": p99 <= 50.0,
    }
