"""JSON that holds only what JSON can: a NaN or an infinity becomes null.

Python's `json` writes them as `NaN` and `Infinity`, which are not JSON: PostgreSQL refuses
them, SQLite's JSON functions fail on them and a browser's `JSON.parse` throws. A loss that
blew up on held-out rows is such a value. The store's JSON columns and Socket.IO packets are
written with `dumps` (the module itself is handed to python-socketio as its `json`).
"""

from __future__ import annotations

import json
import math
from typing import Any

loads = json.loads


def finite(value: Any) -> Any:
    """`value` with every NaN or infinity (inside dicts and lists too) as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """`json.dumps`, with NaN and infinities written as null."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:  # only then is the value walked
        return json.dumps(finite(value), allow_nan=False, **kwargs)
