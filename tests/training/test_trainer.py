"""The training loop without any server: engines learn, stop when asked, resume and repeat exactly."""

from __future__ import annotations

import io
import itertools
from typing import Any

import numpy as np
import pytest
import torch

from livetrain.data.sources import DatasetArrays, load_dataset
from livetrain.errors import ValidationError
from livetrain.store.entities import Dataset
from livetrain.training.examples import collect_examples
from livetrain.training.model import build_model
from livetrain.training.spec import parse_hyperparams, parse_network_spec
from livetrain.training.trainer import NielsenEngine, TorchEngine, batch_bounds, make_engine, train
from tests.conftest import MNIST_DIR, requires_mnist

MLP = [{"type": "Linear", "out_features": 32}, {"type": "ReLU"}, {"type": "Linear", "out_features": 10}]
IRIS_MLP = [{"type": "Linear", "out_features": 16}, {"type": "ReLU"}, {"type": "Linear", "out_features": 3}]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Recorder:
    """Trainer callbacks that keep everything, serialize checkpoints as the worker does, and can stop."""

    def __init__(self, stop_when=None) -> None:
        self.epochs = []
        self.progress: list[tuple[int, int, int, float]] = []
        self.learning_rates: list[tuple[int, float]] = []
        self.checkpoints: list[bytes] = []
        self.stop_when = stop_when or (lambda recorder: False)

    def on_progress(self, epoch: int, batch: int, n_batches: int, train_loss: float, learning_rate: float) -> None:
        self.progress.append((epoch, batch, n_batches, train_loss))
        self.learning_rates.append((epoch, learning_rate))

    def on_epoch_end(self, result, checkpoint: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        self.epochs.append(result)
        self.checkpoints.append(buffer.getvalue())

    def should_stop(self) -> bool:
        return self.stop_when(self)

    def checkpoint(self, index: int = -1) -> dict[str, Any]:
        return torch.load(io.BytesIO(self.checkpoints[index]), map_location="cpu", weights_only=True)


def setup(body: dict[str, Any], dataset: str = "digits", mnist_dir=None, **train_body):
    data = load_dataset(dataset, mnist_dir or "/nonexistent")
    spec = parse_network_spec(body)
    hp = parse_hyperparams(train_body, spec, max_epochs=1000, n_train=len(data.X_train))
    model = build_model(spec, data.info.input_shape, data.info.task, data.info.n_classes, max_parameters=10**7)
    return model, spec, hp, data


def run(body, dataset="digits", *, callbacks=None, mnist_dir=None, **train_body):
    model, spec, hp, data = setup(body, dataset, mnist_dir, **train_body)
    callbacks = callbacks or Recorder()
    outcome = train(model, spec, hp, data, callbacks)
    return outcome, callbacks, model


def weights(model) -> list[np.ndarray]:
    return [v.detach().cpu().numpy().copy() for v in model.state_dict().values()]


# -- learning ----------------------------------------------------------------------------


def test_nielsen_network_learns_digits():
    outcome, rec, _ = run({"layer_sizes": [64, 30, 10]}, epochs=3)
    accuracies = [r.accuracy for r in rec.epochs]
    assert [r.epoch for r in rec.epochs] == [1, 2, 3]
    assert accuracies[-1] > accuracies[0]
    assert accuracies[-1] >= 0.85
    assert rec.epochs[-1].train_loss < rec.epochs[0].train_loss
    for r in rec.epochs:
        assert r.total == 360 and r.accuracy == r.correct / r.total and r.total_epochs == 3
    assert outcome.stopped is False and outcome.epochs_done == 3 and outcome.last is rec.epochs[-1]


@requires_mnist
def test_nielsen_network_learns_mnist():
    _, rec, _ = run({"layer_sizes": [784, 30, 10]}, "mnist", mnist_dir=MNIST_DIR, epochs=2)
    assert rec.epochs[-1].total == 2000
    assert rec.epochs[-1].accuracy > 0.85


def test_layer_spec_network_learns_digits():
    _, rec, _ = run({"layers": MLP, "learning_rate": 0.01}, epochs=3)
    assert rec.epochs[-1].accuracy >= 0.85
    assert rec.epochs[-1].val_loss < rec.epochs[0].val_loss


def test_conv_network_learns_digits():
    body = {"layers": [{"type": "Conv2d", "out_channels": 8, "kernel_size": 3}, {"type": "ReLU"},
                       {"type": "Flatten"}, {"type": "Linear", "out_features": 10}], "learning_rate": 0.01}
    _, rec, _ = run(body, epochs=2)
    assert rec.epochs[-1].accuracy >= 0.85


def test_regression_reports_r2_and_no_accuracy():
    body = {"layers": [{"type": "Linear", "out_features": 16}, {"type": "ReLU"}, {"type": "Linear", "out_features": 1}],
            "loss": "mse", "learning_rate": 0.01}
    _, rec, _ = run(body, "diabetes", epochs=3)
    last = rec.epochs[-1]
    assert last.accuracy is None and last.correct is None and last.total == 89
    assert 0.1 < last.extra["r2"] <= 1.0


def test_mse_classification_with_one_hot_targets_learns():
    _, rec, _ = run({"layers": MLP, "loss": "mse", "learning_rate": 0.01}, epochs=3)
    assert rec.epochs[-1].accuracy >= 0.8


def test_a_diverging_run_fails_with_a_hint():
    body = {"layers": [{"type": "Linear", "out_features": 1}], "loss": "mse", "optimizer": "sgd",
            "learning_rate": 50, "momentum": 0}
    with pytest.raises(FloatingPointError, match="diverged in epoch 1.*smaller learning rate"):
        run(body, "diabetes", epochs=2)


def test_make_engine_picks_numpy_for_nielsen_and_torch_otherwise():
    assert isinstance(make_engine(*setup({"layer_sizes": [64, 30, 10]})), NielsenEngine)
    assert isinstance(make_engine(*setup({"layers": IRIS_MLP}, "iris")), TorchEngine)


# -- Nielsen semantics ---------------------------------------------------------------------


def reference_step(ws, bs, X, Y, eta):
    """One mini-batch of Nielsen's per-example backprop (sigmoid, quadratic cost), in float64."""
    sigmoid = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    grad_w = [np.zeros_like(w) for w in ws]
    grad_b = [np.zeros_like(b) for b in bs]
    cost = 0.0
    for x, y in zip(X, Y, strict=True):
        activations = [x]
        for w, b in zip(ws, bs, strict=True):
            activations.append(sigmoid(w @ activations[-1] + b))
        cost += 0.5 * float(np.sum((activations[-1] - y) ** 2))
        delta = (activations[-1] - y) * activations[-1] * (1 - activations[-1])
        for layer in range(len(ws) - 1, -1, -1):
            grad_w[layer] += np.outer(delta, activations[layer])
            grad_b[layer] += delta
            if layer:
                a = activations[layer]
                delta = (ws[layer].T @ delta) * a * (1 - a)
    m = len(X)
    new_ws = [w - eta / m * g for w, g in zip(ws, grad_w, strict=True)]
    new_bs = [b - eta / m * g for b, g in zip(bs, grad_b, strict=True)]
    return new_ws, new_bs, cost / m


def test_nielsen_engine_takes_the_same_step_as_per_example_backprop():
    model, spec, hp, data = setup({"layer_sizes": [4, 6, 5, 3], "init": "standard"}, "iris",
                                  mini_batch_size=120, learning_rate=3.0, epochs=1)
    linears = [model[0], model[2], model[4]]
    ws = [m.weight.detach().numpy().astype(np.float64) for m in linears]
    bs = [m.bias.detach().numpy().astype(np.float64) for m in linears]
    targets = np.eye(3)[data.y_train]
    want_w, want_b, want_cost = reference_step(ws, bs, data.X_train.astype(np.float64), targets, 3.0)

    engine = NielsenEngine(model, spec, hp, data)
    loss = engine.run_epoch(1, lambda *args: False)  # one batch of all 120 rows: order does not matter

    assert loss == pytest.approx(want_cost, rel=1e-5)
    for module, w, b in zip(linears, want_w, want_b, strict=True):
        np.testing.assert_allclose(module.weight.detach().numpy(), w, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(module.bias.detach().numpy(), b, rtol=1e-4, atol=1e-5)


def test_batch_bounds_cover_every_row_once_and_never_leave_a_batch_of_one():
    assert batch_bounds(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert batch_bounds(11, 5) == [(0, 5), (5, 11)]
    assert batch_bounds(12, 5) == [(0, 5), (5, 10), (10, 12)]
    assert batch_bounds(1, 1) == [(0, 1)]
    assert batch_bounds(5, 1) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    for n, size in [(1437, 10), (120, 7), (8000, 32)]:
        bounds = batch_bounds(n, size)
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        assert all(hi - lo >= 2 for lo, hi in bounds)


# -- progress, cancellation ---------------------------------------------------------------------


def test_progress_is_reported_inside_epochs_only():
    model, spec, hp, data = setup({"layer_sizes": [64, 30, 10]}, epochs=2)
    rec = Recorder()
    train(model, spec, hp, data, rec, progress_interval=0.0)
    n_batches = len(batch_bounds(1437, 10))
    for epoch in (1, 2):
        batches = [p[1] for p in rec.progress if p[0] == epoch]
        assert batches == list(range(1, n_batches))  # the last batch is the epoch's end, reported as such
    assert all(p[2] == n_batches and np.isfinite(p[3]) and p[3] > 0 for p in rec.progress)


def test_stop_between_epochs_keeps_the_finished_epochs():
    outcome, rec, _ = run({"layer_sizes": [64, 30, 10]}, callbacks=Recorder(lambda r: len(r.epochs) >= 2), epochs=5)
    assert outcome.stopped is True
    assert outcome.epochs_done == 2
    assert [r.epoch for r in rec.epochs] == [1, 2]
    assert outcome.last.epoch == 2
    assert rec.checkpoint()["epoch"] == 2


def test_stop_inside_an_epoch_drops_that_epoch():
    def in_epoch_two(recorder):
        return any(epoch == 2 and batch >= 5 for epoch, batch, _, _ in recorder.progress)

    model, spec, hp, data = setup({"layers": IRIS_MLP}, "iris", epochs=4, mini_batch_size=8)
    rec = Recorder(in_epoch_two)
    outcome = train(model, spec, hp, data, rec, progress_interval=0.0)
    assert outcome.stopped is True and outcome.epochs_done == 1
    assert [r.epoch for r in rec.epochs] == [1]
    assert max(batch for epoch, batch, _, _ in rec.progress if epoch == 2) == 5  # stopped at the next batch


def test_stop_before_anything_trains():
    outcome, rec, _ = run({"layer_sizes": [64, 30, 10]}, callbacks=Recorder(lambda r: True), epochs=3)
    assert (outcome.stopped, outcome.epochs_done, outcome.last, rec.epochs) == (True, 0, None, [])


# -- checkpoints, resume, determinism ---------------------------------------------------------


def test_checkpoint_is_a_plain_dict_loadable_with_weights_only():
    _, rec, model = run({"layers": IRIS_MLP, "optimizer": "adam"}, "iris", epochs=1)
    checkpoint = rec.checkpoint()
    assert checkpoint["epoch"] == 1
    assert checkpoint["spec"]["layers"][0] == {"type": "Linear", "out_features": 16, "bias": True}
    assert checkpoint["hyperparams"]["epochs"] == 1
    assert checkpoint["n_train"] == 120
    assert set(checkpoint["model"]) == set(model.state_dict())
    assert checkpoint["optimizer"]["state"]  # Adam's moments are kept for resuming


@pytest.mark.parametrize("body", [
    {"layer_sizes": [4, 10, 3]},
    {"layers": IRIS_MLP, "optimizer": "adam", "learning_rate": 0.01},
    {"layers": [{"type": "Linear", "out_features": 16}, {"type": "BatchNorm1d"}, {"type": "Dropout", "p": 0.3},
                {"type": "ReLU"}, {"type": "Linear", "out_features": 3}],
     "optimizer": "sgd", "learning_rate": 0.05},
])
def test_resume_continues_the_epoch_numbering_and_ends_where_a_straight_run_ends(body):
    _, straight, straight_model = run(body, "iris", epochs=4, mini_batch_size=16)

    _, first, _ = run(body, "iris", epochs=2, mini_batch_size=16)
    checkpoint = first.checkpoint()
    model, spec, hp, data = setup(body, "iris", epochs=2, mini_batch_size=16)
    model.load_state_dict(checkpoint["model"])
    second = Recorder()
    outcome = train(model, spec, hp, data, second, start_epoch=checkpoint["epoch"],
                    optimizer_state=checkpoint["optimizer"] or None)

    assert [r.epoch for r in second.epochs] == [3, 4]
    assert all(r.total_epochs == 4 for r in second.epochs)
    assert outcome.epochs_done == 2
    assert second.checkpoint()["epoch"] == 4
    for a, b in zip(weights(model), weights(straight_model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert second.epochs[-1].val_loss == pytest.approx(straight.epochs[-1].val_loss, rel=1e-5)


@pytest.mark.parametrize("body", [{"layer_sizes": [4, 10, 3]}, {"layers": IRIS_MLP, "learning_rate": 0.01}])
def test_same_seed_same_run_other_seed_other_run(body):
    _, a, model_a = run(body, "iris", epochs=2, seed=5)
    _, b, model_b = run(body, "iris", epochs=2, seed=5)
    _, c, _ = run(body, "iris", epochs=2, seed=6)
    assert [(r.train_loss, r.val_loss, r.correct) for r in a.epochs] == [(r.train_loss, r.val_loss, r.correct)
                                                                          for r in b.epochs]
    for x, y in zip(weights(model_a), weights(model_b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert [r.train_loss for r in a.epochs] != [r.train_loss for r in c.epochs]


# -- several regression targets, an embedding, a validation split --------------------------------------

EMBED_HEAD = {"layers": [{"type": "Embedding", "num_embeddings": 10, "embedding_dim": 8}, {"type": "Flatten"},
                         {"type": "Linear", "out_features": 64}, {"type": "ReLU"},
                         {"type": "Linear", "out_features": 2}],
              "loss": "mse", "optimizer": "adam", "learning_rate": 0.003}


def digit_targets(n_train=600, n_val=150, n_test=100, *, with_val=True) -> DatasetArrays:
    """Four-digit numbers as digit rows (0-9, unscaled); targets [n % 7, n // 100], standardized on train."""
    numbers = np.random.default_rng(0).choice(np.arange(1000, 10000), n_train + n_val + n_test, replace=False)
    X = np.array([[int(c) for c in str(n)] for n in numbers], dtype=np.float32)
    targets = np.stack([numbers % 7, numbers // 100], axis=1).astype(np.float32)
    mean, std = targets[:n_train].mean(axis=0), targets[:n_train].std(axis=0)
    y = (targets - mean) / std
    cut_val, cut_test = n_train, n_train + n_val
    X_val, y_val = (X[cut_val:cut_test], y[cut_val:cut_test]) if with_val else (None, None)
    info = Dataset(id="digit-targets", name="digit targets", task="regression", source="synthetic (tests)",
                   n_features=4, n_classes=0, input_shape=[4], n_train=n_train, n_test=n_test,
                   meta={"n_outputs": 2}, builtin=False)
    return DatasetArrays(info, X[:cut_val], y[:cut_val], X[cut_test:], y[cut_test:],
                         {"target_mean": mean.tolist(), "target_std": std.tolist()},
                         X_val=X_val, y_val=y_val)


def setup_arrays(body, data: DatasetArrays, **train_body):
    spec = parse_network_spec(body)
    hp = parse_hyperparams(train_body, spec, max_epochs=1000, n_train=len(data.X_train))
    model = build_model(spec, data.info.input_shape, data.info.task, data.info.n_classes, max_parameters=10**7,
                        n_outputs=data.n_outputs)
    return model, spec, hp, data


def test_embedding_network_learns_two_regression_targets_scored_on_validation():
    model, spec, hp, data = setup_arrays(EMBED_HEAD, digit_targets(), epochs=6, batch_size=32)
    rec = Recorder()
    train(model, spec, hp, data, rec)
    val_losses = [r.val_loss for r in rec.epochs]
    assert val_losses[-1] < val_losses[0]
    assert rec.epochs[-1].train_loss < rec.epochs[0].train_loss
    last = rec.epochs[-1]
    assert (last.split, last.total, last.accuracy, last.correct) == ("val", 150, None, None)
    # n // 100 is read off the first two digits, n % 7 hardly learnt in six epochs: r2 near (1 + 0) / 2
    assert 0.3 < last.extra["r2"] <= 1.0


@pytest.mark.parametrize("with_val, split, total", [(True, "val", 150), (False, "test", 100)])
def test_each_epoch_is_scored_on_validation_when_there_is_one_else_on_test(with_val, split, total):
    model, spec, hp, data = setup_arrays(EMBED_HEAD, digit_targets(with_val=with_val), epochs=1)
    rec = Recorder()
    train(model, spec, hp, data, rec)
    assert (rec.epochs[0].split, rec.epochs[0].total) == (split, total)
    engine = make_engine(model, spec, hp, data)
    assert engine.eval_split == split
    X, y = engine.split(split)
    assert engine.evaluate() == engine.evaluate(split)
    assert engine.evaluate()[0] == pytest.approx(float(np.mean((engine.outputs(X) - y) ** 2)), rel=1e-5)


def test_the_built_ins_are_still_scored_on_test():
    _, rec, _ = run({"layers": IRIS_MLP}, "iris", epochs=1)
    assert (rec.epochs[0].split, rec.epochs[0].total) == ("test", 30)


def test_any_split_can_be_predicted_and_scored_after_training():
    model, spec, hp, data = setup_arrays(EMBED_HEAD, digit_targets(), epochs=1)
    engine = make_engine(model, spec, hp, data)
    train(model, spec, hp, data, Recorder(), engine=engine)
    assert engine.splits == ("train", "val", "test")
    for name, rows in [("train", 600), ("val", 150), ("test", 100)]:
        outputs = engine.predict_split(name)
        assert outputs.shape == (rows, 2)
        loss, correct, accuracy, extra = engine.evaluate(name)
        assert loss == pytest.approx(float(np.mean((outputs - engine.split(name)[1]) ** 2)), rel=1e-5)
        assert correct is None and accuracy is None and "r2" in extra
    assert data.unscale_target(engine.predict_split("test")).shape == (100, 2)  # the job layer's final metrics
    without = make_engine(*setup_arrays(EMBED_HEAD, digit_targets(with_val=False)))
    assert without.splits == ("train", "test")
    with pytest.raises(ValueError, match="has no validation split"):
        without.predict_split("val")
    with pytest.raises(ValueError, match="unknown split 'holdout'"):
        engine.predict_split("holdout")


def test_two_target_r2_is_the_average_of_each_targets_r2():
    model, spec, hp, data = setup_arrays(EMBED_HEAD, digit_targets(), epochs=1)
    engine = make_engine(model, spec, hp, data)
    y = np.array([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0], [3.0, 7.0]], dtype=np.float32)
    outputs = np.array([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0], [3.0, 7.0]], dtype=np.float32)
    outputs[:, 1] = 4.0  # the second target predicted by its mean: r2 0; the first exactly: r2 1
    loss, _, _, extra = engine.score(outputs, y)
    assert extra["r2"] == pytest.approx(0.5)
    assert loss == pytest.approx(float(np.mean((outputs - y) ** 2)))


@pytest.mark.parametrize("split, row, column, value", [
    ("train", 4, 0, 12.0), ("val", 5, 1, 3.5), ("test", 0, 3, -1.0)])
def test_data_an_embedding_cannot_look_up_is_refused_before_training(split, row, column, value):
    data = digit_targets()
    X = getattr(data, f"X_{split}").copy()
    X[row, column] = value
    setattr(data, f"X_{split}", X)
    model, spec, hp, data = setup_arrays(EMBED_HEAD, data, epochs=1)
    rec = Recorder()
    problem = (rf"layers\[0\] \(Embedding\) takes whole numbers in \[0, 10\) as inputs, but the {split} split "
               rf"has {value!r} \(row {row}, feature {column}\)")
    with pytest.raises(ValidationError, match=problem):
        train(model, spec, hp, data, rec)
    assert rec.epochs == []


def test_scaled_features_are_refused_by_an_embedding():
    body = {"layers": [{"type": "Embedding", "num_embeddings": 10, "embedding_dim": 4}, {"type": "Flatten"},
                       {"type": "Linear", "out_features": 3}]}
    with pytest.raises(ValidationError, match=r"layers\[0\] \(Embedding\).*the train split has"):
        make_engine(*setup(body, "iris"))


def test_no_examples_for_regression_with_several_targets():
    model, spec, hp, data = setup_arrays(EMBED_HEAD, digit_targets(), epochs=1)
    engine = make_engine(model, spec, hp, data)
    assert collect_examples(engine, model, data) == {"right": [], "wrong": [], "total": 100}


def test_examples_of_a_network_without_an_output_linear_have_no_output_weights():
    body = {"layers": [{"type": "Conv2d", "out_channels": 10, "kernel_size": 8}, {"type": "Flatten"}],
            "learning_rate": 0.01}
    model, spec, hp, data = setup(body, epochs=1)
    engine = make_engine(model, spec, hp, data)
    examples = collect_examples(engine, model, data, limit=2)
    shown = examples["right"] + examples["wrong"]
    assert shown and all(e["output_weights"] is None and len(e["network_output"]) == 10 for e in shown)
    assert all(e["image_data"] for e in shown)
