"""Benchmark 8: a big CSV uploaded to a real server, against pandas reading the same file.

    python -m bench.upload_big --sizes 50,1024

For each size (MB), on one generated CSV (deterministic, cached under /tmp):

- **reference**: `pandas.read_csv(path, engine="pyarrow")` in a fresh process, `--repeat` reads
  before the uploads and as many after (a shared machine's load changes), the best of them, and
  that process's peak RSS growth over its idle baseline;
- **server**: a fresh `livetrain serve --async-mode eventlet` (upload limits raised to
  2 GiB and 100 million rows), warmed by a 2,000-row upload (the first upload's imports are not
  the file's cost), receives the file as a streamed multipart upload
  (`POST /api/datasets`, field `file`, `target`, `upload_id`) sent by `http.client` in 1 MiB
  pieces with a Content-Length, so the client never holds it either. Upload-to-usable is the
  time from the first byte sent to the 201 response (the dataset is stored and can be trained
  on); the part after the last byte was sent is the server's own work, split into stages by
  the `dataset_progress` events a Socket.IO client receives for the `upload_id`.
  Meanwhile the server process's RSS is read from /proc every 50 ms (and its VmHWM, reset
  before the upload, catches a peak between two samples), and another thread sends
  `GET /api/status` every 50 ms, alternating a kept-alive and a new connection.

Ratios: upload-to-usable / pandas read time (target <= 2), server RSS growth / file size
(target <= 2), and the status p99 (target < 100 ms). Reported, never asserted. The server is
stopped if its RSS would leave less than 3 GB of the machine's memory to others.
`--breakdown` also times the server's steps alone in a fresh process (this imports livetrain).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import ROOT, api, cpu_busy, livetrain_server, markdown_table, percentile, summary

MB = 1_000_000  # file sizes are decimal megabytes, as a file manager shows them
MiB = 1 << 20
DEFAULT_SIZES = (50, 1024)
DEFAULT_DATA_DIR = Path("/tmp/livetrain-bench-data")
CHUNK_ROWS = 200_000
SEND_CHUNK = MiB
SAMPLE_INTERVAL = 0.05  # seconds between RSS samples and between status requests
TARGET = "label"
SERVER_ENV = {
    "LIVETRAIN_MAX_UPLOAD_BYTES": str(2 << 30),  # 2 GiB, the intended default for big files
    "LIVETRAIN_MAX_UPLOAD_ROWS": str(100_000_000),
}
TARGETS = {"time_ratio": 2.0, "memory_ratio": 2.0, "status_p99_ms": 100.0}
STAGES = ("reading", "preparing", "storing", "done")


# ---------------------------------------------------------------------------- the file


def _chunk(seed: int, index: int, rows: int):
    """One block of rows as a pyarrow table: 12 numeric columns (3 integer), 3 categorical, a boolean,
    a few missing values, and a 3-class target that depends on the features (so it can be learned)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([seed, index])
    age = rng.integers(18, 91, rows)
    tenure = rng.integers(0, 121, rows)
    purchases = rng.poisson(5.0, rows)
    spend = np.round(rng.lognormal(3.5, 0.8, rows), 2)
    balance = np.round(rng.normal(1500.0, 900.0, rows), 2)
    scores = [np.round(rng.normal(0.0, 1.0, rows), 4) for _ in range(5)]
    lat = np.round(rng.uniform(35.0, 60.0, rows), 4)
    lon = np.round(rng.uniform(-10.0, 30.0, rows), 4)
    discount = np.round(rng.uniform(0.0, 0.5, rows), 3)
    regions = np.array(["north", "south", "east", "west", "central"], dtype=object)
    plans = np.array(["basic", "plus", "premium"], dtype=object)
    devices = np.array(["android", "ios", "web", "desktop"], dtype=object)
    region = regions[rng.integers(0, 5, rows)]
    plan_i = rng.choice(3, rows, p=[0.6, 0.3, 0.1])
    device = devices[rng.integers(0, 4, rows)]
    active = rng.random(rows) < 0.7
    logit = (0.8 * scores[0] - 0.6 * scores[1] + 0.02 * (tenure - 60) + 0.5 * plan_i + 0.4 * active
             + 0.3 * np.log(spend) + rng.normal(0.0, 1.0, rows))
    label = np.array(["bronze", "silver", "gold"], dtype=object)[np.digitize(logit, [0.6, 1.9])]

    def missing(values, fraction: float):
        return pa.array(values, mask=rng.random(rows) < fraction)

    return pa.table({
        "customer_age": pa.array(age), "tenure_months": pa.array(tenure), "n_purchases": pa.array(purchases),
        "monthly_spend": pa.array(spend), "balance": missing(balance, 0.01),
        **{f"score_{k}": pa.array(s) for k, s in zip("abcde", scores)},
        "latitude": pa.array(lat), "longitude": pa.array(lon), "discount_rate": missing(discount, 0.005),
        "region": missing(region, 0.005), "plan": pa.array(plans[plan_i]), "device": pa.array(device),
        "is_active": pa.array(active), TARGET: pa.array(label),
    })


def generate(size_mb: int, seed: int = 0, directory: Path = DEFAULT_DATA_DIR) -> dict[str, Any]:
    """The CSV of about `size_mb` MB for `seed` (written once in blocks of rows, then reused): path, bytes, rows."""
    import pyarrow.csv as pacsv

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"upload-{size_mb}mb-seed{seed}.csv"
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("bytes") == path.stat().st_size:
            return meta | {"path": str(path), "generated_seconds": 0.0}
    target = size_mb * MB
    started = time.perf_counter()
    part = path.with_suffix(".part")
    rows = written = index = 0
    with open(part, "wb") as fh:
        while written < target:
            table = _chunk(seed, index, CHUNK_ROWS)
            sink = io.BytesIO()
            pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=index == 0))
            pacsv_bytes = sink.getbuffer()
            if written + len(pacsv_bytes) > target:  # the last block: only the rows that fit the size
                per_row = len(pacsv_bytes) / table.num_rows
                keep = max(1, math.ceil((target - written) / per_row))
                sink = io.BytesIO()
                pacsv.write_csv(table.slice(0, keep), sink,
                                write_options=pacsv.WriteOptions(include_header=index == 0))
                pacsv_bytes = sink.getbuffer()
                table = table.slice(0, keep)
            fh.write(pacsv_bytes)
            written += len(pacsv_bytes)
            rows += table.num_rows
            index += 1
    os.replace(part, path)
    meta = {"size_mb": size_mb, "seed": seed, "bytes": path.stat().st_size, "rows": rows, "columns": 18,
            "target": TARGET}
    meta_path.write_text(json.dumps(meta))
    return meta | {"path": str(path), "generated_seconds": time.perf_counter() - started}


# ---------------------------------------------------------------------------- /proc


def _proc_kib(pid: int | str, key: str) -> int | None:
    """A `VmRSS`/`VmHWM`-style line of /proc/PID/status, in KiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def _descendants(pid: int) -> list[int]:
    """The process's children, their children, ...: the server's worker processes."""
    found: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in map(int, children):
        found += [child, *_descendants(child)]
    return found


def _reset_peak(pid: int | str) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux: write 5 to clear_refs); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------- the reference


def reference_read(path: str, repeat: int) -> dict[str, Any]:
    """In this (fresh) process: pandas.read_csv(engine="pyarrow") `repeat` times; times and peak RSS growth."""
    import pandas as pd
    import pyarrow.csv  # noqa: F401  (imported before timing: the server has it loaded too)

    baseline = _proc_kib("self", "VmRSS")
    _reset_peak("self")
    times, shape = [], None
    peak_first = None
    for i in range(repeat):
        started = time.perf_counter()
        frame = pd.read_csv(path, engine="pyarrow")
        times.append(time.perf_counter() - started)
        if i == 0:
            peak_first = _proc_kib("self", "VmHWM")
            held = _proc_kib("self", "VmRSS")
            frame_bytes = int(frame.memory_usage(deep=True).sum())
        shape = frame.shape
        del frame
    return {"seconds": times, "best_seconds": min(times), "rows": shape[0], "columns": shape[1],
            "rss_baseline_mb": baseline * 1024 / MB, "peak_growth_mb": (peak_first - baseline) * 1024 / MB,
            "rss_held_after_mb": (held - baseline) * 1024 / MB, "frame_mb": frame_bytes / MB,
            "pandas": pd.__version__}


def _reference(path: str, repeat: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.upload_big", "--reference", path, "--repeat", str(repeat)],
                          cwd=ROOT, capture_output=True, text=True, timeout=3600, check=False,
                          env=os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                                          os.environ.get("PYTHONPATH")]))})
    if done.returncode != 0:
        raise RuntimeError(f"reference read failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- what runs beside the upload


class MemorySampler(threading.Thread):
    """The server's RSS every `interval` seconds until stopped; kills the server (and says so) if
    its RSS passes `limit_kib`, so that a runaway upload cannot take a shared machine's memory."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL, limit_kib: int | None = None) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.limit_kib = pid, interval, limit_kib
        self.samples: list[tuple[float, int]] = []  # (time.time(), KiB)
        self.group: list[tuple[float, int]] = []  # the server with its worker processes: (time.time(), KiB)
        self.killed_at_kib: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            rss = _proc_kib(self.pid, "VmRSS")
            if rss is not None:
                self.samples.append((time.time(), rss))
                self.group.append((time.time(), rss + sum(_proc_kib(c, "VmRSS") or 0 for c in _descendants(self.pid))))
                if self.limit_kib is not None and rss > self.limit_kib and self.killed_at_kib is None:
                    self.killed_at_kib = rss
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
            next_at += self.interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))


class StatusPoller(threading.Thread):
    """GET /api/status every `interval` s (kept-alive and new connections alternating) until stopped.

    Requests are sent on a fixed schedule; when one takes longer than the interval, the missed
    slots are sent at once after it (not skipped). `latency` is from send to answer; `from_schedule`
    is from the planned send time, which also counts the wait a stalled server caused the requests
    queued behind the slow one (coordinated omission)."""

    def __init__(self, url: str, interval: float = SAMPLE_INTERVAL) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.latency: list[float] = []
        self.from_schedule: list[float] = []
        self.times: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        import requests

        session = requests.Session()
        started = time.perf_counter()
        k = 0
        while not self.stop.is_set():
            due = started + k * self.interval
            delay = due - time.perf_counter()
            if delay > 0 and self.stop.wait(delay):
                break
            t0 = time.perf_counter()
            try:
                response = (session if k % 2 == 0 else requests).get(self.url, timeout=600)
                response.raise_for_status()
            except Exception as exc:  # noqa: BLE001 - recorded, the measurement goes on
                self.errors.append(repr(exc)[:200])
            t1 = time.perf_counter()
            self.latency.append(t1 - t0)
            self.from_schedule.append(t1 - min(due, t0))
            self.times.append(time.time())
            k += 1
        session.close()


class ProgressWatcher:
    """A python-socketio client that records `dataset_progress` events (arrival time, payload).

    It reconnects when dropped (a server whose event loop stalls longer than the ping timeout drops
    it), and records when that happened: a stage sent while it was away is missing."""

    def __init__(self, url: str) -> None:
        import socketio

        self.events: list[tuple[float, dict[str, Any]]] = []
        self.dropped: list[float] = []
        self.client = socketio.Client(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1)
        self.client.on("dataset_progress", lambda payload: self.events.append((time.time(), payload)))
        self.client.on("disconnect", lambda *_: self.dropped.append(time.time()))
        self.client.connect(url, transports=["websocket"], wait_timeout=20)

    def of(self, upload_id: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, p) for t, p in self.events if p.get("upload_id") == upload_id]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()


# ---------------------------------------------------------------------------- the upload


def _multipart(fields: dict[str, str], filename: str, boundary: str) -> tuple[bytes, bytes]:
    """The bytes before the file's content and after it."""
    head = b""
    for name, value in fields.items():
        head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").encode()
    head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
             "Content-Type: text/csv\r\n\r\n").encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


def stream_upload(port: int, path: Path, fields: dict[str, str], timeout: float = 3600.0) -> dict[str, Any]:
    """POST the file as multipart/form-data, read from disk and sent in 1 MiB pieces; the timings."""
    boundary = "livetrain-bench-" + uuid.uuid4().hex
    head, tail = _multipart(fields, path.name, boundary)
    length = len(head) + path.stat().st_size + len(tail)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.perf_counter()
    wall_started = time.time()
    send_error = None
    try:
        conn.putrequest("POST", "/api/datasets")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        conn.send(head)
        with open(path, "rb") as fh:
            for piece in iter(lambda: fh.read(SEND_CHUNK), b""):
                conn.send(piece)
        conn.send(tail)
    except OSError as exc:  # the server answered (refused) before taking everything
        send_error = repr(exc)
    sent = time.perf_counter()
    wall_sent = time.time()
    response = conn.getresponse()
    body = response.read()
    answered = time.perf_counter()
    conn.close()
    try:
        payload = json.loads(body)
    except ValueError:
        payload = {"raw": body[:500].decode(errors="replace")}
    return {"status": response.status, "body": payload, "send_error": send_error, "bytes_sent": length,
            "upload_to_usable_seconds": answered - started, "send_seconds": sent - started,
            "after_last_byte_seconds": answered - sent, "wall_started": wall_started, "wall_sent": wall_sent,
            "wall_answered": wall_sent + (answered - sent)}


def _stages(progress: list[tuple[float, dict[str, Any]]], upload: dict[str, Any]) -> dict[str, Any]:
    """Seconds per stage, from the arrival of each `dataset_progress` stage (the server looks at
    the stage every 0.2 s) and the client's own send times. "finishing upload" runs from the last
    byte sent to the "reading" event: the end of the multipart parse and the spool's fsync."""
    first: dict[str, float] = {}
    for arrived, payload in progress:
        first.setdefault(payload.get("stage"), arrived)
    marks = [("receiving", upload["wall_started"]), ("finishing upload", upload["wall_sent"])]
    marks += [(stage, first[stage]) for stage in STAGES if stage in first and stage != "done"]
    ends = [t for _, t in marks[1:]] + [first.get("done", upload["wall_answered"])]
    return {"seconds": {name: end - start for (name, start), end in zip(marks, ends)},
            "marks": dict(marks), "end": ends[-1]}


def _in_stages(times: list[float], values: list[float], marks: dict[str, float], end: float) -> dict[str, list[float]]:
    """The values grouped by the stage their time falls in (the last stage runs to `end`)."""
    names = list(marks)
    bounds = [marks[n] for n in names] + [end]
    out: dict[str, list[float]] = {}
    for t, v in zip(times, values):
        for i, name in enumerate(names):
            if bounds[i] <= t < bounds[i + 1] or (i == len(names) - 1 and t >= bounds[i]):
                out.setdefault(name, []).append(v)
                break
    return out


def _warm_up(server, seed: int, data_dir: Path) -> float:
    """Upload a small file of the same kind first, so the big upload measures the file's cost, not
    the imports the first upload of a server makes (scikit-learn: about a second, on the event loop)."""
    import pyarrow.csv as pacsv

    path = data_dir / f"warm-up-seed{seed}.csv"
    if not path.is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(_chunk(seed, 10_000, 2_000), str(path))
    done = stream_upload(server.port, path, {"target": TARGET, "name": "warm-up"}, timeout=120)
    if done["status"] != 201:
        raise RuntimeError(f"the warm-up upload answered {done['status']}: {done['body']}\n{server.log_tail()}")
    api(server, "DELETE", f"/api/datasets/{done['body']['id']}")
    return done["upload_to_usable_seconds"]


def _memory_limit_kib() -> int | None:
    """What the server may use before the benchmark stops it: the memory available now, less 3 GB
    for everyone else on the machine."""
    available = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1])
    return None if available is None else max(1 << 20, available - 3 * 10**6)


def server_upload(info: dict[str, Any], *, seed: int = 0, data_dir: Path = DEFAULT_DATA_DIR, warm: bool = True,
                  profile: Path | None = None) -> dict[str, Any]:
    """One upload of the file to a fresh server, with memory and status sampled meanwhile."""
    path = Path(info["path"])
    with livetrain_server(env=SERVER_ENV) as server:
        pid = server.process.pid
        watcher = ProgressWatcher(server.url)
        api(server, "GET", "/api/datasets")
        warm_up_seconds = _warm_up(server, seed, data_dir) if warm else None
        time.sleep(1.0)
        baseline = _proc_kib(pid, "VmRSS")
        group_baseline = baseline + sum(_proc_kib(c, "VmRSS") or 0 for c in _descendants(pid))
        peak_reset = _reset_peak(pid)
        limit = _memory_limit_kib()
        sampler = MemorySampler(pid, limit_kib=None if limit is None else baseline + limit)
        poller = StatusPoller(server.url + "/api/status")
        spy = None
        if profile is not None:
            spy = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--rate", "50", "--threads",
                                    "--format", "raw", "--output", str(profile), "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        upload_id = uuid.uuid4().hex
        sampler.start()
        poller.start()
        try:
            upload = stream_upload(server.port, path, {"target": TARGET, "upload_id": upload_id,
                                                       "name": f"bench-{info['size_mb']}mb"})
        except (OSError, http.client.HTTPException) as exc:
            if sampler.killed_at_kib is None:
                raise
            upload = {"status": None, "body": {"error": repr(exc)}}
        finally:
            poller.stop.set()
            sampler.stop.set()
            poller.join(630)
            sampler.join(5)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    spy.wait(60)
        if sampler.killed_at_kib is not None:
            return {"stopped": f"server RSS reached {sampler.killed_at_kib / 1e6:.1f} GB (limit: the memory "
                               "available at the start less 3 GB); stopped", "memory_samples": sampler.samples[-1:]}
        hwm = _proc_kib(pid, "VmHWM") if peak_reset else None
        time.sleep(0.5)
        progress = watcher.of(upload_id)
        watcher.close()
        if upload["status"] != 201:
            raise RuntimeError(f"upload answered {upload['status']}: {upload['body']}\n{server.log_tail()}")
        dataset = upload["body"]
        detail = api(server, "GET", f"/api/datasets/{dataset['id']}")
        stored_rows = detail["splits"]["train"] + detail["splits"]["val"] + detail["splits"]["test"]
        files = {p.name: p.stat().st_size for p in server.home.rglob("*") if p.is_file() and dataset["id"] in str(p)}
    stages = _stages(progress, upload)
    sampled_peak = max((kib for _, kib in sampler.samples), default=baseline)
    peak = max(sampled_peak, hwm or 0)
    growth_mb = (peak - baseline) * 1024 / MB
    latency = [v * 1000 for v in poller.latency]
    scheduled = [v * 1000 for v in poller.from_schedule]
    by_stage_status = _in_stages(poller.times, latency, stages["marks"], upload["wall_answered"])
    by_stage_memory = _in_stages([t for t, _ in sampler.samples], [k for _, k in sampler.samples], stages["marks"],
                                 upload["wall_answered"])
    slow = sorted(zip(latency, poller.times), reverse=True)[:5]
    return {
        "upload": {k: v for k, v in upload.items() if k != "body"},
        "warm_up_seconds": warm_up_seconds,
        "dataset_id": dataset["id"], "stored_rows": stored_rows, "rows_match": stored_rows == info["rows"],
        "n_features": detail.get("n_features"), "task": detail.get("task"),
        "stored_files_bytes": files,
        "stages": stages["seconds"],
        "memory": {
            "baseline_mb": baseline * 1024 / MB, "peak_growth_mb": growth_mb,
            "sampled_peak_growth_mb": (sampled_peak - baseline) * 1024 / MB,
            "hwm_peak_growth_mb": None if hwm is None else (hwm - baseline) * 1024 / MB,
            "by_stage_peak_growth_mb": {k: (max(v) - baseline) * 1024 / MB for k, v in by_stage_memory.items()},
            "samples": len(sampler.samples),
            "ratio_to_file": growth_mb * MB / info["bytes"],
            # the server with its worker processes (a big upload is prepared in one, which exits after it)
            "with_workers_peak_growth_mb": (max((k for _, k in sampler.group), default=group_baseline)
                                            - group_baseline) * 1024 / MB,
            "with_workers_ratio_to_file": (max((k for _, k in sampler.group), default=group_baseline)
                                           - group_baseline) * 1024 / info["bytes"],
        },
        "status_ms": {
            **summary(latency), "p50": percentile(latency, 50), "p99": percentile(latency, 99),
            "from_schedule_p99": percentile(scheduled, 99), "from_schedule_max": max(scheduled, default=None),
            "by_stage": {k: {"n": len(v), "p50": percentile(v, 50), "p99": percentile(v, 99), "max": max(v)}
                         for k, v in by_stage_status.items()},
            "errors": poller.errors[:5], "error_count": len(poller.errors),
            "slowest": [{"ms": round(lat, 1), "stage": _stage_at(t, stages["marks"])} for lat, t in slow],
        },
        "progress_events": [{"stage": p.get("stage"), "arrived": t} for t, p in progress],
        "progress_client_dropped_at": [t - upload["wall_started"] for t in watcher.dropped
                                       if t < upload["wall_answered"]],
        "profile": _profile_summary(profile) if profile is not None and profile.is_file() else None,
    }


def _stage_at(t: float, marks: dict[str, float]) -> str:
    current = "before"
    for name, start in marks.items():
        if t >= start:
            current = name
    return current


def _profile_summary(path: Path, top: int = 25) -> dict[str, Any]:
    """From py-spy's raw output (one `stack count` line each): the seconds of the samples in which
    each livetrain function is on the stack (inclusive), at py-spy's default rate of 50 a second here."""
    from collections import Counter

    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        total += int(count)
        seen = set()
        for frame in stack.split(";")[1:]:
            name = frame.split(" (")[0] + (" (" + frame.split(" (")[1].rsplit(":", 1)[0] + ")" if " (" in frame else "")
            if ("livetrain/" in name or "pandas/" in name or "sklearn/" in name) and name not in seen:
                seen.add(name)
                inclusive[name] += int(count)
    return {"samples": total, "rate": 50,
            "inclusive_seconds": {k: v / 50 for k, v in inclusive.most_common(top)}}


# ---------------------------------------------------------------------------- in-process breakdown


def steps(path: str) -> dict[str, Any]:
    """In this (fresh) process, the server's steps for an upload one after the other, each timed, with
    the RSS held after it and its own peak (VmHWM reset before each): where the time and memory go
    without the progress events' 0.2 s resolution or anything else running."""
    import tempfile

    from livetrain.data import reading, tabular
    from livetrain.data.stored import write_dataset_files
    from livetrain.store.artifacts import ArtifactStore

    base = _proc_kib("self", "VmRSS")
    out: dict[str, Any] = {"baseline_mb": base * 1024 / MB, "steps": {}}

    def step(name: str, fn):
        _reset_peak("self")
        started = time.perf_counter()
        value = fn()
        out["steps"][name] = {"seconds": time.perf_counter() - started,
                              "peak_growth_mb": (_proc_kib("self", "VmHWM") - base) * 1024 / MB,
                              "held_after_mb": (_proc_kib("self", "VmRSS") - base) * 1024 / MB}
        return value

    with tempfile.TemporaryDirectory(prefix="livetrain-bench-steps-") as tmp:
        dialect = step("detect", lambda: reading.detect(Path(path), Path(path).name, {}))
        table = step("read_table", lambda: reading.read_table(Path(path), dialect, max_rows=100_000_000))
        prepared = step("prepare_table", lambda: tabular.prepare_table(
            table.frame, target=TARGET, formats=table.formats))
        step("dataset_hash", lambda: tabular.dataset_hash(table.frame))
        step("write_dataset_files", lambda: write_dataset_files(ArtifactStore(Path(tmp)), "d", prepared, table.frame))
    return out


def _steps(path: str) -> dict[str, Any]:
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "bench.upload_big", "--steps", path], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=7200, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the step breakdown failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- the benchmark


def run(sizes: tuple[int, ...] = DEFAULT_SIZES, seed: int = 0, repeat: int = 3, uploads: int | None = None,
        data_dir: Path = DEFAULT_DATA_DIR, profile_dir: Path | None = None, breakdown: bool = False,
        warm: bool = True) -> dict[str, Any]:
    """Every size: generate (or reuse) the file; the reference reads, the uploads, the reference again."""
    results: dict[str, Any] = {"sizes": {}, "targets": TARGETS, "seed": seed}
    for size in sizes:
        info = generate(size, seed, data_dir)
        item: dict[str, Any] = {"file": info, "cpu_busy_before": cpu_busy(1.0)}
        n_uploads = uploads if uploads is not None else (3 if size <= 256 else 1)
        n_repeat = repeat if size <= 256 else max(1, min(repeat, 2))
        # the reference before and after the uploads, so both sides see the machine's load of the moment
        before = _reference(info["path"], n_repeat)
        item["uploads"] = []
        for i in range(n_uploads):
            profile = profile_dir / f"upload-{size}mb-{i}.txt" if profile_dir is not None else None
            if profile is not None:
                profile.parent.mkdir(parents=True, exist_ok=True)
            item["uploads"].append(server_upload(info, seed=seed, data_dir=data_dir, warm=warm, profile=profile))
        after = _reference(info["path"], n_repeat)
        best_ref = min((before, after), key=lambda r: r["best_seconds"])
        item["reference"] = {"before": before, "after": after, "best_seconds": best_ref["best_seconds"],
                             "peak_growth_mb": max(before["peak_growth_mb"], after["peak_growth_mb"]),
                             "frame_mb": before["frame_mb"]}
        if breakdown:
            item["steps"] = _steps(info["path"])
        done = [u for u in item["uploads"] if "stopped" not in u]
        if not done:
            item["result"] = {"stopped": item["uploads"][0]["stopped"]}
        else:
            best = min(done, key=lambda u: u["upload"]["upload_to_usable_seconds"])
            ref = item["reference"]["best_seconds"]
            usable = best["upload"]["upload_to_usable_seconds"]
            memory = max(u["memory"]["ratio_to_file"] for u in done)
            p99 = max(u["status_ms"]["p99"] for u in done)
            median_ref = statistics.median(before["seconds"] + after["seconds"])
            item["result"] = {
                "upload_to_usable_seconds": usable,
                "pandas_pyarrow_seconds": ref,
                "time_ratio": usable / ref,
                "pandas_pyarrow_median_seconds": median_ref,  # the reference's reads vary a lot on a shared machine
                "time_ratio_vs_median_read": usable / median_ref,
                "memory_ratio": memory,
                "memory_with_workers_ratio": max(u["memory"]["with_workers_ratio_to_file"] for u in done),
                "pandas_memory_ratio": item["reference"]["peak_growth_mb"] * MB / info["bytes"],
                "status_p99_ms": p99,
                "met": {"time": usable / ref <= TARGETS["time_ratio"], "memory": memory <= TARGETS["memory_ratio"],
                        "status": p99 < TARGETS["status_p99_ms"]},
            }
        item["cpu_busy_after"] = cpu_busy(1.0)
        results["sizes"][str(size)] = item
        print(json.dumps({"size_mb": size, **item["result"]}), flush=True)
    return results


def table(results: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    rows = [("size", "upload-to-usable / pandas pyarrow", "server memory growth / file",
             "GET /api/status while uploading", "server stages (s)", "met: time, memory, status")]
    for item in results["sizes"].values():
        r = item["result"]
        label = f"{item['file']['bytes'] / MB:,.0f} MB ({item['file']['rows']:,} rows)"
        if "stopped" in r:
            rows.append((label, r["stopped"], "", "", "", "NO"))
            continue
        done = [u for u in item["uploads"] if "stopped" not in u]
        best = min(done, key=lambda u: u["upload"]["upload_to_usable_seconds"])
        worst_status = max(done, key=lambda u: u["status_ms"]["p99"])["status_ms"]
        mem = max(done, key=lambda u: u["memory"]["ratio_to_file"])["memory"]
        stages = ", ".join(f"{k} {v:.1f}" for k, v in best["stages"].items())
        rows.append((
            label,
            f"{r['time_ratio']:.1f} ({r['upload_to_usable_seconds']:.2f} s vs best read "
            f"{r['pandas_pyarrow_seconds']:.2f} s; vs median read {r['time_ratio_vs_median_read']:.1f})",
            f"{r['memory_ratio']:.2f} ({mem['peak_growth_mb']:,.0f} MB; with its workers "
            f"{r['memory_with_workers_ratio']:.2f}; pandas {r['pandas_memory_ratio']:.2f})",
            f"p50 {worst_status['p50']:.1f} / p99 {worst_status['p99']:.1f} / max {worst_status['max']:.1f} ms "
            f"(n={worst_status['n']})",
            stages,
            ", ".join("yes" if r["met"][k] else "NO" for k in ("time", "memory", "status")),
        ))
    return markdown_table(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upload_big", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="MB, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3,
                        help="reads of the reference, before and after the uploads (at most 2 above 256 MB)")
    parser.add_argument("--uploads", type=int, default=None,
                        help="uploads per size, each to a fresh server (default 3 up to 256 MB, else 1)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="where the generated CSVs are kept")
    parser.add_argument("--cold", action="store_true",
                        help="no warm-up upload: include the first upload's imports in the measure")
    parser.add_argument("--breakdown", action="store_true",
                        help="also run the server's steps in a fresh process, each timed with its own memory peak")
    parser.add_argument("--profile-dir", type=Path, default=None,
                        help="record each upload's server with py-spy (must be on PATH) into this folder")
    parser.add_argument("--out", type=Path, default=None, help="also write the whole result as JSON here")
    parser.add_argument("--reference", help=argparse.SUPPRESS)  # internal: the fresh reference process
    parser.add_argument("--steps", help=argparse.SUPPRESS)  # internal: the fresh breakdown process
    args = parser.parse_args(argv)
    if args.reference:
        print(json.dumps(reference_read(args.reference, args.repeat)))
        return 0
    if args.steps:
        print(json.dumps(steps(args.steps)))
        return 0
    sizes = tuple(int(s) for s in args.sizes.split(",") if s.strip())
    results = run(sizes, seed=args.seed, repeat=args.repeat, uploads=args.uploads, data_dir=args.data_dir,
                  profile_dir=args.profile_dir, breakdown=args.breakdown, warm=not args.cold)
    results["table"] = table(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, default=str))
    print()
    print(results["table"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
