"""Build a torch model from a `NetworkSpec`, inferring sizes and checking shapes with a dry run."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

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
    """How many outputs a network for this task must produce.

    `n_outputs` targets for regression; the vocabulary (`n_classes`) per position for "sequence".
    """
    return n_classes if task in ("classification", "sequence") else n_outputs


# -- the padding mask -------------------------------------------------------------------------------
# A sequence batch is (N, T, F). The mask is a bool (N, T) tensor, True where a position is padding.
# It is derived once, from the token ids at the Embedding, and carried to the layers that read it.
# Position 0 is never masked: an empty text then still has one position to attend to and pool,
# so no row of an attention or a mean is empty (which would give NaN).


def padding_mask(ids: torch.Tensor, padding_idx: int) -> torch.Tensor:
    """True where `ids` (N, T) hold the padding token, except at position 0."""
    pad = ids == padding_idx
    pad[:, 0] = False
    return pad


def _lengths(pad: torch.Tensor) -> torch.Tensor:
    """Per row, one past the last position that is not padding (right-padded rows: their length)."""
    positions = torch.arange(1, pad.shape[1] + 1, device=pad.device)
    return ((~pad) * positions).amax(dim=1)


def _causal_mask(length: int, device) -> torch.Tensor:
    """True above the diagonal: position t may not look at positions after t."""
    return torch.ones(length, length, dtype=torch.bool, device=device).triu(1)


def _pool(x: torch.Tensor, pad: torch.Tensor | None, mode: str) -> torch.Tensor:
    """(N, T, F) -> (N, F) over the positions that are not padding."""
    if mode == "first":
        return x[:, 0]
    if pad is None:
        if mode == "mean":
            return x.mean(dim=1)
        if mode == "max":
            return x.amax(dim=1)
        return x[:, -1]
    if mode == "mean":
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        return (x * keep).sum(dim=1) / keep.sum(dim=1)
    if mode == "max":
        return x.masked_fill(pad.unsqueeze(-1), float("-inf")).amax(dim=1)
    last = (_lengths(pad) - 1).view(-1, 1, 1).expand(-1, 1, x.shape[2])
    return x.gather(1, last).squeeze(1)


class MaskAware:
    """A layer that reads (and passes on, or ends) the padding mask: `step(x, pad) -> (x, pad)`."""

    def step(self, x: torch.Tensor, pad: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError


class Embedding(MaskAware, nn.Embedding):
    """`nn.Embedding` over feature rows, which arrive as floats: each value is an index.

    Named like torch's layer so the layer table says "Embedding"; the state dict is the same.
    With a `padding_idx` (text: token 0), that token's vector is zero and stays zero, and the
    positions holding it form the padding mask the later sequence layers respect.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Training data is checked once, before training (`check_embedding_inputs`); checking every
        # mini-batch would cost about a sixth of a small network's step. Other inputs (predict,
        # evaluation) are checked here, so a bad value is a clear error, not an IndexError.
        if not self.training:
            _check_indices(x.detach().cpu().numpy(), self.num_embeddings, "the input")
        return super().forward(x.long())

    def step(self, x, pad):
        out = self(x)
        if self.padding_idx is None or x.dim() != 2:
            return out, None
        return out, padding_mask(x, self.padding_idx)


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
        "features are unscaled integer codes, such as digits or token ids", detail={"layer": 0})


def first_layer(model: nn.Module) -> nn.Module | None:
    """The module the inputs enter first."""
    if isinstance(model, HeadedModel):
        model = model.layers
    return next(iter(model), None) if isinstance(model, nn.Sequential) else None


def check_embedding_inputs(model: nn.Module, X: np.ndarray, what: str) -> None:
    """Refuse inputs a first Embedding layer cannot look up; `what` names them ("the training data")."""
    first = first_layer(model)
    if isinstance(first, Embedding):
        _check_indices(np.asarray(X), first.num_embeddings, what)


class PositionalEncoding(nn.Module):
    """Adds where each position is to (N, T, E): fixed sines and cosines, or a learned vector per position."""

    def __init__(self, dim: int, kind: str = "sinusoidal", max_len: int = 512) -> None:
        super().__init__()
        self.kind, self.max_len = kind, max_len
        if kind == "learned":
            self.weight = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        else:
            position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
            rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
            table = torch.zeros(max_len, dim)
            table[:, 0::2] = torch.sin(position * rate)
            table[:, 1::2] = torch.cos(position * rate[: dim // 2])
            # not persistent: it is a formula of max_len and dim, so a checkpoint need not carry it
            self.register_buffer("weight", table, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight[: x.shape[1]]


class _Recurrent(MaskAware):
    """LSTM/GRU over (N, T, F), batch first, pooled to (N, H*dirs) unless pooling is "none"."""

    pooling = "last"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.step(x, None)[0]

    def step(self, x, pad):
        if pad is not None:
            # packed, so neither direction reads padding: the forward pass stops at each row's end and
            # the backward pass starts there
            packed = pack_padded_sequence(x, _lengths(pad).cpu(), batch_first=True, enforce_sorted=False)
            out, state = super().forward(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        else:
            out, state = super().forward(x)
        if self.pooling == "none":
            return out, pad
        if self.pooling == "last":
            h = state[0] if isinstance(state, tuple) else state  # an LSTM's (h, c)
            # the last layer's final state of each direction: forward at the row's end, backward at 0
            return (torch.cat([h[-2], h[-1]], dim=1) if self.bidirectional else h[-1]), None
        return _pool(out, pad, self.pooling), None


class LSTM(_Recurrent, nn.LSTM):
    """`nn.LSTM` (batch first) with pooling and the padding mask."""


class GRU(_Recurrent, nn.GRU):
    """`nn.GRU` (batch first) with pooling and the padding mask."""


class Conv1d(MaskAware, nn.Conv1d):
    """`nn.Conv1d` over a sequence laid out (N, T, F): channels are the features, time the length."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)

    def step(self, x, pad):
        out = self(x)
        if pad is None:
            return out, None
        # a position of the output is real when its window covers at least one real input position
        window = torch.ones(1, 1, self.kernel_size[0], device=x.device)
        real = nn.functional.conv1d((~pad).unsqueeze(1).float(), window, stride=self.stride,
                                    padding=self.padding).squeeze(1)
        new_pad = real <= 0
        new_pad[:, 0] = False
        return out, new_pad


class MultiheadAttention(MaskAware, nn.MultiheadAttention):
    """Self-attention over (N, T, E): padding positions are never attended to; causal looks only back."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0, causal: bool = False) -> None:
        super().__init__(dim, num_heads, dropout=dropout, batch_first=True)
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.step(x, None)[0]

    def step(self, x, pad):
        mask = _causal_mask(x.shape[1], x.device) if self.causal else None
        out, _ = super().forward(x, x, x, key_padding_mask=pad, attn_mask=mask, need_weights=False)
        return out, pad


class TransformerEncoderLayer(MaskAware, nn.TransformerEncoderLayer):
    """One Transformer encoder block over (N, T, E), batch first, padding-masked, optionally causal."""

    def __init__(self, dim: int, num_heads: int, dim_feedforward: int, dropout: float = 0.1,
                 causal: bool = False) -> None:
        super().__init__(dim, num_heads, dim_feedforward=dim_feedforward, dropout=dropout, batch_first=True)
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.step(x, None)[0]

    def step(self, x, pad):
        mask = _causal_mask(x.shape[1], x.device) if self.causal else None
        return super().forward(x, src_mask=mask, src_key_padding_mask=pad, is_causal=self.causal), pad


class SequencePool(MaskAware, nn.Module):
    """(N, T, F) -> (N, F): the mean, max, last or first of the positions that are not padding."""

    def __init__(self, mode: str = "mean") -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pool(x, None, self.mode)

    def step(self, x, pad):
        return _pool(x, pad, self.mode), None

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def _step(module: nn.Module, x: torch.Tensor, pad: torch.Tensor | None):
    """One layer with the padding mask: a layer that does not read it keeps it while the length stays."""
    if isinstance(module, MaskAware):
        return module.step(x, pad)
    x = module(x)
    if pad is not None and (x.dim() != 3 or x.shape[1] != pad.shape[1]):
        pad = None  # a Flatten (or anything else that mixes positions) ends the sequence
    return x, pad


class LayerStack(nn.Sequential):
    """An `nn.Sequential` that threads the padding mask from the Embedding to the layers that read it.

    Its state dict is an `nn.Sequential`'s ("0.weight", ...).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = None
        for module in self:
            x, pad = _step(module, x, pad)
        return x

    def trace(self, x: torch.Tensor, upto: int) -> list[torch.Tensor]:
        """The outputs of layers 0..upto."""
        outs = []
        pad = None
        for module in self[: upto + 1]:
            x, pad = _step(module, x, pad)
            outs.append(x)
        return outs


class HeadedModel(nn.Module):
    """Layers with named heads: each head a Linear on one layer's output (per position for "sequence").

    In training mode `forward` gives every head's output, a dict by head name, for the multi-task
    loss; in eval mode it gives what a network without heads would give for the dataset (the
    first classification head's logits, the regression heads' columns in target order, or the
    first sequence head's logits), so prediction and examples work unchanged.
    """

    def __init__(self, layers: LayerStack, heads: list[dict[str, Any]], modules: list[nn.Linear], task: str,
                 n_outputs: int) -> None:
        super().__init__()
        self.layers = layers
        self.heads = nn.ModuleList(modules)
        self.head_specs = [dict(h) for h in heads]
        self.task = task
        self.n_outputs = n_outputs
        self.deepest = max(h["attach"] for h in heads)

    def forward_heads(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every head's output, by name."""
        outs = self.layers.trace(x, self.deepest)
        return {h["name"]: module(outs[h["attach"]]) for h, module in zip(self.head_specs, self.heads)}

    def forward(self, x: torch.Tensor):
        outs = self.forward_heads(x)
        return outs if self.training else self.dataset_output(outs)

    def primary(self) -> int:
        """Index of the head whose output stands for the network's (for classification and sequence)."""
        wanted = {"classification": ("classification", "binary"), "sequence": ("sequence",)}.get(self.task, ())
        return next((i for i, h in enumerate(self.head_specs) if h["task"] in wanted), 0)

    def dataset_output(self, outs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The heads' outputs in the layout of a network without heads for this dataset."""
        if self.task == "regression":
            columns = {}
            for h in self.head_specs:
                columns.setdefault(h["target"], outs[h["name"]])
            return torch.cat([columns[j] for j in range(self.n_outputs)], dim=1)
        head = self.head_specs[self.primary()]
        out = outs[head["name"]]
        if head["task"] == "binary":  # logits [0, z]: their softmax is [1 - sigmoid(z), sigmoid(z)]
            out = torch.cat([torch.zeros_like(out), out], dim=1)
        return out

    def __iter__(self):
        """The modules from the input to the network's output: the layers, then the primary head."""
        yield from self.layers
        yield self.heads[self.primary()]


def _module(layer: dict[str, Any], shape: tuple[int, ...], index: int) -> nn.Module:
    kind = layer["type"]
    where = f"layers[{index}] ({kind})"

    def need(ndim: int, what: str) -> None:
        if len(shape) != ndim:
            raise ValidationError(f"{where} expects {what} input but receives shape {list(shape)}",
                                  detail={"layer": index})

    def declared(name: str, actual: int, noun: str) -> None:
        value = layer.get(name)
        if value is not None and value != actual:
            raise ValidationError(f"{where}: {name} is {value} but the input has {actual} {noun}",
                                  detail={"layer": index})

    sequence = "a sequence (length x features)"
    if kind == "Linear":
        if len(shape) not in (1, 2):
            raise ValidationError(f"{where} expects flat (add a Flatten layer before it) or {sequence} input "
                                  f"but receives shape {list(shape)}", detail={"layer": index})
        declared("in_features", shape[-1], "features")
        return nn.Linear(shape[-1], layer["out_features"], bias=layer.get("bias", True))
    if kind == "Conv2d":
        need(3, "channels x height x width")
        declared("in_channels", shape[0], "channels")
        return nn.Conv2d(shape[0], layer["out_channels"], layer["kernel_size"],
                         stride=layer.get("stride", 1), padding=layer.get("padding", 0))
    if kind == "MaxPool2d":
        need(3, "channels x height x width")
        return nn.MaxPool2d(layer["kernel_size"], stride=layer.get("stride"))
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        need(1 if kind == "BatchNorm1d" else 3, "flat" if kind == "BatchNorm1d" else "channels x height x width")
        declared("num_features", shape[0], "features" if kind == "BatchNorm1d" else "channels")
        return getattr(nn, kind)(shape[0])
    if kind == "Embedding":
        return Embedding(layer["num_embeddings"], layer["embedding_dim"], padding_idx=layer.get("padding_idx"))
    if kind == "PositionalEncoding":
        need(2, sequence)
        if shape[0] > layer.get("max_len", 512):
            raise ValidationError(f"{where}: the sequence has {shape[0]} positions but max_len is "
                                  f"{layer.get('max_len', 512)}; raise max_len", detail={"layer": index})
        return PositionalEncoding(shape[1], layer.get("kind", "sinusoidal"), layer.get("max_len", 512))
    if kind in ("LSTM", "GRU"):
        need(2, sequence)
        module = (LSTM if kind == "LSTM" else GRU)(
            shape[1], layer["hidden_size"], num_layers=layer.get("num_layers", 1), batch_first=True,
            bidirectional=layer.get("bidirectional", False), dropout=layer.get("dropout", 0.0))
        module.pooling = layer.get("pooling", "last")
        return module
    if kind == "Conv1d":
        need(2, sequence)
        declared("in_channels", shape[1], "features")
        return Conv1d(shape[1], layer["out_channels"], layer["kernel_size"], stride=layer.get("stride", 1),
                      padding=layer.get("padding", 0))
    if kind == "LayerNorm":
        return nn.LayerNorm(shape[-1])
    if kind in ("MultiheadAttention", "TransformerEncoderLayer"):
        need(2, sequence)
        dim, heads = shape[1], layer["num_heads"]
        if dim % heads:
            raise ValidationError(
                f"{where}: embedding_dim {dim} (the input's features) is not divisible by num_heads {heads}; "
                f"each head takes embedding_dim / num_heads features, so pick num_heads dividing {dim} or "
                "change the width before this layer", detail={"layer": index})
        if kind == "MultiheadAttention":
            return MultiheadAttention(dim, heads, dropout=layer.get("dropout", 0.0), causal=layer.get("causal", False))
        return TransformerEncoderLayer(dim, heads, layer.get("dim_feedforward") or 4 * dim,
                                       dropout=layer.get("dropout", 0.1), causal=layer.get("causal", False))
    if kind == "SequencePool":
        need(2, sequence)
        return SequencePool(layer.get("mode", "mean"))
    if kind == "Flatten":
        return nn.Flatten()
    if kind == "Dropout":
        return nn.Dropout(layer["p"])
    if kind == "LeakyReLU":
        return nn.LeakyReLU(layer.get("negative_slope", 0.01))
    return getattr(nn, kind)()


MAX_VALUES_PER_EXAMPLE = 4_000_000  # a layer's output per example; the dry run and training hold these


def _values_out(layer: dict[str, Any], shape: tuple[int, ...]) -> int:
    """How many numbers per example a layer would produce (or hold while working), computed before building it."""
    kind = layer["type"]
    if kind == "Linear":
        return math.prod(shape[:-1]) * layer["out_features"]
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
    if len(shape) == 2:
        length = shape[0]
        if kind in ("LSTM", "GRU"):
            return length * layer["hidden_size"] * (2 if layer.get("bidirectional") else 1)
        if kind == "Conv1d":
            out_length = (length + 2 * layer.get("padding", 0) - layer["kernel_size"]) // layer.get("stride", 1) + 1
            return max(out_length, 0) * layer["out_channels"]
        if kind == "MultiheadAttention":  # the attention weights: T x T per head
            return math.prod(shape) + length * length * layer["num_heads"]
        if kind == "TransformerEncoderLayer":
            return length * (layer.get("dim_feedforward") or 4 * shape[1]) + length * length * layer["num_heads"]
    return math.prod(shape)


def _layer_params(layer: dict[str, Any], shape: tuple[int, ...]) -> int:
    """Weights of the layers that can be large, counted before building them."""
    kind = layer["type"]
    if kind == "Embedding":
        return layer["num_embeddings"] * layer["embedding_dim"]
    if kind == "Linear" and len(shape) in (1, 2):
        return shape[-1] * layer["out_features"] + (layer["out_features"] if layer.get("bias", True) else 0)
    if kind == "Conv2d" and len(shape) == 3:
        k = layer["kernel_size"]
        return shape[0] * layer["out_channels"] * k * k + layer["out_channels"]
    if len(shape) != 2:
        return 0
    features = shape[1]
    if kind in ("LSTM", "GRU"):
        gates = 4 if kind == "LSTM" else 3
        hidden, dirs = layer["hidden_size"], 2 if layer.get("bidirectional") else 1
        total, width = 0, features
        for _ in range(layer.get("num_layers", 1)):
            total += dirs * gates * hidden * (width + hidden + 2)
            width = hidden * dirs
        return total
    if kind == "Conv1d":
        return features * layer["out_channels"] * layer["kernel_size"] + layer["out_channels"]
    if kind == "PositionalEncoding" and layer.get("kind") == "learned":
        return layer.get("max_len", 512) * features
    attention = 4 * features * features + 4 * features
    if kind == "MultiheadAttention":
        return attention
    if kind == "TransformerEncoderLayer":
        hidden = layer.get("dim_feedforward") or 4 * features
        return attention + 2 * features * hidden + hidden + features + 4 * features
    return 0


def _check_caps(layer: dict[str, Any], shape: tuple[int, ...], index: int, total: int, max_parameters: int) -> int:
    """Refuse a layer too large to build, before building it; return the running parameter total."""
    values = _values_out(layer, shape)
    if values > MAX_VALUES_PER_EXAMPLE:
        hints = {"Embedding": "a smaller embedding_dim", "MultiheadAttention": "shorter sequences or fewer heads",
                 "TransformerEncoderLayer": "shorter sequences, fewer heads or a smaller dim_feedforward"}
        hint = hints.get(layer["type"], "fewer channels or a larger stride")
        raise ValidationError(
            f"layers[{index}] ({layer['type']}) would produce {values:,} values per example, over the "
            f"limit of {MAX_VALUES_PER_EXAMPLE:,}; use {hint}", code="too_large", detail={"layer": index})
    total += _layer_params(layer, shape)
    if total > max_parameters:
        raise ValidationError(
            f"the network would have more than {max_parameters:,} parameters (at layers[{index}]); "
            "make it smaller or raise LIVETRAIN_MAX_PARAMETERS", code="too_large", detail={"layer": index})
    return total


def build_model(
    spec: NetworkSpec,
    dataset_shape: list[int],
    task: str,
    n_classes: int,
    *,
    max_parameters: int,
    n_outputs: int = 1,
) -> nn.Module:
    """A model for `spec`, validated by a dry forward pass; errors name the failing layer or head.

    `n_outputs` is how many targets a regression dataset has per row; for a "sequence" dataset
    (a language model) `n_classes` is the vocabulary size. Without heads and without a padding
    Embedding the model is a plain `nn.Sequential`, as it always was (so stored weights load).
    """
    torch.manual_seed(spec.seed)
    shape = input_shape_for(spec, dataset_shape)
    expected_out = output_size(task, n_classes, n_outputs)
    if spec.kind == "layer_sizes":
        return _nielsen_model(spec, shape, task, expected_out, max_parameters)

    layers = spec.layers or []
    check_layer_order(layers)  # again: specs also arrive from storage, not only from a request
    modules: list[nn.Module] = []
    shapes: list[tuple[int, ...]] = []
    total = 0
    probe, pad = torch.zeros((1, *shape)), None
    for index, layer in enumerate(layers):
        total = _check_caps(layer, tuple(probe.shape[1:]), index, total, max_parameters)
        module = _module(layer, tuple(probe.shape[1:]), index)
        module.eval()
        try:
            with torch.no_grad():
                probe, pad = _step(module, probe, pad)
        except RuntimeError as exc:
            first_line = str(exc).splitlines()[0]
            raise ValidationError(f"layers[{index}] ({layer['type']}) cannot take input of shape "
                                  f"{list(probe.shape[1:])}: {first_line}", detail={"layer": index}) from None
        if probe.numel() == 0:
            raise ValidationError(f"layers[{index}] ({layer['type']}) shrinks the input to nothing",
                                  detail={"layer": index})
        modules.append(module)
        shapes.append(tuple(probe.shape[1:]))
    masked = bool(layers) and layers[0]["type"] == "Embedding" and layers[0].get("padding_idx") is not None
    if spec.heads:
        from livetrain.training.heads import build_heads

        head_modules = build_heads(spec.heads, layers, shapes, task, n_classes, n_outputs,
                                   length=shape[0] if task == "sequence" else None)
        total += sum(p.numel() for m in head_modules for p in m.parameters())
        if total > max_parameters:
            raise ValidationError(f"the network would have more than {max_parameters:,} parameters (with its "
                                  "heads); make it smaller or raise LIVETRAIN_MAX_PARAMETERS", code="too_large")
        model: nn.Module = HeadedModel(LayerStack(*modules), spec.heads, head_modules, task, n_outputs)
    else:
        _check_output(spec, list(shapes[-1]) if shapes else list(shape), task, expected_out, len(modules) - 1,
                      shape[0])
        model = LayerStack(*modules) if masked else nn.Sequential(*modules)
    model.train()
    return model


def _check_output(spec: NetworkSpec, out_shape: list[int], task: str, expected_out: int, last: int,
                  length: int) -> None:
    """The last layer of a network without heads gives what the dataset's targets need."""
    if task == "sequence":
        if out_shape != [length, expected_out]:
            raise ValidationError(
                f"the last layer must give {expected_out} logits (the vocabulary) at each of the {length} "
                f"positions for this sequence dataset, i.e. shape {[length, expected_out]}, it gives {out_shape}",
                detail={"layer": last})
        if spec.loss != "cross_entropy":
            raise ValidationError("a sequence dataset trains with loss 'cross_entropy' (per token)")
        return
    if out_shape != [expected_out]:
        raise ValidationError(
            f"the last layer must give {expected_out} output(s) for this {task} dataset, it gives {out_shape}",
            detail={"layer": last})
    if spec.loss == "cross_entropy" and task != "classification":
        raise ValidationError("cross_entropy needs a classification dataset; use loss 'mse' for regression")


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


def describe_layers(model: nn.Module, spec: NetworkSpec, dataset_shape: list[int]) -> list[dict[str, Any]]:
    """Per-layer type, output shape and parameter count (for the page's layer table), then one row per head."""
    rows = []
    probe, pad = torch.zeros((1, *input_shape_for(spec, dataset_shape))), None
    layers = model.layers if isinstance(model, HeadedModel) else model
    model.eval()
    outs = []
    with torch.no_grad():
        for module in layers:
            probe, pad = _step(module, probe, pad)
            outs.append(probe)
            rows.append({
                "type": type(module).__name__,
                "output_shape": list(probe.shape[1:]),
                "parameters": sum(p.numel() for p in module.parameters()),
            })
        if isinstance(model, HeadedModel):
            for head, module in zip(model.head_specs, model.heads):
                rows.append({
                    "type": "Head", "name": head["name"], "task": head["task"], "attach": head["attach"],
                    "output_shape": list(module(outs[head["attach"]]).shape[1:]),
                    "parameters": sum(p.numel() for p in module.parameters()),
                })
    model.train()
    return rows
