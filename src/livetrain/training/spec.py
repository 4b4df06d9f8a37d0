"""Typed, validated network specs and hyper-parameters.

These are checked at the API edge (`parse_network_spec`, `parse_hyperparams`) and travel
as plain dicts to worker processes, where `NetworkSpec.from_dict` rebuilds them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from livetrain.errors import ValidationError
from livetrain.training.monitor_options import parse_monitor_options

LOSSES = ("cross_entropy", "mse")
OPTIMIZERS = ("sgd", "adam", "adamw")
INITS = ("scaled", "standard")

# type -> {parameter: (kind, required, default)}
LAYER_PARAMS: dict[str, dict[str, tuple[str, bool, Any]]] = {
    "Linear": {"out_features": ("int", True, None), "in_features": ("int", False, None), "bias": ("bool", False, True)},
    "Conv2d": {"out_channels": ("int", True, None), "kernel_size": ("int", True, None),
               "stride": ("int", False, 1), "padding": ("int", False, 0), "in_channels": ("int", False, None)},
    "MaxPool2d": {"kernel_size": ("int", True, None), "stride": ("int", False, None)},
    "Flatten": {},
    "Dropout": {"p": ("float", False, 0.5)},
    "BatchNorm1d": {"num_features": ("int", False, None)},
    "BatchNorm2d": {"num_features": ("int", False, None)},
    "ReLU": {},
    "LeakyReLU": {"negative_slope": ("float", False, 0.01)},
    "GELU": {},
    "Sigmoid": {},
    "Tanh": {},
    "Embedding": {"num_embeddings": ("int", True, None), "embedding_dim": ("int", True, None)},
}
IMAGE_LAYERS = {"Conv2d", "MaxPool2d", "BatchNorm2d"}
MAX_LAYERS = 200
MAX_WIDTH = 1_000_000
# (type, parameter) -> (low, high) where a whole-number parameter's range is not [1, MAX_WIDTH]
INT_RANGES: dict[tuple[str, str], tuple[int, int]] = {
    ("Conv2d", "padding"): (0, MAX_WIDTH),
    ("Embedding", "num_embeddings"): (2, 100_000),
    ("Embedding", "embedding_dim"): (1, 1024),
}


@dataclass
class NetworkSpec:
    """What a network is: its layers, loss and default optimizer settings."""

    kind: str  # "layer_sizes" | "layers"
    layer_sizes: list[int] | None = None
    layers: list[dict[str, Any]] | None = None
    loss: str = "quadratic"
    optimizer: str = "sgd"
    learning_rate: float = 3.0
    momentum: float = 0.0
    weight_decay: float = 0.0
    init: str = "scaled"
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (what is stored and sent to workers)."""
        out = dataclasses.asdict(self)
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        """Inverse of `to_dict`."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def wants_images(self) -> bool:
        """True when inputs must keep their channels x height x width shape."""
        return any(layer["type"] in IMAGE_LAYERS for layer in self.layers or [])


@dataclass
class HyperParams:
    """How one run trains."""

    epochs: int = 5
    batch_size: int = 10
    learning_rate: float = 3.0
    optimizer: str = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HyperParams:
        """Inverse of `to_dict`."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _number(value: Any, name: str, *, kind: type, low: float, high: float, low_open: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{name} must be a number", detail={"field": name})
    if kind is int and (not float(value).is_integer()):
        raise ValidationError(f"{name} must be a whole number", detail={"field": name})
    value = kind(value)
    if value != value or value < low or value > high or (low_open and value == low):
        bound = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise ValidationError(f"{name} must be in {bound}, got {value}", detail={"field": name})
    return value


def _choice(value: Any, name: str, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in options:
        raise ValidationError(f"{name} must be one of {', '.join(options)}", detail={"field": name})
    return value.lower()


def parse_layer(index: int, raw: Any) -> dict[str, Any]:
    """Validate one layer spec; errors name the layer."""
    where = f"layers[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise ValidationError(f"{where} must be an object with a 'type'", detail={"layer": index})
    kind = next((name for name in LAYER_PARAMS if name.lower() == raw["type"].lower()), None)
    if kind is None:
        raise ValidationError(
            f"{where}: unknown layer type {raw['type']!r}; known: {', '.join(LAYER_PARAMS)}",
            detail={"layer": index},
        )
    params = LAYER_PARAMS[kind]
    unknown = set(raw) - set(params) - {"type"}
    if unknown:
        raise ValidationError(f"{where} ({kind}): unknown parameter(s) {', '.join(sorted(unknown))}",
                              detail={"layer": index})
    out: dict[str, Any] = {"type": kind}
    for name, (ptype, required, default) in params.items():
        if name not in raw or raw[name] is None:
            if required:
                raise ValidationError(f"{where} ({kind}): '{name}' is required",
                                      detail={"layer": index, "field": f"{where}.{name}"})
            if default is not None:
                out[name] = default
            continue
        value = raw[name]
        label = f"{where}.{name}"
        try:
            out[name] = _layer_value(ptype, kind, name, value, label)
        except ValidationError as exc:
            exc.detail = {"layer": index, "field": label}  # both, like every other layer error
            raise
    if kind == "Dropout" and out["p"] >= 1.0:
        raise ValidationError(f"{where} (Dropout): p must be below 1", detail={"layer": index, "field": f"{where}.p"})
    return out


def _layer_value(ptype: str, kind: str, name: str, value: Any, label: str) -> Any:
    """One layer parameter, type- and range-checked."""
    if ptype == "int":
        low, high = INT_RANGES.get((kind, name), (1, MAX_WIDTH))
        return _number(value, label, kind=int, low=low, high=high)
    if ptype == "float":
        return _number(value, label, kind=float, low=0.0, high=1.0 if name == "p" else 100.0)
    if not isinstance(value, bool):
        raise ValidationError(f"{label} must be true or false", detail={"field": label})
    return value


def check_layer_order(layers: list[dict[str, Any]]) -> None:
    """Refuse an Embedding anywhere but first: it looks up the raw input values, which only the data gives."""
    for index, layer in enumerate(layers):
        if index and layer["type"] == "Embedding":
            raise ValidationError(
                f"layers[{index}] (Embedding) must be the first layer: it looks up the dataset's integer "
                "feature values, and a later layer would receive another layer's outputs instead",
                detail={"layer": index, "field": f"layers[{index}].type"})


def parse_network_spec(body: dict[str, Any]) -> NetworkSpec:
    """A `NetworkSpec` from a create-network request body (already type-checked loosely)."""
    layers = body.get("layers")
    seed = _number(body.get("seed", 0), "seed", kind=int, low=0, high=2**31 - 1)
    if layers is not None:
        if body.get("layer_sizes") is not None:
            raise ValidationError("give either layer_sizes or layers, not both")
        if not isinstance(layers, list) or not layers:
            raise ValidationError("layers must be a non-empty list of layer specs")
        if len(layers) > MAX_LAYERS:
            raise ValidationError(f"at most {MAX_LAYERS} layers")
        parsed = [parse_layer(i, raw) for i, raw in enumerate(layers)]
        check_layer_order(parsed)
        optimizer = _choice(body.get("optimizer", "adam"), "optimizer", OPTIMIZERS)
        default_lr = 0.01 if optimizer == "sgd" else 0.001
        return NetworkSpec(
            kind="layers",
            layers=parsed,
            loss=_choice(body.get("loss", "cross_entropy"), "loss", LOSSES),
            optimizer=optimizer,
            learning_rate=_number(body.get("learning_rate", default_lr), "learning_rate",
                                  kind=float, low=0.0, high=100.0, low_open=True),
            momentum=_number(body.get("momentum", 0.9 if optimizer == "sgd" else 0.0), "momentum",
                             kind=float, low=0.0, high=0.999),
            weight_decay=_number(body.get("weight_decay", 0.0), "weight_decay", kind=float, low=0.0, high=1.0),
            seed=seed,
        )
    sizes = body.get("layer_sizes")
    if not isinstance(sizes, list) or len(sizes) < 2:
        raise ValidationError("layer_sizes must be a list of at least two layer widths, e.g. [784, 30, 10]",
                              detail={"field": "layer_sizes"})
    if len(sizes) > MAX_LAYERS:
        raise ValidationError(f"at most {MAX_LAYERS} layers", detail={"field": "layer_sizes"})
    widths = [_number(s, f"layer_sizes[{i}]", kind=int, low=1, high=MAX_WIDTH) for i, s in enumerate(sizes)]
    return NetworkSpec(
        kind="layer_sizes",
        layer_sizes=widths,
        loss="quadratic",
        optimizer="sgd",
        learning_rate=3.0,
        init=_choice(body.get("init", "scaled"), "init", INITS),
        seed=seed,
    )


def parse_hyperparams(body: dict[str, Any], spec: NetworkSpec, *, max_epochs: int, n_train: int) -> HyperParams:
    """Hyper-parameters of a train request; defaults are the original server's for Nielsen networks."""
    nielsen = spec.kind == "layer_sizes"
    batch_raw = body.get("mini_batch_size", body.get("batch_size", 10 if nielsen else 32))
    hp = HyperParams(
        epochs=_number(body.get("epochs", 5), "epochs", kind=int, low=1, high=max_epochs),
        batch_size=_number(batch_raw, "mini_batch_size", kind=int, low=1, high=max(1, n_train)),
        learning_rate=_number(body.get("learning_rate", spec.learning_rate), "learning_rate",
                              kind=float, low=0.0, high=1000.0, low_open=True),
        seed=_number(body.get("seed", spec.seed), "seed", kind=int, low=0, high=2**31 - 1),
    )
    if nielsen:
        for name in ("optimizer", "momentum", "weight_decay"):
            if body.get(name) not in (None, "sgd", 0, 0.0):
                raise ValidationError(
                    f"{name} cannot be changed for a layer_sizes network (plain SGD, as the original server); "
                    "create it from layers instead", detail={"field": name})
        hp.optimizer = "sgd"
    else:
        hp.optimizer = _choice(body.get("optimizer", spec.optimizer), "optimizer", OPTIMIZERS)
        default_momentum = spec.momentum if hp.optimizer == spec.optimizer else (0.9 if hp.optimizer == "sgd" else 0.0)
        hp.momentum = _number(body.get("momentum", default_momentum), "momentum", kind=float, low=0.0, high=0.999)
        hp.weight_decay = _number(body.get("weight_decay", spec.weight_decay), "weight_decay",
                                  kind=float, low=0.0, high=1.0)
    hp.extra["monitor"] = parse_monitor_options(body, not nielsen).to_dict()  # issue 11: the training monitor
    return hp
