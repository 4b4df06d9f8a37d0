"""Benchmark 15: what a worker process costs to start, started anew or forked from the worker template.

A worker is ready once it has imported torch, scikit-learn, the readers and the trainer. Started anew
(`python -m livetrain.jobs.worker`, `fork_workers: false`), every worker pays for that; forked from the
template (`livetrain.jobs.template`, the default on Linux), only the template does, once per server.
Each round starts one worker each way, one after the other, and waits until it says ready; reported
are the medians of the wall time to ready and of the CPU time the new process used to get there, their
ratios (forked / anew; targets <= 0.1), and each ready worker's memory: PSS (a page shared by n
processes counts 1/n) and USS (the pages it alone holds: what one more worker adds). The template's own start is
measured once, before the rounds.

Run: `python -m bench.worker_start` (one JSON line; `--markdown` a table too). Needs Linux (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _memory_mb(pid: int) -> tuple[float, float]:
    """(PSS, USS) in MB: the proportional share, and the pages this process alone holds (what it adds)."""
    sizes = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        sizes[name] = int(value.split()[0]) / 1024
    return sizes["Pss"], sizes["Private_Clean"] + sizes["Private_Dirty"]


def _start(fork: bool) -> dict:
    from livetrain.jobs.pool import WorkerHandle

    began = time.perf_counter()
    handle = WorkerHandle.start(threads=1, fork=fork)
    wall = time.perf_counter() - began
    assert handle.forked == fork
    try:
        pss, uss = _memory_mb(handle.pid)
        return {"wall": wall, "cpu": _cpu_seconds(handle.pid), "pss": pss, "uss": uss}
    finally:
        handle.close()


def run(rounds: int) -> dict:
    """The template's start, then `rounds` workers each way; medians and ratios."""
    from bench.common import cpu_busy, machine
    from livetrain.jobs.template import WorkerTemplate

    busy = cpu_busy()
    began = time.perf_counter()
    template = WorkerTemplate.shared()
    if template is None:
        raise SystemExit("the worker template could not start here (Linux only)")
    template_wall = time.perf_counter() - began
    template_cpu, (template_pss, template_uss) = _cpu_seconds(template.pid), _memory_mb(template.pid)
    samples = {"anew": [], "forked": []}
    for _ in range(rounds):
        samples["anew"].append(_start(fork=False))
        samples["forked"].append(_start(fork=True))
    medians = {side: {key: statistics.median(s[key] for s in runs) for key in ("wall", "cpu", "pss", "uss")}
               for side, runs in samples.items()}
    return {
        "benchmark": "worker_start", "rounds": rounds, "machine": machine(), "cpu_busy_before": busy,
        "template": {"wall_s": round(template_wall, 3), "cpu_s": round(template_cpu, 2),
                     "pss_mb": round(template_pss, 1), "uss_mb": round(template_uss, 1)},
        "anew": {k: round(v, 3) for k, v in medians["anew"].items()},
        "forked": {k: round(v, 3) for k, v in medians["forked"].items()},
        "ratio_wall": round(medians["forked"]["wall"] / medians["anew"]["wall"], 4),
        "ratio_cpu": round(medians["forked"]["cpu"] / max(medians["anew"]["cpu"], 1e-9), 4),
        "ratio_pss": round(medians["forked"]["pss"] / medians["anew"]["pss"], 3),
        "ratio_uss": round(medians["forked"]["uss"] / medians["anew"]["uss"], 3),
    }


def markdown(result: dict) -> str:
    from bench.common import markdown_table

    anew, forked = result["anew"], result["forked"]
    return markdown_table([
        ("worker start", "to ready (s)", "CPU of the new process (s)", "PSS when ready (MB)", "USS (MB)"),
        ("anew (`python -m livetrain.jobs.worker`)", f"{anew['wall']:.3f}", f"{anew['cpu']:.2f}", f"{anew['pss']:.0f}",
         f"{anew['uss']:.0f}"),
        ("forked from the template", f"{forked['wall']:.3f}", f"{forked['cpu']:.2f}", f"{forked['pss']:.0f}",
         f"{forked['uss']:.0f}"),
        ("forked / anew", f"{result['ratio_wall']:.3f}", f"{result['ratio_cpu']:.3f}", f"{result['ratio_pss']:.2f}",
         f"{result['ratio_uss']:.2f}"),
        ("the template, once per server", f"{result['template']['wall_s']:.3f}", f"{result['template']['cpu_s']:.2f}",
         f"{result['template']['pss_mb']:.0f}", f"{result['template']['uss_mb']:.0f}"),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.rounds)
    print(json.dumps(result))
    if args.markdown:
        print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
