"""Benchmark 14: epoch time of layer-spec networks through the server against the plain PyTorch loop.

The workloads of `bench.torch_layer_loop` (a 784-256-10 ReLU MLP and a small CNN, Adam 0.001,
mini-batch 64, the first 8,000 MNIST test-set images). Each round, one after the other on the
same machine:

- through a real `livetrain serve --async-mode eventlet`: create each network from layer specs
  on the `mnist` dataset over REST, train it, and read each epoch's `elapsed_time` (the worker's
  own measure of the epoch's training, shuffle included, evaluation excluded) and `threads` from
  the `training_update` events; the run trains alone, so it gets every core;
- the textbook loop in fresh processes with 1 and with 2 torch threads (the faster median is the
  baseline of the ratio), and the tuned loop (what the engine does, written by hand) with 1 and 2.

Ratios are of medians over every epoch of every round: server / best textbook loop (target
<= 1.0, moonshot <= 0.8), and server / best tuned loop for reference.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.common import RunWatcher, api, livetrain_server, run_json_subprocess, summary

NETWORKS = {
    "mlp": [{"type": "Linear", "out_features": 256}, {"type": "ReLU"}, {"type": "Linear", "out_features": 10}],
    "cnn": [{"type": "Conv2d", "out_channels": 8, "kernel_size": 3}, {"type": "ReLU"},
            {"type": "MaxPool2d", "kernel_size": 2},
            {"type": "Conv2d", "out_channels": 16, "kernel_size": 3}, {"type": "ReLU"},
            {"type": "MaxPool2d", "kernel_size": 2}, {"type": "Flatten"}, {"type": "Linear", "out_features": 10}],
}
BATCH = 64
LEARNING_RATE = 0.001
BASELINES = [(variant, threads) for variant in ("textbook", "tuned") for threads in (1, 2)]


def server_run(server, watcher: RunWatcher, model: str, epochs: int, timeout: float) -> dict[str, Any]:
    """One run of `model` through the server; its per-epoch times, threads and accuracies from the events."""
    network = api(server, "POST", "/api/networks", json={"layers": NETWORKS[model], "dataset_id": "mnist",
                                                         "optimizer": "adam", "learning_rate": LEARNING_RATE},
                  expect=201)
    started = api(server, "POST", f"/api/networks/{network['network_id']}/train",
                  json={"epochs": epochs, "mini_batch_size": BATCH}, expect=202)
    run_id = started["job_id"]
    final = watcher.wait_final(run_id, timeout)
    if final != "training_complete":
        raise RuntimeError(f"run {run_id} ended with {final}: {watcher.of_run(run_id, final)}")
    updates = sorted(watcher.of_run(run_id, "training_update"), key=lambda p: p["epoch"])
    if [u["epoch"] for u in updates] != list(range(1, epochs + 1)):
        raise RuntimeError(f"run {run_id}: expected epochs 1..{epochs}, got {[u['epoch'] for u in updates]}")
    stamps = [u["ts"] for u in updates]
    return {"run_id": run_id, "epoch_times": [u["elapsed_time"] for u in updates],
            # from one epoch's event to the next: training, evaluation, the checkpoint written, the report
            "wall_per_epoch": (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else None,
            "threads": [u.get("threads") for u in updates], "accuracies": [u["accuracy"] for u in updates]}


def run(rounds: int = 5, epochs: int = 8, timeout: float = 300.0) -> dict[str, Any]:
    """All rounds; per-epoch times of every side and the ratios."""
    per_round: list[dict[str, Any]] = []
    with livetrain_server() as server:
        watcher = RunWatcher(server)
        try:
            for index in range(rounds):
                entry: dict[str, Any] = {}
                # the sides take turns going first, so a machine that gets busier or quieter during a
                # round does not always favour the same side
                sides = ["server", *(f"{variant}_{threads}" for variant, threads in BASELINES)]
                for side in sides[index % len(sides):] + sides[:index % len(sides)]:
                    if side == "server":
                        entry[side] = {m: server_run(server, watcher, m, epochs, timeout) for m in NETWORKS}
                        continue
                    variant, threads = side.rsplit("_", 1)
                    entry[side] = run_json_subprocess(
                        ["bench.torch_layer_loop", "--threads", threads, "--variant", variant,
                         "--epochs", str(epochs), "--batch", str(BATCH)], timeout=timeout)
                per_round.append(entry)
                print(f"  layer epoch round {index + 1}/{rounds}: " + ", ".join(
                    f"{m} server {statistics.median(entry['server'][m]['epoch_times']):.3f}s vs textbook "
                    f"{min(statistics.median(entry[f'textbook_{t}'][m]['epoch_times']) for t in (1, 2)):.3f}s"
                    for m in NETWORKS), flush=True)
        finally:
            watcher.close()

    out: dict[str, Any] = {"workload": {"networks": NETWORKS, "optimizer": "adam", "learning_rate": LEARNING_RATE,
                                        "mini_batch_size": BATCH, "epochs": epochs, "rounds": rounds,
                                        "n_train": 8000},
                           "models": {}, "rounds": per_round}
    for model in NETWORKS:
        sides = {"server": summary([t for e in per_round for t in e["server"][model]["epoch_times"]])}
        for variant, threads in BASELINES:
            key = f"{variant}_{threads}"
            sides[key] = summary([t for e in per_round for t in e[key][model]["epoch_times"]])
        best_textbook = min(("textbook_1", "textbook_2"), key=lambda k: sides[k]["median"])
        best_tuned = min(("tuned_1", "tuned_2"), key=lambda k: sides[k]["median"])
        ratio = sides["server"]["median"] / sides[best_textbook]["median"]
        out["models"][model] = {
            "epoch_seconds": sides,
            "server_threads": sorted({t for e in per_round for t in e["server"][model]["threads"]}),
            "server_wall_per_epoch": statistics.median(e["server"][model]["wall_per_epoch"] for e in per_round),
            "textbook_baseline": best_textbook,
            "vs_textbook": ratio,
            "vs_textbook_per_round": [
                statistics.median(e["server"][model]["epoch_times"])
                / min(statistics.median(e[k][model]["epoch_times"]) for k in ("textbook_1", "textbook_2"))
                for e in per_round],
            "tuned_baseline": best_tuned,
            "vs_tuned": sides["server"]["median"] / sides[best_tuned]["median"],
            "server_accuracy": per_round[-1]["server"][model]["accuracies"][-1],
            "textbook_accuracy": per_round[-1][best_textbook][model]["accuracies"][-1],
            "target": "<= 1.0 (moonshot <= 0.8)",
            "met": ratio <= 1.0,
            "moonshot": ratio <= 0.8,
        }
    return out
