"""Small pieces several services share: a bounded model cache, whole-number checks, raw rows of a request."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from livetrain.errors import ValidationError


class LruCache:
    """At most `size` loaded objects (models, pipelines), least recently used out first; thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_load(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The cached object for `key`, or `load()`'s result, kept (loaded outside the lock)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = load()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def drop(self, where: Callable[[Hashable], bool]) -> None:
        """Forget every entry whose key matches."""
        with self._lock:
            for key in [k for k in self._items if where(k)]:
                del self._items[key]


def whole_number(value: Any, name: str, low: int, high: int) -> int:
    """A JSON whole number in [low, high] (2.0 counts, 2.5 and true do not), or a bad_parameter error."""
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value or not low <= value <= high:
        raise ValidationError(f"{name} must be a whole number between {low} and {high}", code="bad_parameter",
                              detail={"field": name})
    return int(value)


def raw_rows(body: dict[str, Any], limit: int) -> tuple[list, bool]:
    """(rows, single) of a predict request: `rows` (alias `inputs`) or one `row` (alias `input`)."""
    single = "row" in body or "input" in body
    rows = [body.get("row", body.get("input"))] if single else body.get("rows", body.get("inputs"))
    if not isinstance(rows, list) or not rows:
        raise ValidationError("send 'rows' (a list of rows: objects by column name, or lists in column order) "
                              "or 'row' (one)", code="bad_input")
    if len(rows) > limit:
        raise ValidationError(f"at most {limit} rows per request", code="bad_input")
    return rows, single
