"""Sequence layers: shapes from the dry run, errors naming the layer and the shapes, the padding mask,
and an LSTM and a Transformer classifier learning a small token task through the real trainer."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from livetrain.data.sources import DatasetArrays
from livetrain.errors import ValidationError
from livetrain.store.entities import Dataset
from livetrain.training.model import (
    HeadedModel,
    LayerStack,
    _layer_params,
    build_model,
    describe_layers,
    parameter_count,
)
from livetrain.training.spec import apply_dataset_defaults, parse_hyperparams, parse_layer, parse_network_spec
from livetrain.training.trainer import train
from tests.training.test_trainer import Recorder

T, VOCAB = 12, 20
TOKENS = ([T], "classification", 2)  # a text dataset: T token ids per row, two classes
EMBED = {"type": "Embedding", "num_embeddings": VOCAB, "embedding_dim": 16, "padding_idx": 0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(layers, dataset=TOKENS, **body):
    shape, task, n_classes = dataset
    spec = parse_network_spec({"layers": layers, **body})
    return build_model(spec, shape, task, n_classes, max_parameters=10**7), spec


def table(layers, dataset=TOKENS):
    model, spec = build(layers, dataset)
    return [(row["type"], row["output_shape"]) for row in describe_layers(model, spec, dataset[0])]


# -- shapes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, shape", [
    ({"type": "PositionalEncoding"}, [T, 16]),
    ({"type": "PositionalEncoding", "kind": "learned", "max_len": T}, [T, 16]),
    ({"type": "LSTM", "hidden_size": 8, "pooling": "none"}, [T, 8]),
    ({"type": "LSTM", "hidden_size": 8, "bidirectional": True, "pooling": "none"}, [T, 16]),
    ({"type": "GRU", "hidden_size": 8, "num_layers": 2, "dropout": 0.2, "pooling": "none"}, [T, 8]),
    ({"type": "Conv1d", "out_channels": 6, "kernel_size": 3}, [T - 2, 6]),
    ({"type": "Conv1d", "out_channels": 6, "kernel_size": 3, "padding": 1, "stride": 2}, [6, 6]),
    ({"type": "LayerNorm"}, [T, 16]),
    ({"type": "MultiheadAttention", "num_heads": 4}, [T, 16]),
    ({"type": "MultiheadAttention", "num_heads": 2, "causal": True}, [T, 16]),
    ({"type": "TransformerEncoderLayer", "num_heads": 4}, [T, 16]),
    ({"type": "TransformerEncoderLayer", "num_heads": 2, "dim_feedforward": 24, "causal": True}, [T, 16]),
    ({"type": "Linear", "out_features": 5}, [T, 5]),  # per position
    ({"type": "ReLU"}, [T, 16]),
    ({"type": "Dropout", "p": 0.1}, [T, 16]),
])
def test_each_sequence_layer_keeps_a_sequence_of_the_expected_shape(layer, shape):
    rows = table([EMBED, layer, {"type": "SequencePool"}, {"type": "Linear", "out_features": 2}])
    assert rows[0] == ("Embedding", [T, 16])
    assert rows[1] == (layer["type"], shape)
    assert rows[2] == ("SequencePool", [shape[1]])
    assert rows[3] == ("Linear", [2])


@pytest.mark.parametrize("layer, shape", [
    ({"type": "LSTM", "hidden_size": 8}, [8]),
    ({"type": "LSTM", "hidden_size": 8, "bidirectional": True, "num_layers": 2}, [16]),
    ({"type": "GRU", "hidden_size": 8, "pooling": "mean"}, [8]),
    ({"type": "GRU", "hidden_size": 8, "pooling": "max", "bidirectional": True}, [16]),
    ({"type": "SequencePool", "mode": "max"}, [16]),
    ({"type": "SequencePool", "mode": "last"}, [16]),
    ({"type": "SequencePool", "mode": "first"}, [16]),
])
def test_pooling_layers_turn_a_sequence_into_a_vector(layer, shape):
    rows = table([EMBED, layer, {"type": "Linear", "out_features": 2}])
    assert rows[1] == (layer["type"], shape)


def test_a_full_stack_runs_forward_and_backward_with_padding():
    layers = [EMBED, {"type": "PositionalEncoding"}, {"type": "Conv1d", "out_channels": 16, "kernel_size": 3,
                                                      "padding": 1},
              {"type": "LayerNorm"}, {"type": "MultiheadAttention", "num_heads": 4, "causal": True},
              {"type": "TransformerEncoderLayer", "num_heads": 2},
              {"type": "GRU", "hidden_size": 8, "bidirectional": True, "pooling": "none"},
              {"type": "LSTM", "hidden_size": 8, "num_layers": 2, "dropout": 0.1, "pooling": "mean"},
              {"type": "Linear", "out_features": 2}]
    model, spec = build(layers)
    assert isinstance(model, LayerStack) and isinstance(model, nn.Sequential)
    x = torch.randint(1, VOCAB, (5, T)).float()
    x[:, 7:] = 0
    x[4, 1:] = 0  # one token, the rest padding
    out = model(x)
    assert out.shape == (5, 2) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
    rows = describe_layers(model, spec, [T])
    assert sum(row["parameters"] for row in rows) == parameter_count(model)


@pytest.mark.parametrize("layer", [
    {"type": "LSTM", "hidden_size": 7, "num_layers": 3, "bidirectional": True, "pooling": "none"},
    {"type": "GRU", "hidden_size": 5, "num_layers": 2, "pooling": "none"},
    {"type": "Conv1d", "out_channels": 6, "kernel_size": 3},
    {"type": "MultiheadAttention", "num_heads": 4},
    {"type": "TransformerEncoderLayer", "num_heads": 4, "dim_feedforward": 40},
    {"type": "PositionalEncoding", "kind": "learned", "max_len": 30},
    {"type": "Linear", "out_features": 5},
])
def test_parameters_are_counted_exactly_before_building(layer):
    # the parameter cap refuses a network before allocating it, so the count must be the real one
    model, _ = build([EMBED, layer, {"type": "SequencePool"}, {"type": "Linear", "out_features": 2}])
    assert _layer_params(parse_layer(1, layer), (T, 16)) == sum(p.numel() for p in model[1].parameters())


# -- errors name the layer and the shapes ------------------------------------------------------------

@pytest.mark.parametrize("layers, index, problem", [
    ([EMBED, {"type": "Flatten"}, {"type": "LSTM", "hidden_size": 8}, {"type": "Linear", "out_features": 2}], 2,
     r"layers\[2\] \(LSTM\) expects a sequence \(length x features\) input but receives shape \[192\]"),
    ([{"type": "Linear", "out_features": 8}, {"type": "GRU", "hidden_size": 8}, {"type": "Linear", "out_features": 2}],
     1, r"layers\[1\] \(GRU\) expects a sequence \(length x features\) input but receives shape \[8\]"),
    ([EMBED, {"type": "Linear", "out_features": 30}, {"type": "MultiheadAttention", "num_heads": 4},
      {"type": "SequencePool"}, {"type": "Linear", "out_features": 2}], 2,
     r"layers\[2\] \(MultiheadAttention\): embedding_dim 30 .* not divisible by num_heads 4"),
    ([EMBED, {"type": "TransformerEncoderLayer", "num_heads": 3}, {"type": "SequencePool"},
      {"type": "Linear", "out_features": 2}], 1,
     r"layers\[1\] \(TransformerEncoderLayer\): embedding_dim 16 .* not divisible by num_heads 3"),
    ([EMBED, {"type": "PositionalEncoding", "max_len": 8}, {"type": "SequencePool"},
      {"type": "Linear", "out_features": 2}], 1,
     r"layers\[1\] \(PositionalEncoding\): the sequence has 12 positions but max_len is 8"),
    ([EMBED, {"type": "Conv1d", "out_channels": 4, "kernel_size": 20}, {"type": "SequencePool"},
      {"type": "Linear", "out_features": 2}], 1, r"layers\[1\] \(Conv1d\) cannot take input of shape \[12, 16\]"),
    ([EMBED, {"type": "Conv1d", "out_channels": 4, "kernel_size": 3, "in_channels": 8}, {"type": "SequencePool"},
      {"type": "Linear", "out_features": 2}], 1, r"layers\[1\] \(Conv1d\): in_channels is 8 but the input has 16"),
    ([EMBED, {"type": "LSTM", "hidden_size": 8}, {"type": "SequencePool"}, {"type": "Linear", "out_features": 2}],
     2, r"layers\[2\] \(SequencePool\) expects a sequence \(length x features\) input but receives shape \[8\]"),
    ([EMBED, {"type": "LSTM", "hidden_size": 8, "pooling": "none"}, {"type": "Linear", "out_features": 2}], 2,
     r"the last layer must give 2 output\(s\) for this classification dataset, it gives \[12, 2\]"),
])
def test_a_shape_mistake_names_the_layer_and_the_shapes(layers, index, problem):
    with pytest.raises(ValidationError, match=problem) as caught:
        build(layers)
    assert caught.value.detail["layer"] == index


@pytest.mark.parametrize("layer, problem", [
    ({"type": "LSTM", "hidden_size": 8, "dropout": 0.3},
     r"layers\[1\] \(LSTM\): dropout acts between stacked layers, so it needs num_layers of 2 or more"),
    ({"type": "GRU", "hidden_size": 8, "pooling": "median"}, r"layers\[1\]\.pooling must be one of last, mean"),
    ({"type": "LSTM", "hidden_size": 0}, r"layers\[1\]\.hidden_size must be in \[1, 4096\]"),
    ({"type": "TransformerEncoderLayer", "num_heads": 2, "dropout": 1.0},
     r"layers\[1\] \(TransformerEncoderLayer\): dropout must be below 1"),
    ({"type": "MultiheadAttention"}, r"layers\[1\] \(MultiheadAttention\): 'num_heads' is required"),
    ({"type": "PositionalEncoding", "kind": "rotary"}, r"layers\[1\]\.kind must be one of sinusoidal, learned"),
    ({"type": "SequencePool", "mode": "sum"}, r"layers\[1\]\.mode must be one of mean, max, last, first"),
])
def test_bad_sequence_layer_parameters_are_refused_naming_the_field(layer, problem):
    with pytest.raises(ValidationError, match=problem) as caught:
        parse_network_spec({"layers": [EMBED, layer, {"type": "Linear", "out_features": 2}]})
    assert caught.value.detail["layer"] == 1


def test_padding_idx_must_be_a_token_of_the_vocabulary():
    with pytest.raises(ValidationError, match=r"padding_idx 20 must be below num_embeddings \(20\)"):
        parse_layer(0, {**EMBED, "padding_idx": 20})


def test_a_text_dataset_pads_with_token_zero_unless_told_otherwise():
    plain = {"type": "Embedding", "num_embeddings": 10, "embedding_dim": 4}
    body = {"layers": [plain, {"type": "Flatten"}, {"type": "Linear", "out_features": 2}]}
    assert apply_dataset_defaults(parse_network_spec(body), text=True).layers[0]["padding_idx"] == 0
    # digits are values, not padding: a non-text dataset keeps every token
    assert "padding_idx" not in apply_dataset_defaults(parse_network_spec(body), text=False).layers[0]
    told = {"layers": [{**plain, "padding_idx": 3}, {"type": "Flatten"}, {"type": "Linear", "out_features": 2}]}
    assert apply_dataset_defaults(parse_network_spec(told), text=True).layers[0]["padding_idx"] == 3


# -- the padding mask --------------------------------------------------------------------------------

POOLED = [
    [{"type": "LSTM", "hidden_size": 8}],
    [{"type": "LSTM", "hidden_size": 8, "bidirectional": True, "num_layers": 2}],
    [{"type": "GRU", "hidden_size": 8, "pooling": "mean"}],
    [{"type": "GRU", "hidden_size": 8, "pooling": "max", "bidirectional": True}],
    [{"type": "LSTM", "hidden_size": 8, "pooling": "none"}, {"type": "SequencePool", "mode": "last"}],
    [{"type": "PositionalEncoding"}, {"type": "MultiheadAttention", "num_heads": 4}, {"type": "SequencePool"}],
    [{"type": "TransformerEncoderLayer", "num_heads": 4, "dropout": 0.0}, {"type": "SequencePool", "mode": "max"}],
    [{"type": "TransformerEncoderLayer", "num_heads": 2, "causal": True}, {"type": "SequencePool"}],
    [{"type": "Conv1d", "out_channels": 8, "kernel_size": 3, "padding": 1}, {"type": "ReLU"},
     {"type": "SequencePool", "mode": "max"}],
]


@pytest.mark.parametrize("middle", POOLED)
def test_padding_tokens_do_not_change_a_pooled_output(middle):
    model, _ = build([EMBED, *middle, {"type": "Linear", "out_features": 2}])
    model.eval()
    tokens = torch.tensor([[5.0, 3, 9, 2, 7], [4.0, 4, 1, 0, 0]])  # the second row is three tokens long
    short = torch.cat([tokens, torch.zeros(2, 1)], dim=1)
    long = torch.cat([tokens, torch.zeros(2, 7)], dim=1)
    with torch.no_grad():
        assert torch.allclose(model(short), model(long), atol=1e-5)
        # the model does look at the tokens: another token changes the output
        changed = long.clone()
        changed[1, 1] = 8
        assert not torch.allclose(model(changed)[1], model(long)[1], atol=1e-5)


def test_without_a_padding_idx_the_zeros_are_tokens_like_any_other():
    # digits: 0 is a value, so trailing zeros change the output (no mask is derived)
    model, _ = build([{**EMBED, "padding_idx": None}, {"type": "LSTM", "hidden_size": 8},
                      {"type": "Linear", "out_features": 2}])
    assert not isinstance(model, LayerStack)  # a plain nn.Sequential, as before sequence layers existed
    model.eval()
    tokens = torch.tensor([[5.0, 3, 9, 2, 7]])
    with torch.no_grad():
        assert not torch.allclose(model(torch.cat([tokens, torch.zeros(1, 1)], 1)),
                                  model(torch.cat([tokens, torch.zeros(1, 7)], 1)))


def test_an_empty_text_gives_a_finite_output():
    model, _ = build([EMBED, {"type": "TransformerEncoderLayer", "num_heads": 4, "causal": True},
                      {"type": "LSTM", "hidden_size": 4, "pooling": "mean"}, {"type": "Linear", "out_features": 2}])
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(torch.zeros(3, T))).all()


# -- learning a token task -------------------------------------------------------------------------

def token_dataset(n_train=800, n_test=300, seed=0) -> DatasetArrays:
    """Rows of 3-12 tokens (1-19, right-padded with 0); the label is whether token 7 appears (half do)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    X = np.zeros((n, T), dtype=np.float32)
    y = rng.integers(0, 2, n).astype(np.int64)
    others = np.array([t for t in range(1, VOCAB) if t != 7])
    for i in range(n):
        length = rng.integers(3, T + 1)
        X[i, :length] = rng.choice(others, length)
        if y[i]:
            X[i, rng.integers(0, length)] = 7
    info = Dataset(id="has-seven", name="has seven", task="classification", source="synthetic (tests)",
                   n_features=T, n_classes=2, input_shape=[T], n_train=n_train, n_test=n_test,
                   meta={"text": {"kind": "binary_classification", "level": "word", "max_len": T, "pad_id": 0}},
                   builtin=False)
    return DatasetArrays(info, X[:n_train], y[:n_train], X[n_train:], y[n_train:])


def train_on_tokens(layers, epochs, **train_body):
    data = token_dataset()
    spec = apply_dataset_defaults(parse_network_spec({"layers": layers, "learning_rate": 0.01}), text=True)
    hp = parse_hyperparams({"epochs": epochs, "batch_size": 32, **train_body}, spec, max_epochs=100,
                           n_train=len(data.X_train))
    model = build_model(spec, data.info.input_shape, data.info.task, data.info.n_classes, max_parameters=10**7)
    rec = Recorder()
    train(model, spec, hp, data, rec)
    return rec, model


def test_an_lstm_classifier_learns_whether_a_token_appears():
    plain_embed = {"type": "Embedding", "num_embeddings": VOCAB, "embedding_dim": 16}  # padding_idx from the data
    rec, _ = train_on_tokens([plain_embed, {"type": "LSTM", "hidden_size": 32},
                              {"type": "Linear", "out_features": 2}], epochs=4)
    accuracies = [r.accuracy for r in rec.epochs]
    assert accuracies[-1] > 0.85, accuracies  # chance is about 0.5
    assert rec.epochs[-1].train_loss < rec.epochs[0].train_loss


def test_a_transformer_classifier_learns_whether_a_token_appears():
    rec, model = train_on_tokens([EMBED, {"type": "PositionalEncoding"},
                                  {"type": "TransformerEncoderLayer", "num_heads": 4, "dim_feedforward": 32},
                                  {"type": "SequencePool", "mode": "max"}, {"type": "Linear", "out_features": 2}],
                                 epochs=4)
    accuracies = [r.accuracy for r in rec.epochs]
    assert accuracies[-1] > 0.85, accuracies
    # the checkpoint holds what the worker saves and a fresh build loads it
    state = rec.checkpoint()["model"]
    assert set(state) == set(model.state_dict())


# -- a language model: the "sequence" task -----------------------------------------------------------

def counting_dataset(n_train=300, n_test=60) -> DatasetArrays:
    """Rows counting up from a random start (1-10): the next token is always the current one plus one.

    Targets are the inputs shifted by one; the first target and the padding are -100 (no loss).
    """
    rng = np.random.default_rng(1)
    n = n_train + n_test
    X = np.zeros((n, T), dtype=np.float32)
    y = np.full((n, T), -100, dtype=np.int64)
    for i in range(n):
        length = rng.integers(4, T + 1)
        start = rng.integers(1, 8)
        run = np.arange(start, start + length)
        X[i, :length] = run
        y[i, 1:length - 1] = run[2:]  # the first position is a "prompt": no loss on it
    info = Dataset(id="counting", name="counting", task="sequence", source="synthetic (tests)",
                   n_features=T, n_classes=VOCAB, input_shape=[T], n_train=n_train, n_test=n_test,
                   meta={"text": {"kind": "generation", "level": "word", "max_len": T, "pad_id": 0}}, builtin=False)
    return DatasetArrays(info, X[:n_train], y[:n_train], X[n_train:], y[n_train:])


def test_a_causal_language_model_lowers_its_perplexity():
    data = counting_dataset()
    spec = apply_dataset_defaults(parse_network_spec({"layers": [
        {"type": "Embedding", "num_embeddings": VOCAB, "embedding_dim": 16}, {"type": "PositionalEncoding"},
        {"type": "TransformerEncoderLayer", "num_heads": 2, "dim_feedforward": 32, "dropout": 0.0, "causal": True},
        {"type": "Linear", "out_features": VOCAB}], "learning_rate": 0.01}), text=True)
    hp = parse_hyperparams({"epochs": 5, "batch_size": 32}, spec, max_epochs=100, n_train=len(data.X_train))
    model = build_model(spec, [T], "sequence", VOCAB, max_parameters=10**7)
    rec = Recorder()
    train(model, spec, hp, data, rec)
    first, last = rec.epochs[0], rec.epochs[-1]
    assert last.extra["perplexity"] < first.extra["perplexity"]
    assert last.extra["perplexity"] == pytest.approx(np.exp(last.val_loss))
    assert last.accuracy > 0.9, [r.accuracy for r in rec.epochs]  # counting is easy once seen
    assert last.correct is None  # tokens, not examples: accuracy is per token
    assert last.extra["perplexity"] < 2.0


def test_a_sequence_network_must_give_the_vocabulary_at_every_position():
    with pytest.raises(ValidationError, match=r"must give 20 logits \(the vocabulary\) at each of the 12 positions"):
        build_model(parse_network_spec({"layers": [EMBED, {"type": "LSTM", "hidden_size": 8},
                                                   {"type": "Linear", "out_features": VOCAB}]}),
                    [T], "sequence", VOCAB, max_parameters=10**7)


def test_ignored_targets_carry_no_loss():
    from livetrain.training.heads import SequenceLoss

    logits = torch.randn(2, 3, VOCAB)
    y = torch.tensor([[4, -100, -100], [-100, -100, -100]])
    expected = nn.functional.cross_entropy(logits[0, 0:1], y[0, 0:1])
    assert torch.allclose(SequenceLoss()(logits, y), expected)
    assert SequenceLoss()(logits, torch.full((2, 3), -100)).item() == 0.0  # nothing to learn: zero, not NaN


# -- old networks ---------------------------------------------------------------------------------

def test_an_old_checkpoint_loads_and_predicts_exactly_as_before():
    """A state dict saved from the plain nn.Sequential the builder used to make loads strictly into today's build."""
    torch.manual_seed(3)
    old = nn.Sequential(nn.Embedding(10, 8), nn.Flatten(), nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 2))
    buffer = io.BytesIO()
    torch.save({"state_dict": old.state_dict()}, buffer)
    buffer.seek(0)
    spec = parse_network_spec({"layers": [{"type": "Embedding", "num_embeddings": 10, "embedding_dim": 8},
                                          {"type": "Flatten"}, {"type": "Linear", "out_features": 64},
                                          {"type": "ReLU"}, {"type": "Linear", "out_features": 2}], "loss": "mse"})
    model = build_model(spec, [4], "regression", 0, max_parameters=10**6, n_outputs=2)
    assert type(model) is nn.Sequential
    model.load_state_dict(torch.load(buffer, weights_only=True)["state_dict"])  # strict: every key matches
    model.eval()
    old.eval()
    x = torch.tensor([[1.0, 2, 3, 9], [0, 0, 0, 0], [9, 9, 0, 1]])
    with torch.no_grad():
        assert torch.equal(model(x), old(x.long()))


def test_an_old_conv_checkpoint_loads_strictly():
    old = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 10))
    spec = parse_network_spec({"layers": [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3}, {"type": "ReLU"},
                                          {"type": "MaxPool2d", "kernel_size": 2}, {"type": "Flatten"},
                                          {"type": "Linear", "out_features": 10}]})
    model = build_model(spec, [1, 8, 8], "classification", 10, max_parameters=10**6)
    model.load_state_dict(old.state_dict())
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(model(x), old(x))
    assert not isinstance(model, HeadedModel)
