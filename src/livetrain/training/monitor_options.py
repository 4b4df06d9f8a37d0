"""The monitor's options in a train request, without torch (the server checks them at the API edge
and never imports torch; `livetrain.training.monitor` is the monitor itself)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from livetrain.errors import ValidationError

MAX_EVERY = 1_000_000
EXPLODE_ABOVE = 1e3  # a global gradient norm above this (or not finite) is "exploding"
VANISH_BELOW = 1e-7  # a layer gradient norm below this, with non-zero weights, is "vanishing"
# the thresholds a train request may set: its field, and the option it sets
THRESHOLDS = {"monitor_explode_above": "explode_above", "monitor_vanish_below": "vanish_below"}


@dataclass
class MonitorOptions:
    """What a train request says about the monitor: on or off, every how many steps (None: by time), and
    the gradient norms its warnings start at (a model whose healthy norms sit far from the defaults would
    otherwise warn at every sample, or never)."""

    enabled: bool = True
    every: int | None = None
    explode_above: float = EXPLODE_ABOVE
    vanish_below: float = VANISH_BELOW

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (kept in the run's hyper-parameters)."""
        return {"enabled": self.enabled, "every": self.every, "explode_above": self.explode_above,
                "vanish_below": self.vanish_below}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> MonitorOptions:
        """Inverse of `to_dict`; the defaults for a run that recorded nothing (or ran before thresholds were kept)."""
        data = data or {}
        return cls(enabled=bool(data.get("enabled", True)), every=data.get("every"),
                   explode_above=data.get("explode_above", EXPLODE_ABOVE),
                   vanish_below=data.get("vanish_below", VANISH_BELOW))


def parse_monitor_options(body: dict[str, Any], layer_spec: bool) -> MonitorOptions:
    """`monitor` (true / false), `monitor_every` (steps) and the warning thresholds (`THRESHOLDS`) of a
    train request; on by default for a layer-spec network, and not available for a `layer_sizes` one (its
    NumPy engine has no autograd)."""
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
    thresholds = _thresholds(body)
    if not layer_spec:
        if enabled or every is not None or thresholds:
            raise ValidationError("the monitor needs a network made of layers: a layer_sizes network trains "
                                  "without autograd, so it has no gradients to show", detail={"field": "monitor"})
        return MonitorOptions(enabled=False)
    return MonitorOptions(enabled=True if enabled is None else enabled, every=every, **thresholds)


def _thresholds(body: dict[str, Any]) -> dict[str, float]:
    """The warning thresholds a train request sets, as `MonitorOptions` fields: positive finite numbers,
    and a vanishing norm below the exploding one (else every sample would warn of both)."""
    out = {}
    for field, option in THRESHOLDS.items():
        value = body.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValidationError(f"{field} must be a positive finite number (a gradient norm), got {value!r}",
                                  detail={"field": field})
        out[option] = float(value)
    explode, vanish = out.get("explode_above", EXPLODE_ABOVE), out.get("vanish_below", VANISH_BELOW)
    if vanish >= explode:
        field = "monitor_vanish_below" if "vanish_below" in out else "monitor_explode_above"
        raise ValidationError(f"monitor_vanish_below ({vanish:g}) must be below monitor_explode_above ({explode:g})",
                              detail={"field": field})
    return out
