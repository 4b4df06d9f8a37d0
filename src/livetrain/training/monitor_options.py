"""The monitor's options in a train request, without torch (the server checks them at the API edge
and never imports torch; `livetrain.training.monitor` is the monitor itself)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livetrain.errors import ValidationError

MAX_EVERY = 1_000_000


@dataclass
class MonitorOptions:
    """What a train request says about the monitor: on or off, and every how many steps (None: by time)."""

    enabled: bool = True
    every: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (kept in the run's hyper-parameters)."""
        return {"enabled": self.enabled, "every": self.every}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> MonitorOptions:
        """Inverse of `to_dict`; the defaults for a run that recorded nothing."""
        data = data or {}
        return cls(enabled=bool(data.get("enabled", True)), every=data.get("every"))


def parse_monitor_options(body: dict[str, Any], layer_spec: bool) -> MonitorOptions:
    """`monitor` (true / false) and `monitor_every` (steps) of a train request; on by default for a
    layer-spec network, and not available for a `layer_sizes` one (its NumPy engine has no autograd)."""
    enabled = body.get("monitor")
    if enabled is not None and not isinstance(enabled, bool):
        raise ValidationError("monitor must be true or false", detail={"field": "monitor"})
    every = body.get("monitor_every")
    if every is not None:
        if isinstance(every, bool) or not isinstance(every, (int, float)) or not float(every).is_integer() \
                or not 1 <= every <= MAX_EVERY:
            raise ValidationError(f"monitor_every must be a whole number of steps in [1, {MAX_EVERY}]",
                                  detail={"field": "monitor_every"})
        every = int(every)
    if not layer_spec:
        if enabled or every is not None:
            raise ValidationError("the monitor needs a network made of layers: a layer_sizes network trains "
                                  "without autograd, so it has no gradients to show", detail={"field": "monitor"})
        return MonitorOptions(enabled=False)
    return MonitorOptions(enabled=True if enabled is None else enabled, every=every)
