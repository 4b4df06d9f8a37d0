"""Benchmark: what training a random forest live, in steps, costs over one plain fit.

    python -m bench.sklearn_steps                 # 3 rounds, n_jobs 1 (a worker's default thread budget)
    python -m bench.sklearn_steps --n-jobs 2

Both sides grow a RandomForestClassifier of 100 trees, same seed and n_jobs, on the same
data: make_classification, 20,000 rows x 20 features, split 70/15/15 and standardized with
the training split's statistics.

- live: `livetrain.training.estimators.train_estimator` in 10 steps of 10 trees (warm
  start), scoring the training rows (a 5,000-row sample) and the validation split after
  every step, then the test split, with callbacks that do nothing;
- plain: one `fit` of 100 trees, then `predict_proba` on the validation and test splits.

The sides alternate, `--rounds` times each; the result is the median wall time of each and
their ratio (target: live / plain <= 1.5). The run also checks that both sides end with the
same model: their test probabilities must agree. Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import numpy as np

N_ROWS = 20_000
N_FEATURES = 20
N_TREES = 100
STEPS = 10
SEED = 0
TARGET_RATIO = 1.5


def dataset(seed: int = SEED):
    """The benchmark's DatasetArrays: a seeded 70/15/15 split of make_classification's rows."""
    from sklearn.datasets import make_classification

    from livetrain.data.sources import DatasetArrays
    from livetrain.store.entities import Dataset

    X, y = make_classification(n_samples=N_ROWS, n_features=N_FEATURES, n_informative=10, n_redundant=5,
                               n_classes=2, random_state=seed)
    order = np.random.default_rng(seed).permutation(N_ROWS)
    n_train, n_val = int(N_ROWS * 0.70), int(N_ROWS * 0.15)
    train, val, test = order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]
    mean, std = X[train].mean(axis=0), X[train].std(axis=0)
    std[std == 0] = 1.0

    def prep(rows: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray((X[rows] - mean) / std, dtype=np.float32)

    info = Dataset(id="bench-classification", name="make_classification", task="classification",
                   source="sklearn.datasets.make_classification", n_features=N_FEATURES, n_classes=2,
                   input_shape=[N_FEATURES], n_train=len(train), n_test=len(test))
    return DatasetArrays(info, prep(train), y[train].astype(np.int64), prep(test), y[test].astype(np.int64),
                         {"mean": mean.tolist(), "std": std.tolist()},
                         X_val=prep(val), y_val=y[val].astype(np.int64))


class _Quiet:
    """Callbacks that never stop a run and throw the steps away."""

    def should_stop(self) -> bool:
        return False

    def on_step(self, result) -> None:
        pass


def live(data, n_jobs: int) -> dict[str, Any]:
    """One live run: 100 trees in 10 steps, evaluated after each."""
    from livetrain.training.estimators import train_estimator

    started = time.perf_counter()
    outcome = train_estimator("random_forest", "classification", {"n_estimators": N_TREES}, SEED, data, _Quiet(),
                              steps=STEPS, n_jobs=n_jobs)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "steps": outcome.steps_done, "test_accuracy": outcome.final["test"]["accuracy"],
            "test_proba": outcome.model.predict_proba(data.X_test)}


def plain(data, n_jobs: int) -> dict[str, Any]:
    """One plain fit of 100 trees and one evaluation on the validation and test splits."""
    from sklearn.ensemble import RandomForestClassifier

    started = time.perf_counter()
    model = RandomForestClassifier(n_estimators=N_TREES, random_state=SEED, n_jobs=n_jobs)
    model.fit(data.X_train, data.y_train)
    model.predict_proba(data.X_val)
    test_proba = model.predict_proba(data.X_test)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "test_accuracy": float((test_proba.argmax(axis=1) == data.y_test).mean()),
            "test_proba": test_proba}


def run(rounds: int = 3, n_jobs: int = 1) -> dict[str, Any]:
    """Alternate the two sides `rounds` times; medians, ratio, and whether the target was met."""
    data = dataset()
    live(data, n_jobs)  # warm-up: first-call costs (imports, thread pools) belong to neither side
    times: dict[str, list[float]] = {"live": [], "plain": []}
    same_model = True
    accuracy: dict[str, float] = {}
    for _ in range(rounds):
        a = live(data, n_jobs)
        b = plain(data, n_jobs)
        times["live"].append(a["seconds"])
        times["plain"].append(b["seconds"])
        same_model = same_model and bool(np.allclose(a["test_proba"], b["test_proba"]))
        accuracy = {"live": a["test_accuracy"], "plain": b["test_accuracy"]}
    medians = {side: statistics.median(values) for side, values in times.items()}
    ratio = medians["live"] / medians["plain"]
    return {
        "workload": {"rows": N_ROWS, "features": N_FEATURES, "split": "70/15/15", "trees": N_TREES,
                     "steps": STEPS, "n_jobs": n_jobs, "rounds": rounds, "seed": SEED},
        "seconds": times,
        "median_seconds": medians,
        "ratio": ratio,
        "target": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
        "same_model": same_model,
        "test_accuracy": accuracy,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print its result as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.sklearn_steps", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=1, help="threads for both sides (a worker's budget)")
    args = parser.parse_args(argv)
    print(json.dumps(run(rounds=args.rounds, n_jobs=args.n_jobs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
