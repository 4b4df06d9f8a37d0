"""Named heads: checked against the dataset and built on a layer's output, their losses, their metrics.

A head is a Linear on the output of one layer (`attach`), applied to the last dimension, so a
"sequence" head gives logits per position. Its loss is weighted; a multi-task network trains
on the sum of `weight * loss` over its heads and reports every head's own loss and metric.
The same code scores a network without heads on a "sequence" dataset (a language model) as one
implicit sequence head.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from livetrain.errors import ValidationError

IGNORE_INDEX = -100  # sequence targets with this value (the prompt part, padding) carry no loss
# the head tasks that fit each dataset task
TASKS_FOR_DATASET: dict[str, tuple[str, ...]] = {
    "classification": ("classification", "binary"),
    "regression": ("regression",),
    "sequence": ("sequence",),
}
MAX_VALUES_PER_CHUNK = 4_000_000  # outputs held at once while scoring (a language model's logits are T x V per row)


def _bad(index: int, head: dict[str, Any], message: str, field: str | None = None) -> ValidationError:
    where = f"heads[{index}]"
    return ValidationError(f"{where} ({head['name']}): {message}",
                           detail={"head": index, "field": f"{where}.{field}" if field else where})


def head_out_features(index: int, head: dict[str, Any], task: str, n_classes: int, n_outputs: int) -> int:
    """How many outputs a head gives (per position for a sequence head), checked against the dataset."""
    allowed = TASKS_FOR_DATASET.get(task, ())
    if head["task"] not in allowed or (head["task"] == "binary" and n_classes != 2):
        fits = " or ".join(allowed) + (" (binary: only with two classes)" if task == "classification" else "")
        raise _bad(index, head, f"a {head['task']} head does not fit this {task} dataset"
                   + (f" with {n_classes} classes" if head["task"] == "binary" else "") + f"; use {fits}", "task")
    columns = n_outputs if task == "regression" else 1
    if head["target"] >= columns:
        raise _bad(index, head, f"target {head['target']} is not a column of this dataset's targets: it has "
                   f"{columns} ({'0' if columns == 1 else f'0-{columns - 1}'})", "target")
    need = {"classification": n_classes, "binary": 1, "regression": 1, "sequence": n_classes}[head["task"]]
    if head.get("out_features") is not None and head["out_features"] != need:
        what = {"classification": "its classes", "binary": "one logit", "regression": "one target column",
                "sequence": "its vocabulary"}[head["task"]]
        raise _bad(index, head, f"out_features is {head['out_features']} but this dataset needs {need} ({what})",
                   "out_features")
    return need


def build_heads(heads: list[dict[str, Any]], layers: list[dict[str, Any]], shapes: list[tuple[int, ...]],
                task: str, n_classes: int, n_outputs: int, length: int | None = None) -> list[nn.Linear]:
    """One Linear per head on its layer's output, after checking each head fits the layer and the dataset.

    `shapes` are the layers' per-example output shapes from the dry run; `length` is the
    dataset's sequence length, which a sequence head's positions must match.
    """
    modules = []
    for index, head in enumerate(heads):
        out = head_out_features(index, head, task, n_classes, n_outputs)
        attach = head["attach"]
        if attach >= len(layers):
            raise _bad(index, head, f"attach {attach} is not a layer index (0-{len(layers) - 1})", "attach")
        shape = shapes[attach]
        source = f"layers[{attach}] ({layers[attach]['type']})"
        if head["task"] == "sequence":
            if len(shape) != 2:
                raise _bad(index, head, f"a sequence head needs a sequence (length x features) but {source} "
                           f"gives {list(shape)}", "attach")
            if length is not None and shape[0] != length:
                raise _bad(index, head, f"{source} gives {shape[0]} positions but the dataset's sequences have "
                           f"{length}; a sequence head predicts one token per input position", "attach")
        elif len(shape) != 1:
            hint = ("pool it first (SequencePool, or LSTM/GRU pooling other than 'none')" if len(shape) == 2
                    else "flatten it first")
            raise _bad(index, head, f"a {head['task']} head needs a flat vector but {source} gives "
                       f"{list(shape)}; {hint}", "attach")
        modules.append(nn.Linear(shape[-1], out))
    covered = {h["target"] for h in heads if h["task"] in TASKS_FOR_DATASET.get(task, ())}
    if task == "regression":
        missing = sorted(set(range(n_outputs)) - covered)
        if missing:
            raise ValidationError(
                f"this dataset has {n_outputs} target column(s); no regression head predicts column(s) "
                f"{', '.join(map(str, missing))}: add a head with that target, so the network predicts every target",
                detail={"field": "heads"})
    elif not covered:
        wanted = "classification (or binary)" if task == "classification" else task
        raise ValidationError(f"a {task} dataset needs at least one {wanted} head", detail={"field": "heads"})
    return modules


def head_target(head: dict[str, Any], y: torch.Tensor) -> torch.Tensor:
    """The part of a batch's targets one head learns, in the dtype and shape its loss takes."""
    task = head["task"]
    if task == "sequence":
        return y.long()
    column = y if y.dim() == 1 else y.reshape(len(y), -1)[:, head["target"]]
    if task == "classification":
        return column.long()
    return column.float().unsqueeze(1)  # binary and regression: one column, like the head's output


def _loss_sum(head: dict[str, Any], out: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
    """A head's summed loss over a batch and how many terms it sums (examples, or tokens for a sequence)."""
    loss = head["loss"]
    if head["task"] == "sequence":
        flat = target.reshape(-1)
        total = functional.cross_entropy(out.reshape(len(flat), -1), flat, ignore_index=IGNORE_INDEX,
                                         reduction="sum")
        return total, int((flat != IGNORE_INDEX).sum())
    if loss == "cross_entropy":
        return functional.cross_entropy(out, target, reduction="sum"), len(target)
    if loss == "bce_with_logits":
        return functional.binary_cross_entropy_with_logits(out, target, reduction="sum"), len(target)
    if loss == "huber":
        return functional.huber_loss(out, target, reduction="sum"), out.numel()
    return functional.mse_loss(out, target, reduction="sum"), out.numel()


def head_loss(head: dict[str, Any], out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A head's mean loss on a batch (a batch whose tokens are all ignored contributes zero)."""
    total, count = _loss_sum(head, out, head_target(head, y))
    return total / max(count, 1)


class HeadsLoss(nn.Module):
    """The multi-task loss: the sum over heads of weight x that head's mean loss."""

    def __init__(self, heads: list[dict[str, Any]]) -> None:
        super().__init__()
        self.heads = [dict(h) for h in heads]

    def forward(self, outputs: dict[str, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        return sum(h["weight"] * head_loss(h, outputs[h["name"]], y) for h in self.heads)


# a network without heads on a sequence dataset is scored as this one head
IMPLICIT_SEQUENCE_HEAD = {"name": "output", "task": "sequence", "loss": "cross_entropy", "weight": 1.0, "target": 0}


class SequenceLoss(nn.Module):
    """Per-token cross-entropy of (N, T, V) logits against (N, T) targets, ignoring -100."""

    def forward(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return head_loss(IMPLICIT_SEQUENCE_HEAD, outputs, y)


def r2_score(outputs: np.ndarray, y: np.ndarray) -> float:
    """R² of each target column, averaged (scikit-learn's "uniform_average"); a constant target scores by its error."""
    pred = np.asarray(outputs).reshape(len(y), -1).astype(np.float64)
    target = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    ss_res = ((pred - target) ** 2).sum(axis=0)
    ss_tot = ((target - target.mean(axis=0)) ** 2).sum(axis=0)
    ss_tot[ss_tot == 0] = 1.0
    return float(np.mean(1.0 - ss_res / ss_tot))


def perplexity(mean_token_loss: float) -> float:
    """exp(mean token loss), kept finite for JSON."""
    return math.exp(min(mean_token_loss, 700.0))


class _Tally:
    """One head's sums over an evaluation."""

    def __init__(self, head: dict[str, Any]) -> None:
        self.head = head
        self.loss = 0.0
        self.count = 0
        self.correct = 0
        self.outputs: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []

    def add(self, out: torch.Tensor, y: torch.Tensor) -> None:
        target = head_target(self.head, y)
        total, count = _loss_sum(self.head, out, target)
        self.loss += float(total)
        self.count += count
        task = self.head["task"]
        if task == "sequence":
            self.correct += int(((out.argmax(dim=-1) == target) & (target != IGNORE_INDEX)).sum())
        elif task == "classification":
            self.correct += int((out.argmax(dim=1) == target).sum())
        elif task == "binary":
            self.correct += int(((out > 0).float() == target).sum())
        else:
            self.outputs.append(out.cpu().numpy())
            self.targets.append(target.cpu().numpy())

    def metrics(self) -> dict[str, float]:
        mean = self.loss / max(self.count, 1)
        out = {"loss": mean}
        task = self.head["task"]
        if task == "regression":
            out["r2"] = r2_score(np.concatenate(self.outputs), np.concatenate(self.targets))
        else:
            # a sequence head counts tokens; the others count examples (regression: values, not used here)
            out["accuracy"] = self.correct / max(self.count, 1)
        if task == "sequence":
            out["perplexity"] = perplexity(mean)
        return out


def score_heads(model: nn.Module, heads: list[dict[str, Any]] | None, task: str, X: np.ndarray, y: np.ndarray, *,
                shape: tuple[int, ...], device: torch.device, values_per_row: int = 1,
                ) -> tuple[float, int | None, float | None, dict[str, float]]:
    """(loss, correct, accuracy, extra) of a network with heads, or of a language model without.

    The loss is the weighted total over heads. `correct` and `accuracy` are those of the output
    a network without heads would give (the first classification head's; a sequence dataset's
    accuracy is its first sequence head's token accuracy, with `correct` None). `extra` has each
    head's metrics as `head.<name>.<metric>` (loss; accuracy, r2 or perplexity), plus `r2` for
    a regression dataset and `perplexity` for a sequence dataset. Scored in chunks, so a
    language model's logits over a whole split never exist at once.
    """
    headed = heads is not None
    heads = heads if headed else [IMPLICIT_SEQUENCE_HEAD]
    tallies = [_Tally(h) for h in heads]
    chunk = max(1, min(2048, MAX_VALUES_PER_CHUNK // max(1, values_per_row)))
    dataset_outputs = []
    model.eval()
    try:
        with torch.no_grad():
            for lo in range(0, len(X), chunk):
                xb = torch.from_numpy(np.ascontiguousarray(X[lo:lo + chunk])).reshape(-1, *shape).to(device)
                yb = torch.from_numpy(np.ascontiguousarray(y[lo:lo + chunk])).to(device)
                outs = model.forward_heads(xb) if headed else {heads[0]["name"]: model(xb)}
                for tally in tallies:
                    tally.add(outs[tally.head["name"]], yb)
                if headed and task != "sequence":
                    dataset_outputs.append(model.dataset_output(outs).cpu().numpy())
    finally:
        model.train()
    metrics = {t.head["name"]: t.metrics() for t in tallies}
    total = sum(h["weight"] * metrics[h["name"]]["loss"] for h in heads)
    extra: dict[str, float] = {}
    if headed:
        for name, values in metrics.items():
            extra.update({f"head.{name}.{metric}": value for metric, value in values.items()})
    if task == "sequence":
        primary = next(h for h in heads if h["task"] == "sequence")["name"]
        extra["perplexity"] = metrics[primary]["perplexity"]
        return total, None, metrics[primary]["accuracy"], extra
    outputs = np.concatenate(dataset_outputs) if dataset_outputs else np.zeros((0, 1), dtype=np.float32)
    if task == "classification":
        correct = int((outputs.argmax(axis=1) == y).sum())
        return total, correct, correct / max(len(y), 1), extra
    extra["r2"] = r2_score(outputs, y)
    return total, None, None, extra
