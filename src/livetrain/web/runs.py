"""Run pages: every run (paginated, filtered), and one run's live metrics, log, results and model."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import render_template, request

from livetrain import events as event_names
from livetrain.services import run_logs
from livetrain.store import Dataset
from livetrain.store.entities import NETWORK_ALGORITHM, RunStatus
from livetrain.web import bp, page_of, svc

RUNS_PER_PAGE = 25
STATUSES = [s.value for s in RunStatus]
FILTERS = ("network_id", "experiment_id", "dataset_id", "algorithm")


@bp.get("/runs")
def runs_page():
    """Every run, newest first, paginated, filtered like `GET /api/runs`."""
    store = svc().store
    filters = {key: request.args[key] for key in FILTERS if request.args.get(key)}
    status = request.args.get("status")
    filters["statuses"] = [status] if status in STATUSES else None
    page = page_of("page", RUNS_PER_PAGE, store.count_runs(**filters))
    runs = store.list_runs(limit=page.size, offset=page.offset, **filters)
    return render_template("runs.html", runs=[r.to_dict() for r in runs], page=page, filters=filters,
                           statuses=STATUSES)


# -- one run ----------------------------------------------------------------------------------

# the events of a run's life: what the run page's chart and event log show
LIFECYCLE_EVENTS = sorted(event_names.STORED_EVENTS - {event_names.WEIGHTS_UPDATE, event_names.TRAINING_STATS,
                                                       event_names.RUN_LOG})

SPLITS = ("train", "val", "test")
SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}
# The final metrics table's rows, in this order (docs/api.md#leaderboard); `n` is the split's size.
METRIC_LABELS = {
    "accuracy": "Accuracy", "precision": "Precision (macro)", "recall": "Recall (macro)", "f1": "F1 (macro)",
    "roc_auc": "ROC AUC", "log_loss": "Log loss", "loss": "Loss", "r2": "R²", "mae": "MAE", "rmse": "RMSE",
    "factorized": "Factorized", "n": "Rows",
}
PERCENT_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "factorized")
IMPORTANCES_SHOWN = 15  # the rest of a long list of features folds away


@bp.get("/runs/<run_id>")
def run_page(run_id: str):
    """One run: its parameters, live metrics and log, confusion matrix, and its model."""
    livetrain = svc()
    store = livetrain.store
    run = livetrain.runs.describe(run_id)
    # read after the run, so the events reach at least as far as the run's state (the script checks `seq`);
    # the monitor's samples are on the monitor page, the log lines in their own panel
    events = [{"event": e.type, **e.payload} for e in store.list_events(run_id, types=LIFECYCLE_EVENTS)]
    lines = run_logs.stored_lines(store, run_id)
    dataset = store.get_dataset(run["dataset_id"])
    experiment = store.get_experiment(run["experiment_id"]) if run["experiment_id"] else None
    held_out = held_out_split(run, dataset, events)
    labels = class_labels(dataset)
    return render_template(
        "run.html",
        run=run,
        log=[log_line(e) for e in events],
        dataset=dataset.to_dict() if dataset else None,
        experiment=experiment.to_dict() if experiment else None,
        held_out=held_out,
        results=results(run, labels),
        model=model_file(run),
        page_state={**script_state(run, events, labels, held_out, dataset.task if dataset else task_of(run)),
                    "logs": lines, "last_seq": max([run["last_seq"], *(e["seq"] for e in events),
                                                    *(line["seq"] for line in lines)])},
        log_lines=lines, log_levels=run_logs.LEVELS,
        fmt={"number": js_number, "percent": js_percent, "count": count, "duration": duration},
        split_names=SPLIT_NAMES, metric_labels=METRIC_LABELS, importances_shown=IMPORTANCES_SHOWN,
    )


def script_state(run: dict[str, Any], events: list[dict[str, Any]], labels: list[str] | None, held_out: str,
                 task: str) -> dict[str, Any]:
    """What static/js/run.js starts from: the run, its stored events, and how the results are written."""
    return {
        "run": run, "events": [chart_event(e) for e in events], "labels": labels, "held_out": held_out,
        "task": task, "split_names": SPLIT_NAMES, "percent_metrics": PERCENT_METRICS,
        "importances_shown": IMPORTANCES_SHOWN,
        # a list, for the order: JSON objects are written with sorted keys
        "metrics": [[key, label] for key, label in METRIC_LABELS.items()],
    }


def held_out_split(run: dict[str, Any], dataset: Dataset | None, events: list[dict[str, Any]]) -> str:
    """The split every epoch or step is scored on: `val` when the dataset has one, else `test`."""
    if dataset is not None:
        return "val" if dataset.n_val else "test"
    for event in events:  # the dataset is gone: its runs' events still say
        if event.get("held_out_split"):
            return event["held_out_split"]
    return "val" if "val" in (run.get("metrics") or {}) else "test"


def task_of(run: dict[str, Any]) -> str:
    """A run's task read from its metrics, for a run whose dataset has been deleted."""
    metrics = run.get("metrics") or {}
    return "regression" if any("r2" in m for m in metrics.values() if isinstance(m, dict)) else "classification"


def class_labels(dataset: Dataset | None) -> list[str] | None:
    """The class names of a classification dataset, in the order of its confusion matrices' rows."""
    if dataset is None or dataset.task != "classification":
        return None
    classes = dataset.meta.get("classes")
    if classes:  # uploaded and generated datasets keep their own labels, sorted
        return [str(c) for c in classes]
    return [str(i) for i in range(dataset.n_classes)]  # built-ins: class indices


def chart_event(event: dict[str, Any]) -> dict[str, Any]:
    """A stored event as the page's script needs it: without the confusion matrices of every step
    (the results show the final ones), which would make a long run's page heavy."""
    if event["event"] == "training_update" and isinstance(event.get("metrics"), dict):
        metrics = {split: {k: v for k, v in m.items() if k != "confusion_matrix"}
                   for split, m in event["metrics"].items() if isinstance(m, dict)}
        return {**event, "metrics": metrics}
    if event["event"] == "training_complete":
        return {k: v for k, v in event.items() if k not in ("metrics", "feature_importances")}
    return event


def model_file(run: dict[str, Any]) -> dict[str, Any] | None:
    """The run's model download: its kind and the SHA-256 the server checks it against (None without one)."""
    if not run["has_model"]:
        return None
    if run["algorithm"] != NETWORK_ALGORITHM:
        return {"kind": "scikit-learn estimator, joblib file", "sha256": run["model_sha256"]}
    version = svc().store.get_version(run["network_id"], run["version"]) if run["network_id"] else None
    if version is None:
        return None  # the network (and its versions) has been deleted: nothing left to download
    return {"kind": f"PyTorch weights, version {run['version']}", "sha256": version.weights_sha256}


def results(run: dict[str, Any], labels: list[str] | None) -> dict[str, Any] | None:
    """What a completed run's results section shows: metrics per split, confusion matrices, importances."""
    if run["status"] != RunStatus.COMPLETED.value:
        return None
    metrics = run.get("metrics") or {}
    splits = [s for s in SPLITS if isinstance(metrics.get(s), dict)]
    rows = [key for key in METRIC_LABELS if any(key in metrics[s] for s in splits)]
    matrices = [confusion(split, metrics[split], labels) for split in splits
                if metrics[split].get("confusion_matrix")]
    importances = run.get("feature_importances") or []
    top = max((abs(i["importance"]) for i in importances), default=0) or 1
    return {
        "splits": splits,
        "rows": rows,
        "metrics": metrics,
        "matrices": matrices,
        "open_split": "test" if "test" in splits else splits[-1] if splits else None,
        "importances": [{**i, "share": abs(i["importance"]) / top} for i in importances],
    }


def confusion(split: str, metrics: dict[str, Any], labels: list[str] | None) -> dict[str, Any]:
    """A confusion matrix ready to draw: each cell's count, its shade, and whether it is on the diagonal."""
    counts = metrics["confusion_matrix"]
    n = len(counts)
    names = labels if labels and len(labels) == n else [str(i) for i in range(n)]
    top = max((c for row in counts for c in row), default=0) or 1
    # the square root keeps a few mistakes visible next to a diagonal of hundreds
    cells = [[{"count": c, "shade": round(math.sqrt(c / top), 3), "diag": i == j} for j, c in enumerate(row)]
             for i, row in enumerate(counts)]
    total = sum(c for row in counts for c in row)
    return {"split": split, "labels": names, "cells": cells, "total": total}


# -- words and numbers, written exactly as static/js/run.js writes them -----------------------------

def js_number(value: float | None, digits: int = 4) -> str:
    """A number to 4 significant digits as JavaScript's `String(Number(x.toPrecision(4)))` writes it."""
    if value is None or isinstance(value, bool) or not math.isfinite(value):
        return "—"
    exact = Decimal(value)
    if exact == 0:
        return "0"
    rounded = exact.quantize(Decimal(1).scaleb(exact.adjusted() - digits + 1), rounding=ROUND_HALF_UP).normalize()
    if -7 < rounded.adjusted() < 21:
        return format(rounded, "f")
    return format(rounded, "e").replace("e-0", "e-")


def js_percent(value: float | None) -> str:
    """A share as a percentage with one decimal, as JavaScript's `(x * 100).toFixed(1)` writes it."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{Decimal(value * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def count(value: int | None) -> str:
    """A whole number with thousands separators."""
    return "—" if value is None else f"{value:,}"


def duration(seconds: float | None) -> str:
    """How long something took, in the largest units that read well: 0.4 s, 2 min 5 s, 1 h 3 min."""
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{Decimal(seconds).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _plural(n: int, word: str) -> str:
    return f"{count(n)} {word}{'' if n == 1 else 's'}"


def log_line(event: dict[str, Any]) -> dict[str, Any]:
    """One stored event as a line of the run's log: `{seq, ts, clock, event, text}` (`clock`: UTC time of day,
    which the page's script turns into the reader's local time)."""
    ts = event.get("ts")
    clock = datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S") if ts else ""
    return {"seq": event.get("seq"), "ts": ts, "clock": clock, "event": event["event"], "text": summary(event)}


def summary(e: dict[str, Any]) -> str:
    """What an event says, in one line ("epoch 3/10 · loss 0.1235 · test loss 0.1301 · accuracy 91.2%")."""
    name = e["event"]
    network = (e.get("algorithm") or NETWORK_ALGORITHM) == NETWORK_ALGORITHM
    unit = "epoch" if network else "step"
    if name == "run_created":
        text = "queued: " + _plural((e.get("total_epochs") or 0) - (e.get("start_epoch") or 0), unit)
        if e.get("resumed_from"):
            text += f", continuing run {e['resumed_from']} from epoch {e.get('start_epoch') or 0}"
        if e.get("rerun_of"):
            text += f", rerun of run {e['rerun_of']}"
        return text
    if name == "training_started":
        held = "validation" if e.get("n_val") else "test"
        n_held = e.get("n_val") or e.get("n_test") or 0
        text = f"started: {_plural(e.get('epochs') or 0, unit)} on {count(e.get('n_train') or 0)} training rows, "
        text += f"scored on {count(n_held)} {held} rows"
        if e.get("start_epoch"):
            text += f", from epoch {e['start_epoch']}"
        return text
    if name == "training_update":
        return update_summary(e, network, unit)
    if name == "training_complete":
        text = "completed: " + final_score(e)
        return text + (f", version {e['version']}" if e.get("version") else "")
    if name == "training_error":
        return f"failed: {e.get('error')}"
    if name == "training_cancelled":
        text = f"cancelled after {_plural(e.get('epochs_done') or 0, unit)}"
        if e.get("checkpoint_epoch") is not None:
            text += f", checkpoint at epoch {e['checkpoint_epoch']}"
        return text
    if name == "training_interrupted":
        text = f"interrupted: {e.get('error')}"
        if e.get("checkpoint_epoch") is not None:
            text += f", checkpoint at epoch {e['checkpoint_epoch']}"
        return text
    return name


def update_summary(e: dict[str, Any], network: bool, unit: str) -> str:
    """An epoch's or step's line: where it is, how big the model is, its losses and held-out score."""
    held = e.get("held_out_split") or "test"
    held_metrics = (e.get("metrics") or {}).get(held) or {}
    parts = [f"{unit} {e.get('epoch')}/{e.get('total_epochs')}"]
    if not network and e.get("size") is not None and e.get("size_label") not in (None, "epoch"):
        parts.append(f"{count(e['size'])} {e['size_label']}")
    regression = e.get("accuracy") is None and (e.get("r2") is not None or "r2" in held_metrics)
    if e.get("train_loss") is not None:
        parts.append(f"loss {js_number(e['train_loss'])}")
    if e.get("val_loss") is not None:
        # a scikit-learn regressor reports its held-out RMSE as val_loss
        parts.append(f"{held} {'rmse' if regression and not network else 'loss'} {js_number(e['val_loss'])}")
    if e.get("accuracy") is not None:
        parts.append(f"accuracy {js_percent(e['accuracy'])}")
    elif regression:
        parts.append(f"r2 {js_number(e.get('r2') if e.get('r2') is not None else held_metrics.get('r2'))}")
    return " · ".join(parts)


def final_score(e: dict[str, Any]) -> str:
    """A completed run's held-out score: accuracy, or R² for regression."""
    if e.get("accuracy") is not None:
        return f"accuracy {js_percent(e['accuracy'])}"
    metrics = e.get("metrics") or {}
    held = metrics.get("val") or metrics.get("test") or {}
    if held.get("r2") is not None:
        return f"r2 {js_number(held['r2'])}"
    return "no held-out score"


# -- the monitor page -----------------------------------------------------------------------------

MONITOR_SAMPLES = 400  # samples of the monitor's history a page starts from; later ones arrive live
MONITOR_EVENTS = [event_names.WEIGHTS_UPDATE, event_names.TRAINING_STATS, event_names.TRAINING_UPDATE]


@bp.get("/runs/<run_id>/monitor")
def monitor_page(run_id: str):
    """One run's insides while it trains: a row per layer, gradient norms, the learning rate, per-head metrics."""
    livetrain = svc()
    run = livetrain.runs.describe(run_id)
    stored = livetrain.store.list_events(run_id, types=MONITOR_EVENTS)
    return render_template("monitor.html", run=run, page_state=monitor_state(run, stored))


def thin(items: list[Any], keep: int) -> list[Any]:
    """At most `keep` items, evenly spread, always with the last one."""
    if len(items) <= keep:
        return items
    stride = len(items) / (keep - 1)
    return [items[int(k * stride)] for k in range(keep - 1)] + [items[-1]]


def monitor_state(run: dict[str, Any], stored: list) -> dict[str, Any]:
    """What static/js/monitor.js starts from: the run, the monitor's history (thinned, histograms only in
    the latest sample that has them), the epoch updates, and the last `seq` it reflects."""
    weights = [e for e in stored if e.type == event_names.WEIGHTS_UPDATE]
    histograms: dict[str, dict[str, Any]] = {}
    for e in weights:  # each layer's newest histograms
        for layer in e.payload.get("layers", []):
            if layer.get("weight_hist") or layer.get("grad_hist"):
                histograms[layer["name"]] = {"step": e.payload["step"], "weight_hist": layer.get("weight_hist"),
                                             "grad_hist": layer.get("grad_hist")}
    samples = [{"seq": e.seq, "step": e.payload["step"], "epoch": e.payload["epoch"],
                "activations": e.payload.get("activations", []),
                "layers": [{k: v for k, v in layer.items() if not k.endswith("_hist")}
                           for layer in e.payload.get("layers", [])]}
               for e in thin(weights, MONITOR_SAMPLES)]
    all_stats = [e for e in stored if e.type == event_names.TRAINING_STATS]
    stats = [{"seq": e.seq, **{k: e.payload.get(k) for k in ("step", "epoch", "grad_norm", "learning_rate", "loss",
                                                              "warnings")}}
             for e in thin(all_stats, MONITOR_SAMPLES)]
    updates = [{"event": "training_update", **e.payload} for e in stored if e.type == event_names.TRAINING_UPDATE]
    return {"run": run, "samples": samples, "histograms": histograms, "stats": stats, "updates": updates,
            "warned": sum(1 for e in all_stats if e.payload.get("warnings")),
            "last_seq": max([run["last_seq"], *(e.seq for e in stored)])}
