"""The one place that knows about eventlet.

The server runs under eventlet (the default of `livetrain serve`), plain threads or
gevent. Everything else calls these helpers and stays mode-agnostic.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def monkey_patch(async_mode: str) -> None:
    """Patch the standard library for a green async mode; call before importing anything else."""
    if async_mode == "eventlet":
        import eventlet

        eventlet.monkey_patch()
    elif async_mode == "gevent":
        from gevent import monkey

        monkey.patch_all()


def _eventlet_patched() -> bool:
    patcher = sys.modules.get("eventlet.patcher")
    return bool(patcher and patcher.is_monkey_patched("socket"))


def run_blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run CPU-bound `fn` without stalling the event loop (a real OS thread under eventlet)."""
    if _eventlet_patched():
        from eventlet import tpool

        return tpool.execute(fn, *args, **kwargs)
    return fn(*args, **kwargs)


def cooperate() -> None:
    """Let other green threads run now, from a long loop on the event loop (a no-op with plain threads)."""
    if _eventlet_patched():
        import eventlet

        eventlet.sleep(0)
    elif "gevent.monkey" in sys.modules and sys.modules["gevent.monkey"].is_module_patched("socket"):
        import gevent

        gevent.sleep(0)
