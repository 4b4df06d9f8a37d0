"""The warm worker pool with real worker processes: it keeps `warm` idle workers, never more."""

from __future__ import annotations

import threading

import pytest

from livetrain.jobs.pool import WorkerPool
from tests.helpers import wait_until, worker_processes


def spawn_thread(fn, *args) -> None:
    threading.Thread(target=fn, args=args, daemon=True).start()


@pytest.fixture
def pool():
    pool = WorkerPool(warm=1, threads=1, spawn=spawn_thread)
    yield pool
    pool.close()


def test_a_worker_given_back_while_its_replacement_starts_does_not_grow_the_pool_past_warm(pool):
    before = worker_processes()
    pool.warm_up()
    wait_until(lambda: len(pool.idle_pids()) == 1, what="the warm worker")
    worker = pool.acquire()
    assert pool.starting == 1  # its replacement, in the background

    pool.release(worker)  # the job ended before the replacement was ready
    wait_until(lambda: pool.starting == 0, what="the replacement to start")

    # the worker that ran a job is kept (its caches are warm); the replacement is surplus and exits
    assert pool.idle_pids() == [worker.pid]
    wait_until(lambda: worker_processes() - before == {worker.pid}, timeout=10, what="the surplus worker to exit")


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "anew"])
def test_a_worker_doomed_by_a_cancel_timer_is_never_handed_out_again(fork):
    # a run's cancel timer decides to kill its worker just as the run ends and the worker goes back to
    # the pool: the next run must get another worker, even before the killed one's end is known
    pool = WorkerPool(warm=1, threads=1, spawn=spawn_thread, fork=fork)
    try:
        worker = pool.acquire(refill=False)
        worker.killed = True  # what the timer marks, under the runner's lock, before it signals
        pool.release(worker)
        other = pool.acquire(refill=False)  # the next run, before the signal has even been sent
        worker.kill()
        assert other.pid != worker.pid and other.alive and not worker.alive
        pool.release(other)
    finally:
        pool.close()
