"""Scale-out for real: two server nodes and two Celery workers on the machine's PostgreSQL and
Redis, each a separate process. A client on one node sees the runs started on the other and
executed on a worker; cancels, dead workers and dead server nodes behave as docs/architecture.md
("Scale-out") says. Skipped, saying what is missing, without Redis or PostgreSQL.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys

import pytest

from tests.e2e.cluster import Cluster, redis_or_skip
from tests.e2e.helpers import LONG_EPOCHS, LiveClient, free_port, wait_until

STORED = {"run_created", "training_started", "training_update", "training_complete", "training_error",
          "training_cancelled", "training_interrupted", "run_log", "weights_update", "training_stats"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Node A, node B (Celery runner, Redis message queue, broadcast default) and two workers."""
    redis_or_skip()
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start_server()
        cluster.start_server()
        cluster.start_workers(2)
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def nodes(cluster):
    """Node A and node B, with two live workers (a failing test's report carries every log)."""
    for worker in [w for w in cluster.workers if not w.running]:
        cluster.workers.remove(worker)
    missing = 2 - len(cluster.workers)
    if missing > 0:
        cluster.start_workers(missing)
    return cluster.servers[0], cluster.servers[1]


@pytest.fixture
def client_of():
    clients: list[LiveClient] = []

    def connect(server) -> LiveClient:
        client = LiveClient(server.url).connect()
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.disconnect()


def seqs_of(client: LiveClient, run_id: str) -> list[int]:
    return [p["seq"] for _, p in client.events(run_id=run_id) if isinstance(p, dict) and "seq" in p]


def test_a_client_of_node_a_gets_every_event_of_a_run_started_on_node_b_in_order(nodes, client_of):
    a, b = nodes
    watcher = client_of(a)
    network_id = b.api.create_network()["network_id"]
    run_id = b.api.train(network_id, epochs=3)["job_id"]

    done = watcher.wait_for("training_complete", run_id)
    run = a.api.run(run_id)
    assert run["status"] == "completed" and run["worker"] in {w["name"] for w in a.api.get("/api/workers")["workers"]}
    assert run["device"] == "cpu" and run["queue"].startswith("livetrain-test-")
    # live, in order and gap-free across the nodes and the worker, progress included
    seqs = seqs_of(watcher, run_id)
    assert seqs == list(range(1, len(seqs) + 1)) and done["seq"] == seqs[-1]
    assert [p["epoch"] for p in watcher.payloads("training_update", run_id)] == [1, 2, 3]
    started = watcher.payloads("training_started", run_id)
    assert len(started) == 1 and started[0]["device"] == "cpu" and started[0]["worker"] == run["worker"]
    # what was pushed is what either node has stored, payload for payload
    pushed = [{"event": name, **p} for name, p in watcher.events(STORED, run_id)]
    assert a.api.stored_events(run_id) == pushed == b.api.stored_events(run_id)
    # the new network's version is the worker's weights, downloadable through the other node
    assert a.api.get(f"/api/networks/{network_id}")["current_version"] == 1
    assert a.api.request("GET", f"/api/networks/{network_id}/weights").status_code == 200


def test_workers_are_listed_with_queues_device_concurrency_and_runs(nodes):
    a, b = nodes
    listed = a.api.get("/api/workers")
    assert listed["runner"] == "celery" and len(listed["workers"]) == 2
    for worker in listed["workers"]:
        assert worker["queues"][0].startswith("livetrain-test-")
        assert worker["device"] == "cpu" and worker["concurrency"] == 1 and worker["runs"] == []
    status = b.api.get("/api/status")
    assert (status["runner"], status["workers"], status["worker_slots"], status["server_nodes"]) == \
        ("celery", 2, 2, 2)


def test_a_run_naming_a_queue_no_worker_listens_on_waits_there_and_can_be_cancelled(nodes, client_of):
    a, b = nodes
    watcher = client_of(a)
    network_id = b.api.create_network()["network_id"]
    run_id = b.api.train(network_id, epochs=1, queue="gpu-nobody-here")["job_id"]
    assert a.api.run(run_id)["queue"] == "gpu-nobody-here"
    assert run_id in [r["run_id"] for r in a.api.get("/api/runs", params={"status": "queued"})["runs"]]
    a.api.post(f"/api/runs/{run_id}/cancel")
    assert watcher.wait_for("training_cancelled", run_id)["epochs_done"] == 0
    assert a.api.run(run_id)["status"] == "cancelled"
    bad = b.api.request("POST", f"/api/networks/{network_id}/train", json={"epochs": 1, "queue": "no spaces"})
    assert bad.status_code == 400 and bad.json()["error"] == "validation_error"


def test_cancel_on_node_a_stops_the_run_on_its_worker_and_resume_continues_from_the_checkpoint(nodes, client_of):
    a, b = nodes
    watcher = client_of(a)
    network_id = b.api.create_network()["network_id"]
    run_id = b.api.train(network_id, epochs=LONG_EPOCHS)["job_id"]
    watcher.wait_for("training_update", run_id, where=lambda p: p["epoch"] >= 2)

    a.api.post(f"/api/runs/{run_id}/cancel")
    cancelled = watcher.wait_for("training_cancelled", run_id, timeout=30)
    run = b.api.run(run_id)
    assert run["status"] == "cancelled" and run["has_checkpoint"] and run["checkpoint_epoch"] >= 2
    assert cancelled["checkpoint_epoch"] == run["checkpoint_epoch"] < LONG_EPOCHS
    wait_until(lambda: all(not w["runs"] for w in a.api.get("/api/workers")["workers"]), timeout=15,
               what="the worker to let the run go")

    resumed = a.api.post(f"/api/runs/{run_id}/resume", {"epochs": 2}, expect=202)["job_id"]
    done = watcher.wait_for("training_complete", resumed)
    again = a.api.run(resumed)
    assert (again["start_epoch"], again["total_epochs"]) == (run["checkpoint_epoch"], run["checkpoint_epoch"] + 2)
    assert done["version"] == 1


def test_a_worker_killed_mid_run_leaves_it_interrupted_and_another_worker_resumes_it(nodes, cluster, client_of):
    a, b = nodes
    watcher = client_of(b)
    network_id = a.api.create_network()["network_id"]
    run_id = a.api.train(network_id, epochs=LONG_EPOCHS)["job_id"]
    watcher.wait_for("training_update", run_id, where=lambda p: p["epoch"] >= 2)
    victim = cluster.worker_named(a.api.run(run_id)["worker"])

    victim.kill()
    # found dead by the servers (its heartbeat, or its process gone), never left running
    interrupted = watcher.wait_for("training_interrupted", run_id, timeout=30)
    run = a.api.run(run_id)
    assert run["status"] == "interrupted" and victim.name in run["error"]
    assert interrupted["checkpoint_epoch"] == run["checkpoint_epoch"] >= 2
    assert len(watcher.payloads("training_started", run_id)) == 1  # it never trained twice

    resumed = b.api.post(f"/api/runs/{run_id}/resume", {"epochs": 1}, expect=202)["job_id"]
    watcher.wait_for("training_complete", resumed)
    again = b.api.run(resumed)
    assert again["worker"] != victim.name and again["start_epoch"] == run["checkpoint_epoch"]
    # pushed in order; a worker killed between storing an event and pushing it (SIGKILL, with the
    # monitor's samples and log lines several a second) leaves a gap that catch-up fills
    seqs = seqs_of(watcher, run_id)
    assert seqs == sorted(set(seqs))
    stored = [event["seq"] for event in b.api.stored_events(run_id)]
    assert stored == list(range(1, len(stored) + 1)) and set(seqs) <= set(stored)


def test_a_worker_stopped_by_its_service_manager_leaves_its_run_interrupted_at_once(nodes, cluster, client_of):
    a, b = nodes
    watcher = client_of(a)
    network_id = b.api.create_network()["network_id"]
    run_id = b.api.train(network_id, epochs=LONG_EPOCHS)["job_id"]
    watcher.wait_for("training_update", run_id)
    worker = cluster.worker_named(a.api.run(run_id)["worker"])

    worker.process.send_signal(signal.SIGTERM)  # docker stop, systemctl stop
    interrupted = watcher.wait_for("training_interrupted", run_id, timeout=30)
    assert f"the worker {worker.name} stopped" in interrupted["error"]
    worker.process.wait(timeout=30)
    assert worker.name not in {w["name"] for w in a.api.get("/api/workers")["workers"]}


def test_the_terminal_client_follows_through_one_node_a_run_on_a_worker(nodes):
    a, b = nodes
    network_id = b.api.create_network()["network_id"]
    done = subprocess.run([sys.executable, "-m", "livetrain", "--url", a.url, "train", network_id, "--epochs", "2",
                           "--follow"], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "completed" in done.stdout


def test_a_client_of_a_killed_node_catches_up_on_the_other_without_a_gap(cluster, nodes):
    a, b = nodes
    first = LiveClient(a.url).connect()
    network_id = b.api.create_network()["network_id"]
    run_id = b.api.train(network_id, epochs=6)["job_id"]
    first.wait_for("training_update", run_id, where=lambda p: p["epoch"] >= 1)
    a.kill()  # the node the client was on: its load balancer sends the client to the other
    first.disconnect()
    seen = seqs_of(first, run_id)

    second = LiveClient(b.url).connect()
    try:
        assert second.subscribe(run_id=run_id)["ok"]
        missed = b.api.stored_events(run_id, after_seq=seen[-1])  # subscribed first: nothing falls between
        second.wait_for("training_complete", run_id)
        got = sorted(set(seen) | {e["seq"] for e in missed} | set(seqs_of(second, run_id)))
        stored = [e["seq"] for e in b.api.stored_events(run_id)]
        assert set(stored) <= set(got) and got[-1] == stored[-1]
        assert b.api.run(run_id)["status"] == "completed"
    finally:
        second.disconnect()
        cluster.servers[0] = type(a)(a.home, a.log_path, a.extra_env).start()  # node A back for later tests


@pytest.fixture(scope="module")
def local_nodes(tmp_path_factory):
    """Two server nodes with their own worker processes (no Celery), sharing the message queue; events
    go to rooms only (broadcast off)."""
    redis_or_skip()
    cluster = Cluster(tmp_path_factory.mktemp("local-nodes"), runner="local", broadcast=False)
    try:
        cluster.start_server()
        cluster.start_server()
        yield cluster.servers
    finally:
        cluster.close()


def test_rooms_work_across_nodes_and_a_cancel_reaches_the_node_that_runs_the_run(local_nodes, client_of):
    a, b = local_nodes
    subscribed, bystander = client_of(a), client_of(a)
    network_id = b.api.create_network()["network_id"]
    run_id = b.api.train(network_id, epochs=LONG_EPOCHS)["job_id"]  # runs in node B's worker process
    assert subscribed.subscribe(run_id=run_id)["ok"]
    update = subscribed.wait_for("training_update", run_id)
    assert a.api.get("/api/workers")["workers"][0]["runs"] == []  # node A runs nothing itself

    a.api.post(f"/api/runs/{run_id}/cancel")  # asked of node A, done by node B within a second
    subscribed.wait_for("training_cancelled", run_id, timeout=30)
    assert b.api.run(run_id)["status"] == "cancelled"
    # a run's first log line ("queued") is written while the train request is answered, before this
    # client could subscribe: from the subscription on nothing is missing, and catch-up has the rest
    seqs = [seq for seq in seqs_of(subscribed, run_id) if seq > 1]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and seqs[0] <= update["seq"]
    stored = [event["seq"] for event in a.api.stored_events(run_id)]
    assert stored == list(range(1, len(stored) + 1)) and set(seqs) <= set(stored)
    # the resource event reached everyone; the run's events only its room
    assert bystander.wait_for("run_created", run_id)["seq"] == 1
    assert bystander.events({"training_update", "training_cancelled"}, run_id) == []


class PrivateRedis:
    """A redis-server of the test's own on a free port, to stop and start again."""

    def __init__(self, folder) -> None:
        self.binary = shutil.which("redis-server") or pytest.skip("needs redis-server on PATH (Debian: redis-server)")
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", str(self.folder)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: _answers(self.port), timeout=15, what="the private redis-server to answer")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_a_message_queue_restart_loses_no_stored_event_and_delivery_resumes(tmp_path, client_of):
    redis = PrivateRedis(tmp_path).start()
    cluster = Cluster(tmp_path / "nodes", runner="local", redis_url=redis.url)
    try:
        a, b = cluster.start_server(), cluster.start_server()
        watcher = client_of(a)
        network_id = b.api.create_network()["network_id"]
        run_id = b.api.train(network_id, epochs=LONG_EPOCHS)["job_id"]
        watcher.wait_for("training_update", run_id, where=lambda p: p["epoch"] >= 1)

        redis.stop()  # the run goes on; what node B emits meanwhile reaches no other node
        outage_from = b.api.run(run_id)["epochs_done"]
        wait_until(lambda: b.api.run(run_id)["epochs_done"] >= outage_from + 3, timeout=60,
                   what="three epochs during the outage")
        redis.start()
        after = wait_until(lambda: b.api.run(run_id)["epochs_done"], timeout=5, what="the run")
        # node A's subscription comes back by itself: live events reach its client again
        watcher.wait_for("training_update", run_id, where=lambda p: p["epoch"] > after + 1, timeout=60)
        a.api.post(f"/api/runs/{run_id}/cancel")
        watcher.wait_for("training_cancelled", run_id, timeout=30)

        stored = a.api.stored_events(run_id)
        updates = [e["epoch"] for e in stored if e["event"] == "training_update"]
        assert updates == list(range(1, len(updates) + 1)) and len(updates) > after  # nothing missing
        live = {p["epoch"] for p in watcher.payloads("training_update", run_id)}
        assert set(updates) - live  # some were not pushed during the outage: the REST catch-up has them
        assert a.api.run(run_id)["status"] == "cancelled"
    finally:
        cluster.close()
        redis.stop()
