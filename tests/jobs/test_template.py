"""Workers forked from the worker template: the template is this process's child and every worker is
the template's; runs train in them as in workers started from scratch; a worker's end (a kill, an
exit) is known with its exit code; without the template, or when it dies, workers start on their own."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from livetrain.jobs.pool import WorkerHandle
from livetrain.jobs.template import WorkerTemplate
from tests.helpers import create_network, start_run, wait_for_epochs, wait_for_run, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def command_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def trained_worker(make_app, **settings) -> tuple[dict, int]:
    """A run trained to the end on a fresh app; the run and the pid of the worker it trained in."""
    app = make_app(**settings)
    client = app.test_client()
    network_id = create_network(client, dataset_id="digits", layer_sizes=[64, 16, 10])["network_id"]
    run = wait_for_run(client, start_run(client, network_id, epochs=2)["run_id"])
    return run, run["worker_pid"]


def test_runs_train_in_workers_forked_from_one_template_this_process_started(make_app):
    # one warm worker each: the worker a run trained in stays, idle, until its app is closed
    first, first_pid = trained_worker(make_app, warm_workers=1)
    second, second_pid = trained_worker(make_app, warm_workers=1)  # another server in this process: the same template
    assert first["status"] == second["status"] == "completed"
    assert first["accuracy"] > 0.5 and second["accuracy"] > 0.5  # digits: chance is 0.1
    assert first_pid != second_pid
    template = WorkerTemplate.shared()
    assert template is not None and template.alive
    assert parent_of(first_pid) == parent_of(second_pid) == template.pid
    # their command line is the template's; the name top and ps show says which is which
    assert Path(f"/proc/{first_pid}/comm").read_text().strip() == "lt-worker"
    assert Path(f"/proc/{template.pid}/comm").read_text().strip() == "lt-template"
    assert parent_of(template.pid) == os.getpid() and b"livetrain.jobs.template" in command_of(template.pid)


def test_a_forked_workers_end_is_known_with_its_exit_code():
    handle = WorkerHandle.start(threads=1, fork=True)
    assert handle.forked and handle.alive
    os.kill(handle.pid, signal.SIGKILL)
    assert handle.exit_code() == -signal.SIGKILL
    assert not handle.alive
    handle.kill()  # nothing left to kill: closes this end

    calm = WorkerHandle.start(threads=1, fork=True)
    calm.close()  # asked to exit: it ends on its own, with 0
    assert calm.process.wait(timeout=5) == 0


def test_without_forking_workers_are_this_processs_own(make_app):
    run, pid = trained_worker(make_app, fork_workers=False, warm_workers=1)
    assert run["status"] == "completed"
    assert parent_of(pid) == os.getpid() and b"livetrain.jobs.worker" in command_of(pid)


def test_a_dead_template_is_replaced_and_no_run_fails_for_it(make_app):
    template = WorkerTemplate.shared()
    assert template is not None
    os.kill(template.pid, signal.SIGKILL)
    wait_until(lambda: not template.alive, what="the killed template to be noticed")

    app = make_app()
    client = app.test_client()
    network_id = create_network(client, dataset_id="digits", layer_sizes=[64, 16, 10])["network_id"]
    run_id = start_run(client, network_id, epochs=500)["run_id"]
    pid = wait_for_epochs(client, run_id, 1)["worker_pid"]
    replacement = WorkerTemplate.shared()
    assert replacement is not None and replacement.pid != template.pid
    assert parent_of(pid) == replacement.pid
    assert client.post(f"/api/runs/{run_id}/cancel").status_code == 200
    assert wait_for_run(client, run_id)["status"] == "cancelled"
