"""Training controls that act between epochs: learning-rate schedules and early stopping.

Both are plain Python, the same for every engine (the NumPy one included), and keep their state
as a small dict that goes into each checkpoint, so a resumed run continues its schedule where
it was. The configurations are the dicts `livetrain.training.spec.parse_hyperparams` returns.
"""

from __future__ import annotations

import math
from typing import Any


def epoch_metrics(result) -> dict[str, float]:
    """The metrics of an `EpochResult` a schedule or early stopping can watch, by name."""
    out = {"val_loss": result.val_loss, "train_loss": result.train_loss, "accuracy": result.accuracy,
           **result.extra}
    return {k: float(v) for k, v in out.items() if v is not None}


def _watched(metrics: dict[str, float], metric: str, what: str) -> float:
    if metric not in metrics:
        known = ", ".join(sorted(metrics)) or "none"
        raise ValueError(f"{what} watches {metric!r}, which this run does not report (it reports {known})")
    return metrics[metric]


def _improved(value: float, best: float | None, mode: str, delta: float) -> bool:
    if best is None:
        return math.isfinite(value)
    return value < best - delta if mode == "min" else value > best + delta


class LRSchedule:
    """The learning rate of each epoch: `lr` is the one the next epoch trains with.

    `done` counts the epochs trained under this schedule. With base rate b and n = `done`:
    - step: b * gamma ** (n // step_size)
    - exponential: b * gamma ** n
    - cosine: eta_min + (b - eta_min) * (1 + cos(pi * n / t_max)) / 2, staying at eta_min after t_max
    - reduce_on_plateau: b, multiplied by `factor` (not below `min_lr`) once the watched metric has not
      improved by more than `threshold` for more than `patience` epochs in a row
    - none (no schedule): b
    """

    def __init__(self, config: dict[str, Any] | None, base_lr: float, state: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {"type": "constant"})
        self.base_lr = float(base_lr)
        self.done = 0
        self.best: float | None = None
        self.bad_epochs = 0
        self.plateau_lr = self.base_lr
        # a saved state is taken only if it belongs to this very schedule and base rate
        if state and state.get("config") == self.config and state.get("base_lr") == self.base_lr:
            self.done = int(state.get("done", 0))
            self.best = state.get("best")
            self.bad_epochs = int(state.get("bad_epochs", 0))
            self.plateau_lr = float(state.get("plateau_lr", self.base_lr))

    @property
    def kind(self) -> str:
        """The schedule's type ("constant" when there is none)."""
        return self.config["type"]

    @property
    def lr(self) -> float:
        """The learning rate of the next epoch."""
        c, n, base = self.config, self.done, self.base_lr
        if self.kind == "step":
            return base * c["gamma"] ** (n // c["step_size"])
        if self.kind == "exponential":
            return base * c["gamma"] ** n
        if self.kind == "cosine":
            fraction = min(n, c["t_max"]) / c["t_max"]
            return c["eta_min"] + (base - c["eta_min"]) * (1.0 + math.cos(math.pi * fraction)) / 2.0
        if self.kind == "reduce_on_plateau":
            return self.plateau_lr
        return base

    def step(self, metrics: dict[str, float]) -> None:
        """An epoch has ended with these metrics: move on to the next epoch's rate."""
        self.done += 1
        if self.kind != "reduce_on_plateau":
            return
        c = self.config
        value = _watched(metrics, c["metric"], "lr_schedule (reduce_on_plateau)")
        if _improved(value, self.best, c["mode"], c["threshold"]):
            self.best, self.bad_epochs = value, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > c["patience"]:
            self.plateau_lr = max(self.plateau_lr * c["factor"], c["min_lr"])
            self.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (plain numbers and strings)."""
        return {"config": self.config, "base_lr": self.base_lr, "done": self.done, "best": self.best,
                "bad_epochs": self.bad_epochs, "plateau_lr": self.plateau_lr}


class EarlyStopping:
    """Stops a run once the watched metric has not improved by more than `min_delta` for `patience` epochs.

    Like the schedule, it keeps its state in each checkpoint: a resumed run watching the same metric the
    same way goes on counting its epochs without improvement against the same best, so a resume does not
    buy a run a fresh patience. The patience and `min_delta` are the resumed run's own.
    """

    def __init__(self, config: dict[str, Any], state: dict[str, Any] | None = None) -> None:
        self.metric = config["metric"]
        self.mode = config["mode"]
        self.patience = int(config["patience"])
        self.min_delta = float(config["min_delta"])
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        # another metric or direction has another best: that starts afresh
        if state and state.get("metric") == self.metric and state.get("mode") == self.mode:
            self.best = state.get("best")
            self.best_epoch = state.get("best_epoch")
            self.bad_epochs = int(state.get("bad_epochs", 0))

    def update(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Record an epoch's metrics; True when it is the best so far."""
        value = _watched(metrics, self.metric, "early_stopping")
        if _improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (plain numbers and strings)."""
        return {"metric": self.metric, "mode": self.mode, "patience": self.patience, "min_delta": self.min_delta,
                "best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    @property
    def triggered(self) -> bool:
        """True when the run should stop now."""
        return self.bad_epochs >= self.patience

    @property
    def reason(self) -> str:
        """Why the run stopped, for people."""
        unit = "epoch" if self.patience == 1 else "epochs"
        return f"early_stopping: no improvement in {self.metric} for {self.patience} {unit}"
