"""Build a torch model from a `NetworkSpec`, inferring sizes and checking shapes with a dry run."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from livetrain.errors import ValidationError
from livetrain.training.spec import NetworkSpec, check_layer_order


def input_shape_for(spec: NetworkSpec, dataset_shape: list[int]) -> tuple[int, ...]:
    """The per-example shape the model receives: images keep C x H x W only for conv nets."""
    if spec.wants_images:
        if len(dataset_shape) != 3:
            raise ValidationError(
                f"Conv2d/MaxPool2d/BatchNorm2d need image data; this dataset's rows have shape {dataset_shape}")
        return tuple(dataset_shape)
    return (int(math.prod(dataset_shape)),)


def output_size(task: str, n_classes: int, n_outputs: int = 1) -> int:
    """How many outputs a network for this task must produce (`n_outputs` targets for regression)."""
    return n_classes if task == "classification" else n_outputs


class Embedding(nn.Embedding):
    """`nn.Embedding` over feature rows, which arrive as floats: each value is an index.

    Named like torch's layer so the layer table says "Embedding"; the state dict is the same.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Training data is checked once, before training (`check_embedding_inputs`); checking every
        # mini-batch would cost about a sixth of a small network's step. Other inputs (predict,
        # evaluation) are checked here, so a bad value is a clear error, not an IndexError.
        if not self.training:
            _check_indices(x.detach().cpu().numpy(), self.num_embeddings, "the input")
        return super().forward(x.long())


def _check_indices(X: np.ndarray, num_embeddings: int, what: str) -> None:
    """Raise naming the first value of `X` that is not a whole number in [0, num_embeddings)."""
    if X.size == 0:
        return
    rows = X.reshape(len(X), -1)
    # NaN fails every comparison, so it is caught as well
    good = (rows >= 0) & (rows < num_embeddings) & (rows == np.floor(rows))
    if good.all():
        return
    row, column = (int(i) for i in np.argwhere(~good)[0])
    raise ValidationError(
        f"layers[0] (Embedding) takes whole numbers in [0, {num_embeddings}) as inputs, but {what} has "
        f"{float(rows[row, column])!r} (row {row}, feature {column}); an Embedding needs a dataset whose "
        "features are unscaled integer codes, such as digits", detail={"layer": 0})


def check_embedding_inputs(model: nn.Module, X: np.ndarray, what: str) -> None:
    """Refuse inputs a first Embedding layer cannot look up; `what` names them ("the training data")."""
    first = next(iter(model), None) if isinstance(model, nn.Sequential) else None
    if isinstance(first, Embedding):
        _check_indices(np.asarray(X), first.num_embeddings, what)


def _module(layer: dict[str, Any], shape: tuple[int, ...], index: int) -> nn.Module:
    kind = layer["type"]
    where = f"layers[{index}] ({kind})"

    def need(ndim: int, what: str) -> None:
        if len(shape) != ndim:
            raise ValidationError(f"{where} expects {what} input but receives shape {list(shape)}",
                                  detail={"layer": index})

    if kind == "Linear":
        need(1, "flat (add a Flatten layer before it)")
        declared = layer.get("in_features")
        if declared is not None and declared != shape[0]:
            raise ValidationError(f"{where}: in_features is {declared} but the input has {shape[0]} features",
                                  detail={"layer": index})
        return nn.Linear(shape[0], layer["out_features"], bias=layer.get("bias", True))
    if kind == "Conv2d":
        need(3, "channels x height x width")
        declared = layer.get("in_channels")
        if declared is not None and declared != shape[0]:
            raise ValidationError(f"{where}: in_channels is {declared} but the input has {shape[0]} channels",
                                  detail={"layer": index})
        return nn.Conv2d(shape[0], layer["out_channels"], layer["kernel_size"],
                         stride=layer.get("stride", 1), padding=layer.get("padding", 0))
    if kind == "MaxPool2d":
        need(3, "channels x height x width")
        return nn.MaxPool2d(layer["kernel_size"], stride=layer.get("stride"))
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        need(1 if kind == "BatchNorm1d" else 3, "flat" if kind == "BatchNorm1d" else "channels x height x width")
        declared = layer.get("num_features")
        if declared is not None and declared != shape[0]:
            raise ValidationError(f"{where}: num_features is {declared} but the input has {shape[0]} "
                                  f"{'features' if kind == 'BatchNorm1d' else 'channels'}", detail={"layer": index})
        return getattr(nn, kind)(shape[0])
    if kind == "Embedding":
        return Embedding(layer["num_embeddings"], layer["embedding_dim"])
    if kind == "Flatten":
        return nn.Flatten()
    if kind == "Dropout":
        return nn.Dropout(layer["p"])
    if kind == "LeakyReLU":
        return nn.LeakyReLU(layer.get("negative_slope", 0.01))
    return getattr(nn, kind)()


MAX_VALUES_PER_EXAMPLE = 4_000_000  # a layer's output per example; the dry run and training hold these


def _values_out(layer: dict[str, Any], shape: tuple[int, ...]) -> int:
    """How many numbers per example a layer would produce, computed before building it."""
    kind = layer["type"]
    if kind == "Linear":
        return layer["out_features"]
    if kind == "Embedding":
        return math.prod(shape) * layer["embedding_dim"]
    if kind in ("Conv2d", "MaxPool2d") and len(shape) == 3:
        k = layer["kernel_size"]
        stride = layer.get("stride") or (k if kind == "MaxPool2d" else 1)
        pad = layer.get("padding", 0)
        channels = layer["out_channels"] if kind == "Conv2d" else shape[0]
        height = (shape[1] + 2 * pad - k) // stride + 1
        width = (shape[2] + 2 * pad - k) // stride + 1
        return channels * max(height, 0) * max(width, 0)
    return math.prod(shape)


def _layer_params(layer: dict[str, Any], shape: tuple[int, ...]) -> int:
    """Weights of the layers that can be large, counted before building them."""
    if layer["type"] == "Embedding":
        return layer["num_embeddings"] * layer["embedding_dim"]
    if layer["type"] == "Linear" and len(shape) == 1:
        return shape[0] * layer["out_features"] + (layer["out_features"] if layer.get("bias", True) else 0)
    if layer["type"] == "Conv2d" and len(shape) == 3:
        k = layer["kernel_size"]
        return shape[0] * layer["out_channels"] * k * k + layer["out_channels"]
    return 0


def build_model(
    spec: NetworkSpec,
    dataset_shape: list[int],
    task: str,
    n_classes: int,
    *,
    max_parameters: int,
    n_outputs: int = 1,
) -> nn.Sequential:
    """A model for `spec`, validated by a dry forward pass; errors name the failing layer.

    `n_outputs` is how many targets a regression dataset has per row.
    """
    torch.manual_seed(spec.seed)
    shape = input_shape_for(spec, dataset_shape)
    expected_out = output_size(task, n_classes, n_outputs)
    if spec.kind == "layer_sizes":
        return _nielsen_model(spec, shape, task, expected_out, max_parameters)

    check_layer_order(spec.layers or [])  # again: specs also arrive from storage, not only from a request
    modules: list[nn.Module] = []
    total = 0
    probe = torch.zeros((1, *shape))
    for index, layer in enumerate(spec.layers or []):
        values = _values_out(layer, tuple(probe.shape[1:]))
        if values > MAX_VALUES_PER_EXAMPLE:
            hint = "a smaller embedding_dim" if layer["type"] == "Embedding" else "fewer channels or a larger stride"
            raise ValidationError(
                f"layers[{index}] ({layer['type']}) would produce {values:,} values per example, over the "
                f"limit of {MAX_VALUES_PER_EXAMPLE:,}; use {hint}", code="too_large", detail={"layer": index})
        total += _layer_params(layer, tuple(probe.shape[1:]))
        if total > max_parameters:
            raise ValidationError(
                f"the network would have more than {max_parameters:,} parameters (at layers[{index}]); "
                "make it smaller or raise LIVETRAIN_MAX_PARAMETERS", code="too_large", detail={"layer": index})
        module = _module(layer, tuple(probe.shape[1:]), index)
        module.eval()
        try:
            with torch.no_grad():
                probe = module(probe)
        except RuntimeError as exc:
            first_line = str(exc).splitlines()[0]
            raise ValidationError(f"layers[{index}] ({layer['type']}) cannot take input of shape "
                                  f"{list(probe.shape[1:])}: {first_line}", detail={"layer": index}) from None
        if probe.numel() == 0:
            raise ValidationError(f"layers[{index}] ({layer['type']}) shrinks the input to nothing",
                                  detail={"layer": index})
        modules.append(module)
    out_shape = list(probe.shape[1:])
    if out_shape != [expected_out]:
        raise ValidationError(
            f"the last layer must give {expected_out} output(s) for this {task} dataset, it gives {out_shape}",
            detail={"layer": len(modules) - 1})
    if spec.loss == "cross_entropy" and task != "classification":
        raise ValidationError("cross_entropy needs a classification dataset; use loss 'mse' for regression")
    model = nn.Sequential(*modules)
    model.train()
    return model


def _nielsen_model(spec: NetworkSpec, shape, task: str, expected_out: int, max_parameters: int) -> nn.Sequential:
    sizes = spec.layer_sizes or []
    if task != "classification":
        # sigmoid outputs cannot reach standardized targets, so no last size would do
        raise ValidationError("layer_sizes networks classify (sigmoid outputs, quadratic cost); "
                              "for a regression dataset create the network from layers with loss 'mse', "
                              f"its last Linear giving {expected_out} output(s)", detail={"field": "layer_sizes"})
    if sizes[0] != shape[0]:
        raise ValidationError(f"layer_sizes starts with {sizes[0]} inputs but the dataset has {shape[0]} features",
                              detail={"field": "layer_sizes"})
    if sizes[-1] != expected_out:
        raise ValidationError(f"layer_sizes ends with {sizes[-1]} outputs but the dataset has {expected_out} classes",
                              detail={"field": "layer_sizes"})
    total = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if total > max_parameters:
        raise ValidationError(f"the network would have {total:,} parameters, over the limit of "
                              f"{max_parameters:,}; make it smaller or raise LIVETRAIN_MAX_PARAMETERS",
                              code="too_large", detail={"field": "layer_sizes"})
    generator = torch.Generator().manual_seed(spec.seed)
    modules: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        linear = nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            # Nielsen's network.py draws N(0, 1); "scaled" is his improved N(0, 1/fan_in) for weights.
            scale = 1.0 / math.sqrt(fan_in) if spec.init == "scaled" else 1.0
            linear.weight.copy_(torch.randn(fan_out, fan_in, generator=generator) * scale)
            linear.bias.copy_(torch.randn(fan_out, generator=generator))
        modules += [linear, nn.Sigmoid()]
    return nn.Sequential(*modules)


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def describe_layers(model: nn.Sequential, spec: NetworkSpec, dataset_shape: list[int]) -> list[dict[str, Any]]:
    """Per-layer type, output shape and parameter count (for the page's layer table)."""
    rows = []
    probe = torch.zeros((1, *input_shape_for(spec, dataset_shape)))
    model.eval()
    with torch.no_grad():
        for module in model:
            probe = module(probe)
            rows.append({
                "type": type(module).__name__,
                "output_shape": list(probe.shape[1:]),
                "parameters": sum(p.numel() for p in module.parameters()),
            })
    model.train()
    return rows
