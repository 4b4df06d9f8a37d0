"""A diagnostic counterpart of `bench.event_clients`: N minimal Socket.IO clients on asyncio.

Not the benchmark's clients (those are python-socketio's); this separates the server's
part of the event latency from the client library's. python-socketio's threaded client
starts an OS thread for every message it receives and parses websocket frames in pure
Python per connection thread; on a 2-core machine where the training worker holds one
core, 100 of them spend more CPU per event than the server does. These clients do the
least a Socket.IO client can do: one asyncio loop, the websocket handshake, Engine.IO
open / ping-pong, Socket.IO connect to the default namespace, and the arrival time of
each text frame taken before it is parsed.

Same command line and output as `bench.event_clients` (READY n, then DONE and the JSON file).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import struct
import time
from urllib.parse import urlparse

FINAL = {"training_complete", "training_error", "training_cancelled"}
EVENTS = {"run_created", "training_started", "training_update", "training_progress"} | FINAL


class RawClient:
    """One websocket connection speaking just enough Engine.IO v4 / Socket.IO v5."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.received: list[tuple[str, str, int, float, float]] = []
        self.connected = False
        self.finished = asyncio.Event()
        self.namespace_joined = asyncio.Event()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        """Handshake, then Socket.IO connect; returns once the namespace is joined."""
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                           f"Host: {self.host}:{self.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.decode(errors="replace"))
        asyncio.get_running_loop().create_task(self._read_loop())
        await asyncio.wait_for(self.namespace_joined.wait(), 20)
        self.connected = True

    def _send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        elif len(payload) < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(payload))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)

    async def _read_loop(self) -> None:
        reader = self.reader
        fragments: list[bytes] = []
        try:
            while True:
                first, second = await reader.readexactly(2)
                length = second & 0x7F
                if length == 126:
                    (length,) = struct.unpack(">H", await reader.readexactly(2))
                elif length == 127:
                    (length,) = struct.unpack(">Q", await reader.readexactly(8))
                data = await reader.readexactly(length)
                arrived = time.time()
                opcode = first & 0x0F
                if opcode == 0x8:  # close
                    break
                if opcode in (0x1, 0x0):
                    fragments.append(data)
                    if first & 0x80:
                        self._on_text(b"".join(fragments).decode(), arrived)
                        fragments = []
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        self.connected = False
        self.finished.set()

    def _on_text(self, text: str, arrived: float) -> None:
        kind = text[:1]
        if kind == "0":  # Engine.IO open: join the default namespace
            self._send_text("40")
        elif kind == "2":  # ping
            self._send_text("3")
        elif text.startswith("40"):
            self.namespace_joined.set()
        elif text.startswith("42"):
            name, payload = json.loads(text[2:])[:2]
            if name in EVENTS and isinstance(payload, dict):
                self.received.append((name, payload.get("run_id"), payload.get("seq"), payload.get("ts"), arrived))
                if name in FINAL:
                    self.finished.set()

    def close(self) -> None:
        """Drop the connection."""
        if self.writer is not None:
            self.writer.close()


async def main_async(url: str, count: int, out: str, timeout: float) -> None:
    """Connect, report ready, wait for the end of a run, write results."""
    parsed = urlparse(url)
    clients = [RawClient(parsed.hostname, parsed.port) for _ in range(count)]
    try:
        connected = 0
        for client in clients:
            try:
                await client.connect()
                connected += 1
            except (TimeoutError, OSError, ConnectionError) as exc:
                print(f"connect failed: {exc}", flush=True)
        print(f"READY {connected}", flush=True)
        cpu_started = time.process_time()
        waiting = [asyncio.ensure_future(c.finished.wait()) for c in clients if c.connected]
        if waiting:
            await asyncio.wait(waiting, timeout=timeout)
        cpu_seconds = time.process_time() - cpu_started
        await asyncio.sleep(0.5)
        results = [{"connected": c.connected, "received": c.received} for c in clients]
        with open(out, "w") as fh:
            json.dump({"clients": results, "timed_out": not all(c.finished.is_set() for c in clients),
                       "cpu_seconds": cpu_seconds}, fh)
        print("DONE", flush=True)
    finally:
        for client in clients:
            client.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point (same arguments as bench.event_clients)."""
    parser = argparse.ArgumentParser(prog="python -m bench.raw_clients")
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    if not args.url.startswith("http://127.0.0.1:"):
        raise SystemExit("only 127.0.0.1 servers")
    asyncio.run(main_async(args.url, args.clients, args.out, args.timeout))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
