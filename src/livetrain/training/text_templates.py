"""Network templates for text datasets: a sensible architecture per kind, for a user with data and no network.

- classification: a GRU over word embeddings, mean-pooled over the real tokens (`gru_classifier`, the
  default), or a small Transformer encoder (`transformer_classifier`);
- regression: the same two with one output and a squared-error loss (`gru_regressor`, `transformer_regressor`);
- the sequence kinds: a language model, embeddings into a GRU whose every step predicts the next token
  (`char_lm`, the default; it is word-level on a word-level dataset), or a causal Transformer (`transformer_lm`).
"""

from __future__ import annotations

from typing import Any

from livetrain.errors import ValidationError
from livetrain.store.entities import Dataset

TEMPLATES: dict[str, tuple[str, ...]] = {
    "classification": ("gru_classifier", "transformer_classifier"),
    "regression": ("gru_regressor", "transformer_regressor"),
    "sequence": ("char_lm", "transformer_lm"),
}
DESCRIPTIONS = {
    "gru_classifier": "Embedding(64) -> GRU(64, mean over tokens) -> Linear(classes)",
    "transformer_classifier": "Embedding(64) -> positional encoding -> Transformer encoder layer (4 heads) -> "
                              "mean over tokens -> Linear(classes)",
    "gru_regressor": "Embedding(64) -> GRU(64, mean over tokens) -> Linear(32) -> ReLU -> Linear(1), squared error",
    "transformer_regressor": "Embedding(64) -> positional encoding -> Transformer encoder layer (4 heads) -> "
                             "mean over tokens -> Linear(1), squared error",
    "char_lm": "Embedding(64) -> GRU(128, every step) -> Linear(vocabulary): the next token at each position",
    "transformer_lm": "Embedding(64) -> positional encoding -> 2 causal Transformer encoder layers (4 heads) -> "
                      "Linear(vocabulary)",
}


def names_for(task: str) -> list[str]:
    """The templates of a task, its default first."""
    return list(TEMPLATES.get(task, ()))


def _embedding(dataset: Dataset, dim: int = 64) -> dict[str, Any]:
    return {"type": "Embedding", "num_embeddings": int(dataset.meta["text"]["vocab_size"]), "embedding_dim": dim,
            "padding_idx": 0}


def _encoder(dataset: Dataset, layers: int = 1, causal: bool = False) -> list[dict[str, Any]]:
    out = [_embedding(dataset), {"type": "PositionalEncoding", "kind": "sinusoidal",
                                 "max_len": max(512, int(dataset.meta["text"]["max_len"]))}]
    out += [{"type": "TransformerEncoderLayer", "num_heads": 4, "dim_feedforward": 128, "dropout": 0.1,
             "causal": causal} for _ in range(layers)]
    return out


def template_body(dataset: Dataset, name: str = "auto") -> dict[str, Any]:
    """The create-network body (`layers`, `loss`, optimizer settings) of template `name` for `dataset`."""
    names = names_for(dataset.task)
    if not names:
        raise ValidationError(f"no template fits dataset {dataset.id} ({dataset.task})", code="no_template")
    if name in (None, "auto"):
        name = names[0]
    if name not in names:
        raise ValidationError(f"template must be auto or one of {', '.join(names)} for this {dataset.task} dataset",
                              code="unknown_template", detail={"field": "template", "templates": names})
    vocab = int(dataset.meta["text"]["vocab_size"])
    if name == "gru_classifier":
        layers = [_embedding(dataset), {"type": "GRU", "hidden_size": 64, "pooling": "mean"},
                  {"type": "Linear", "out_features": dataset.n_classes}]
        body = {"layers": layers, "loss": "cross_entropy", "learning_rate": 0.005}
    elif name == "transformer_classifier":
        layers = _encoder(dataset) + [{"type": "SequencePool", "mode": "mean"},
                                      {"type": "Linear", "out_features": dataset.n_classes}]
        body = {"layers": layers, "loss": "cross_entropy", "learning_rate": 0.001}
    elif name == "gru_regressor":
        layers = [_embedding(dataset), {"type": "GRU", "hidden_size": 64, "pooling": "mean"},
                  {"type": "Linear", "out_features": 32}, {"type": "ReLU"}, {"type": "Linear", "out_features": 1}]
        body = {"layers": layers, "loss": "mse", "learning_rate": 0.003}
    elif name == "transformer_regressor":
        layers = _encoder(dataset) + [{"type": "SequencePool", "mode": "mean"}, {"type": "Linear", "out_features": 1}]
        body = {"layers": layers, "loss": "mse", "learning_rate": 0.001}
    elif name == "char_lm":
        layers = [_embedding(dataset), {"type": "GRU", "hidden_size": 128, "pooling": "none"},
                  {"type": "Linear", "out_features": vocab}]
        body = {"layers": layers, "loss": "cross_entropy", "learning_rate": 0.005}
    else:  # transformer_lm
        layers = _encoder(dataset, layers=2, causal=True) + [{"type": "Linear", "out_features": vocab}]
        body = {"layers": layers, "loss": "cross_entropy", "learning_rate": 0.001}
    return {**body, "optimizer": "adam", "template": name, "description": DESCRIPTIONS[name]}


def catalog(dataset: Dataset) -> list[dict[str, Any]]:
    """Every template that fits a dataset, with its body (the default first)."""
    return [{"name": n, "default": i == 0, "description": DESCRIPTIONS[n], "body": template_body(dataset, n)}
            for i, n in enumerate(names_for(dataset.task))]
