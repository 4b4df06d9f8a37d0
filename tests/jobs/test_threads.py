"""How the runs in progress share the cores: a run alone gets them all; when another starts they split
them, and when it ends the first gets them back. Real worker processes; each epoch reports the torch
threads it trained with."""

from __future__ import annotations

import os

import pytest
import torch

from livetrain.jobs.runner import share_threads
from livetrain.jobs.worker import ThreadBudget, free_threads
from tests.helpers import create_network, start_run, wait_for_run, wait_until

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
MLP = [{"type": "Linear", "out_features": 16}, {"type": "ReLU"}, {"type": "Linear", "out_features": 10}]


@pytest.mark.parametrize("threads, runs, shares", [
    (2, 1, [2]), (2, 2, [1, 1]), (2, 3, [1, 1, 1]), (8, 3, [3, 3, 2]), (4, 0, []), (1, 2, [1, 1]),
])
def test_threads_are_split_evenly_the_oldest_runs_taking_the_remainder(threads, runs, shares):
    assert share_threads(threads, runs) == shares


def latest_threads(client, run_id: str) -> int | None:
    metrics = client.get(f"/api/runs/{run_id}/metrics").get_json()["metrics"]
    return metrics[-1]["threads"] if metrics else None


def epochs_with(client, run_id: str, threads: int, after: int = 0) -> bool:
    """True once an epoch after `after` trained with `threads` threads."""
    metrics = client.get(f"/api/runs/{run_id}/metrics").get_json()["metrics"]
    return any(m["epoch"] > after and m["threads"] == threads for m in metrics)


def test_a_lone_run_gets_every_core_and_two_runs_share_them(make_app):
    # adapt_threads off: with it, a worker also backs off while other processes (other tests) load
    # the machine, which this test cannot control
    app = make_app(max_concurrent_runs=2, warm_workers=2, training_threads=CORES, adapt_threads=False)
    client = app.test_client()
    runner = app.extensions["livetrain"].runner
    first_net, second_net = (create_network(client, dataset_id="digits", layers=MLP)["network_id"] for _ in range(2))

    first = start_run(client, first_net, epochs=5000, mini_batch_size=64)["run_id"]
    wait_until(lambda: epochs_with(client, first, CORES), what=f"an epoch of the lone run on {CORES} threads")
    assert runner.threads() == {first: CORES}

    second = start_run(client, second_net, epochs=5000, mini_batch_size=64)["run_id"]
    alone, together = share_threads(CORES, 1)[0], share_threads(CORES, 2)
    assert runner.threads() == {first: together[0], second: together[1]}
    since = client.get(f"/api/runs/{first}").get_json()["epochs_done"]
    # the first run's worker is told its new share and trains its next epochs with it
    wait_until(lambda: epochs_with(client, first, together[0], after=since + 1), what="the first run to shrink")
    wait_until(lambda: epochs_with(client, second, together[1]), what="the second run's share")
    workers = client.get("/api/workers").get_json()["workers"]
    assert workers[0]["threads"] == CORES and workers[0]["run_threads"] == {first: together[0], second: together[1]}

    assert client.post(f"/api/runs/{second}/cancel").status_code == 200
    assert wait_for_run(client, second)["status"] == "cancelled"
    wait_until(lambda: runner.threads() == {first: alone}, what="the first run to get every core back")
    since = client.get(f"/api/runs/{first}").get_json()["epochs_done"]
    wait_until(lambda: epochs_with(client, first, alone, after=since + 1), what="the first run to grow back")

    assert client.post(f"/api/runs/{first}/cancel").status_code == 200
    assert wait_for_run(client, first)["status"] == "cancelled"
    # the run is stored as cancelled when its worker says so; its slot is given back just after
    wait_until(lambda: runner.threads() == {}, what="the cancelled run's share to be given back")


@pytest.mark.parametrize("cores, others, threads", [
    (2, 0.0, 2), (2, 0.39, 2), (2, 0.45, 1), (2, 1.0, 1), (2, 2.0, 1), (4, 0.3, 4), (4, 1.2, 3), (4, 3.9, 1),
])
def test_a_core_counts_as_free_only_while_others_use_little_of_it(cores, others, threads):
    assert free_threads(cores, others) == threads


class FakeLoad:
    def __init__(self, values):
        self.values = list(values)

    def busy_cores(self):
        return self.values.pop(0)


def test_a_worker_uses_its_share_but_backs_off_while_other_processes_load_the_machine():
    before = torch.get_num_threads()
    try:
        budget = ThreadBudget(cores=2)
        budget.wanted = 2
        budget.start(adapt=True)
        assert torch.get_num_threads() == 2
        budget.LOOK_EVERY, budget._next_look = 0.0, 0.0  # a look at every check, for the test
        budget._load = FakeLoad([None, 1.3, 1.0, 0.1, 0.1])
        budget.check()  # the first look has nothing to compare with: the share stands
        assert (budget.applied, torch.get_num_threads()) == (2, 2)
        budget.check()  # others keep more than a core busy: one thread
        budget.check()
        assert (budget.applied, torch.get_num_threads()) == (1, 1)
        budget.check()  # the machine is free again: the whole share
        assert (budget.applied, torch.get_num_threads()) == (2, 2)
        budget.wanted = 1  # the runner shrinks the share: that is the most it uses, however idle
        budget.check()
        assert (budget.applied, torch.get_num_threads()) == (1, 1)

        fixed = ThreadBudget(cores=2)
        fixed.wanted = 2
        fixed.start(adapt=False)
        fixed._load = FakeLoad([])  # never looked at
        fixed.check()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
