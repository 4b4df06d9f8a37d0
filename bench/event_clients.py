"""A process holding N python-socketio clients for the event-latency benchmark.

`--kind threaded` (default): `socketio.Client`, the synchronous client (websocket-client
underneath, a reader thread per connection and a new thread per received message).
`--kind asyncio`: `socketio.AsyncClient` on one asyncio loop (needs aiohttp).

Started by `bench.event_latency`: connects its clients (websocket transport), prints
`READY <connected>`, records every training event each client receives with the time it
arrived, and once every client has seen the end of a run (or `--timeout` passes) writes
them to `--out` as JSON and prints `DONE`. Clients are disconnected at the end whatever
happens.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import socketio

EVENTS = ("run_created", "training_started", "training_update", "training_progress", "training_complete",
          "training_error", "training_cancelled")
FINAL = {"training_complete", "training_error", "training_cancelled"}


class Recorder:
    """One client and what it received: (event, run_id, seq, ts, received)."""

    def __init__(self, url: str, done: threading.Semaphore) -> None:
        self.received: list[tuple[str, str, int, float, float]] = []
        self.finished = False
        self._done = done
        self.client = socketio.Client(reconnection=False)
        for name in EVENTS:
            self.client.on(name, self._handler(name))
        self.url = url

    def _handler(self, name: str):
        def handle(payload):
            now = time.time()  # first thing: the moment the client has the event
            self.received.append((name, payload.get("run_id"), payload.get("seq"), payload.get("ts"), now))
            if name in FINAL and not self.finished:
                self.finished = True
                self._done.release()
        return handle

    def connect(self) -> None:
        """Connect over websocket (no long-polling)."""
        self.client.connect(self.url, transports=["websocket"], wait_timeout=20)


async def run_async(url: str, count: int, out: str, timeout: float) -> None:
    """The same as `main` with `socketio.AsyncClient`s on one loop."""
    import asyncio

    clients, received, finished = [], [], []
    for _ in range(count):
        client = socketio.AsyncClient(reconnection=False)
        log: list[tuple[str, str, int, float, float]] = []
        done = asyncio.Event()

        def bind(name: str, log=log, done=done):
            async def handle(payload):
                now = time.time()
                log.append((name, payload.get("run_id"), payload.get("seq"), payload.get("ts"), now))
                if name in FINAL:
                    done.set()
            return handle

        for name in EVENTS:
            client.on(name, bind(name))
        clients.append(client)
        received.append(log)
        finished.append(done)
    try:
        connected = 0
        for client in clients:
            try:
                await client.connect(url, transports=["websocket"], wait_timeout=20)
                connected += 1
            except socketio.exceptions.ConnectionError as exc:
                print(f"connect failed: {exc}", file=sys.stderr, flush=True)
        print(f"READY {connected}", flush=True)
        cpu_started = time.process_time()
        waits = [asyncio.ensure_future(done.wait()) for client, done in zip(clients, finished) if client.connected]
        if waits:
            await asyncio.wait(waits, timeout=timeout)
        cpu_seconds = time.process_time() - cpu_started
        await asyncio.sleep(0.5)
        results = [{"connected": c.connected, "received": log} for c, log in zip(clients, received)]
        with open(out, "w") as fh:
            json.dump({"clients": results, "timed_out": not all(d.is_set() for d in finished),
                       "cpu_seconds": cpu_seconds}, fh)
        print("DONE", flush=True)
    finally:
        for client in clients:
            try:
                await client.disconnect()
            except Exception as exc:  # noqa: BLE001  (a client that is already gone is fine here)
                print(f"disconnect: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Connect, report ready, record, write results."""
    parser = argparse.ArgumentParser(prog="python -m bench.event_clients")
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--kind", choices=["threaded", "asyncio"], default="threaded")
    args = parser.parse_args(argv)
    if not args.url.startswith("http://127.0.0.1:"):
        raise SystemExit("only 127.0.0.1 servers")
    if args.kind == "asyncio":
        import asyncio

        asyncio.run(run_async(args.url, args.clients, args.out, args.timeout))
        return 0
    done = threading.Semaphore(0)
    recorders = [Recorder(args.url, done) for _ in range(args.clients)]
    connected = 0
    try:
        for recorder in recorders:
            try:
                recorder.connect()
                connected += 1
            except socketio.exceptions.ConnectionError as exc:
                print(f"connect failed: {exc}", file=sys.stderr, flush=True)
        print(f"READY {connected}", flush=True)
        cpu_started = time.process_time()
        deadline = time.monotonic() + args.timeout
        finished = 0
        while finished < connected and time.monotonic() < deadline:
            if done.acquire(timeout=max(0.0, min(1.0, deadline - time.monotonic()))):
                finished += 1
        cpu_seconds = time.process_time() - cpu_started
        time.sleep(0.5)  # anything still in flight after the end event
        results = [{"connected": r.client.connected, "received": r.received} for r in recorders]
        with open(args.out, "w") as fh:
            json.dump({"clients": results, "timed_out": finished < connected, "cpu_seconds": cpu_seconds}, fh)
        print("DONE", flush=True)
    finally:
        for recorder in recorders:
            try:
                recorder.client.disconnect()
            except Exception as exc:  # noqa: BLE001  (a client that is already gone is fine here)
                print(f"disconnect: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
