"""Small pieces several services share: a bounded model cache, whole-number checks, raw rows of a request."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

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


def _has_bool(rows: list) -> bool:
    """True if any value in (nested) lists is a JSON boolean, which numpy would take for 0 or 1."""
    stack = list(rows)
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, bool):
            return True
    return False


def _null_path(rows: list, name: str, single: bool) -> str | None:
    """Where the first null sits in (nested) input lists, as `input[3]` or `inputs[0][2]`; None if none."""
    stack = [(f"{name}" if single else f"{name}[{i}]", row) for i, row in enumerate(rows)]
    while stack:
        path, value = stack.pop(0)
        if value is None:
            return path
        if isinstance(value, list):
            stack[:0] = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    return None


def numeric_rows(rows: list, dataset, *, noun: str, single: bool, code: str = "validation_error") -> np.ndarray:
    """Rows of plain numbers for a dataset without a table pipeline, checked: float32, one row per input."""
    if _has_bool(rows):
        raise ValidationError(f"{noun}s must be numbers, not true/false", code=code)
    null = _null_path(rows, noun if single else f"{noun}s", single)
    if null:
        raise ValidationError(f"{null}: every value must be a number, not null", code=code, detail={"field": null})
    try:
        with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused just below
            X = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValidationError(f"every {noun} must be a list of numbers", code=code) from None
    X = X.reshape(len(rows), -1) if X.ndim > 2 else X
    if X.ndim != 2 or X.shape[1] != dataset.n_features:
        raise ValidationError(f"each {noun} must have {dataset.n_features} numbers "
                              f"(dataset {dataset.id}), got shape {list(np.shape(rows))[1:]}", code=code)
    if not np.isfinite(X).all():
        raise ValidationError(f"{noun}s must be finite numbers", code=code)
    return X
