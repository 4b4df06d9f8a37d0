"""Small helpers the tests share."""

from __future__ import annotations

import time

FINAL = {"completed", "failed", "cancelled", "interrupted"}


def wait_for_run(client, run_id: str, *, timeout: float = 90.0, statuses=FINAL) -> dict:
    """Poll GET /api/runs/{id} until the run reaches one of `statuses`; the run's JSON."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/api/runs/{run_id}").get_json()
        if run["status"] in statuses:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run['status']} after {timeout}s")
        time.sleep(0.05)


def events_named(received: list[dict], name: str) -> list[dict]:
    """Payloads of the Socket.IO test client's received events with that name."""
    return [e["args"][0] for e in received if e["name"] == name]
