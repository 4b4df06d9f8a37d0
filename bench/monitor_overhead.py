"""Benchmark 13: what the training monitor costs at its default rate.

The server's own trainer (`TorchEngine`, the path every layer-spec run takes in a worker) trains a
784-256-10 ReLU MLP with Adam at mini-batch 64 on 8,000 MNIST images, epochs alternating between the
monitor on (its defaults: a sample at most every 0.25 s and within 2% of the wall time, histograms at
most once a second) and off, in one process, so both sides share the machine's state. With the
monitor on, every sample goes the way it goes in a worker: through `JobCallbacks` into protocol
messages, JSON-encoded and written to a socket whose other end a thread drains (the server's side).

Reported: the median epoch time of each side, their ratio (target <= 1.05), the monitor's own measured
time as a share of the monitored epochs (the same overhead without the machine's noise), and how many
samples the monitor took per epoch. `--every N` measures a fixed step interval instead of the default rate.

Run: `python -m bench.monitor_overhead --threads 1` (prints one JSON line; `--markdown` a table too).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import threading
import time


def _drain(sock: socket.socket, counter: list[int]) -> None:
    while True:
        data = sock.recv(1 << 20)
        if not data:
            return
        counter[0] += len(data)


def run(threads: int, rounds: int, every: int | None) -> dict:
    """Alternate monitored and plain epochs (after one warm-up epoch of each); their times and samples."""
    import torch

    from bench.common import machine, mnist_dir
    from livetrain.data.sources import load_dataset
    from livetrain.jobs.protocol import NetworkJob
    from livetrain.jobs.worker import Channel, JobCallbacks
    from livetrain.training.model import build_model
    from livetrain.training.monitor import Monitor
    from livetrain.training.spec import parse_hyperparams, parse_network_spec
    from livetrain.training.trainer import TorchEngine

    torch.set_num_threads(threads)
    data = load_dataset("mnist", mnist_dir())
    spec = parse_network_spec({"layers": [{"type": "Linear", "out_features": 256}, {"type": "ReLU"},
                                          {"type": "Linear", "out_features": 10}], "optimizer": "adam"})
    hp = parse_hyperparams({"epochs": 1, "batch_size": 64}, spec, max_epochs=1000, n_train=len(data.X_train))
    model = build_model(spec, data.info.input_shape, data.info.task, data.info.n_classes, max_parameters=10**8)
    engine = TorchEngine(model, spec, hp, data)

    worker_end, server_end = socket.socketpair()
    received = [0]
    threading.Thread(target=_drain, args=(server_end, received), daemon=True).start()
    job = NetworkJob(run_id="bench", dataset_id="mnist", dataset={}, mnist_dir="", models_dir="", artifact_dir="",
                     torch_threads=threads)
    callbacks = JobCallbacks(Channel(worker_end), job, threading.Event(), None, "test")
    monitor = Monitor(callbacks, every=every, model=model)
    callbacks.monitor = monitor

    spent = [0.0]  # the monitor's own measured time in the measured epochs

    def epoch(n: int, monitored: bool) -> tuple[float, int, float]:
        engine.monitor = monitor if monitored else None
        before, cost = monitor.samples, monitor.cost
        started = time.perf_counter()
        engine.run_epoch(n, lambda *args: False)
        return time.perf_counter() - started, monitor.samples - before, monitor.cost - cost

    times: dict[str, list[float]] = {"on": [], "off": []}
    samples: list[int] = []
    n = 0
    for warm in (True,) + (False,) * rounds:
        # alternate which side goes first, so neither always follows the other
        for side in (("on", "off") if n % 2 == 0 else ("off", "on")):
            n += 1
            seconds, taken, cost = epoch(n, side == "on")
            if not warm:
                times[side].append(seconds)
                if side == "on":
                    samples.append(taken)
                    spent[0] += cost
    worker_end.close()
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    return {
        "benchmark": "monitor_overhead", "threads": threads, "rounds": rounds,
        "rate": f"every {every} steps" if every else "default (>= 0.25 s apart, <= 2% of the time)",
        "epoch_on_median": round(on, 4), "epoch_off_median": round(off, 4), "ratio": round(on / off, 4),
        # each measured "on" epoch against the "off" epoch run beside it: less sensitive to load that drifts
        "paired_ratio_median": round(statistics.median(a / b for a, b in zip(times["on"], times["off"])), 4),
        "epochs_on": [round(t, 4) for t in times["on"]], "epochs_off": [round(t, 4) for t in times["off"]],
        "samples_per_epoch": samples, "monitor_seconds": round(spent[0], 4),
        # the monitor's own time over the monitored epochs' time: the overhead without the machine's noise
        "monitor_share": round(spent[0] / sum(times["on"]), 4),
        "bytes_sent": received[0], "steps_per_epoch": -(-len(data.X_train) // hp.batch_size),
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.monitor_overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20, help="measured epochs per side")
    parser.add_argument("--every", type=int, default=None, help="sample every N steps instead of the default rate")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.threads, args.rounds, args.every)
    print(json.dumps(result))
    if args.markdown:
        print(f"\n| monitor | median epoch (s) |\n|---|---|\n| off | {result['epoch_off_median']} |\n"
              f"| on, {result['rate']} | {result['epoch_on_median']} |\n| ratio on / off | {result['ratio']} |\n"
              f"| median of the ratios of neighbouring epochs | {result['paired_ratio_median']} |\n"
              f"| monitor's own share of the monitored epochs | {result['monitor_share']:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
