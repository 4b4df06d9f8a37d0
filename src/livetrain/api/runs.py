"""Runs: list, get, cancel, resume, metric history (JSON and CSV), stored events, structured logs."""

from __future__ import annotations

import csv
import io

from apiflask import APIBlueprint
from flask import Response, current_app

from livetrain.api.schemas import (
    LogsQuery,
    MetricsQuery,
    RowsIn,
    RunsQuery,
    TrainIn,
    present,
    refuse_head,
    train_body,
)
from livetrain.services import run_logs
from livetrain.store import Run

bp = APIBlueprint("runs", __name__, url_prefix="/api/runs", tag="Runs")

METRIC_COLUMNS = ["seq", "epoch", "total_epochs", "train_loss", "val_loss", "accuracy", "correct", "total",
                  "elapsed_time", "eval_time", "progress", "learning_rate", "ts"]


def _svc():
    return current_app.extensions["livetrain"]


@bp.get("")
@bp.input(RunsQuery, location="query", arg_name="query")
def list_runs(query):
    """Runs, newest first, paginated."""
    store = _svc().store
    filters = {key: query.get(key) for key in ("network_id", "experiment_id", "dataset_id", "algorithm")}
    filters["statuses"] = [query["status"]] if query.get("status") else None
    runs = store.list_runs(limit=query["limit"], offset=query["offset"], **filters)
    total = store.count_runs(**filters)
    return {"runs": [r.to_dict() for r in runs], "total": total,
            "limit": query["limit"], "offset": query["offset"]}


@bp.get("/<run_id>")
def get_run(run_id: str):
    """One run, with its parameters, metrics per split, feature importances and what a rerun repeats."""
    return _svc().runs.describe(run_id)


@bp.post("/<run_id>/rerun")
def rerun(run_id: str):
    """Repeat a finished run with the same dataset, parameters and seed (so the same numbers)."""
    return run_started(_svc().runs.rerun(run_id))


@bp.post("/<run_id>/predict")
@bp.input(RowsIn, arg_name="body")
def predict(run_id: str, body):
    """Predict raw rows with a completed run's model (through the dataset's stored preprocessing)."""
    refuse_head(body, "a run's predict")
    return _svc().models.predict(run_id, present(body))


@bp.get("/<run_id>/model")
@bp.doc(responses={200: {"description": "joblib file (scikit-learn) or torch state_dict + architecture"}})
def download_model(run_id: str):
    """Download a completed run's model; its SHA-256 is in the X-Checksum-SHA256 header."""
    import hashlib

    name, data, mimetype = _svc().models.file(run_id)
    return Response(data, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Checksum-SHA256": hashlib.sha256(data).hexdigest(),
    })


@bp.post("/<run_id>/cancel")
def cancel_run(run_id: str):
    """Stop a run within a second; its last whole epoch's checkpoint is kept."""
    return _svc().runs.cancel(run_id).to_dict()


@bp.post("/<run_id>/resume")
@bp.input(TrainIn, arg_name="body")
def resume_run(run_id: str, body):
    """Start a new run that continues this one from its last checkpoint."""
    return run_started(_svc().runs.resume(run_id, train_body(body)))


def run_started(run: Run) -> tuple[dict, int]:
    """The 202 answer to starting a run, in the original server's shape plus the run."""
    return {"job_id": run.id, "run_id": run.id, "network_id": run.network_id,
            "experiment_id": run.experiment_id, "algorithm": run.algorithm,
            "status": "training_started", "run": run.to_dict()}, 202


def _metric_rows(run_id: str, after_seq: int) -> list[dict]:
    events = _svc().store.list_events(run_id, after_seq=after_seq, types=["training_update"])
    return [e.payload for e in events]


@bp.get("/<run_id>/metrics")
@bp.input(MetricsQuery, location="query", arg_name="query")
def run_metrics(run_id: str, query):
    """Per-epoch metrics after `after_seq` (what a reconnecting client missed); JSON or CSV."""
    run = _svc().runs.get(run_id)
    rows = _metric_rows(run_id, query["after_seq"])
    if query["format"] == "csv":
        return _csv(run_id, rows)
    return {"run_id": run.id, "status": run.status, "last_seq": run.last_seq, "metrics": rows}


@bp.get("/<run_id>/metrics.csv")
def run_metrics_csv(run_id: str):
    """The whole metric history as CSV, for spreadsheets."""
    _svc().runs.get(run_id)
    return _csv(run_id, _metric_rows(run_id, 0))


@bp.get("/<run_id>/events")
@bp.input(MetricsQuery, location="query", arg_name="query")
def run_events(run_id: str, query):
    """Every stored event after `after_seq` (started, updates, and how it ended)."""
    _svc().runs.get(run_id)
    events = _svc().store.list_events(run_id, after_seq=query["after_seq"])
    return {"run_id": run_id, "events": [{"event": e.type, **e.payload} for e in events]}


@bp.get("/<run_id>/logs")
@bp.input(LogsQuery, location="query", arg_name="query")
def run_log(run_id: str, query):
    """The run's log lines at or above `level`, matching `q`, repeats folded with `fold=true` (the last `limit`)."""
    run = _svc().runs.get(run_id)
    lines = run_logs.run_lines(_svc().store, run_id, level=query["level"], q=query["q"], source=query["source"],
                               fold_repeats=query["fold"], after_seq=query["after_seq"])
    return {"run_id": run.id, "status": run.status, "last_seq": run.last_seq, "total": len(lines),
            "lines": lines[-query["limit"]:]}


def _csv(run_id: str, rows: list[dict]) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in METRIC_COLUMNS})
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="run-{run_id}-metrics.csv"'})
