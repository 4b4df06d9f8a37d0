"""The training monitor: per-layer weight and gradient statistics, sampled every so often while a
network trains.

`TorchEngine` calls the three hooks of a `Monitor` (its `monitor` attribute) around the steps the
monitor says are due:

    due = monitor is not None and monitor.due(step)     # before the forward pass
    ... forward, loss.backward() ...
    if due: monitor.after_backward(model, step, loss=loss)
    optimizer.step()
    if due: monitor.after_step(model, optimizer, step, lr)

A step that is not due costs nothing beyond `due()`. On a due step the monitor reads, for each layer
(a module with parameters of its own): the mean, standard deviation, min, max and L2 norm of its
weights and of their gradients, a histogram of each (at most 64 bins, at most one a second), and the
update-to-weight ratio ||w_after - w_before|| / ||w_after||. Forward hooks, attached only for the
due step's forward pass, give the share of dead ReLU units and of saturated tanh / sigmoid outputs.

How often: by default a step is due when `min_interval` seconds have passed since the last sample,
and never sooner than the monitor's own cost allows (it keeps itself under `budget` of the wall
time); the interval doubles after every `stretch_every` samples, so a run of hours stores thousands
of samples, not a sample every quarter second. `every=N` samples every N-th step instead.

What it finds goes to a `MonitorSink` (the worker turns it into `weights_update`, `training_stats`
and `run_log` reports); nothing here knows about servers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn

from livetrain.training.monitor_options import (  # noqa: F401  (re-exported)
    EXPLODE_ABOVE,
    VANISH_BELOW,
    MonitorOptions,
    parse_monitor_options,
)

MAX_BINS = 64
DEFAULT_BINS = 32
DEFAULT_INTERVAL = 0.25  # seconds between samples: at most 4 a second
DEFAULT_BUDGET = 0.02  # the share of wall time the monitor may take
STRETCH_EVERY = 600  # samples after which the interval doubles
HISTOGRAM_INTERVAL = 1.0  # seconds between two samples that carry histograms
SATURATION = 0.99  # |tanh| above this, sigmoid outside (0.01, 0.99): saturated


class MonitorSink(Protocol):
    """Where the monitor's findings go."""

    def on_weights(self, update: dict[str, Any]) -> None: ...

    def on_stats(self, stats: dict[str, Any]) -> None: ...

    def on_log(self, level: str, message: str, source: str = "monitor", data: dict[str, Any] | None = None) -> None: ...


def _num(value: float) -> float | None:
    """A number for JSON: 6 significant digits, None for NaN and infinities (JSON has neither)."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


def tensor_stats(t: torch.Tensor) -> dict[str, Any]:
    """mean, std (population), min, max and L2 norm of a tensor, in a handful of torch ops."""
    flat = t.detach().reshape(-1).float()
    if flat.numel() == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "norm": None, "finite": True}
    # two passes with dot products: about 50x faster than torch.std_mean on a CPU, and exact enough
    # (the deviations are taken from the mean, so weights near 1 with a tiny spread keep their std)
    mean = flat.mean()
    centred = flat - mean
    n = flat.numel()
    lo, hi = torch.aminmax(flat)
    values = torch.stack([mean, torch.sqrt(torch.dot(centred, centred) / n), lo, hi,
                          torch.sqrt(torch.dot(flat, flat))]).tolist()
    finite = all(math.isfinite(v) for v in values)
    return {"mean": _num(values[0]), "std": _num(values[1]), "min": _num(values[2]), "max": _num(values[3]),
            "norm": _num(values[4]), "finite": finite}


def histogram(t: torch.Tensor, bins: int) -> dict[str, Any] | None:
    """`{edges, counts}` of a tensor's values over their range in `bins` equal bins (one bin when they
    are all the same); None when they are not all finite."""
    flat = t.detach().reshape(-1).float()
    if flat.numel() == 0:
        return None
    lo, hi = (float(v) for v in torch.aminmax(flat))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    if lo == hi:
        return {"edges": [_num(lo), _num(hi)], "counts": [int(flat.numel())]}
    counts = torch.histc(flat, bins=bins, min=lo, max=hi)
    step = (hi - lo) / bins
    return {"edges": [_num(lo + k * step) for k in range(bins)] + [_num(hi)],
            "counts": [int(c) for c in counts.tolist()]}


def _layers(model: nn.Module) -> list[tuple[str, nn.Module, list[nn.Parameter]]]:
    """(name, module, weights) of every module with parameters of its own: its weight matrices
    (parameters named "*weight*"), or all its parameters when none is so named."""
    out = []
    for name, module in model.named_modules():
        own = [(n, p) for n, p in module.named_parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        weights = [p for n, p in own if "weight" in n] or [p for _, p in own]
        out.append((name or "model", module, weights))
    return out


def _flat(params: list[torch.Tensor]) -> torch.Tensor:
    if len(params) == 1:
        return params[0].detach().reshape(-1)
    return torch.cat([p.detach().reshape(-1) for p in params])


class Monitor:
    """Samples a model's layers on due steps and reports to a `MonitorSink` (see the module docstring)."""

    def __init__(self, sink: MonitorSink, *, every: int | None = None, min_interval: float = DEFAULT_INTERVAL,
                 budget: float = DEFAULT_BUDGET, stretch_every: int = STRETCH_EVERY, bins: int = DEFAULT_BINS,
                 histogram_interval: float = HISTOGRAM_INTERVAL, explode_above: float = EXPLODE_ABOVE,
                 vanish_below: float = VANISH_BELOW, clock: Callable[[], float] = time.monotonic,
                 model: nn.Module | None = None) -> None:
        if not 1 <= bins <= MAX_BINS:
            raise ValueError(f"bins must be in [1, {MAX_BINS}]")
        self.sink = sink
        self.every = every
        self.min_interval = min_interval
        self.budget = budget
        self.stretch_every = stretch_every
        self.bins = bins
        self.histogram_interval = histogram_interval
        self.explode_above = explode_above
        self.vanish_below = vanish_below
        self.clock = clock
        self.epoch = 1  # the epoch in progress; the caller moves it (JobCallbacks.on_epoch_end)
        self.samples = 0
        self.cost = 0.0  # seconds spent sampling, in total
        self._next_time = -math.inf
        self._next_histogram = -math.inf
        self.model = model  # known up front, the first due step measures activations too
        self._hooks: list[Any] = []
        self._activations: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, Any] | None = None
        self._step_cost = 0.0

    # -- when ------------------------------------------------------------------------------------
    def due(self, step: int) -> bool:
        """Whether `step` (counted over the whole run from 0) is sampled; call it before its forward pass."""
        if self.every is not None:
            if step % self.every:
                return False
        elif self.clock() < self._next_time:
            return False
        if self.model is not None:
            self.attach(self.model)
        return True

    def interval(self) -> float:
        """The time-based interval now: `min_interval`, doubled after every `stretch_every` samples."""
        return self.min_interval * 2 ** (self.samples // self.stretch_every)

    # -- the hooks -------------------------------------------------------------------------------
    def attach(self, model: nn.Module) -> None:
        """Add forward hooks on the activations whose health is cheap to read (ReLU, Tanh, Sigmoid), for
        the due step's forward pass only: `after_backward` removes them, so other steps pay nothing."""
        self.detach()
        for name, module in model.named_modules():
            kind = type(module).__name__
            if kind in ("ReLU", "Tanh", "Sigmoid"):
                self._hooks.append(module.register_forward_hook(self._activation_hook(name, kind)))

    def detach(self) -> None:
        """Remove the forward hooks."""
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    def _activation_hook(self, name: str, kind: str):
        def hook(module, inputs, output) -> None:
            if not isinstance(output, torch.Tensor):
                return
            started = self.clock()
            with torch.no_grad():
                out = output.detach()
                if kind == "ReLU":
                    rows = out.reshape(out.shape[0], -1) if out.dim() > 1 else out.reshape(1, -1)
                    # a unit is dead on this batch when it is zero for every example
                    value = 1.0 - (rows > 0).any(dim=0).float().mean().item()
                    self._activations[name] = {"name": name, "type": kind, "dead": _num(value)}
                else:
                    if kind == "Tanh":
                        saturated = out.abs() > SATURATION
                    else:
                        saturated = (out < 1 - SATURATION) | (out > SATURATION)
                    value = saturated.float().mean().item()
                    self._activations[name] = {"name": name, "type": kind, "saturated": _num(value)}
            self._step_cost += self.clock() - started
        return hook

    def after_backward(self, model: nn.Module, step: int, loss: torch.Tensor | float | None = None) -> None:
        """On a due step, after `loss.backward()`: read the gradients, keep the weights to measure the update."""
        started = self.clock()
        self.detach()
        self.model = model  # from now on, due steps measure the activations too
        layers = []
        grads = []
        for name, module, weights in _layers(model):
            grad_params = [p.grad for p in weights if p.grad is not None]
            entry: dict[str, Any] = {"name": name, "type": type(module).__name__,
                                     "params": sum(p.numel() for p in module.parameters(recurse=False))}
            if len(grad_params) == len(weights):
                g = _flat(grad_params)
                entry["grad"] = tensor_stats(g)
                entry["_grad"] = g
            layers.append((entry, weights, [p.detach().clone() for p in weights]))
        for p in model.parameters():
            if p.grad is not None:
                grads.append(p.grad.detach())
        total = torch.nn.utils.get_total_norm(grads).item() if grads else None
        value = loss.item() if isinstance(loss, torch.Tensor) else loss
        self._pending = {"step": step, "layers": layers, "grad_norm": total, "loss": value}
        self._step_cost += self.clock() - started

    def after_step(self, model: nn.Module, optimizer, step: int, lr: float | None) -> None:
        """On a due step, after `optimizer.step()`: weights, update ratios, histograms; report it all."""
        started = self.clock()
        pending, self._pending = self._pending, None
        if pending is None or pending["step"] != step:
            self._step_cost = 0.0
            return
        with_histograms = started >= self._next_histogram
        if with_histograms:
            self._next_histogram = started + self.histogram_interval
        layers = []
        for entry, weights, before in pending["layers"]:
            w = _flat(weights)
            entry["weight"] = tensor_stats(w)
            delta = math.sqrt(sum(float(torch.sum((p.detach() - b) ** 2)) for p, b in zip(weights, before)))
            norm = entry["weight"]["norm"]
            entry["update_ratio"] = _num(delta / norm) if norm else None
            g = entry.pop("_grad", None)
            if with_histograms:
                entry["weight_hist"] = histogram(w, self.bins)
                if g is not None:
                    entry["grad_hist"] = histogram(g, self.bins)
            layers.append(entry)
        activations = list(self._activations.values())
        self._activations = {}
        warnings = self.warnings(pending["grad_norm"], layers)
        self.samples += 1
        self.sink.on_weights({"step": step, "epoch": self.epoch, "layers": layers, "activations": activations})
        self.sink.on_stats({"step": step, "epoch": self.epoch, "grad_norm": _num(pending["grad_norm"]),
                            "learning_rate": _num(lr) if lr is not None else None,
                            "loss": _num(pending["loss"]) if pending["loss"] is not None else None,
                            "warnings": warnings})
        for line in self.warning_lines(warnings):
            self.sink.on_log("warning", line["message"], "monitor", {**line["data"], "step": step, "epoch": self.epoch})
        now = self.clock()
        spent, self._step_cost = self._step_cost + now - started, 0.0
        self.cost += spent
        if self.every is None:
            # never more often than the interval, nor than the monitor's cost allows within its budget
            self._next_time = now + max(self.interval(), spent / self.budget if self.budget > 0 else 0.0)

    # -- what is wrong -------------------------------------------------------------------------
    def warnings(self, grad_norm: float | None, layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Exploding (global gradient norm above `explode_above`, or not finite) and vanishing (a layer's
        gradient norm below `vanish_below` while its weights are not all zero) gradients. Messages are
        the same from one step to the next, so a run's log folds the repeats; the numbers are beside them."""
        out = []
        if grad_norm is not None and (not math.isfinite(grad_norm) or grad_norm > self.explode_above):
            out.append({"kind": "exploding", "layer": None, "value": _num(grad_norm), "threshold": self.explode_above,
                        "message": f"exploding gradients: the global gradient norm is above {self.explode_above:g}"
                                   + ("" if math.isfinite(grad_norm) else " (not finite)")})
        for entry in layers:
            grad, weight = entry.get("grad"), entry.get("weight")
            if not grad or grad["norm"] is None or not weight or not weight["norm"]:
                continue
            if grad["norm"] < self.vanish_below:
                out.append({"kind": "vanishing", "layer": entry["name"], "value": grad["norm"],
                            "threshold": self.vanish_below,
                            "message": f"vanishing gradients in layer {entry['name']} ({entry['type']}): "
                                       f"gradient norm below {self.vanish_below:g}"})
        return out

    @staticmethod
    def warning_lines(warnings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One log line per kind of warning of a sample (the layers of a vanishing one named together), so
        the same trouble at the next sample writes the same line and the log folds it."""
        lines = []
        exploding = [w for w in warnings if w["kind"] == "exploding"]
        if exploding:
            lines.append({"message": exploding[0]["message"],
                          "data": {"kind": "exploding", "value": exploding[0]["value"]}})
        vanishing = [w for w in warnings if w["kind"] == "vanishing"]
        if len(vanishing) == 1:
            lines.append({"message": vanishing[0]["message"],
                          "data": {"kind": "vanishing", "layers": {vanishing[0]["layer"]: vanishing[0]["value"]}}})
        elif vanishing:
            names = ", ".join(w["layer"] for w in vanishing)
            lines.append({"message": f"vanishing gradients in layers {names}: gradient norms below "
                                     f"{vanishing[0]['threshold']:g}",
                          "data": {"kind": "vanishing", "layers": {w["layer"]: w["value"] for w in vanishing}}})
        return lines
