"""Benchmark 11: scale-out, server nodes and Celery workers on PostgreSQL and Redis.

    python -m bench.scale_out                 # all three parts (about 4 minutes on 2 cores)
    python -m bench.scale_out --batch 4 --rounds 1 --latency-rounds 1 --events 500   # a quick look
    python -m bench.run_all --only scale      # the same, with the machine's load recorded

Needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (user postgres, trust
authentication); without either it says so and measures nothing. Every installation it
starts has its own PostgreSQL database (dropped at the end, WITH (FORCE)), its own Socket.IO
channel and its own Celery queues on Redis database 10 (pub/sub ignores database numbers, and
other test runs may use the same Redis), and one artifact folder shared by its nodes and
workers. Every process is stopped at the end, even on error.

Before each measure the benchmark waits until the last one has left nothing behind: no run
active and every worker pool back to its warm process(es). (A run's start makes its pool start
a replacement process in the background, which imports torch and exits as surplus when the run
gives its own process back.) CPU is counted from /proc over each measure: the machine's, each
process group's (a server node with its worker processes, a Celery worker with its), and the
processes that trained.

1. **Throughput**: a batch of small runs (by default 16 MNIST [784,30,10] runs of 10 epochs,
   each on its own network, since a network trains one run at a time) POSTed at once to one
   server node, from just before the first POST to the arrival of the last
   `training_complete` at a client. Three sides, alternated round by round: one Celery
   worker, two Celery workers (each `--concurrency 1`), and, for reference, one server with
   the local runner and `max_concurrent_runs` 2. The two workers listen on a queue of their
   own each and on a shared one, so the 1-worker side sends its runs to worker A's queue and
   the 2-worker side to the shared queue, with no worker restarted in between. Target: 2
   workers >= 1.8x the runs per minute of 1 (on 2 cores).
2. **Event latency**: runs on the local server (its worker process reports to the server,
   which stores and emits) and on the Celery cluster (the worker stores to PostgreSQL and
   emits through Redis; the server node delivers), one at a time, alternated: per round and
   side, 50 MNIST epochs of mini-batches of 10 (`training_update`s) and 3 epochs of single
   examples (long enough for `training_progress`, every 0.25 s). A python-socketio client on
   the server records the arrival of every event; latency = arrival - the payload's `ts`,
   stamped by whoever reports the run (same machine, same clock). On the Redis side a plain
   Redis subscriber on the channel also notes when each event passed, which splits its latency
   into ts -> Redis and Redis -> node -> client. Target: p99(Redis) / p99(local) of
   `training_update` <= 1.5. A third side is a diagnostic: worker B's training process
   reniced to 5, the local runner's `worker_nice` (a Celery worker's run at nice 0, like the
   server node). Then the cancel across nodes: a run started on node B, cancelled with a POST
   to node A once it has trained an epoch, until `training_cancelled` reaches a client of
   node B (target: within 2 s); the same on the local server (one node) for reference.
3. **Fan-out through Redis**: one server node with a message queue (local runner, no warm
   worker processes), 100 Socket.IO clients on it in one process (`bench.raw_clients`, the
   minimal clients, as in benchmark 4c: the server is measured, not a client library), and a
   separate process that emits `training_progress` events through a write-only emitter
   exactly as a Celery worker does, as fast as it can, then one `training_complete`.
   Deliveries per second summed over the clients, events per second received by all of them,
   the CPU the node and the clients spent, and loss (every client must get every event,
   once). A server cannot be made to emit its own events at that rate without a change to it,
   so there is no side without Redis: the figures are absolute, for this machine.

Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.batch_start import wait_warm
from bench.common import (
    ETA,
    LAYER_SIZES,
    MINI_BATCH,
    ROOT,
    RunWatcher,
    Server,
    api,
    livetrain_server,
    mnist_dir,
    percentile,
    summary,
)
from bench.event_latency import CLIENT_MODULES, _read_line, _start_clients

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/10"  # the broker's keys; channels ignore the number
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

BATCH = 16
BATCH_BODY = {"epochs": 10, "mini_batch_size": MINI_BATCH, "learning_rate": ETA}
# MNIST epochs of mini-batches of 10 are shorter than the 0.25 s between progress events, so the
# latency part runs two kinds of run: many short epochs (training_update) and a few long ones
# of single examples (training_progress, 1-3 an epoch)
LATENCY_BODIES = ({"epochs": 50, "mini_batch_size": MINI_BATCH, "learning_rate": ETA},
                  {"epochs": 3, "mini_batch_size": 1, "learning_rate": 0.5})
CANCEL_BODY = {"epochs": 5000, "mini_batch_size": MINI_BATCH, "learning_rate": ETA}  # cancelled long before
FANOUT_EVENTS = 4000
TARGETS = {"throughput_ratio": 1.8, "latency_ratio": 1.5, "cancel_seconds": 2.0}


def missing_services() -> str | None:
    """Why the benchmark cannot run here (Redis or PostgreSQL absent), or None."""
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            if not conn.recv(16).startswith(b"+PONG"):
                return f"something other than Redis answers on {REDIS_HOST}:{REDIS_PORT}"
    except OSError as exc:
        return f"needs Redis on {REDIS_HOST}:{REDIS_PORT} (redis-server): {exc}"
    try:
        import psycopg
    except ImportError:
        return "needs psycopg (pip install 'psycopg[binary]')"
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        return f"needs PostgreSQL on 127.0.0.1:5432, user postgres, trust authentication: {str(exc).strip()}"
    return None


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL (its SQLAlchemy URL), dropped at the end."""
    import psycopg

    admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    name = f"livetrain_bench_{uuid.uuid4().hex[:10]}"
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_URL.format(name=name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


class Worker:
    """One `python -m livetrain worker` in its own process group (its warm worker processes too)."""

    def __init__(self, name: str, home: Path, log_path: Path, env: dict[str, str], queues: list[str]) -> None:
        self.name = name
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "livetrain", "worker", "--home", str(home), "--broker", REDIS_URL,
                 "--message-queue", REDIS_URL, "--queues", ",".join(queues), "--concurrency", "1", "--threads", "1",
                 "--name", name, "--log-level", "WARNING"],
                cwd=log_path.parent, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the worker's output (for error messages)."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait for the line `livetrain worker NAME ready`."""
        deadline = time.monotonic() + timeout
        while f"livetrain worker {self.name} ready" not in self.log_tail(100_000):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} did not get ready (exit code {self.process.poll()}):\n"
                                   f"{self.log_tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM (its runs are marked interrupted), then SIGKILL of what is left of its process group."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        # the group is this worker and its worker processes, nothing else
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


@dataclass
class Cluster:
    """Server nodes and Celery workers sharing one database, one artifact folder, one channel."""

    nodes: list[Server]
    workers: list[Worker]
    queues: dict[str, str]  # "a", "b": each worker's own; "both": the shared one (the default queue)
    channel: str


def _process_env(env: dict[str, str]) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("LIVETRAIN_")}
    full["LIVETRAIN_MNIST_DIR"] = str(mnist_dir())
    full["PYTHONUNBUFFERED"] = "1"
    full.update(env)
    return full


def _forget_queues(tag: str) -> None:
    """Delete what Celery left on the broker for this cluster's queues (kombu's bindings of each queue)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"*livetrain-bench-{tag}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@contextlib.contextmanager
def celery_cluster(nodes: int = 1, workers: int = 2) -> Iterator[Cluster]:
    """`nodes` server nodes (Celery runner, Redis message queue) and `workers` Celery workers, each
    `--concurrency 1`; worker i listens on its own queue and on the shared one."""
    tag = uuid.uuid4().hex[:10]
    channel = f"livetrain-bench-{tag}"
    letters = "abcdefgh"[:workers]
    queues = {letter: f"livetrain-bench-{tag}-{letter}" for letter in letters}
    queues["both"] = f"livetrain-bench-{tag}"
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(postgres_database())
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="livetrain-bench-cluster-")))
        home = folder / "shared-home"
        home.mkdir()
        shared = {"LIVETRAIN_DATABASE_URL": database, "LIVETRAIN_MESSAGE_QUEUE_CHANNEL": channel}
        started: list[Worker] = []
        stack.callback(_forget_queues, tag)  # after the workers have stopped (callbacks run last first)
        stack.callback(lambda: [w.stop() for w in started])
        for letter in letters:  # started first: they import torch and Celery while the nodes start
            started.append(Worker(f"bench-{letter}-{tag[:4]}", home, folder / f"worker-{letter}.log",
                                  _process_env(shared), [queues[letter], queues["both"]]))
        node_env = {**shared, "LIVETRAIN_RUNNER": "celery", "LIVETRAIN_BROKER_URL": REDIS_URL,
                    "LIVETRAIN_MESSAGE_QUEUE": REDIS_URL, "LIVETRAIN_DEFAULT_QUEUE": queues["both"]}
        servers = [stack.enter_context(livetrain_server(env=node_env, home=home)) for _ in range(nodes)]
        for worker in started:
            worker.wait_ready()
        yield Cluster(servers, started, queues, channel)


def _runs(server: Server, run_ids: list[str]) -> list[dict[str, Any]]:
    return [api(server, "GET", f"/api/runs/{run_id}") for run_id in run_ids]


def _submit(server: Server, network_ids: list[str], body: dict[str, Any], queue: str | None = None) -> list[str]:
    extra = {"queue": queue} if queue else {}
    return [api(server, "POST", f"/api/networks/{network_id}/train", json={**body, **extra}, expect=202)["job_id"]
            for network_id in network_ids]


def _wait_completed(server: Server, watcher: RunWatcher, run_ids: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    for run_id in run_ids:
        watcher.wait_final(run_id, max(1.0, deadline - time.monotonic()))
    runs = _runs(server, run_ids)
    failed = [(r["run_id"], r["status"], r["error"]) for r in runs if r["status"] != "completed"]
    if failed:
        raise RuntimeError(f"runs did not complete: {failed}")
    return runs


def _networks(server: Server, count: int) -> list[str]:
    return [api(server, "POST", "/api/networks", expect=201,
                json={"layer_sizes": LAYER_SIZES, "dataset_id": "mnist"})["network_id"] for _ in range(count)]


def _machine_cpu() -> tuple[int, int, int]:
    """(all, idle + iowait, steal) jiffies of all cores since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]), fields[3] + fields[4], fields[7] if len(fields) > 7 else 0


def _processes() -> dict[int, tuple[str, int, int, int]]:
    """pid -> (name, process group, CPU ticks of its own, of its exited children it waited for), from /proc."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                text = Path(entry.path, "stat").read_text()
                fields = text.rsplit(")", 1)[1].split()
                found[int(entry.name)] = (text[text.index("(") + 1:text.rindex(")")], int(fields[2]),
                                          int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]))
    return found


class CpuMeter:
    """CPU used between its start and `stop()`: the whole machine's (others' processes included), by process
    name (postgres, redis-server, python ...), and each given process group's, with the part spent by
    processes that exited meanwhile (counted in their parent when it waits for them). Linux only."""

    def __init__(self, groups: dict[str, int]) -> None:
        self.groups = groups
        try:
            self._start = (time.monotonic(), _machine_cpu(), _processes())
        except OSError:
            self._start = None

    @staticmethod
    def _ticks(snapshot: dict[int, tuple[str, int, int, int]], pgid: int | None = None,
               name: str | None = None) -> tuple[int, int]:
        own = exited = 0
        for process_name, group, ticks, children in snapshot.values():
            if (pgid is None or group == pgid) and (name is None or process_name == name):
                own, exited = own + ticks, exited + children
        return own + exited, exited

    def stop(self, pids: set[int] | None = None) -> dict[str, Any]:
        """Machine busy and steal (fractions of all cores), then cores used by name, by group, and by the
        processes `pids` (those that trained, say) together."""
        if self._start is None:
            return {}
        began, (total0, idle0, steal0), before = self._start
        wall = time.monotonic() - began
        (total1, idle1, steal1), after = _machine_cpu(), _processes()
        spent, tick = max(1, total1 - total0), os.sysconf("SC_CLK_TCK")
        names = {name for name, *_ in after.values()}
        by_name = {name: (self._ticks(after, name=name)[0] - self._ticks(before, name=name)[0]) / tick / wall
                   for name in names}
        leaders = {group for _, group, _, _ in after.values()}  # every process group, named by its leader
        by_leader = {_command(pgid): (self._ticks(after, pgid)[0] - self._ticks(before, pgid)[0]) / tick / wall
                     for pgid in leaders}
        groups = {}
        for label, pgid in self.groups.items():
            (total_a, exited_a), (total_b, exited_b) = self._ticks(after, pgid), self._ticks(before, pgid)
            leader = after.get(pgid, (None, None, 0, 0))[2] - before.get(pgid, (None, None, 0, 0))[2]
            groups[label] = {"cores": (total_a - total_b) / tick / wall,
                             "cores_of_exited_processes": (exited_a - exited_b) / tick / wall,
                             "cores_of_leader": leader / tick / wall}  # the server or Celery process itself
        chosen = sum(after[pid][2] - before.get(pid, (None, None, 0, 0))[2] for pid in pids or () if pid in after)
        return {"seconds": wall, "machine_busy": 1.0 - (idle1 - idle0) / spent, "steal": (steal1 - steal0) / spent,
                "cores_by_name": _top(by_name), "cores_by_process_group": _top(by_leader), "groups": groups,
                "cores_of_given_processes": chosen / tick / wall if pids else None}


def _top(cores: dict[str, float], least: float = 0.01) -> dict[str, float]:
    return dict(sorted(((k, v) for k, v in cores.items() if v >= least), key=lambda kv: -kv[1]))


def _command(pid: int) -> str:
    """A process's command line, shortened (its pid where it is gone)."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return f"pid {pid}"
    words = [Path(words[0]).name, *words[1:]] if words and words[0] else [f"pid {pid}"]
    return " ".join(words)[:90] + f" [{pid}]"


def batch(server: Server, watcher: RunWatcher, network_ids: list[str], queue: str | None,
          groups: dict[str, int], timeout: float = 240.0) -> dict[str, Any]:
    """POST a run on every network at once; runs per minute, first POST -> last completion at the client,
    and where the time went (`groups`: the process groups whose CPU is counted)."""
    meter = CpuMeter(groups)
    sent = time.time()
    run_ids = _submit(server, network_ids, BATCH_BODY, queue)
    posted = time.time() - sent
    runs = _wait_completed(server, watcher, run_ids, timeout)
    done = max(watcher.received_at(run_id, "training_complete") for run_id in run_ids)
    wall = done - sent
    cpu = meter.stop({r["worker_pid"] for r in runs})  # the processes that trained
    training = [sum(p["elapsed_time"] + p.get("eval_time", 0.0) for p in watcher.of_run(r, "training_update"))
                for r in run_ids]
    run_seconds = [r["finished_at"] - r["started_at"] for r in runs]
    by_worker: dict[tuple[str, int], list[dict]] = {}  # a local server's runs share its name: by process too
    for run in runs:
        by_worker.setdefault((run["worker"], run["worker_pid"]), []).append(run)
    gaps = []  # a worker process's previous run finished -> its next run started (the hand-off)
    for own in by_worker.values():
        own.sort(key=lambda r: r["started_at"])
        gaps += [b["started_at"] - a["finished_at"] for a, b in zip(own, own[1:])]
    return {
        "runs": len(run_ids),
        "wall_seconds": wall,
        "runs_per_minute": 60.0 * len(run_ids) / wall,
        "post_seconds": posted,
        "first_start_seconds": min(r["started_at"] for r in runs) - sent,
        "last_finish_to_client_seconds": done - max(r["finished_at"] for r in runs),
        "run_seconds": summary(run_seconds),  # started -> finished, in the worker
        "training_seconds": summary(training),  # the epochs' own training + evaluation time
        "handoff_seconds": summary(gaps),
        "runs_per_worker_process": sorted(len(v) for v in by_worker.values()),
        "workers": sorted({name for name, _ in by_worker}),
        "cpu": cpu,
    }


def _warm_up(server: Server, watcher: RunWatcher, network_ids: list[str], queues: list[str | None]) -> list[str]:
    """One one-epoch run per queue, all at once (each fresh worker process loads MNIST once); who ran them."""
    body = {**BATCH_BODY, "epochs": 1}
    run_ids = [_submit(server, [network_id], body, queue)[0] for network_id, queue in zip(network_ids, queues)]
    return [f"{r['worker']} pid {r['worker_pid']}" for r in _wait_completed(server, watcher, run_ids, 120.0)]


def settle(cluster: Cluster, local: Server, timeout: float = 60.0) -> None:
    """Wait until nothing is left of the last measure: no run active and every pool back to its warm
    process(es), none starting. A run's start makes its pool start a replacement process in the
    background (it imports torch), which exits as surplus once the run gives its own back; it must
    not land in the next measure."""
    deadline = time.monotonic() + timeout
    while True:
        groups = [g for _, g, _, _ in _processes().values()]
        busy = [w.name for w in cluster.workers if groups.count(w.process.pid) > 2]  # itself + 1 warm process
        if not busy:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers {busy} still had more than one worker process after {timeout:.0f}s")
        time.sleep(0.1)
    wait_warm(local, timeout=max(1.0, deadline - time.monotonic()))


def throughput(cluster: Cluster, local: Server, watchers: dict[str, RunWatcher], batch_size: int,
               rounds: int) -> dict[str, Any]:
    """Part 1: the batch on 1 worker, 2 workers and the local runner, alternated round by round."""
    node = cluster.nodes[0]
    cluster_networks, local_networks = _networks(node, batch_size), _networks(local, batch_size)
    warm = {"cluster": _warm_up(node, watchers["cluster"], cluster_networks[:2], [cluster.queues["a"],
                                                                                  cluster.queues["b"]]),
            "local": _warm_up(local, watchers["local"], local_networks[:2], [None, None])}
    groups = {"server node": node.process.pid, **{f"worker {w.name}": w.process.pid for w in cluster.workers}}
    sides = {
        "1 worker": (node, watchers["cluster"], cluster_networks, cluster.queues["a"], groups),
        "2 workers": (node, watchers["cluster"], cluster_networks, cluster.queues["both"], groups),
        "local max_concurrent_runs=2": (local, watchers["local"], local_networks, None,
                                        {"server and its worker processes": local.process.pid}),
    }
    per_round: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, args in sides.items():
            settle(cluster, local)
            per_round[name].append(batch(*args))
    medians = {name: summary([b["runs_per_minute"] for b in results])["median"]
               for name, results in per_round.items()}
    ratio = medians["2 workers"] / medians["1 worker"]
    return {
        "batch": batch_size,
        "body": BATCH_BODY,
        "network": {"layer_sizes": LAYER_SIZES, "dataset_id": "mnist"},
        "warm_up_workers": warm,
        "rounds": per_round,
        "runs_per_minute": medians,
        "ratio": ratio,
        "vs_local": medians["2 workers"] / medians["local max_concurrent_runs=2"],
        "target": f"2 workers / 1 worker >= {TARGETS['throughput_ratio']}",
        "met": ratio >= TARGETS["throughput_ratio"],
    }


class RedisTap:
    """A plain Redis subscriber on a Socket.IO channel: when each run event passed through Redis, to
    split the Redis side's latency into worker -> Redis and Redis -> node -> client."""

    def __init__(self, channel: str) -> None:
        import redis

        self.seen: dict[tuple[str, int], float] = {}
        self._pubsub = redis.Redis.from_url(REDIS_URL).pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.2)
            if message is None:
                continue
            at = time.time()
            data = json.loads(message["data"])
            payload = (data.get("data") or [None])[0]
            if data.get("method") == "emit" and isinstance(payload, dict) and "seq" in payload:
                self.seen[(payload.get("run_id"), payload["seq"])] = at

    def close(self) -> None:
        """Unsubscribe and stop listening."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()


def _latencies(watcher: RunWatcher, run_id: str, tap: RedisTap | None) -> dict[str, list[float]]:
    """arrival - ts per event name; with a tap, also each one's two halves: ts -> through Redis -> client."""
    out: dict[str, list[float]] = {}
    for name, payload, received in list(watcher.events):
        if payload.get("run_id") != run_id or name not in ("training_update", "training_progress"):
            continue
        out.setdefault(name, []).append(received - payload["ts"])
        tapped = tap.seen.get((run_id, payload["seq"])) if tap else None
        if tapped is not None:
            out.setdefault(f"{name}: ts -> redis", []).append(tapped - payload["ts"])
            out.setdefault(f"{name}: redis -> client", []).append(received - tapped)
    return out


def _ms(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": 1000 * percentile(values, 50), "p95": 1000 * percentile(values, 95),
            "p99": 1000 * percentile(values, 99), "max": 1000 * max(values) if values else float("nan")}


NICE_SIDE = "redis, worker process at nice 5 (diagnostic)"


def _renice_worker_processes(worker: Worker, nice: int) -> list[int]:
    """Give a Celery worker's training processes (its process group but itself) a niceness; their pids."""
    pids = [pid for pid, (_, group, _, _) in _processes().items()
            if group == worker.process.pid and pid != worker.process.pid]
    for pid in pids:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    return pids


def event_latency(cluster: Cluster, local: Server, watchers: dict[str, RunWatcher], rounds: int) -> dict[str, Any]:
    """Part 2a: one run at a time on each side, alternated; arrival - ts of every event. A third side, a
    diagnostic: worker B's training process reniced to the local runner's `worker_nice` (5), where a
    Celery worker's run at nice 0 like the server node."""
    node = cluster.nodes[0]
    sides = {"local": (local, watchers["local"], None), "redis": (node, watchers["cluster"], cluster.queues["a"]),
             NICE_SIDE: (node, watchers["cluster"], cluster.queues["b"])}
    networks = {side: _networks(server, 1)[0] for side, (server, _, _) in sides.items()}
    samples: dict[str, dict[str, list[float]]] = {side: {} for side in sides}
    reniced = _renice_worker_processes(cluster.workers[1], 5)
    tap = RedisTap(cluster.channel)
    try:
        for _ in range(rounds):
            for side, (server, watcher, queue) in sides.items():
                for body in LATENCY_BODIES:
                    settle(cluster, local)
                    run_id = _submit(server, [networks[side]], body, queue)[0]
                    _wait_completed(server, watcher, [run_id], 240.0)
                    for name, values in _latencies(watcher, run_id, tap if queue else None).items():
                        samples[side].setdefault(name, []).extend(values)
    finally:
        tap.close()
    alive = _processes()
    still_reniced = [pid for pid in reniced if pid in alive]
    out = {side: {name: _ms(values) for name, values in by_name.items()} for side, by_name in samples.items()}

    def ratio_of(side: str, name: str, key: str) -> float:
        redis, local_ = out[side].get(name, {}).get(key), out["local"].get(name, {}).get(key)
        return redis / local_ if redis is not None and local_ else float("nan")

    ratio = ratio_of("redis", "training_update", "p99")
    return {
        "bodies": LATENCY_BODIES,
        "runs_per_side": rounds * len(LATENCY_BODIES),
        "ms": out,
        "ratio_p99": ratio,
        "ratio_p50": ratio_of("redis", "training_update", "p50"),
        "progress_ratio_p99": ratio_of("redis", "training_progress", "p99"),
        "nice_diagnostic": {"ratio_p99": ratio_of(NICE_SIDE, "training_update", "p99"),
                            "ratio_p50": ratio_of(NICE_SIDE, "training_update", "p50"),
                            "reniced_pids": reniced, "same_processes_at_the_end": still_reniced == reniced},
        "target": f"p99 training_update Redis / local <= {TARGETS['latency_ratio']}",
        "met": ratio <= TARGETS["latency_ratio"],
    }


def _cancel_once(start_on: Server, cancel_on: Server, watcher: RunWatcher, network_id: str,
                 queue: str | None) -> dict[str, Any]:
    run_id = _submit(start_on, [network_id], CANCEL_BODY, queue)[0]
    watcher.wait_for(run_id, "training_update", 1, 120.0)
    asked = time.time()
    api(cancel_on, "POST", f"/api/runs/{run_id}/cancel", expect=(200, 202))
    answered = time.time()
    final = watcher.wait_final(run_id, 30.0)
    if final != "training_cancelled":
        raise RuntimeError(f"run {run_id} ended with {final}, not training_cancelled")
    return {"seconds": watcher.received_at(run_id, "training_cancelled") - asked, "post_seconds": answered - asked}


def cancel_latency(cluster: Cluster, local: Server, watchers: dict[str, RunWatcher], repeats: int) -> dict[str, Any]:
    """Part 2b: POST cancel on node A of a run started on node B (on a worker) -> `training_cancelled` at a
    client of node B; on the local server (one node) for reference."""
    a, b = cluster.nodes[0], cluster.nodes[1]
    networks = {"across nodes": _networks(b, 1)[0], "local": _networks(local, 1)[0]}
    # worker A's queue: worker B's training process may have been reniced by the latency part
    sides = {"across nodes": (b, a, watchers["node B"], cluster.queues["a"]),
             "local": (local, local, watchers["local"], None)}
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for _ in range(repeats):
        for side, (start_on, cancel_on, watcher, queue) in sides.items():
            results[side].append(_cancel_once(start_on, cancel_on, watcher, networks[side], queue))
    seconds = {side: [r["seconds"] for r in items] for side, items in results.items()}
    worst = max(seconds["across nodes"])
    return {
        "repeats": repeats,
        "seconds": {side: summary(values) for side, values in seconds.items()},
        "per_repeat": results,
        "target": f"every cancel within {TARGETS['cancel_seconds']:.0f} s",
        "met": worst <= TARGETS["cancel_seconds"],
    }


def publish(message_queue: str, channel: str, count: int, run_id: str) -> dict[str, Any]:
    """Emit `count` `training_progress` events of `run_id`, then its `training_complete`, through a write-only
    emitter on the message queue, as a Celery worker does (`Emitter.training` with broadcast on). Prints
    READY once connected and starts on a line on stdin."""
    from livetrain.extensions import new_socketio

    sio = new_socketio(message_queue=message_queue, channel=channel)
    ids = {"run_id": run_id, "job_id": run_id, "network_id": None, "experiment_id": None, "algorithm": "network"}
    sio.emit("training_progress", {**ids, "run_id": "warm-up", "seq": 0, "ts": time.time()})  # connects to Redis
    print("READY", flush=True)
    sys.stdin.readline()  # GO: the benchmark has started counting
    started = time.time()
    for seq in range(1, count + 1):
        sio.emit("training_progress", {**ids, "epoch": 1, "total_epochs": 1, "batch": seq, "batches": count,
                                       "train_loss": 0.5, "progress": round(100.0 * seq / count, 2),
                                       "seq": seq, "ts": time.time()})
    emitted = time.time()
    sio.emit("training_complete", {**ids, "status": "completed", "progress": 100, "total_epochs": 1,
                                   "seq": count + 1, "ts": time.time()})
    return {"count": count, "started": started, "seconds": emitted - started,
            "events_per_second": count / max(1e-9, emitted - started)}


def fanout(clients: int, events: int, processes: int = 1, timeout: float = 240.0) -> dict[str, Any]:
    """Part 3: a publisher process -> Redis -> one server node -> `clients` minimal Socket.IO clients, held by
    `processes` processes."""
    channel = f"livetrain-bench-{uuid.uuid4().hex[:10]}"
    run_id = f"fanout-{uuid.uuid4().hex[:8]}"
    per_process = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    children: list[subprocess.Popen] = []

    def stop_children() -> None:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
            for stream in (child.stdin, child.stdout):
                with contextlib.suppress(OSError, AttributeError):
                    stream.close()

    with contextlib.ExitStack() as stack:
        database = stack.enter_context(postgres_database())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="livetrain-bench-fanout-")))
        # no warm worker processes: nothing trains here, and starting them (torch's import, seconds of CPU
        # each) would compete with the delivery being measured
        server = stack.enter_context(livetrain_server(env={
            "LIVETRAIN_DATABASE_URL": database, "LIVETRAIN_MESSAGE_QUEUE": REDIS_URL,
            "LIVETRAIN_MESSAGE_QUEUE_CHANNEL": channel, "LIVETRAIN_WARM_WORKERS": "0"}))
        stack.callback(stop_children)
        outs = [tmp / f"clients-{i}.json" for i in range(processes)]
        for count, out in zip(per_process, outs):
            children.append(_start_clients(CLIENT_MODULES["raw"], server.url, count, out, timeout))
        connected = sum(int(_read_line(child, "READY", 120).split()[1]) for child in children)
        if connected != clients:
            raise RuntimeError(f"only {connected} of {clients} clients connected")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        publisher = subprocess.Popen(
            [sys.executable, "-m", "bench.scale_out", "publish", "--message-queue", REDIS_URL, "--channel", channel,
             "--count", str(events), "--run-id", run_id],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        children.append(publisher)
        _read_line(publisher, "READY", 60)
        meter = CpuMeter({"server node": server.process.pid})
        publisher.stdin.write("GO\n")
        publisher.stdin.flush()
        published = json.loads(_read_line(publisher, "{", timeout))
        for child in children[:-1]:
            _read_line(child, "DONE", timeout)
        cpu = meter.stop()  # includes the clients' half-second wait after the end, when all is idle
        for child in children:
            child.wait(timeout=30)
        publisher.stdin.close()
        reports = [json.loads(out.read_text()) for out in outs]
    seqs_wanted = set(range(1, events + 1))
    arrivals, latencies = [], []
    complete, missing, duplicates, disconnected = 0, 0, 0, 0
    for record in (c for report in reports for c in report["clients"]):
        got = [(seq, ts, at) for name, rid, seq, ts, at in record["received"]
               if rid == run_id and name == "training_progress"]
        seqs = [seq for seq, _, _ in got]
        missing += len(seqs_wanted - set(seqs))
        duplicates += len(seqs) - len(set(seqs))
        complete += int(set(seqs) == seqs_wanted and any(name == "training_complete" and rid == run_id
                                                         for name, rid, *_ in record["received"]))
        disconnected += int(not record["connected"])
        arrivals += [at for _, _, at in got]
        latencies += [at - ts for _, ts, at in got]
    span = max(arrivals) - published["started"]
    client_cpu = sum(report["cpu_seconds"] for report in reports)
    deliveries = len(arrivals)
    server_cores = cpu.get("groups", {}).get("server node", {}).get("cores")
    server_cpu = server_cores * cpu["seconds"] if server_cores is not None else None
    return {
        "clients": clients,
        "client": "raw (bench.raw_clients)",
        "client_processes": processes,
        "events": events,
        "publisher": published,
        "seconds": span,  # first emit -> the last client's last event
        "deliveries": deliveries,
        "deliveries_per_second": deliveries / span,
        "events_fully_delivered_per_second": events / span,
        "latency_ms": _ms(latencies),  # arrival - ts: mostly the backlog of a burst
        "cpu": cpu,  # from GO until the clients have written their records: longer than `seconds`
        "server_cpu_seconds": server_cpu,  # it is idle once the last event is out
        "client_cpu_seconds": client_cpu,  # until every client has the final event
        "server_cores_while_delivering": server_cpu / span if server_cpu is not None else None,
        "client_cores_while_delivering": client_cpu / span,
        "server_cpu_ms_per_event": (1000.0 * server_cpu / events) if server_cpu is not None else None,
        "clients_with_every_event": complete,
        "events_missing": missing,
        "duplicates": duplicates,
        "clients_disconnected": disconnected,
        "no_event_lost": complete == clients and missing == 0 and duplicates == 0 and disconnected == 0,
    }


def run(batch_size: int = BATCH, rounds: int = 2, latency_rounds: int = 2, cancel_repeats: int = 5,
        clients: int = 100, fanout_events: int = FANOUT_EVENTS) -> dict[str, Any]:
    """All three parts; {"skipped": why} without Redis or PostgreSQL."""
    why = missing_services()
    if why:
        return {"skipped": why}
    started = time.monotonic()
    seconds: dict[str, float] = {}
    load: dict[str, list[float]] = {}  # others' load shows here: the machine may be shared
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(celery_cluster(nodes=2, workers=2))
        local_db = stack.enter_context(postgres_database())
        local = stack.enter_context(livetrain_server(env={"LIVETRAIN_DATABASE_URL": local_db,
                                                          "LIVETRAIN_MAX_CONCURRENT_RUNS": "2"}))
        watchers: dict[str, RunWatcher] = {}
        stack.callback(lambda: [w.close() for w in watchers.values()])
        watchers.update({"cluster": RunWatcher(cluster.nodes[0]), "node B": RunWatcher(cluster.nodes[1]),
                         "local": RunWatcher(local)})
        seconds["setup"] = time.monotonic() - started
        workers = api(cluster.nodes[0], "GET", "/api/workers")["workers"]
        result: dict[str, Any] = {
            "redis": REDIS_URL, "channel": cluster.channel, "queues": cluster.queues,
            "workers": [{k: w.get(k) for k in ("name", "queues", "concurrency", "torch_threads", "device")}
                        for w in workers],
            "local_server": {k: v for k, v in api(local, "GET", "/api/status").items()
                             if k in ("runner", "max_concurrent_runs", "warm_workers")},
        }
        mark, load["throughput"] = time.monotonic(), list(os.getloadavg())
        result["throughput"] = throughput(cluster, local, watchers, batch_size, rounds)
        seconds["throughput"] = time.monotonic() - mark
        mark, load["latency"] = time.monotonic(), list(os.getloadavg())
        result["latency"] = event_latency(cluster, local, watchers, latency_rounds)
        seconds["latency"] = time.monotonic() - mark
        mark, load["cancel"] = time.monotonic(), list(os.getloadavg())
        result["cancel"] = cancel_latency(cluster, local, watchers, cancel_repeats)
        seconds["cancel"] = time.monotonic() - mark
    mark, load["fanout"] = time.monotonic(), list(os.getloadavg())
    result["fanout"] = fanout(clients, fanout_events)
    seconds["fanout"] = time.monotonic() - mark
    seconds["total"] = time.monotonic() - started
    result["seconds"] = seconds
    result["load_average_before"] = load
    return result


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.scale_out` runs the benchmark; `... publish` is its publisher process."""
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=BATCH, help="runs of the throughput batch")
    parser.add_argument("--rounds", type=int, default=2, help="batches on each side of the throughput part")
    parser.add_argument("--latency-rounds", type=int, default=2, help="runs on each side of the latency part")
    parser.add_argument("--cancel-repeats", type=int, default=5)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--events", type=int, default=FANOUT_EVENTS, help="events the fan-out publisher emits")
    sub = parser.add_subparsers(dest="command")
    pub = sub.add_parser("publish", help="(internal) emit events through the message queue; one JSON line")
    pub.add_argument("--message-queue", required=True)
    pub.add_argument("--channel", required=True)
    pub.add_argument("--count", type=int, required=True)
    pub.add_argument("--run-id", required=True)
    args = parser.parse_args(argv)
    if args.command == "publish":
        print(json.dumps(publish(args.message_queue, args.channel, args.count, args.run_id)), flush=True)
        return 0
    result = run(batch_size=args.batch, rounds=args.rounds, latency_rounds=args.latency_rounds,
                 cancel_repeats=args.cancel_repeats, clients=args.clients, fanout_events=args.events)
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
