"""The runner: a queue, a concurrency limit, worker processes, cancellation."""
