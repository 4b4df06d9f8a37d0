"""The training monitor without any server: exact statistics on a tiny known model, throttling, warnings,
activation health, and the monitor inside a real TorchEngine run."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from livetrain.data.sources import load_dataset
from livetrain.errors import ValidationError
from livetrain.training.model import build_model
from livetrain.training.monitor import Monitor, histogram, tensor_stats
from livetrain.training.monitor_options import MonitorOptions, parse_monitor_options
from livetrain.training.spec import parse_hyperparams, parse_network_spec
from livetrain.training.trainer import TorchEngine, train


class Sink:
    """Keeps what the monitor reports."""

    def __init__(self) -> None:
        self.weights: list[dict[str, Any]] = []
        self.stats: list[dict[str, Any]] = []
        self.logs: list[tuple] = []

    def on_weights(self, update: dict[str, Any]) -> None:
        self.weights.append(update)

    def on_stats(self, stats: dict[str, Any]) -> None:
        self.stats.append(stats)

    def on_log(self, level: str, message: str, source: str = "monitor", data=None) -> None:
        self.logs.append((level, message, source, data))


class Clock:
    """A clock the test moves by hand, and by `tick` each time it is read."""

    def __init__(self) -> None:
        self.now = 100.0
        self.tick = 0.0

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def known_model() -> nn.Sequential:
    """Linear(2 -> 2) with weights [[1, 2], [3, 4]] and bias [0.5, -0.5], then a ReLU."""
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        model[0].bias.copy_(torch.tensor([0.5, -0.5]))
    return model


def one_step(monitor: Monitor, model: nn.Module, optimizer, step: int, x: torch.Tensor, lr: float = 0.1) -> bool:
    """One training step with the monitor's calls where the engine makes them; whether it was due."""
    due = monitor.due(step)
    optimizer.zero_grad()
    loss = model(x).sum()
    loss.backward()
    if due:
        monitor.after_backward(model, step, loss=loss)
    optimizer.step()
    if due:
        monitor.after_step(model, optimizer, step, lr)
    return due


def test_statistics_of_a_known_tensor_are_exact():
    stats = tensor_stats(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    # numbers travel with 6 significant digits
    assert stats == {"mean": 2.5, "std": pytest.approx(math.sqrt(1.25), rel=1e-5), "min": 1.0, "max": 4.0,
                     "norm": pytest.approx(math.sqrt(30), rel=1e-5), "finite": True}
    hist = histogram(torch.tensor([1.0, 2.0, 3.0, 4.0]), 3)
    assert hist == {"edges": [1.0, 2.0, 3.0, 4.0], "counts": [1, 1, 2]}
    # values a hair above what 6 digits write are still counted: the bins span the exact range
    assert sum(histogram(torch.tensor([0.1234567, 0.9876543]), 4)["counts"]) == 2
    assert histogram(torch.zeros(5), 8) == {"edges": [0.0, 0.0], "counts": [5]}
    assert tensor_stats(torch.tensor([1.0, float("nan")]))["finite"] is False


def test_a_sample_of_a_known_model_has_its_exact_weights_gradients_update_and_activations():
    model = known_model()
    sink = Sink()
    monitor = Monitor(sink, every=1, bins=4, model=model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    # x = [1, 1]: outputs [3.5, 6.5], both positive, so every gradient of the weight is 1
    assert one_step(monitor, model, optimizer, 0, torch.tensor([[1.0, 1.0]]))
    (update,), (stats,) = sink.weights, sink.stats
    assert update["step"] == 0 and update["epoch"] == 1
    (layer,) = update["layers"]
    assert (layer["name"], layer["type"], layer["params"]) == ("0", "Linear", 6)
    assert layer["grad"] == {"mean": 1.0, "std": 0.0, "min": 1.0, "max": 1.0, "norm": 2.0, "finite": True}
    # after the step: w - 0.1 * 1 = [[0.9, 1.9], [2.9, 3.9]]
    weight = layer["weight"]
    assert weight["mean"] == pytest.approx(2.4, rel=1e-5) and weight["min"] == pytest.approx(0.9, rel=1e-5)
    assert weight["max"] == pytest.approx(3.9, rel=1e-5) and weight["std"] == pytest.approx(math.sqrt(1.25), rel=1e-5)
    norm = math.sqrt(0.81 + 3.61 + 8.41 + 15.21)
    assert weight["norm"] == pytest.approx(norm, rel=1e-5)
    # every weight moved by 0.1: ||delta|| = 0.2
    assert layer["update_ratio"] == pytest.approx(0.2 / norm, rel=1e-4)
    assert sum(layer["weight_hist"]["counts"]) == 4 and len(layer["weight_hist"]["counts"]) == 4
    edges = layer["weight_hist"]["edges"]
    assert edges[0] == pytest.approx(0.9, rel=1e-5) and edges[-1] == pytest.approx(3.9, rel=1e-5)
    assert layer["grad_hist"] == {"edges": [1.0, 1.0], "counts": [4]}  # a constant gradient: one bin
    assert update["activations"] == [{"name": "1", "type": "ReLU", "dead": 0.0}]
    # the global norm counts the bias gradients too: sqrt(4 * 1 + 2 * 1)
    assert stats["grad_norm"] == pytest.approx(math.sqrt(6), rel=1e-5)
    assert stats["learning_rate"] == 0.1 and stats["loss"] == 10.0 and stats["warnings"] == []
    assert not model[1]._forward_hooks, "the activation hooks are gone after the due step"


def test_a_relu_unit_that_is_zero_for_the_whole_batch_counts_as_dead():
    model = known_model()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]))
        model[0].bias.zero_()
    sink = Sink()
    monitor = Monitor(sink, every=1, model=model)
    one_step(monitor, model, torch.optim.SGD(model.parameters(), lr=0.01), 0, torch.tensor([[1.0, 2.0], [0.5, 0.5]]))
    assert sink.weights[0]["activations"] == [{"name": "1", "type": "ReLU", "dead": 0.5}]


def test_every_n_steps_samples_exactly_those_steps():
    model = known_model()
    sink = Sink()
    monitor = Monitor(sink, every=3, model=model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    due = [one_step(monitor, model, optimizer, step, torch.ones(4, 2)) for step in range(10)]
    assert [step for step, d in enumerate(due) if d] == [0, 3, 6, 9]
    assert [u["step"] for u in sink.weights] == [s["step"] for s in sink.stats] == [0, 3, 6, 9]


def test_by_default_samples_are_a_quarter_second_apart_and_histograms_a_second():
    model = known_model()
    sink = Sink()
    clock = Clock()
    monitor = Monitor(sink, model=model, clock=clock)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    sampled = []
    for step in range(40):  # 40 steps, 1/16 s apart: 2.5 seconds
        if one_step(monitor, model, optimizer, step, torch.ones(4, 2)):
            sampled.append(step)
        clock.now += 0.0625
    assert sampled == [0, 4, 8, 12, 16, 20, 24, 28, 32, 36]
    with_histograms = [u["step"] for u in sink.weights if "weight_hist" in u["layers"][0]]
    assert with_histograms == [0, 16, 32]


def test_the_interval_doubles_as_samples_pile_up():
    monitor = Monitor(Sink(), stretch_every=10)
    assert monitor.interval() == 0.25
    monitor.samples = 10
    assert monitor.interval() == 0.5
    monitor.samples = 35
    assert monitor.interval() == 2.0


def test_a_costly_sample_waits_until_its_cost_fits_the_budget():
    model = known_model()
    clock = Clock()
    monitor = Monitor(Sink(), model=model, clock=clock, budget=0.02)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    assert monitor.due(0)
    optimizer.zero_grad()
    model(torch.ones(1, 2)).sum().backward()
    clock.tick = 0.05  # every reading of the clock inside the monitor's hooks: a costly sample
    monitor.after_backward(model, 0)
    monitor.after_step(model, optimizer, 0, 0.001)
    clock.tick = 0.0
    assert monitor.cost == pytest.approx(0.1)  # so the next may come no sooner than 0.1 / 0.02 = 5 s later
    clock.now += 4.5
    assert not monitor.due(1)
    clock.now += 2.0
    assert monitor.due(2)


def test_exploding_and_vanishing_gradients_are_warned_about_with_a_message_that_repeats_as_is():
    model = known_model()
    sink = Sink()
    monitor = Monitor(sink, every=1, model=model, explode_above=5.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    for step in range(2):
        one_step(monitor, model, optimizer, step, torch.full((1, 2), 10.0))  # gradients of 10: norm ~ 20
    assert [w["kind"] for s in sink.stats for w in s["warnings"]] == ["exploding", "exploding"]
    assert sink.logs[0][0] == "warning" and sink.logs[0][1] == sink.logs[1][1]
    assert "exploding gradients" in sink.logs[0][1] and sink.logs[0][3]["value"] > 5

    sink = Sink()
    monitor = Monitor(sink, every=1, model=model, vanish_below=1e-3)
    one_step(monitor, model, optimizer, 0, torch.full((1, 2), 1e-6))
    (warning,) = sink.stats[0]["warnings"]
    assert warning["kind"] == "vanishing" and warning["layer"] == "0"
    assert "vanishing gradients in layer 0" in warning["message"]


def test_vanishing_layers_of_one_sample_share_one_log_line_so_repeats_fold():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    sink = Sink()
    monitor = Monitor(sink, every=1, model=model, vanish_below=10.0)  # every layer "vanishes"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    for step in range(3):
        one_step(monitor, model, optimizer, step, torch.ones(1, 2))
    assert [len(s["warnings"]) for s in sink.stats] == [2, 2, 2]  # one per layer in the stats
    messages = [message for _, message, _, _ in sink.logs]
    assert messages == ["vanishing gradients in layers 0, 2: gradient norms below 10"] * 3
    assert set(sink.logs[0][3]["layers"]) == {"0", "2"}


def test_non_finite_gradients_are_exploding_and_the_numbers_stay_valid_json():
    model = known_model()
    sink = Sink()
    monitor = Monitor(sink, every=1, model=model)
    one_step(monitor, model, torch.optim.SGD(model.parameters(), lr=0.0), 0, torch.tensor([[float("inf"), 1.0]]))
    assert sink.stats[0]["grad_norm"] is None
    assert sink.stats[0]["warnings"][0]["kind"] == "exploding"
    assert "not finite" in sink.stats[0]["warnings"][0]["message"]
    layer = sink.weights[0]["layers"][0]
    assert layer["grad"]["finite"] is False and layer["grad_hist"] is None


def test_monitor_options_of_a_train_request():
    assert parse_monitor_options({}, True) == MonitorOptions(True, None)
    assert parse_monitor_options({"monitor": False}, True) == MonitorOptions(False, None)
    assert parse_monitor_options({"monitor_every": 50.0}, True) == MonitorOptions(True, 50)
    assert parse_monitor_options({}, False) == MonitorOptions(False, None)  # layer_sizes: no autograd
    for body, layer_spec in [({"monitor": "yes"}, True), ({"monitor_every": 0}, True), ({"monitor_every": 2.5}, True),
                             ({"monitor_every": True}, True), ({"monitor": True}, False)]:
        with pytest.raises(ValidationError) as caught:
            parse_monitor_options(body, layer_spec)
        assert caught.value.detail["field"] in ("monitor", "monitor_every")
    assert MonitorOptions.from_dict(None) == MonitorOptions(True, None)


def test_warning_thresholds_of_a_train_request_are_positive_finite_and_in_order():
    options = parse_monitor_options({"monitor_explode_above": 100, "monitor_vanish_below": 1e-6}, True)
    assert (options.explode_above, options.vanish_below) == (100.0, 1e-6)
    assert MonitorOptions.from_dict(options.to_dict()) == options
    assert MonitorOptions.from_dict({"enabled": True, "every": None}) == MonitorOptions()  # a run before thresholds
    for body, field in [({"monitor_explode_above": 0}, "monitor_explode_above"),
                        ({"monitor_explode_above": -5.0}, "monitor_explode_above"),
                        ({"monitor_explode_above": float("inf")}, "monitor_explode_above"),
                        ({"monitor_vanish_below": float("nan")}, "monitor_vanish_below"),
                        ({"monitor_vanish_below": "1e-6"}, "monitor_vanish_below"),
                        ({"monitor_vanish_below": True}, "monitor_vanish_below"),
                        ({"monitor_explode_above": 1, "monitor_vanish_below": 1}, "monitor_vanish_below"),
                        ({"monitor_explode_above": 1e-8}, "monitor_explode_above")]:  # below the default vanish
        with pytest.raises(ValidationError) as caught:
            parse_monitor_options(body, True)
        assert caught.value.detail["field"] == field, body
    with pytest.raises(ValidationError):  # a layer_sizes network has no gradients to warn about
        parse_monitor_options({"monitor_explode_above": 100}, False)


def test_a_runs_explode_threshold_reaches_its_monitor_which_then_warns_where_the_default_does_not():
    from livetrain.jobs.worker import start_monitor

    class Engine:
        device = "cpu"
        monitor = None

    def warnings_of(body: dict[str, Any]) -> list[str]:
        model = known_model()
        hp = parse_hyperparams(body, parse_network_spec({"layers": [{"type": "Linear", "out_features": 2}]}),
                               max_epochs=10, n_train=100)
        engine, sink = Engine(), Sink()
        sink.monitor = None
        start_monitor(engine, model, hp, sink, 0, 1)
        one_step(engine.monitor, model, torch.optim.SGD(model.parameters(), lr=0.0), 0, torch.full((1, 2), 10.0))
        return [w["kind"] for s in sink.stats for w in s["warnings"]]

    # gradients of 10 per weight: a global norm of about 20, far below the default 1000
    assert warnings_of({"monitor_every": 1}) == []
    assert warnings_of({"monitor_every": 1, "monitor_explode_above": 5}) == ["exploding"]


def test_the_monitor_inside_a_real_run_samples_every_layer_across_epochs():
    torch.set_num_threads(1)
    data = load_dataset("digits", "/nonexistent")
    spec = parse_network_spec({"layers": [{"type": "Linear", "out_features": 16}, {"type": "Tanh"},
                                          {"type": "Linear", "out_features": 10}]})
    hp = parse_hyperparams({"epochs": 2, "batch_size": 64, "monitor_every": 10}, spec, max_epochs=10,
                           n_train=len(data.X_train))
    assert hp.extra["monitor"] == {"enabled": True, "every": 10, "explode_above": 1e3, "vanish_below": 1e-7}
    model = build_model(spec, data.info.input_shape, data.info.task, data.info.n_classes, max_parameters=10**6)
    engine = TorchEngine(model, spec, hp, data)
    sink = Sink()
    engine.monitor = Monitor(sink, every=10, model=model)

    class Callbacks:
        def on_progress(self, *args) -> None:
            pass

        def on_epoch_end(self, result, checkpoint) -> None:
            engine.monitor.epoch = result.epoch + 1

        def should_stop(self) -> bool:
            return False

    train(model, spec, hp, data, Callbacks(), engine=engine)
    per_epoch = math.ceil(len(data.X_train) / 64)
    assert [u["step"] for u in sink.weights] == list(range(0, 2 * per_epoch, 10))
    assert {u["epoch"] for u in sink.weights} == {1, 2}
    assert all(u["epoch"] == 1 + u["step"] // per_epoch for u in sink.weights)
    assert all([layer["name"] for layer in u["layers"]] == ["0", "2"] for u in sink.weights)
    assert all(u["activations"][0]["type"] == "Tanh" for u in sink.weights)
    assert all(s["learning_rate"] == pytest.approx(hp.learning_rate) and s["loss"] > 0 for s in sink.stats)
    first = sink.weights[0]["layers"][0]
    assert sum(first["weight_hist"]["counts"]) == first["params"] - 16  # the weights, not the bias
