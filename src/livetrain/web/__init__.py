"""The server-rendered management pages.

Each page is rendered complete by the server (it reads fine without JavaScript); a small
script per page in `static/js/` then keeps it live from Socket.IO events. One module per
page family registers its views on the blueprint below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, g, render_template, request, url_for

from livetrain.errors import LivetrainError

bp = Blueprint("web", __name__)


def svc():
    """The app's services."""
    return current_app.extensions["livetrain"]


@bp.app_template_filter("utc")
def utc_time(ts: float | None, iso: bool = False) -> str:
    """A UNIX time as `YYYY-MM-DD HH:MM UTC` (ISO 8601 with `iso`); the page shows local time."""
    if not ts:
        return ""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ" if iso else "%Y-%m-%d %H:%M UTC")


@dataclass
class Page:
    """One page of a server-side paginated list, read from `?<param>=N` (1-based)."""

    param: str
    number: int
    size: int
    total: int

    @property
    def count(self) -> int:
        """How many pages there are (at least one, even for an empty list)."""
        return max(1, math.ceil(self.total / self.size))

    @property
    def offset(self) -> int:
        """Items before this page."""
        return (self.number - 1) * self.size

    @property
    def first_item(self) -> int:
        """1-based position of the page's first item (0 when the list is empty)."""
        return min(self.offset + 1, self.total)

    @property
    def last_item(self) -> int:
        """1-based position of the page's last item."""
        return min(self.offset + self.size, self.total)

    def url(self, number: int) -> str:
        """This view's URL with the page number changed and every other query argument kept."""
        args = {**request.view_args, **request.args.to_dict(), self.param: number}
        if number == 1:
            args.pop(self.param)
        return url_for(request.endpoint, **args)


def page_of(param: str, size: int, total: int) -> Page:
    """The page asked for in the query string, kept within 1..last (a bad number shows page 1)."""
    raw = request.args.get(param, "1")
    number = int(raw) if raw.isdigit() and len(raw) < 10 else 1
    page = Page(param, 1, size, total)
    page.number = min(max(1, number), page.count)
    return page


@bp.app_context_processor
def page_globals() -> dict[str, Any]:
    """What every page's layout shows: the server's status (header and footer)."""
    return {"status": svc().status()}


@bp.app_template_global()
def network_name(network_id: str | None) -> str | None:
    """A network's name for a run row (None when it has been deleted); looked up once per request."""
    if not network_id:
        return None
    names = g.setdefault("network_names", {})
    if network_id not in names:
        network = svc().store.get_network(network_id)
        names[network_id] = network.name if network else None
    return names[network_id]


@bp.errorhandler(LivetrainError)
def page_error(error: LivetrainError):
    # A page for a missing network, run... is a readable page, not the API's JSON error.
    return render_template("error.html", error=error), error.status_code


from livetrain.web import (  # noqa: E402,F401  (views register)
    dashboard,
    datasets,
    experiments,
    models,
    networks,
    runs,
    vocabularies,
)
from livetrain.web.login import auth_bp  # noqa: E402

__all__ = ["auth_bp", "bp"]
