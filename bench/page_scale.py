"""Benchmark: do the pages stay fast with thousands of runs?

    python -m bench.page_scale                  # 20 runs against 10,000 runs
    python -m bench.page_scale --many 50000

Two real servers (`livetrain serve --async-mode eventlet`) on homes prepared the same way,
except for how many finished runs their database holds: `--few` (20) and `--many` (10,000),
all in the default experiment, as years of use would leave them. Each page is fetched
`--rounds` times from each server, alternating, and the median times are compared:
many / few. Lists are read a page at a time on the server, so the ratio should stay near 1
(target: <= 2 for the dashboard and the runs list). The experiment page ranks every run of
its experiment on the leaderboard, so it is reported but has no target. Targets are
reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench.common import livetrain_server

PAGES = {"dashboard": "/", "runs list": "/runs", "runs list, page 3": "/runs?page=3",
         "experiment (leaderboard of every run)": "/experiments/default"}
TARGETS = {"dashboard": 2.0, "runs list": 2.0, "runs list, page 3": 2.0}


def prepare_home(home: Path, runs: int) -> None:
    """A home whose database holds `runs` finished scikit-learn runs on iris."""
    from livetrain.app import create_app
    from livetrain.store import Run

    app = create_app({"home": str(home), "warm_workers": 0, "async_mode": "threading"})
    livetrain = app.extensions["livetrain"]
    try:
        store = livetrain.store
        now = time.time() - runs
        for i in range(runs):
            store.create_run(Run(
                id=f"hist{i:07d}", network_id=None, dataset_id="iris", status="completed", algorithm="knn",
                experiment_id="default", params={"n_neighbors": 5}, seed=i, total_epochs=5, epochs_done=5,
                progress=100.0, accuracy=0.9 + (i % 10) / 100,
                metrics={"train": {"accuracy": 0.95}, "test": {"accuracy": 0.9 + (i % 10) / 100}},
                created_at=now + i, started_at=now + i, finished_at=now + i + 0.5))
    finally:
        livetrain.close()


def fetch_ms(url: str) -> float:
    """Milliseconds to fetch one page completely."""
    started = time.perf_counter()
    response = requests.get(url, timeout=60)
    response.raise_for_status()
    _ = response.content
    return (time.perf_counter() - started) * 1000


def run(few: int = 20, many: int = 10_000, rounds: int = 15) -> dict[str, Any]:
    """Median page times on a server with `few` runs and one with `many`, and their ratios."""
    with tempfile.TemporaryDirectory(prefix="livetrain-pages-") as tmp:
        homes = {}
        prepare_seconds = {}
        for label, count in (("few", few), ("many", many)):
            homes[label] = Path(tmp) / label
            started = time.monotonic()
            prepare_home(homes[label], count)
            prepare_seconds[label] = time.monotonic() - started
        samples: dict[str, dict[str, list[float]]] = {page: {"few": [], "many": []} for page in PAGES}
        with livetrain_server(home=homes["few"]) as small, livetrain_server(home=homes["many"]) as large:
            servers = {"few": small, "many": large}
            for path in PAGES.values():  # warm up: templates compiled, caches filled
                for server in servers.values():
                    fetch_ms(server.url + path)
            for _ in range(rounds):
                for page, path in PAGES.items():
                    for label in ("few", "many") if _ % 2 == 0 else ("many", "few"):
                        samples[page][label].append(fetch_ms(servers[label].url + path))
    pages = {}
    for page, sides in samples.items():
        medians = {label: statistics.median(values) for label, values in sides.items()}
        ratio = medians["many"] / medians["few"]
        target = TARGETS.get(page)
        pages[page] = {"path": PAGES[page], "median_ms": medians, "ratio": ratio, "target": target,
                       "met": None if target is None else ratio <= target, "samples_ms": sides}
    return {"runs": {"few": few, "many": many}, "rounds": rounds, "prepare_seconds": prepare_seconds,
            "pages": pages, "met": all(p["met"] for p in pages.values() if p["met"] is not None)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.page_scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--few", type=int, default=20)
    parser.add_argument("--many", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    result = run(few=args.few, many=args.many, rounds=args.rounds)
    for page, item in result["pages"].items():
        med = item["median_ms"]
        print(f"{page:40s} {med['few']:7.1f} ms vs {med['many']:7.1f} ms  ratio {item['ratio']:.2f}"
              + (f"  (target <= {item['target']})" if item["target"] else ""))
    print(json.dumps({k: v for k, v in result.items() if k != "pages"}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
