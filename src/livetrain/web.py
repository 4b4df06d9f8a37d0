"""The server-rendered management page."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, render_template

from livetrain.api.networks import network_summary

bp = Blueprint("web", __name__)


@bp.app_template_filter("utc")
def utc_time(ts: float | None, iso: bool = False) -> str:
    """A UNIX time as `YYYY-MM-DD HH:MM UTC` (ISO 8601 with `iso`); the page shows local time."""
    if not ts:
        return ""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ" if iso else "%Y-%m-%d %H:%M UTC")


@bp.get("/")
def index():
    """Networks, datasets and runs, with live status over Socket.IO."""
    svc = current_app.extensions["livetrain"]
    return render_template(
        "index.html",
        status=svc.status(),
        networks=[network_summary(n) for n in svc.store.list_networks()],
        datasets=[d.to_dict() for d in svc.datasets.list()],
        default_dataset=svc.datasets.default_id(),
        runs=[r.to_dict() for r in svc.store.list_runs(limit=20)],
    )
