"""Small helpers the tests share."""

from __future__ import annotations

import os
import time
from pathlib import Path

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


def wait_until(condition, *, timeout: float = 60.0, what: str = "condition"):
    """Poll `condition()` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout}s")
        time.sleep(0.02)


def create_network(client, **body) -> dict:
    """POST /api/networks, asserting it was created; the response JSON."""
    response = client.post("/api/networks", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def start_run(client, network_id: str, **body) -> dict:
    """POST /api/networks/{id}/train, asserting it was accepted; the response JSON."""
    response = client.post(f"/api/networks/{network_id}/train", json=body)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def wait_for_epochs(client, run_id: str, epochs: int = 1, *, timeout: float = 60.0) -> dict:
    """Wait until a run has finished `epochs` epochs of its own (it may still be running); the run's JSON."""
    def reached():
        run = client.get(f"/api/runs/{run_id}").get_json()
        if run["status"] in FINAL and run["status"] != "completed":
            raise AssertionError(f"run {run_id} ended {run['status']} ({run.get('error')}) before {epochs} epoch(s)")
        return run if run["epochs_done"] - run["start_epoch"] >= epochs else None

    return wait_until(reached, timeout=timeout, what=f"{epochs} epoch(s) of run {run_id}")


def create_experiment(client, **body) -> dict:
    """POST /api/experiments, asserting it was created; the response JSON."""
    response = client.post("/api/experiments", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def run_in(client, experiment_id: str, **body) -> dict:
    """POST /api/experiments/{id}/runs, asserting it was accepted; the response JSON."""
    response = client.post(f"/api/experiments/{experiment_id}/runs", json=body)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def worker_processes() -> set[int]:
    """Pids of this process's live worker processes (zombies left out), read from /proc: the ones it
    started (`livetrain.jobs.worker`) and the ones its worker template forked."""
    processes = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # it exited meanwhile
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        processes.append((int(entry.name), int(ppid), state, cmdline))
    templates = {pid for pid, ppid, _, cmdline in processes
                 if ppid == os.getpid() and b"livetrain.jobs.template" in cmdline}
    return {pid for pid, ppid, state, cmdline in processes if state != "Z" and (
        ppid in templates or (ppid == os.getpid() and b"livetrain.jobs.worker" in cmdline))}
