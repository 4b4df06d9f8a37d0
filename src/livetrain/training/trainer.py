"""The training loop: two engines behind one `train()`.

- `NielsenEngine`: sigmoid layers, quadratic cost, plain SGD (what the original MNIST server
  ran), as vectorized mini-batch backprop in NumPy on the torch parameters' own memory.
  Small networks at small mini-batches are bound by per-step overhead, and NumPy's is
  several times lower than autograd's (docs/benchmarks.md has the numbers).
- `TorchEngine`: any layer-spec network, autograd, foreach optimizers, pre-shuffled slices, on
  the device it is given (CPU by default, a GPU when the worker has one).

Both report through `TrainerCallbacks`; nothing here knows about servers or sockets. After
each epoch the engine scores the dataset's validation split, or its test split when it has
none (the built-ins: the original server's clients read `accuracy` as held-out accuracy).
Whatever the device, outputs come back as CPU NumPy arrays and checkpoints hold CPU tensors.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from scipy.special import expit
from torch import nn

from livetrain.data.sources import DatasetArrays
from livetrain.training.device import CPU, to_cpu
from livetrain.training.heads import HeadsLoss, SequenceLoss, r2_score, score_heads
from livetrain.training.model import check_embedding_inputs, input_shape_for
from livetrain.training.spec import HyperParams, NetworkSpec


@dataclass
class EpochResult:
    """What one epoch scored; `epoch` counts from the network's first run when resuming."""

    epoch: int
    total_epochs: int
    train_loss: float
    val_loss: float
    accuracy: float | None
    correct: int | None
    total: int
    elapsed_time: float  # seconds of training in this epoch, evaluation excluded
    eval_time: float
    extra: dict[str, float] = field(default_factory=dict)
    split: str = "test"  # which split val_loss, accuracy and total are of: "val" or "test"


@dataclass
class TrainOutcome:
    """How `train()` ended."""

    stopped: bool
    epochs_done: int
    last: EpochResult | None


class TrainerCallbacks(Protocol):
    """What the caller hears from the loop."""

    def on_progress(self, epoch: int, batch: int, n_batches: int, train_loss: float) -> None: ...

    def on_epoch_end(self, result: EpochResult, checkpoint: dict[str, Any]) -> None: ...

    def should_stop(self) -> bool: ...


SPLITS = ("train", "val", "test")


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Slices of a shuffled epoch; a trailing batch of one joins the one before it."""
    bounds = [(k, min(k + batch_size, n)) for k in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1 and batch_size > 1:
        start = bounds[-2][0]
        bounds[-2:] = [(start, n)]
    return bounds


class Engine:
    """One way of running epochs; subclasses implement the step and the forward pass.

    `device` is where the model trains, for the caller to report; an engine that is not given
    one trains on the CPU.
    """

    def __init__(self, model: nn.Sequential, spec: NetworkSpec, hp: HyperParams, data: DatasetArrays) -> None:
        self.device = CPU
        self.model = model
        self.spec = spec
        self.hp = hp
        self.data = data
        self.classification = data.info.task == "classification"

    def run_epoch(self, epoch: int, on_batch) -> float:
        """Train one epoch; return the mean training loss."""
        raise NotImplementedError

    def outputs(self, X: np.ndarray) -> np.ndarray:
        """Network outputs for inputs in the training layout."""
        raise NotImplementedError

    def loss(self, outputs: np.ndarray, y: np.ndarray) -> float:
        """Mean loss of outputs against targets."""
        raise NotImplementedError

    def optimizer_state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the optimizer."""
        return {}

    @property
    def splits(self) -> tuple[str, ...]:
        """The names of the splits this dataset has, "val" only when it has one."""
        return tuple(name for name in SPLITS if name != "val" or self.data.has_val)

    @property
    def eval_split(self) -> str:
        """The split scored after each epoch: "val" when the dataset has one, else "test"."""
        return "val" if self.data.has_val else "test"

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The inputs and targets of split "train", "val" or "test"."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; one of {', '.join(SPLITS)}")
        if name == "val" and not self.data.has_val:
            raise ValueError(f"dataset {self.data.info.id!r} has no validation split")
        arrays = {"train": (self.data.X_train, self.data.y_train), "val": (self.data.X_val, self.data.y_val),
                  "test": (self.data.X_test, self.data.y_test)}
        return arrays[name]

    def predict_split(self, name: str) -> np.ndarray:
        """Raw network outputs, one row per example, on split "train", "val" or "test"."""
        return self.outputs(self.split(name)[0])

    def evaluate(self, split: str | None = None) -> tuple[float, int | None, float | None, dict[str, float]]:
        """(loss, correct, accuracy, extra metrics) on `split`, by default `eval_split`."""
        name = split or self.eval_split
        X, y = self.split(name)
        outputs = self.outputs(X)
        return self.with_text_scores(self.score(outputs, y), name, X, y, outputs)

    def with_text_scores(self, scores: tuple, split: str, X: np.ndarray, y: np.ndarray,
                         outputs: np.ndarray | None) -> tuple[float, int | None, float | None, dict[str, float]]:
        """`scores` with a text dataset's own metrics added to its extras (training/text_metrics.py)."""
        if not self.data.info.meta.get("text"):
            return scores
        from livetrain.training.text_metrics import epoch_scores

        loss, correct, accuracy, extra = scores
        return loss, correct, accuracy, {**extra, **epoch_scores(self, split, X, y, outputs)}

    def score(self, outputs: np.ndarray, y: np.ndarray) -> tuple[float, int | None, float | None, dict[str, float]]:
        """(loss, correct, accuracy, extra metrics) of outputs against targets; r2 for regression.

        With several regression targets the loss is the mean over all of them and r2 the
        plain average of each target's r2 (scikit-learn's "uniform_average").
        """
        loss = self.loss(outputs, y)
        if self.classification:
            correct = int((outputs.argmax(axis=1) == y).sum())
            return loss, correct, correct / len(y), {}
        return loss, None, None, {"r2": r2_score(outputs, y)}


class NielsenEngine(Engine):
    """Sigmoid network, quadratic cost, plain SGD: Nielsen's `network.py`, vectorized per mini-batch.

    Always on the CPU: the arithmetic is NumPy's. A model handed over on another device is moved back.
    """

    def __init__(self, model, spec, hp, data) -> None:
        super().__init__(model, spec, hp, data)
        model.to(CPU)
        linears = [m for m in model if isinstance(m, nn.Linear)]
        # .numpy() shares memory: updating these arrays updates the torch model in place.
        self.weights = [m.weight.detach().numpy() for m in linears]
        self.biases = [m.bias.detach().numpy() for m in linears]
        self.targets = np.eye(spec.layer_sizes[-1], dtype=np.float32)[data.y_train]

    def run_epoch(self, epoch: int, on_batch) -> float:
        rng = np.random.default_rng([self.hp.seed, epoch])
        order = rng.permutation(len(self.data.X_train))
        X = self.data.X_train[order]
        Y = self.targets[order]
        eta = np.float32(self.hp.learning_rate)
        weights, biases = self.weights, self.biases
        layers = len(weights)
        loss_sum = 0.0
        bounds = batch_bounds(len(X), self.hp.batch_size)
        n_batches = len(bounds)
        for b, (lo, hi) in enumerate(bounds):
            activations = [X[lo:hi]]
            for w, bias in zip(weights, biases):
                activations.append(expit(activations[-1] @ w.T + bias))
            out = activations[-1]
            diff = out - Y[lo:hi]
            loss_sum += float(np.vdot(diff, diff))
            delta = diff * out * (1.0 - out)
            step = eta / np.float32(hi - lo)
            for layer in range(layers - 1, -1, -1):
                below = activations[layer]
                if layer:
                    next_delta = (delta @ weights[layer]) * below * (1.0 - below)
                weights[layer] -= step * (delta.T @ below)
                biases[layer] -= step * delta.sum(axis=0)
                if layer:
                    delta = next_delta
            if on_batch(b, n_batches, loss_sum, hi):
                break
        return 0.5 * loss_sum / len(X)

    def outputs(self, X: np.ndarray) -> np.ndarray:
        a = X
        for w, bias in zip(self.weights, self.biases):
            a = expit(a @ w.T + bias)
        return a

    def loss(self, outputs: np.ndarray, y: np.ndarray) -> float:
        diff = outputs - np.eye(outputs.shape[1], dtype=np.float32)[y]
        return float(0.5 * np.vdot(diff, diff) / len(y))


class TorchEngine(Engine):
    """Autograd training of any layer-spec network on `device` (the CPU when None).

    The model (moved in place), the training inputs and their targets go to the device once;
    each mini-batch is a slice of them there.
    """

    def __init__(self, model, spec, hp, data, optimizer_state: dict[str, Any] | None = None,
                 device: torch.device | str | None = None) -> None:
        super().__init__(model, spec, hp, data)
        for name in self.splits:  # before any training: an Embedding can only look up small whole numbers
            check_embedding_inputs(model, self.split(name)[0], f"the {name} split")
        self.shape = input_shape_for(spec, data.info.input_shape)
        # before the optimizer is built: its state, and any loaded into it, follows the parameters' device
        target = CPU if device is None else torch.device(device)
        model.to(target)
        self.X = torch.from_numpy(data.X_train).reshape(-1, *self.shape).to(target)
        self.device = self.X.device  # as torch names it: an index-less "cuda" is "cuda:0" here
        self.y = torch.from_numpy(data.y_train).to(self.device)
        self.targets = self._target(self.y)
        params = [p for p in model.parameters() if p.requires_grad]
        if hp.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=hp.learning_rate, momentum=hp.momentum,
                                             weight_decay=hp.weight_decay, foreach=True)
        elif hp.optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=hp.learning_rate, weight_decay=hp.weight_decay, foreach=True)
        else:
            self.optimizer = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay, foreach=True)
        if optimizer_state:  # saved on any device: load_state_dict moves it to the parameters'
            self.optimizer.load_state_dict(optimizer_state)
        # MONITOR HOOKS (issue 11, monitor branch; the controls branch owns the final form): an optional
        # livetrain.training.monitor.Monitor and the run's global step counter
        self.monitor = None
        self.global_step = 0
        self.criterion = self._criterion()

    @property
    def scored_by_heads(self) -> bool:
        """True when the loss and metrics come from heads (named ones, or a language model's implicit one)."""
        return bool(self.spec.heads) or self.data.info.task == "sequence"

    def _criterion(self) -> nn.Module:
        """The training loss: the heads' weighted sum, per-token cross-entropy, or the spec's loss."""
        if self.spec.heads:
            return HeadsLoss(self.spec.heads)
        if self.data.info.task == "sequence":
            return SequenceLoss()
        return nn.CrossEntropyLoss() if self.spec.loss == "cross_entropy" else nn.MSELoss()

    def _target(self, y: torch.Tensor) -> torch.Tensor:
        if self.scored_by_heads:  # each head takes its own column and dtype from the targets as they are
            return y
        if self.spec.loss == "cross_entropy":
            return y
        if self.classification:
            return nn.functional.one_hot(y, self.data.info.n_classes).float()
        return y.reshape(len(y), -1).float()  # one column per target

    def run_epoch(self, epoch: int, on_batch) -> float:
        generator = torch.Generator().manual_seed(self.hp.seed * 1_000_003 + epoch)
        torch.manual_seed(self.hp.seed * 1_000_003 + epoch)  # dropout masks
        # drawn on the CPU whatever the device, so a seed gives the same order everywhere
        order = torch.randperm(len(self.X), generator=generator).to(self.device)
        X, y = self.X[order], self.targets[order]
        self.model.train()
        loss_sum = 0.0
        bounds = batch_bounds(len(X), self.hp.batch_size)
        n_batches = len(bounds)
        monitor = self.monitor
        for b, (lo, hi) in enumerate(bounds):
            step = self.global_step  # MONITOR HOOKS (issue 11): these lines and the two `if due` below
            due = monitor is not None and monitor.due(step)
            self.global_step += 1
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.criterion(self.model(X[lo:hi]), y[lo:hi])
            loss.backward()
            if due:
                monitor.after_backward(self.model, step, loss=loss)
            self.optimizer.step()
            if due:
                monitor.after_step(self.model, self.optimizer, step, self.optimizer.param_groups[0]["lr"])
            loss_sum += loss.item() * (hi - lo)
            if on_batch(b, n_batches, loss_sum, hi):
                break
        return loss_sum / len(X)

    @torch.no_grad()
    def outputs(self, X: np.ndarray) -> np.ndarray:
        self.model.eval()
        tensor = torch.from_numpy(np.ascontiguousarray(X)).reshape(-1, *self.shape)
        out = torch.cat([self.model(tensor[k:k + 2048].to(self.device)) for k in range(0, len(tensor), 2048)])
        self.model.train()
        return out.cpu().numpy()

    def evaluate(self, split: str | None = None) -> tuple[float, int | None, float | None, dict[str, float]]:
        if not self.scored_by_heads:
            return super().evaluate(split)
        name = split or self.eval_split
        X, y = self.split(name)
        info = self.data.info
        per_row = math.prod(self.shape) * max(1, info.n_classes) if info.task == "sequence" else 1
        scores = score_heads(self.model, self.spec.heads, info.task, X, y, shape=self.shape, device=self.device,
                             values_per_row=per_row)
        return self.with_text_scores(scores, name, X, y, None)

    @torch.no_grad()
    def loss(self, outputs: np.ndarray, y: np.ndarray) -> float:
        # on the CPU: outputs have come back as NumPy already, and the criterion has no parameters
        return float(self.criterion(torch.from_numpy(outputs), self._target(torch.from_numpy(y))))

    def optimizer_state(self) -> dict[str, Any]:
        return to_cpu(self.optimizer.state_dict())


def make_engine(model, spec: NetworkSpec, hp: HyperParams, data: DatasetArrays,
                optimizer_state: dict[str, Any] | None = None,
                device: torch.device | str | None = None) -> Engine:
    """The fastest engine that trains `spec` exactly, a layer-spec network on `device` (default CPU).

    A `layer_sizes` network trains in NumPy on the CPU whatever `device` says; the engine's
    `.device` is the one actually used.
    """
    if spec.kind == "layer_sizes":
        return NielsenEngine(model, spec, hp, data)
    return TorchEngine(model, spec, hp, data, optimizer_state, device)


def train(
    model: nn.Sequential,
    spec: NetworkSpec,
    hp: HyperParams,
    data: DatasetArrays,
    callbacks: TrainerCallbacks,
    *,
    start_epoch: int = 0,
    optimizer_state: dict[str, Any] | None = None,
    progress_interval: float = 0.25,
    engine: Engine | None = None,
) -> TrainOutcome:
    """Train `hp.epochs` epochs after `start_epoch`, reporting through `callbacks`.

    Without an `engine` it trains on the CPU; for a GPU pass one from `make_engine(..., device=...)`.
    """
    engine = engine or make_engine(model, spec, hp, data, optimizer_state)
    end_epoch = start_epoch + hp.epochs
    last: EpochResult | None = None
    n_train = len(data.X_train)
    for epoch in range(start_epoch + 1, end_epoch + 1):
        if callbacks.should_stop():
            return TrainOutcome(True, epoch - 1 - start_epoch, last)
        next_report = time.monotonic() + progress_interval
        stopped = False

        def on_batch(batch: int, n_batches: int, loss_sum: float, seen: int, epoch=epoch) -> bool:
            nonlocal next_report, stopped
            if callbacks.should_stop():
                stopped = True
                return True
            if batch + 1 < n_batches:
                now = time.monotonic()
                if now >= next_report:
                    next_report = now + progress_interval
                    callbacks.on_progress(epoch, batch + 1, n_batches, loss_sum / max(1, seen))
            return False

        started = time.perf_counter()
        train_loss = engine.run_epoch(epoch, on_batch)
        elapsed = time.perf_counter() - started
        if stopped:
            # the interrupted epoch is not kept: the checkpoint stays at the last whole epoch
            return TrainOutcome(True, epoch - 1 - start_epoch, last)
        if not math.isfinite(train_loss):  # before evaluating: a diverged model only overflows there
            raise FloatingPointError(f"training diverged in epoch {epoch} (loss {train_loss}); "
                                     "try a smaller learning rate")
        started = time.perf_counter()
        val_loss, correct, accuracy, extra = engine.evaluate()
        eval_time = time.perf_counter() - started
        last = EpochResult(epoch, end_epoch, train_loss, val_loss, accuracy, correct,
                           len(engine.split(engine.eval_split)[1]), elapsed, eval_time, extra, engine.eval_split)
        checkpoint = {
            "model": to_cpu(model.state_dict()),  # loadable where there is no GPU
            "optimizer": engine.optimizer_state(),
            "epoch": epoch,
            "spec": spec.to_dict(),
            "hyperparams": hp.to_dict(),
            "n_train": n_train,
        }
        callbacks.on_epoch_end(last, checkpoint)
    return TrainOutcome(False, hp.epochs, last)
