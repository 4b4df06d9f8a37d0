"""The training loop: two engines behind one `train()`.

- `NielsenEngine`: sigmoid layers, quadratic cost, plain SGD (what the original MNIST server
  ran), as vectorized mini-batch backprop in NumPy on the torch parameters' own memory.
  Small networks at small mini-batches are bound by per-step overhead, and NumPy's is
  several times lower than autograd's (docs/benchmarks.md has the numbers).
- `TorchEngine`: any layer-spec network, autograd, foreach optimizers, pre-shuffled slices, on
  the device it is given (CPU by default, a GPU when the worker has one).

Both report through `TrainerCallbacks`; nothing here knows about servers or sockets. Between
epochs `train()` applies the run's learning-rate schedule and early stopping
(`livetrain.training.controls`); a `TorchEngine` may carry a `monitor` that looks at the model
on the steps it asks for (see `TorchEngine.monitor`). After
each epoch the engine scores the dataset's validation split, or its test split when it has
none (the built-ins: the original server's clients read `accuracy` as held-out accuracy).
Whatever the device, outputs come back as CPU NumPy arrays and checkpoints hold CPU tensors.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from scipy.special import expit
from torch import nn

from livetrain.data.sources import DatasetArrays
from livetrain.training.controls import EarlyStopping, LRSchedule, epoch_metrics
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
    learning_rate: float | None = None  # the rate this epoch trained with
    best_epoch: int | None = None  # with early stopping: the best epoch so far (its checkpoint is the one kept)


@dataclass
class TrainOutcome:
    """How `train()` ended.

    `stopped` means stopped on request (cancelled). Early stopping is not that: the run has
    completed, `stop_reason` says why it ended early, and the model holds the weights of
    `best_epoch`, whose result is `best` (with early stopping on, whether it triggered or not).
    """

    stopped: bool
    epochs_done: int
    last: EpochResult | None
    stop_reason: str | None = None
    best_epoch: int | None = None
    best: EpochResult | None = None


class TrainerCallbacks(Protocol):
    """What the caller hears from the loop.

    `should_stop` is asked between every two mini-batches, so it must be cheap.
    """

    def on_progress(self, epoch: int, batch: int, n_batches: int, train_loss: float,
                    learning_rate: float) -> None: ...

    def on_epoch_end(self, result: EpochResult, checkpoint: dict[str, Any]) -> None: ...

    def should_stop(self) -> bool: ...


class TrainingMonitor(Protocol):
    """What a `TorchEngine.monitor` is asked, on the steps it says are due (`step` counts every
    mini-batch since the network's first epoch)."""

    def due(self, step: int) -> bool: ...

    def after_backward(self, model: nn.Module, step: int, *, loss: torch.Tensor | None = None) -> None: ...

    def after_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, lr: float) -> None: ...


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
        self.learning_rate = hp.learning_rate

    def set_learning_rate(self, lr: float) -> None:
        """The rate the next steps take (a schedule sets it before each epoch)."""
        self.learning_rate = lr

    def run_epoch(self, epoch: int, on_batch) -> float:
        """Train one epoch; return the mean training loss.

        After each mini-batch it calls `on_batch(batch, n_batches, loss_sum, seen)`, where `loss_sum`
        (a float or a 0-d tensor) over `seen` examples gives the running mean loss; a true answer
        stops the epoch there.
        """
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
        eta = np.float32(self.learning_rate)
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
    each mini-batch is gathered from them there by the epoch's shuffled indices.

    The per-step path is kept short, since small networks are bound by it: a fused optimizer
    where torch has one for the device, the running loss summed on the tensor side (read only
    when a progress report or the epoch's end needs it), no copy of the whole training set per
    epoch, and nothing done for gradient clipping or a monitor unless they are set.

    `monitor` (None, or a `TrainingMonitor`): on a step where `monitor.due(step)` is true (asked
    before the forward pass, so it can hook the activations), the engine calls
    `monitor.after_backward(model, step, loss=loss)` after the backward pass (before clipping,
    so it sees the raw gradients) and `monitor.after_step(model, optimizer, step, lr)` after the
    optimizer's step. Without a monitor a step pays one `is None` test for it.
    """

    def __init__(self, model, spec, hp, data, optimizer_state: dict[str, Any] | None = None,
                 device: torch.device | str | None = None) -> None:
        super().__init__(model, spec, hp, data)
        self.monitor: TrainingMonitor | None = None
        for name in self.splits:  # before any training: an Embedding can only look up small whole numbers
            check_embedding_inputs(model, self.split(name)[0], f"the {name} split")
        self.shape = input_shape_for(spec, data.info.input_shape)
        # before the optimizer is built: its state, and any loaded into it, follows the parameters' device
        target = CPU if device is None else torch.device(device)
        model.to(target)
        self.X = torch.from_numpy(data.X_train).reshape(-1, *self.shape).to(target)
        self.device = self.X.device  # as torch names it: an index-less "cuda" is "cuda:0" here
        if self.device.type == "cpu" and any(isinstance(m, nn.Conv2d) for m in model.modules()):
            # oneDNN's convolutions are faster on channels-last tensors (10-15% of a small CNN's epoch
            # here); checkpoints and weights are still saved in the usual layout (`plain_state_dict`)
            model.to(memory_format=torch.channels_last)
            self.X = self.X.contiguous(memory_format=torch.channels_last)
        self.y = torch.from_numpy(data.y_train).to(self.device)
        self.targets = self._target(self.y)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = self._optimizer(self.params)
        if optimizer_state:  # saved on any device: load_state_dict moves it to the parameters'
            self.optimizer.load_state_dict(optimizer_state)
            self._set_implementation()  # a saved state carries its own foreach/fused choice: use this one's
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

    def _fused(self) -> bool:
        # torch's fused Adam, AdamW and SGD: one kernel for the whole update (about a fifth of a small
        # MLP's step on a CPU, measured in docs/benchmarks.md), on the devices torch has it for
        return self.device.type in ("cpu", "cuda")

    def _optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        hp = self.hp
        how = {"fused": True} if self._fused() else {"foreach": True}
        if hp.optimizer == "sgd":
            return torch.optim.SGD(params, lr=hp.learning_rate, momentum=hp.momentum,
                                   weight_decay=hp.weight_decay, **how)
        if hp.optimizer == "adam":
            return torch.optim.Adam(params, lr=hp.learning_rate, weight_decay=hp.weight_decay, **how)
        return torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay, **how)

    def _set_implementation(self) -> None:
        fused = self._fused()
        for group in self.optimizer.param_groups:
            group["fused"], group["foreach"] = (True, None) if fused else (None, True)

    def set_learning_rate(self, lr: float) -> None:
        super().set_learning_rate(lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

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
        X, y = self.X, self.targets
        model, optimizer, criterion, params = self.model, self.optimizer, self.criterion, self.params
        clip, monitor, lr = self.hp.clip_grad_norm, self.monitor, self.learning_rate
        model.train()
        loss_sum = torch.zeros((), device=self.device)
        bounds = batch_bounds(len(X), self.hp.batch_size)
        n_batches = len(bounds)
        first_step = (epoch - 1) * n_batches  # the network's step count: it goes on across resumes
        for b, (lo, hi) in enumerate(bounds):
            rows = order[lo:hi]
            # asked before the forward pass: a due monitor hooks the activations it samples
            watched = monitor is not None and monitor.due(first_step + b)
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(X.index_select(0, rows)), y.index_select(0, rows))
            loss.backward()
            if watched:
                monitor.after_backward(model, first_step + b, loss=loss)
            if clip is not None:
                nn.utils.clip_grad_norm_(params, clip, foreach=True)
            optimizer.step()
            if watched:
                monitor.after_step(model, optimizer, first_step + b, lr)
            loss_sum.add_(loss.detach(), alpha=hi - lo)
            if on_batch(b, n_batches, loss_sum, hi):
                break
        return float(loss_sum) / len(X)

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
    schedule_state: dict[str, Any] | None = None,
    stopping_state: dict[str, Any] | None = None,
    progress_interval: float = 0.25,
    engine: Engine | None = None,
) -> TrainOutcome:
    """Train `hp.epochs` epochs after `start_epoch`, reporting through `callbacks`.

    Without an `engine` it trains on the CPU; for a GPU pass one from `make_engine(..., device=...)`.
    `schedule_state` is a checkpoint's "lr_schedule" entry: the schedule goes on from there when it is
    the same schedule. With `hp.early_stopping` the model ends holding its best epoch's weights;
    `stopping_state` is a checkpoint's "early_stopping" entry, from which the same early stopping goes
    on (its best epoch may then lie before `start_epoch`: its weights and result come from there).
    """
    engine = engine or make_engine(model, spec, hp, data, optimizer_state)
    schedule = LRSchedule(hp.lr_schedule, hp.learning_rate, schedule_state)
    stopper = EarlyStopping(hp.early_stopping, stopping_state) if hp.early_stopping else None
    best_state, best = _resumed_best(model, stopper, stopping_state, start_epoch)
    end_epoch = start_epoch + hp.epochs
    last: EpochResult | None = None
    n_train = len(data.X_train)
    for epoch in range(start_epoch + 1, end_epoch + 1):
        if callbacks.should_stop():
            return TrainOutcome(True, epoch - 1 - start_epoch, last)
        next_report = time.monotonic() + progress_interval
        stopped = False
        lr = schedule.lr
        engine.set_learning_rate(lr)

        def on_batch(batch: int, n_batches: int, loss_sum, seen: int, epoch=epoch, lr=lr) -> bool:
            nonlocal next_report, stopped
            if callbacks.should_stop():
                stopped = True
                return True
            if batch + 1 < n_batches:
                now = time.monotonic()
                if now >= next_report:
                    next_report = now + progress_interval
                    # the only read of the running loss inside an epoch (on a GPU, the only wait for it)
                    callbacks.on_progress(epoch, batch + 1, n_batches, float(loss_sum) / max(1, seen), lr)
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
                           len(engine.split(engine.eval_split)[1]), elapsed, eval_time, extra, engine.eval_split,
                           learning_rate=lr)
        metrics = epoch_metrics(last)
        if stopper is not None:
            if stopper.update(epoch, metrics):
                best = last
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            last.best_epoch = stopper.best_epoch
        schedule.step(metrics)
        checkpoint = {
            "model": plain_state_dict(model),
            "optimizer": engine.optimizer_state(),
            "lr_schedule": schedule.state_dict(),
            **({"early_stopping": _stopping_checkpoint(stopper, best, best_state, epoch)} if stopper else {}),
            "epoch": epoch,
            "spec": spec.to_dict(),
            "hyperparams": hp.to_dict(),
            "n_train": n_train,
        }
        callbacks.on_epoch_end(last, checkpoint)
        if stopper is not None and stopper.triggered and epoch < end_epoch:
            _restore(model, best_state)
            return TrainOutcome(False, epoch - start_epoch, last, stop_reason=stopper.reason,
                                best_epoch=stopper.best_epoch, best=best)
    if stopper is not None:
        _restore(model, best_state)
        return TrainOutcome(False, hp.epochs, last, best_epoch=stopper.best_epoch, best=best)
    return TrainOutcome(False, hp.epochs, last)


def _stopping_checkpoint(stopper: EarlyStopping, best: EpochResult | None,
                         best_state: dict[str, torch.Tensor] | None, epoch: int) -> dict[str, Any]:
    """The checkpoint's "early_stopping" entry: the stopper's state, its best epoch's result, and that
    epoch's weights when they are not the checkpoint's own, so a run resumed from here can still end
    holding them. Only then does the checkpoint carry a second copy of the weights."""
    entry: dict[str, Any] = stopper.state_dict()
    if best is not None:
        entry["best_result"] = asdict(best)
    if best_state is not None and stopper.best_epoch != epoch:
        entry["best_model"] = _plain(best_state)
    return entry


def _resumed_best(model: nn.Module, stopper: EarlyStopping | None, state: dict[str, Any] | None,
                  start_epoch: int) -> tuple[dict[str, torch.Tensor] | None, EpochResult | None]:
    """The best weights and result a resumed stopper goes on from (none for a fresh one). When the
    checkpoint is the best epoch's, the weights are the model's own as it starts."""
    if stopper is None or stopper.best_epoch is None or not state or "best_result" not in state:
        return None, None
    if stopper.best_epoch == start_epoch:
        weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    else:
        weights = state["best_model"]
    return weights, EpochResult(**state["best_result"])


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict on the CPU (loadable where there is no GPU) in the usual memory layout."""
    return _plain(model.state_dict())


def _plain(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = to_cpu(state)
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and not value.is_contiguous():
            state[key] = value.contiguous()
    return state


def _restore(model: nn.Module, state: dict[str, torch.Tensor] | None) -> None:
    """Put the best epoch's weights back (none: no epoch was ever better than nothing, e.g. all NaN)."""
    if state is not None:
        model.load_state_dict(state)
