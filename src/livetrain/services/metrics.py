"""Prometheus metrics: what this process counts as it goes, and what is read from the store at scrape time.

Counters kept in the process (HTTP requests, run transitions, epochs, events, Socket.IO clients) see what
this server process did. Series read at scrape time (runs by status and queue, the queue depth, the epochs
stored runs trained, workers, and the model registry's counts) see the whole installation, whichever node
or Celery worker did the work. docs/api.md (`GET /metrics`) says what every series means.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from livetrain.store.entities import RunStatus

log = logging.getLogger(__name__)

# from a status poll (milliseconds) to a large upload being read and prepared (tens of seconds)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED_ROUTE = "unmatched"  # a URL no route matches (a 404): one label, not one per raw path
LOCAL_QUEUE = "local"  # the `queue` label of runs the local runner holds (they have no Celery queue)


@dataclass
class Metrics:
    """Prometheus metrics in a registry of the app's own (two apps in one process do not mix)."""

    registry: CollectorRegistry
    runs: Counter
    epochs: Counter
    steps: Counter
    active_runs: Gauge
    http_requests: Counter
    http_latency: Histogram
    events_emitted: Counter
    events_delivered: Counter
    clients: Gauge

    @classmethod
    def create(cls) -> Metrics:
        """Fresh metrics in a new registry."""
        registry = CollectorRegistry()
        http = ["method", "route", "status"]
        return cls(
            registry=registry,
            runs=Counter("livetrain_run_transitions", "Runs entering each status, reported through this process",
                         ["status"], registry=registry),
            epochs=Counter("livetrain_epochs", "Network epochs completed, reported through this process",
                           registry=registry),
            steps=Counter("livetrain_steps", "scikit-learn steps completed, reported through this process",
                          registry=registry),
            active_runs=Gauge("livetrain_active_runs", "Runs queued or running (the store)", registry=registry),
            http_requests=Counter("livetrain_http_requests", "HTTP requests answered, by route and status", http,
                                  registry=registry),
            http_latency=Histogram("livetrain_http_request_duration_seconds",
                                   "Time to answer an HTTP request, by route and status", http,
                                   buckets=LATENCY_BUCKETS, registry=registry),
            events_emitted=Counter("livetrain_events_emitted", "Socket.IO events emitted by this process",
                                   ["event"], registry=registry),
            events_delivered=Counter("livetrain_events_delivered",
                                     "Socket.IO events times the clients of this process each was addressed to",
                                     ["event"], registry=registry),
            clients=Gauge("livetrain_socketio_clients", "Socket.IO clients connected to this process",
                          registry=registry),
        )

    def watch(self, container: Any) -> None:
        """Add the series read at scrape time from `container` (its store, runner and optional registry)."""
        self.registry.register(ScrapeTimeCollector(container))


def instrument(app, metrics: Metrics) -> None:
    """Count and time every HTTP request of `app` by its URL rule (never the raw path) and status.

    The time is until the response is built: a streamed download's sending is not in it. Socket.IO's
    own HTTP requests are answered before Flask sees them and are not counted.
    """
    from flask import g, request

    @app.before_request
    def start_clock():
        g.livetrain_request_started = time.perf_counter()

    @app.after_request
    def count_request(response):
        started = g.pop("livetrain_request_started", None)
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE
            labels = (request.method, route, str(response.status_code))
            metrics.http_requests.labels(*labels).inc()
            metrics.http_latency.labels(*labels).observe(time.perf_counter() - started)
        return response


def serve_apart(registry: CollectorRegistry, address: tuple[str, int], async_mode: str, spawn) -> None:
    """Answer GET /metrics on `address`, alone (every other path is a 404) and without auth, from a
    background task. The socket is bound here, so a taken port fails the caller at once."""
    from prometheus_client import make_wsgi_app

    metrics_app = make_wsgi_app(registry)

    def only_metrics(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"only /metrics is served here\n"]
        return metrics_app(environ, start_response)

    if async_mode == "eventlet":
        import eventlet
        import eventlet.wsgi

        listener = eventlet.listen(address)
        spawn(eventlet.wsgi.server, listener, only_metrics, log_output=False)
        return
    # threading (and gevent, whose monkey-patching makes the thread a greenlet): the standard library's server
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, format, *args):  # noqa: A002  (the standard library's name)
            pass

    server = make_server(address[0], address[1], only_metrics, handler_class=Quiet)
    spawn(server.serve_forever)


class ScrapeTimeCollector:
    """Series read when Prometheus scrapes: cheap grouped queries, and the container's providers.

    A part that fails (the database away, a provider raising) is logged and left out of that scrape;
    the rest of the scrape still answers.
    """

    def __init__(self, container: Any) -> None:
        self.container = container

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration (and no query then)

    def collect(self) -> Iterator[Metric]:
        for part in (self._runs, self._workers, self._registry):
            try:
                yield from list(part())
            except Exception:  # one broken source must not take the whole scrape down
                log.exception("metrics: %s failed; left out of this scrape", part.__name__.lstrip("_"))

    def _runs(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("livetrain_runs", "Stored runs by status and queue (every node's)",
                                 labels=["status", "queue"])
        depth = GaugeMetricFamily("livetrain_queue_depth", "Runs waiting for a worker, by queue (every node's)",
                                  labels=["queue"])
        trained = GaugeMetricFamily("livetrain_stored_epochs",
                                    "Epochs (network) and steps (scikit-learn) trained by the stored runs, "
                                    "whichever worker trained them; falls when runs are deleted", labels=["kind"])
        by_status: dict[tuple[str, str], int] = defaultdict(int)
        queued: dict[str, int] = defaultdict(int)
        by_kind = {"network": 0, "sklearn": 0}
        for tally in self.container.store.tally_runs():
            queue = tally.queue or LOCAL_QUEUE
            by_status[tally.status, queue] += tally.runs
            queued[queue] += 0  # every queue that has runs shows its depth, 0 included
            if tally.status == RunStatus.QUEUED.value:
                queued[queue] += tally.runs
            by_kind["network" if tally.network else "sklearn"] += tally.trained
        for (status, queue), count in sorted(by_status.items()):
            runs.add_metric([status, queue], count)
        for queue, count in sorted(queued.items()):
            depth.add_metric([queue], count)
        for kind, count in by_kind.items():
            trained.add_metric([kind], count)
        yield from (runs, depth, trained)

    def _workers(self) -> Iterator[Metric]:
        workers = self.container.workers()
        yield GaugeMetricFamily("livetrain_workers", "What executes runs: live Celery workers, or this server's "
                                "local runner (1)", value=len(workers))
        yield GaugeMetricFamily("livetrain_worker_slots", "Runs the workers can train at once",
                                value=sum(int(w.get("concurrency", 0)) for w in workers))

    def _registry(self) -> Iterator[Metric]:
        provider = getattr(self.container, "registry", None)
        if provider is None:  # no model registry in this installation
            return
        predictions = CounterMetricFamily("livetrain_predictions", "Predictions served, by model", labels=["model"])
        feedback = CounterMetricFamily("livetrain_feedback", "Feedback received, by model", labels=["model"])
        for model, counts in sorted(provider.counts().items()):
            predictions.add_metric([model], counts.get("predictions", 0))
            feedback.add_metric([model], counts.get("feedback", 0))
        champion = GaugeMetricFamily("livetrain_champion_metric", "The held-out metric of each model's champion",
                                     labels=["model", "metric"])
        for model, (metric, value) in sorted(provider.champion_metrics().items()):
            if value is not None:
                champion.add_metric([model, metric], value)
        yield from (predictions, feedback, champion)
