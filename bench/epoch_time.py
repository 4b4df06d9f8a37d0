"""Benchmarks 1, 2 and 5: epoch time through the server against two baselines, and accuracy.

Each round trains the same workload ([784,30,10], sigmoid, quadratic cost, plain SGD,
mini-batch 10, eta 3.0, 10 epochs, the 8,000 training images) four ways, one after the
other on the same machine:

- through a real `livetrain serve --async-mode eventlet`: create the network over REST,
  start the run, read `elapsed_time` from the `training_update` Socket.IO events (the
  worker's own measure of the epoch's training, evaluation excluded);
- the best plain-PyTorch loop (`bench.torch_loop`), with 1 and with 2 torch threads, and the
  textbook optimizer variant for reference;
- a per-example NumPy network in the style of Nielsen's `network.py` (`bench.nielsen_numpy`).

The baselines run in fresh subprocesses while the server sits idle. Several rounds,
pooled: a ratio is the median server epoch over the median baseline epoch.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench.common import (
    EPOCHS,
    ETA,
    MINI_BATCH,
    RunWatcher,
    api,
    create_and_train,
    livetrain_server,
    run_json_subprocess,
    summary,
)

BASELINES = {
    # name: (module args, extra environment)
    "torch_1_thread": (["bench.torch_loop", "--threads", "1"], {}),
    "torch_2_threads": (["bench.torch_loop", "--threads", "2"], {}),
    "torch_optim_1_thread": (["bench.torch_loop", "--threads", "1", "--update", "optim"], {}),
    # one BLAS thread, like the server's worker (at one example per step more threads only cost)
    "nielsen_per_example": (["bench.nielsen_numpy"],
                            {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}),
}


def _nice(pid: int | None) -> int | None:
    """The scheduling niceness of a process (Linux /proc), None if unknown."""
    if not pid:
        return None
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
    except (OSError, ValueError, IndexError):
        return None


def server_run(server, watcher: RunWatcher, epochs: int, timeout: float) -> dict[str, Any]:
    """One run through the server; its per-epoch times and accuracies from the events."""
    run_id = create_and_train(server, {"epochs": epochs, "mini_batch_size": MINI_BATCH, "learning_rate": ETA})
    final = watcher.wait_final(run_id, timeout)
    if final != "training_complete":
        raise RuntimeError(f"run {run_id} ended with {final}: {watcher.of_run(run_id, final)}")
    updates = sorted(watcher.of_run(run_id, "training_update"), key=lambda p: p["epoch"])
    if [u["epoch"] for u in updates] != list(range(1, epochs + 1)):
        raise RuntimeError(f"run {run_id}: expected epochs 1..{epochs}, got {[u['epoch'] for u in updates]}")
    stored = api(server, "GET", f"/api/runs/{run_id}/metrics")["metrics"]
    worker_pid = api(server, "GET", f"/api/runs/{run_id}").get("worker_pid")
    if [m["elapsed_time"] for m in stored] != [u["elapsed_time"] for u in updates]:
        raise RuntimeError(f"run {run_id}: stored metrics differ from the events received")
    return {
        "run_id": run_id,
        "epoch_times": [u["elapsed_time"] for u in updates],
        "eval_times": [u["eval_time"] for u in updates],
        "accuracies": [u["accuracy"] for u in updates],
        "worker_nice": _nice(worker_pid),
        "correct": updates[-1]["correct"],
        "total": updates[-1]["total"],
    }


def run(rounds: int = 3, epochs: int = EPOCHS, timeout: float = 180.0) -> dict[str, Any]:
    """All rounds; the numbers behind benchmarks 1, 2 and 5."""
    per_round: list[dict[str, Any]] = []
    with livetrain_server() as server:
        watcher = RunWatcher(server)
        try:
            status = api(server, "GET", "/api/status")
            for index in range(rounds):
                entry: dict[str, Any] = {"server": server_run(server, watcher, epochs, timeout)}
                for name, (args, env) in BASELINES.items():
                    entry[name] = run_json_subprocess([*args, "--epochs", str(epochs)], env=env, timeout=timeout)
                per_round.append(entry)
                print(f"  epoch round {index + 1}/{rounds}: server median "
                      f"{statistics.median(entry['server']['epoch_times']):.4f}s, torch 1 thread "
                      f"{statistics.median(entry['torch_1_thread']['epoch_times']):.4f}s, per-example "
                      f"{statistics.median(entry['nielsen_per_example']['epoch_times']):.4f}s", flush=True)
        finally:
            watcher.close()

    def pooled(name: str) -> list[float]:
        return [t for entry in per_round for t in entry[name]["epoch_times"]]

    sides = {name: summary(pooled(name)) for name in ["server", *BASELINES]}
    best_torch = min(("torch_1_thread", "torch_2_threads"), key=lambda name: sides[name]["median"])
    server_median = sides["server"]["median"]

    def round_ratios(numerator: str, denominator: str) -> list[float]:
        return [statistics.median(e[numerator]["epoch_times"]) / statistics.median(e[denominator]["epoch_times"])
                for e in per_round]

    last = per_round[-1]
    accuracy = last["server"]["accuracies"][-1]
    return {
        "workload": {"layer_sizes": [784, 30, 10], "epochs": epochs, "mini_batch_size": MINI_BATCH,
                     "learning_rate": ETA, "n_train": 8000, "n_test": 2000, "rounds": rounds},
        "server_settings": {**{k: status.get(k) for k in ("async_mode", "max_concurrent_runs", "runner")},
                            "worker_nice": per_round[-1]["server"]["worker_nice"], "baselines_nice": 0},
        "epoch_seconds": sides,
        "torch_baseline": best_torch,
        "vs_torch": {
            "ratio": server_median / sides[best_torch]["median"],
            "per_round": round_ratios("server", best_torch),
            "target": "<= 1.15",
            "met": server_median / sides[best_torch]["median"] <= 1.15,
        },
        "vs_nielsen": {
            "speedup": sides["nielsen_per_example"]["median"] / server_median,
            "per_round": [1 / r for r in round_ratios("server", "nielsen_per_example")],
            "target": ">= 3",
            "met": sides["nielsen_per_example"]["median"] / server_median >= 3.0,
        },
        "accuracy": {
            "server": accuracy,
            "correct": last["server"]["correct"],
            "total": last["server"]["total"],
            "same_every_round": len({e["server"]["accuracies"][-1] for e in per_round}) == 1,
            "torch_baseline": last[best_torch]["accuracies"][-1],
            "nielsen_per_example": last["nielsen_per_example"]["accuracies"][-1],
            "target": ">= 0.93",
            "met": accuracy >= 0.93,
        },
        "server_eval_seconds": summary([t for e in per_round for t in e["server"]["eval_times"]]),
        "rounds": per_round,
    }
