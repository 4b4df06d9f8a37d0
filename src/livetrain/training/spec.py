"""Typed, validated network specs and hyper-parameters.

These are checked at the API edge (`parse_network_spec`, `parse_hyperparams`) and travel
as plain dicts to worker processes, where `NetworkSpec.from_dict` rebuilds them.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from livetrain.errors import ValidationError
from livetrain.training.monitor_options import parse_monitor_options

LOSSES = ("cross_entropy", "mse")
OPTIMIZERS = ("sgd", "adam", "adamw")
INITS = ("scaled", "standard")

_RECURRENT = {"hidden_size": ("int", True, None), "num_layers": ("int", False, 1),
              "bidirectional": ("bool", False, False), "dropout": ("float", False, 0.0),
              "pooling": ("choice", False, "last")}
# type -> {parameter: (kind, required, default)}; kind is "int", "float", "bool" or "choice" (see CHOICES)
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
    "Embedding": {"num_embeddings": ("int", True, None), "embedding_dim": ("int", True, None),
                  "padding_idx": ("int", False, None)},
    # sequence layers: a sequence is laid out per example as (length T, features F)
    "PositionalEncoding": {"kind": ("choice", False, "sinusoidal"), "max_len": ("int", False, 512)},
    "LSTM": _RECURRENT,
    "GRU": _RECURRENT,
    "Conv1d": {"out_channels": ("int", True, None), "kernel_size": ("int", True, None),
               "stride": ("int", False, 1), "padding": ("int", False, 0), "in_channels": ("int", False, None)},
    "LayerNorm": {},
    "MultiheadAttention": {"num_heads": ("int", True, None), "dropout": ("float", False, 0.0),
                           "causal": ("bool", False, False)},
    "TransformerEncoderLayer": {"num_heads": ("int", True, None), "dim_feedforward": ("int", False, None),
                                "dropout": ("float", False, 0.1), "causal": ("bool", False, False)},
    "SequencePool": {"mode": ("choice", False, "mean")},
}
IMAGE_LAYERS = {"Conv2d", "MaxPool2d", "BatchNorm2d"}
# layers that read the padding mask the Embedding derives from the token ids
MASKED_LAYERS = {"LSTM", "GRU", "Conv1d", "MultiheadAttention", "TransformerEncoderLayer", "SequencePool"}
MAX_LAYERS = 200
MAX_WIDTH = 1_000_000
# (type, parameter) -> (low, high) where a whole-number parameter's range is not [1, MAX_WIDTH]
INT_RANGES: dict[tuple[str, str], tuple[int, int]] = {
    ("Conv2d", "padding"): (0, MAX_WIDTH),
    ("Embedding", "num_embeddings"): (2, 100_000),
    ("Embedding", "embedding_dim"): (1, 1024),
    ("Embedding", "padding_idx"): (0, 99_999),
    ("PositionalEncoding", "max_len"): (1, 100_000),
    ("LSTM", "hidden_size"): (1, 4096),
    ("LSTM", "num_layers"): (1, 16),
    ("GRU", "hidden_size"): (1, 4096),
    ("GRU", "num_layers"): (1, 16),
    ("Conv1d", "kernel_size"): (1, 1024),
    ("Conv1d", "padding"): (0, 1024),
    ("MultiheadAttention", "num_heads"): (1, 64),
    ("TransformerEncoderLayer", "num_heads"): (1, 64),
    ("TransformerEncoderLayer", "dim_feedforward"): (1, 65_536),
}
# (type, parameter) -> the values a "choice" parameter takes
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("PositionalEncoding", "kind"): ("sinusoidal", "learned"),
    ("LSTM", "pooling"): ("last", "mean", "max", "none"),
    ("GRU", "pooling"): ("last", "mean", "max", "none"),
    ("SequencePool", "mode"): ("mean", "max", "last", "first"),
}
# float parameters that are probabilities: in [0, 1), like Dropout's p
PROBABILITIES = {"p", "dropout"}


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
    heads: list[dict[str, Any]] | None = None  # named outputs with their own loss; None: the last layer is the output

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


CONTROLS = ("lr_schedule", "clip_grad_norm", "early_stopping")
SCHEDULES = ("step", "exponential", "cosine", "reduce_on_plateau")
# metrics an epoch reports, and whether smaller is better; other names (a head's, a text metric's) are
# accepted with an explicit "mode", and a run fails at its first epoch if that metric never appears
METRIC_MODES = {"val_loss": "min", "train_loss": "min", "accuracy": "max", "r2": "max", "f1": "max",
                "mae": "min", "rmse": "min", "perplexity": "min", "exact_match": "max"}
MODES = ("min", "max")


def reported_metrics(task: str, text_kind: str | None = None) -> set[str]:
    """The metrics every epoch of a run on a dataset of this `task` (and text `kind`) reports, by name: what
    `controls.epoch_metrics` gives early stopping and a schedule to watch (heads add `head.<name>.<metric>`)."""
    out = {"val_loss", "train_loss"}
    by_task = {"classification": {"accuracy"}, "regression": {"r2"}, "sequence": {"accuracy", "perplexity"}}
    out |= by_task.get(task, set())
    if text_kind is not None:  # livetrain.training.text_metrics.epoch_scores
        if task == "classification":
            out.add("f1")
        elif task == "regression":
            out.add("mae")
        elif text_kind == "question_answering":
            out |= {"exact_match", "token_f1"}
        elif text_kind == "summarization":
            out |= {"rouge1", "rouge2", "rougeL"}
    return out


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
    # training controls (None: off); their shapes are what `parse_hyperparams` returns
    lr_schedule: dict[str, Any] | None = None
    clip_grad_norm: float | None = None
    early_stopping: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (controls that are off are left out)."""
        out = dataclasses.asdict(self)
        return {k: v for k, v in out.items() if v is not None or k not in CONTROLS}

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
    for name in PROBABILITIES & set(out):
        if out[name] >= 1.0:
            raise ValidationError(f"{where} ({kind}): {name} must be below 1",
                                  detail={"layer": index, "field": f"{where}.{name}"})
    if kind == "Embedding" and out.get("padding_idx") is not None and out["padding_idx"] >= out["num_embeddings"]:
        raise ValidationError(
            f"{where} (Embedding): padding_idx {out['padding_idx']} must be below num_embeddings "
            f"({out['num_embeddings']})", detail={"layer": index, "field": f"{where}.padding_idx"})
    if kind in ("LSTM", "GRU") and out["dropout"] > 0 and out["num_layers"] == 1:
        # torch applies it only between stacked layers: with one layer it would silently do nothing
        raise ValidationError(
            f"{where} ({kind}): dropout acts between stacked layers, so it needs num_layers of 2 or more; "
            "with one layer add a Dropout layer after it instead",
            detail={"layer": index, "field": f"{where}.dropout"})
    return out


def _layer_value(ptype: str, kind: str, name: str, value: Any, label: str) -> Any:
    """One layer parameter, type- and range-checked."""
    if ptype == "int":
        low, high = INT_RANGES.get((kind, name), (1, MAX_WIDTH))
        return _number(value, label, kind=int, low=low, high=high)
    if ptype == "float":
        return _number(value, label, kind=float, low=0.0, high=1.0 if name in PROBABILITIES else 100.0)
    if ptype == "choice":
        return _choice(value, label, CHOICES[(kind, name)])
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


HEAD_TASKS = ("classification", "binary", "regression", "sequence")
HEAD_LOSSES = ("cross_entropy", "bce_with_logits", "mse", "huber")
# task -> the losses that fit it, the first being the default
LOSSES_FOR_TASK: dict[str, tuple[str, ...]] = {
    "classification": ("cross_entropy",),
    "binary": ("bce_with_logits",),
    "regression": ("mse", "huber"),
    "sequence": ("cross_entropy",),
}
HEAD_PARAMS = {"name", "attach", "task", "loss", "weight", "target", "out_features"}
MAX_HEADS = 16
HEAD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")  # no dots: metrics are reported as head.<name>.<metric>


def parse_head(index: int, raw: Any, n_layers: int) -> dict[str, Any]:
    """Validate one head spec; errors name the head (`heads[i]`) and its field."""
    where = f"heads[{index}]"

    def bad(message: str, name: str | None = None) -> ValidationError:
        return ValidationError(f"{where}: {message}", detail={"head": index, "field": f"{where}.{name}" if name
                                                              else where})

    if not isinstance(raw, dict):
        raise bad("must be an object with a 'name' and a 'task'")
    unknown = set(raw) - HEAD_PARAMS
    if unknown:
        raise bad(f"unknown parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(HEAD_PARAMS))}")
    name = raw.get("name")
    if not isinstance(name, str) or not HEAD_NAME.match(name):
        raise bad("name must be 1-40 letters, digits, '_' or '-'", "name")
    if raw.get("task") is None:
        raise bad(f"'task' is required: one of {', '.join(HEAD_TASKS)}", "task")
    out: dict[str, Any] = {"name": name}
    try:
        out["task"] = _choice(raw["task"], f"{where}.task", HEAD_TASKS)
        attach = raw.get("attach", n_layers - 1)
        out["attach"] = _number(attach, f"{where}.attach", kind=int, low=0, high=n_layers - 1)
        fitting = LOSSES_FOR_TASK[out["task"]]
        out["loss"] = _choice(raw.get("loss", fitting[0]), f"{where}.loss", HEAD_LOSSES)
        out["weight"] = _number(raw.get("weight", 1.0), f"{where}.weight", kind=float, low=0.0, high=1000.0,
                                low_open=True)
        out["target"] = _number(raw.get("target", 0), f"{where}.target", kind=int, low=0, high=MAX_WIDTH)
        if raw.get("out_features") is not None:
            out["out_features"] = _number(raw["out_features"], f"{where}.out_features", kind=int, low=1,
                                          high=MAX_WIDTH)
    except ValidationError as exc:
        exc.detail = {"head": index, "field": exc.detail.get("field")}
        raise
    if out["loss"] not in fitting:
        raise bad(f"loss {out['loss']!r} does not fit a {out['task']} head; use "
                  f"{' or '.join(repr(loss) for loss in fitting)}", "loss")
    return out


def parse_heads(raw: Any, n_layers: int) -> list[dict[str, Any]] | None:
    """Validate a network's heads: a list of unique names, each attached to one of its layers."""
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise ValidationError("heads must be a non-empty list of head specs", detail={"field": "heads"})
    if len(raw) > MAX_HEADS:
        raise ValidationError(f"at most {MAX_HEADS} heads", detail={"field": "heads"})
    heads = [parse_head(i, h, n_layers) for i, h in enumerate(raw)]
    seen: dict[str, int] = {}
    for index, head in enumerate(heads):
        if head["name"] in seen:
            raise ValidationError(f"heads[{index}]: the name {head['name']!r} is already used by "
                                  f"heads[{seen[head['name']]}]; head names must be unique",
                                  detail={"head": index, "field": f"heads[{index}].name"})
        seen[head["name"]] = index
    return heads


def apply_dataset_defaults(spec: NetworkSpec, *, text: bool) -> NetworkSpec:
    """Fill what depends on the dataset: on text, a first Embedding pads with token id 0 unless told otherwise."""
    layers = spec.layers or []
    if text and layers and layers[0]["type"] == "Embedding" and "padding_idx" not in layers[0]:
        layers[0]["padding_idx"] = 0
    return spec


BYTES_PER_VALUE = 4  # float32 everywhere


def memory_estimate(parameter_count: int, optimizer: str, momentum: float = 0.0) -> dict[str, int]:
    """Bytes a network takes while training: its parameters, their gradients and the optimizer's state.

    Adam and AdamW keep two values per parameter (the moment estimates), SGD with momentum one
    (the velocity), plain SGD none. Activations depend on the batch and are not counted.
    """
    per_parameter = {"adam": 2, "adamw": 2}.get(optimizer, 1 if momentum > 0 else 0)
    parameters = parameter_count * BYTES_PER_VALUE
    state = parameters * per_parameter
    return {"parameters": parameters, "gradients": parameters, "optimizer_state": state,
            "total": 2 * parameters + state}


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
        heads = parse_heads(body.get("heads"), len(parsed))
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
            heads=heads,
        )
    if body.get("heads") is not None:
        raise ValidationError("heads need a network built from layers, not layer_sizes", detail={"field": "heads"})
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


def parse_hyperparams(body: dict[str, Any], spec: NetworkSpec, *, max_epochs: int, n_train: int,
                      task: str | None = None, text_kind: str | None = None) -> HyperParams:
    """Hyper-parameters of a train request; defaults are the original server's for Nielsen networks.

    `task` (the dataset's, when known) and `text_kind` (a text dataset's `meta["text"]["kind"]`) refuse
    a schedule or early stopping watching a metric livetrain knows but the run will never report
    (accuracy of a regression, f1 of a table, rmse of any epoch), which would fail it at its first epoch.
    """
    nielsen = spec.kind == "layer_sizes"
    # the default batch, never more than the training rows (a text dataset typed in sample by sample has few)
    batch_raw = body.get("mini_batch_size", body.get("batch_size", min(10 if nielsen else 32, max(1, n_train))))
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
    hp.lr_schedule = parse_lr_schedule(body.get("lr_schedule"), epochs=hp.epochs)
    if body.get("clip_grad_norm") is not None:
        if nielsen:
            raise ValidationError("clip_grad_norm needs a network created from layers (a layer_sizes network "
                                  "trains by hand-written backprop, as the original server)",
                                  detail={"field": "clip_grad_norm"})
        hp.clip_grad_norm = _number(body["clip_grad_norm"], "clip_grad_norm", kind=float, low=0.0, high=1e6,
                                    low_open=True)
    hp.early_stopping = parse_early_stopping(body.get("early_stopping"))
    reported = reported_metrics(task, text_kind) if task else None
    for name, control in (("early_stopping", hp.early_stopping), ("lr_schedule", hp.lr_schedule)):
        metric = (control or {}).get("metric")
        if reported is not None and metric in METRIC_MODES and metric not in reported:
            raise ValidationError(f"{name}.metric {metric!r} is never reported for a {task} dataset"
                                  f"{' of text' if text_kind else ''}; watch one it reports: "
                                  f"{', '.join(sorted(reported))}", detail={"field": f"{name}.metric"})
    hp.extra["monitor"] = parse_monitor_options(body, not nielsen).to_dict()  # the training monitor's options
    return hp


def _object(raw: Any, name: str, allowed: set[str]) -> dict[str, Any]:
    """A JSON object with only `allowed` keys."""
    if not isinstance(raw, dict):
        raise ValidationError(f"{name} must be an object", detail={"field": name})
    unknown = set(raw) - allowed
    if unknown:
        raise ValidationError(f"{name}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                              f"known: {', '.join(sorted(allowed))}", detail={"field": name})
    return raw


def _metric(raw: dict[str, Any], name: str, default: str) -> tuple[str, str]:
    """(metric, mode) of a schedule or early stopping; mode inferred for the known metrics."""
    metric = raw.get("metric", default)
    if not isinstance(metric, str) or not metric or len(metric) > 100:
        raise ValidationError(f"{name}.metric must be a metric name such as val_loss or accuracy",
                              detail={"field": f"{name}.metric"})
    if raw.get("mode") is not None:
        return metric, _choice(raw["mode"], f"{name}.mode", MODES)
    if metric not in METRIC_MODES:
        raise ValidationError(f"{name}.metric {metric!r} is not one livetrain knows ({', '.join(METRIC_MODES)}); "
                              f"give {name}.mode (min or max) to watch it anyway", detail={"field": f"{name}.metric"})
    return metric, METRIC_MODES[metric]


def parse_lr_schedule(raw: Any, *, epochs: int) -> dict[str, Any] | None:
    """A learning-rate schedule, stepped once per epoch, with its defaults filled in (None: constant rate).

    `"cosine"` and the other names alone are accepted as `{"type": name}`.
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"type": raw}
    name = "lr_schedule"
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise ValidationError(f"{name} must be an object with a 'type' ({', '.join(SCHEDULES)})",
                              detail={"field": name})
    kind = _choice(raw["type"], f"{name}.type", SCHEDULES)
    fields_of = {"step": {"step_size", "gamma"}, "exponential": {"gamma"}, "cosine": {"t_max", "eta_min"},
                 "reduce_on_plateau": {"factor", "patience", "min_lr", "mode", "metric", "threshold"}}
    _object(raw, name, fields_of[kind] | {"type"})

    def number(field_name: str, default: Any, **bounds: Any) -> Any:
        value = raw.get(field_name)
        return _number(default if value is None else value, f"{name}.{field_name}", **bounds)

    out: dict[str, Any] = {"type": kind}
    if kind == "step":
        if raw.get("step_size") is None:
            raise ValidationError(f"{name}.step_size is required for a step schedule (epochs between two cuts)",
                                  detail={"field": f"{name}.step_size"})
        out["step_size"] = number("step_size", None, kind=int, low=1, high=1_000_000)
        out["gamma"] = number("gamma", 0.1, kind=float, low=0.0, high=1.0, low_open=True)
    elif kind == "exponential":
        if raw.get("gamma") is None:
            raise ValidationError(f"{name}.gamma is required for an exponential schedule "
                                  "(e.g. 0.95: 5% lower each epoch)", detail={"field": f"{name}.gamma"})
        out["gamma"] = number("gamma", None, kind=float, low=0.0, high=1.0, low_open=True)
    elif kind == "cosine":
        out["t_max"] = number("t_max", epochs, kind=int, low=1, high=1_000_000)
        out["eta_min"] = number("eta_min", 0.0, kind=float, low=0.0, high=1000.0)
    else:
        out["factor"] = number("factor", 0.1, kind=float, low=0.0, high=1.0, low_open=True)
        if out["factor"] >= 1.0:
            raise ValidationError(f"{name}.factor must be below 1 (the rate is multiplied by it)",
                                  detail={"field": f"{name}.factor"})
        out["patience"] = number("patience", 10, kind=int, low=0, high=1_000_000)
        out["min_lr"] = number("min_lr", 0.0, kind=float, low=0.0, high=1000.0)
        out["threshold"] = number("threshold", 0.0, kind=float, low=0.0, high=1e9)
        out["metric"], out["mode"] = _metric(raw, name, "val_loss")
    return out


def parse_early_stopping(raw: Any) -> dict[str, Any] | None:
    """Early stopping on a validation metric, with its defaults filled in (None: off).

    `"val_loss:3"` is accepted as `{"metric": "val_loss", "patience": 3}`.
    """
    if raw is None:
        return None
    name = "early_stopping"
    if isinstance(raw, str):
        metric, _, patience = raw.partition(":")
        raw = {"metric": metric}
        if patience:
            try:
                raw["patience"] = int(patience)
            except ValueError:
                raise ValidationError(f"{name} as text is METRIC[:PATIENCE], e.g. val_loss:3",
                                      detail={"field": name}) from None
    _object(raw, name, {"metric", "patience", "min_delta", "mode"})
    metric, mode = _metric(raw, name, "val_loss")
    patience = raw.get("patience")
    return {
        "metric": metric,
        "mode": mode,
        "patience": _number(5 if patience is None else patience, f"{name}.patience", kind=int, low=1,
                            high=1_000_000),
        "min_delta": _number(0.0 if raw.get("min_delta") is None else raw["min_delta"], f"{name}.min_delta",
                             kind=float, low=0.0, high=1e9),
    }
