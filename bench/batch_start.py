"""Benchmark 8: how soon each run of a batch started together begins, on a warm server.

    python -m bench.batch_start              # 5 rounds of 2 runs, warm_workers=1 against the default
    python -m bench.batch_start --rounds 10

Two real servers (`livetrain serve --async-mode eventlet`) one after the other, both with
`max_concurrent_runs` = the batch size (2): one with `LIVETRAIN_WARM_WORKERS=1` (the old
default), one with the setting unset (now: as many as `max_concurrent_runs`). On each, once
`GET /api/status` says every warm worker is ready, each round starts a batch of small runs
together (one thread per run, released by a barrier, each POSTing
`/api/networks/{id}/train` on its own network: digits, [64, 30, 10]) and measures, for each
run, the time from just before its POST to the arrival of its `training_started` event at a
python-socketio client. The runs ask for more epochs than they get: they must still be
training side by side when the last of the batch begins (a run of one small epoch ends in
milliseconds and gives its worker to the next, which hides what is measured), so they are
cancelled once all have begun. Before each round the server is left to settle: no run active,
every warm worker ready and none starting (the replacements the last round started have
exited as surplus or joined the pool). A first round is not counted: it is each fresh
worker's first job, which loads the dataset (cached in the worker afterwards); its times are
in the JSON as `first_round_ms`. Target: every run begins within 200 ms. Targets are
reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

from bench.common import RunWatcher, Server, api, livetrain_server, summary

BATCH = 2
TARGET_MS = 200.0
SIDES = {"warm_workers=1": {"LIVETRAIN_WARM_WORKERS": "1"}, "default": {}}
TRAIN_BODY = {"epochs": 5000, "mini_batch_size": 10, "learning_rate": 3.0}  # cancelled long before


def wait_warm(server: Server, timeout: float = 120.0) -> dict[str, Any]:
    """Wait until no run is active, every warm worker is ready and none is starting; the status then."""
    deadline = time.monotonic() + timeout
    while True:
        status = api(server, "GET", "/api/status")
        if (status["training_jobs"] == 0 and status["idle_workers"] >= status["warm_workers"]
                and status["starting_workers"] == 0):
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server did not get warm within {timeout:.0f}s: {status}")
        time.sleep(0.1)


def start_batch(server: Server, network_ids: list[str]) -> list[tuple[str, float]]:
    """POST a run on every network at once; (run id, UNIX time just before its POST) each."""
    barrier = threading.Barrier(len(network_ids))
    started: list[tuple[str, float] | BaseException | None] = [None] * len(network_ids)

    def post(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            sent = time.time()
            run = api(server, "POST", f"/api/networks/{network_ids[i]}/train", json=TRAIN_BODY, expect=202)
            started[i] = (run["run_id"], sent)
        except BaseException as exc:  # noqa: BLE001  (raised below, in the caller's thread)
            started[i] = exc

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(network_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for item in started:
        if not isinstance(item, tuple):
            raise RuntimeError(f"a POST of the batch failed: {item!r}")
    return started  # type: ignore[return-value]


def measure(env: dict[str, str], rounds: int, batch: int) -> dict[str, Any]:
    """Rounds of `batch` runs started together on one warm server; milliseconds to each start."""
    env = {**env, "LIVETRAIN_MAX_CONCURRENT_RUNS": str(batch)}
    with livetrain_server(env=env) as server:
        watcher = RunWatcher(server)
        try:
            status = wait_warm(server)
            network_ids = [api(server, "POST", "/api/networks", expect=201,
                               json={"dataset_id": "digits", "layer_sizes": [64, 30, 10]})["network_id"]
                           for _ in range(batch)]
            per_round: list[list[float]] = []
            pids: list[list[int]] = []
            in_server: list[list[float]] = []  # the run's created_at -> started_at, both server times
            for _ in range(rounds + 1):
                wait_warm(server)
                runs = start_batch(server, network_ids)
                waits = []
                for run_id, sent in runs:
                    watcher.wait_for(run_id, "training_started", 1, 60)
                    waits.append((watcher.received_at(run_id, "training_started") - sent) * 1000.0)
                for run_id, _ in runs:
                    api(server, "POST", f"/api/runs/{run_id}/cancel")
                ended = []
                for run_id, _ in runs:
                    watcher.wait_final(run_id, 60)
                    ended.append(api(server, "GET", f"/api/runs/{run_id}"))
                if any(r["status"] != "cancelled" for r in ended):
                    raise RuntimeError(f"a run ended before the batch had begun: {ended}")
                per_round.append(waits)
                pids.append([r["worker_pid"] for r in ended])
                in_server.append([(r["started_at"] - r["created_at"]) * 1000.0 for r in ended])
        finally:
            watcher.close()
    first_round, per_round = per_round[0], per_round[1:]
    every = [ms for waits in per_round for ms in waits]
    slowest = [max(waits) for waits in per_round]
    return {"warm_workers": status["warm_workers"], "max_concurrent_runs": status["max_concurrent_runs"],
            "start_ms": summary(every), "slowest_of_batch_ms": summary(slowest), "per_round_ms": per_round,
            "first_round_ms": first_round, "worker_pids": pids,
            "created_to_started_ms": summary([ms for waits in in_server[1:] for ms in waits])}


def run(rounds: int = 5, batch: int = BATCH) -> dict[str, Any]:
    """Both sides, one after the other; the ratio of their median slowest starts and the worst start."""
    sides = {label: measure(env, rounds, batch) for label, env in SIDES.items()}
    old, new = sides["warm_workers=1"], sides["default"]
    worst = new["start_ms"]["max"]
    return {
        "batch": batch,
        "rounds": rounds,
        "sides": sides,
        "ratio": old["slowest_of_batch_ms"]["median"] / new["slowest_of_batch_ms"]["median"],
        "worst_start_ms": worst,
        "target": f"every run starts within {TARGET_MS:.0f} ms",
        "met": worst <= TARGET_MS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch_start", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=BATCH, help="runs started together (= max_concurrent_runs)")
    args = parser.parse_args(argv)
    result = run(rounds=args.rounds, batch=args.batch)
    for label, side in result["sides"].items():
        start, slowest = side["start_ms"], side["slowest_of_batch_ms"]
        print(f"{label:16s} ({side['warm_workers']} warm): start p50 {start['median']:7.1f} / "
              f"max {start['max']:7.1f} ms; slowest of a batch p50 {slowest['median']:7.1f} ms")
    print(f"ratio (median slowest start, warm_workers=1 / default): {result['ratio']:.1f}; "
          f"worst start {result['worst_start_ms']:.1f} ms (target <= {TARGET_MS:.0f} ms)")
    print(json.dumps({k: v for k, v in result.items() if k != "sides"}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
