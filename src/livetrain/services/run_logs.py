"""A run's structured log: lines with a level, a source, a time and a message.

Lines are `run_log` events: stored then emitted with the run's `seq` like every other run event
(`RunReporter.log`), so the log a page shows live and the one `GET /api/runs/{id}/logs` returns are
the same. This module filters and folds them for that endpoint.
"""

from __future__ import annotations

from typing import Any

from livetrain.errors import ValidationError

LEVELS = ("debug", "info", "warning", "error")
SOURCES = ("server", "worker", "trainer", "monitor")
MAX_MESSAGE = 2000  # characters kept of one line (a failure's message can be long)
FIELDS = ("time", "level", "source", "message", "data")
EVENT = "run_log"  # livetrain.events.RUN_LOG


def line(level: str, message: str, source: str, time: float, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A log line's fields, as stored in its `run_log` event (a level or source not known is refused)."""
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    if source not in SOURCES:
        raise ValueError(f"unknown log source {source!r}")
    out = {"level": level, "source": source, "time": time, "message": str(message)[:MAX_MESSAGE]}
    if data:
        out["data"] = data
    return out


def level_rank(level: str) -> int:
    """0 for debug up to 3 for error; ValidationError for another word."""
    try:
        return LEVELS.index(level)
    except ValueError:
        raise ValidationError(f"level must be one of {', '.join(LEVELS)}", detail={"field": "level"}) from None


def select(lines: list[dict[str, Any]], *, level: str = "debug", q: str | None = None,
           source: str | None = None) -> list[dict[str, Any]]:
    """The lines at or above `level`, from `source` if given, whose message contains `q` (any case)."""
    lowest = level_rank(level)
    needle = q.casefold() if q else None
    return [entry for entry in lines
            if LEVELS.index(entry.get("level", "info")) >= lowest
            and (source is None or entry.get("source") == source)
            and (needle is None or needle in str(entry.get("message", "")).casefold())]


def fold(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive lines with the same level, source and message folded into the first, with `count`
    (how many) and `last_seq` / `last_time` (the last one's); every line has a `count`."""
    out: list[dict[str, Any]] = []
    for entry in lines:
        last = out[-1] if out else None
        if last is not None and all(last.get(k) == entry.get(k) for k in ("level", "source", "message")):
            last["count"] += 1
            last["last_seq"] = entry.get("seq")
            last["last_time"] = entry.get("time")
            continue
        out.append({**entry, "count": 1})
    return out


def stored_lines(store, run_id: str, *, after_seq: int = 0) -> list[dict[str, Any]]:
    """A run's log lines after `after_seq`, oldest first: `{seq, ts, time, level, source, message, data?}`."""
    return [{"seq": e.seq, "ts": e.ts, **{k: e.payload[k] for k in FIELDS if k in e.payload}}
            for e in store.list_events(run_id, after_seq=after_seq, types=[EVENT])]


def run_lines(store, run_id: str, *, level: str = "debug", q: str | None = None, source: str | None = None,
              fold_repeats: bool = False, after_seq: int = 0) -> list[dict[str, Any]]:
    """A run's log lines, filtered (`select`), and folded (`fold`) if asked."""
    lines = select(stored_lines(store, run_id, after_seq=after_seq), level=level, q=q, source=source)
    return fold(lines) if fold_repeats else lines
