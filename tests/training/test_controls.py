"""Training controls without a server: each schedule's learning rates, clipping, early stopping, the
monitor hook, and a schedule and early stopping that go on after a resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from livetrain.training.controls import EarlyStopping, LRSchedule
from livetrain.training.trainer import TorchEngine, train
from tests.training.test_trainer import IRIS_MLP, Recorder, setup, weights

BODY = {"layers": IRIS_MLP, "optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Watcher:
    """A monitor that is due on every step and keeps what it saw."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.raw_norms: list[float] = []
        self.applied_norms: list[float] = []
        self.rates: list[tuple[float, float]] = []  # (lr it was told, lr in the optimizer)

    def due(self, step: int) -> bool:
        return True

    @staticmethod
    def norm(model) -> float:
        return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])))

    def after_backward(self, model, step: int, loss=None) -> None:
        self.steps.append(step)
        self.raw_norms.append(self.norm(model))

    def after_step(self, model, optimizer, step: int, lr: float) -> None:
        assert step == self.steps[-1]
        self.applied_norms.append(self.norm(model))
        self.rates.append((lr, optimizer.param_groups[0]["lr"]))


def trained(epochs: int, *, monitor=None, callbacks=None, **train_body):
    model, spec, hp, data = setup(BODY, "iris", epochs=epochs, mini_batch_size=16, **train_body)
    engine = TorchEngine(model, spec, hp, data)
    engine.monitor = monitor
    callbacks = callbacks or Recorder()
    outcome = train(model, spec, hp, data, callbacks, engine=engine)
    return outcome, callbacks, model


# -- schedules ------------------------------------------------------------------------------------

HALF_COS = 0.1 * (1 + math.cos(math.pi / 4)) / 2


@pytest.mark.parametrize("schedule, expected", [
    (None, [0.1] * 5),
    ({"type": "step", "step_size": 2, "gamma": 0.5}, [0.1, 0.1, 0.05, 0.05, 0.025]),
    ({"type": "exponential", "gamma": 0.5}, [0.1, 0.05, 0.025, 0.0125, 0.00625]),
    # t_max 4: down to eta_min at the fifth epoch, then it stays there
    ({"type": "cosine", "t_max": 4}, [0.1, HALF_COS, 0.05, 0.1 - HALF_COS, 0.0, 0.0]),
    ({"type": "cosine", "eta_min": 0.02}, [0.1, 0.02 + 0.08 * (1 + math.cos(math.pi / 5)) / 2,
                                           0.02 + 0.08 * (1 + math.cos(2 * math.pi / 5)) / 2,
                                           0.02 + 0.08 * (1 + math.cos(3 * math.pi / 5)) / 2,
                                           0.02 + 0.08 * (1 + math.cos(4 * math.pi / 5)) / 2]),
    # a threshold nothing can beat: every epoch after the first is a bad one; more than 1 in a row cuts
    ({"type": "reduce_on_plateau", "factor": 0.5, "patience": 1, "threshold": 1e9},
     [0.1, 0.1, 0.1, 0.05, 0.05, 0.025]),
    ({"type": "reduce_on_plateau", "factor": 0.5, "patience": 0, "threshold": 1e9, "min_lr": 0.03},
     [0.1, 0.1, 0.05, 0.03, 0.03]),
], ids=["constant", "step", "exponential", "cosine", "cosine-eta-min", "plateau", "plateau-min-lr"])
def test_each_schedule_gives_each_epoch_its_learning_rate_and_the_optimizer_uses_it(schedule, expected):
    watcher = Watcher()
    body = {"lr_schedule": schedule} if schedule else {}
    outcome, rec, _ = trained(len(expected), monitor=watcher, **body)
    assert [r.learning_rate for r in rec.epochs] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # every step took the rate it was told, and the optimizer had it
    steps_per_epoch = len(watcher.steps) // len(expected)
    told = [watcher.rates[e * steps_per_epoch][0] for e in range(len(expected))]
    assert told == [r.learning_rate for r in rec.epochs]
    assert all(lr == in_optimizer for lr, in_optimizer in watcher.rates)
    assert all(lr == rec.epochs[epoch - 1].learning_rate for epoch, lr in rec.learning_rates)
    assert outcome.stop_reason is None and outcome.best_epoch is None


def test_reduce_on_plateau_cuts_only_after_patience_epochs_without_improvement():
    schedule = LRSchedule({"type": "reduce_on_plateau", "factor": 0.1, "patience": 2, "min_lr": 0.0,
                           "threshold": 0.0, "metric": "val_loss", "mode": "min"}, 1.0)
    rates = []
    for loss in [1.0, 0.9, 0.9, 0.95, 0.91, 0.8, 0.85, 0.85, 0.85]:
        rates.append(schedule.lr)
        schedule.step({"val_loss": loss})
    rates.append(schedule.lr)
    # improvements at 1.0, 0.9 and 0.8; three bad epochs in a row (0.9, 0.95, 0.91) cut after the third
    assert rates == pytest.approx([1.0] * 5 + [0.1] * 4 + [0.01])


def test_a_watched_metric_the_run_does_not_report_fails_with_a_clear_message():
    with pytest.raises(ValueError, match=r"early_stopping watches 'r2', which this run does not report"):
        trained(2, early_stopping={"metric": "r2", "mode": "max"})


def test_a_schedule_goes_on_where_it_was_after_a_resume():
    schedule = {"type": "reduce_on_plateau", "factor": 0.5, "patience": 1, "threshold": 1e9}
    _, straight, straight_model = trained(6, lr_schedule=schedule)

    _, first, _ = trained(3, lr_schedule=schedule)
    checkpoint = first.checkpoint()
    # three epochs: the first set the best, two bad ones in a row cut the rate for the fourth
    saved = checkpoint["lr_schedule"]
    assert (saved["done"], saved["bad_epochs"], saved["plateau_lr"]) == (3, 0, 0.05)
    model, spec, hp, data = setup(BODY, "iris", epochs=3, mini_batch_size=16, lr_schedule=schedule)
    model.load_state_dict(checkpoint["model"])
    second = Recorder()
    train(model, spec, hp, data, second, start_epoch=3, optimizer_state=checkpoint["optimizer"],
          schedule_state=checkpoint["lr_schedule"])
    rates = [r.learning_rate for r in first.epochs + second.epochs]
    assert rates == [r.learning_rate for r in straight.epochs] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.025]
    for a, b in zip(weights(model), weights(straight_model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    # another schedule (or base rate) does not take over the saved state: it starts from its first epoch
    other = LRSchedule({"type": "exponential", "gamma": 0.5}, 0.1, checkpoint["lr_schedule"])
    assert (other.done, other.lr) == (0, 0.1)


def test_a_nielsen_network_follows_a_schedule_too():
    model, spec, hp, data = setup({"layer_sizes": [4, 10, 3]}, "iris", epochs=3,
                                  lr_schedule={"type": "exponential", "gamma": 0.5})
    rec = Recorder()
    train(model, spec, hp, data, rec)
    assert [r.learning_rate for r in rec.epochs] == [3.0, 1.5, 0.75]


# -- clipping -------------------------------------------------------------------------------------

def test_clipping_bounds_the_gradient_norm_of_every_step():
    # a high rate on unscaled iris: raw gradients well above the bound
    free, clipped = Watcher(), Watcher()
    trained(2, monitor=free, learning_rate=0.5)
    _, rec, _ = trained(2, monitor=clipped, learning_rate=0.5, clip_grad_norm=0.2)
    assert max(free.raw_norms) > 0.5
    assert free.applied_norms == free.raw_norms  # nothing clipped without the option
    assert sum(raw > 0.2 for raw in clipped.raw_norms) >= 3  # clipping had something to do ...
    assert max(clipped.applied_norms) <= 0.2 * (1 + 1e-5)  # ... and every step's update used at most the bound
    for raw, applied in zip(clipped.raw_norms, clipped.applied_norms):
        assert applied == pytest.approx(min(raw, 0.2), rel=1e-4)
    assert all(np.isfinite(r.train_loss) for r in rec.epochs)


# -- early stopping -------------------------------------------------------------------------------

def test_early_stopping_ends_the_run_completed_with_its_reason_and_the_best_epochs_weights():
    # min_delta 1: no later epoch can beat the first one's accuracy by that much
    outcome, rec, model = trained(10, early_stopping={"metric": "accuracy", "patience": 3, "min_delta": 1.0})
    assert outcome.stopped is False  # not a cancellation
    assert outcome.epochs_done == 4 and [r.epoch for r in rec.epochs] == [1, 2, 3, 4]
    assert outcome.stop_reason == "early_stopping: no improvement in accuracy for 3 epochs"
    assert outcome.best_epoch == 1 and outcome.best is rec.epochs[0]
    assert [r.best_epoch for r in rec.epochs] == [1, 1, 1, 1]
    best = rec.checkpoint(0)
    assert best["epoch"] == 1
    for name, value in model.state_dict().items():  # the model holds epoch 1's weights, not epoch 4's
        torch.testing.assert_close(value, best["model"][name], rtol=0, atol=0)
    assert any(not torch.equal(value, rec.checkpoint()["model"][name]) for name, value in model.state_dict().items())


def test_early_stopping_that_never_triggers_still_keeps_the_best_epoch():
    outcome, rec, model = trained(4, early_stopping={"metric": "val_loss", "patience": 10})
    assert outcome.epochs_done == 4 and outcome.stop_reason is None
    losses = [r.val_loss for r in rec.epochs]
    assert outcome.best_epoch == 1 + losses.index(min(losses))
    best = rec.checkpoint(outcome.best_epoch - 1)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, best["model"][name], rtol=0, atol=0)


def test_early_stopping_counts_epochs_without_improvement_beyond_min_delta():
    stopper = EarlyStopping({"metric": "val_loss", "mode": "min", "patience": 2, "min_delta": 0.05})
    seen = []
    for epoch, loss in enumerate([1.0, 0.9, 0.88, 0.87], start=1):
        seen.append((stopper.update(epoch, {"val_loss": loss}), stopper.triggered))
    # 0.88 and 0.87 are not 0.05 better than 0.9: two bad epochs, so it triggers at epoch 4
    assert seen == [(True, False), (True, False), (False, False), (False, True)]
    assert stopper.best_epoch == 2 and stopper.reason == "early_stopping: no improvement in val_loss for 2 epochs"
    maximize = EarlyStopping({"metric": "accuracy", "mode": "max", "patience": 1, "min_delta": 0.0})
    assert [maximize.update(e, {"accuracy": a}) for e, a in enumerate([0.5, 0.6, 0.6], start=1)] == [True, True, False]
    assert maximize.triggered and maximize.reason == "early_stopping: no improvement in accuracy for 1 epoch"


def test_early_stopping_goes_on_counting_after_a_resume_and_ends_with_the_best_weights():
    stopping = {"metric": "accuracy", "patience": 3, "min_delta": 1.0}  # nothing beats epoch 1
    _, first, _ = trained(3, early_stopping=stopping)
    checkpoint = first.checkpoint()
    saved = checkpoint["early_stopping"]
    assert (saved["best_epoch"], saved["bad_epochs"], saved["metric"], saved["mode"]) == (1, 2, "accuracy", "max")
    assert "best_model" not in first.checkpoint(0)["early_stopping"]  # the best epoch's own checkpoint: no copy
    best_weights = first.checkpoint(0)["model"]

    model, spec, hp, data = setup(BODY, "iris", epochs=5, mini_batch_size=16, early_stopping=stopping)
    model.load_state_dict(checkpoint["model"])
    second = Recorder()
    outcome = train(model, spec, hp, data, second, start_epoch=3, optimizer_state=checkpoint["optimizer"],
                    stopping_state=checkpoint["early_stopping"])
    # two bad epochs before the resume, the third one after it ends the run
    assert [r.epoch for r in second.epochs] == [4] and outcome.epochs_done == 1
    assert outcome.stop_reason == "early_stopping: no improvement in accuracy for 3 epochs"
    assert outcome.best_epoch == 1 and second.epochs[0].best_epoch == 1
    assert outcome.best.epoch == 1 and outcome.best.accuracy == first.epochs[0].accuracy
    for name, value in model.state_dict().items():  # epoch 1's weights, from before the resume
        torch.testing.assert_close(value, best_weights[name], rtol=0, atol=0)

    # another metric (or direction) has another best: it starts afresh, with its full patience
    other = EarlyStopping({"metric": "val_loss", "mode": "min", "patience": 3, "min_delta": 0.0}, saved)
    assert (other.best, other.best_epoch, other.bad_epochs) == (None, None, 0)
    model.load_state_dict(checkpoint["model"])
    _, _, hp, _ = setup(BODY, "iris", epochs=2, mini_batch_size=16, early_stopping={"metric": "val_loss"})
    fresh = train(model, spec, hp, data, Recorder(), start_epoch=3, stopping_state=checkpoint["early_stopping"])
    assert fresh.stop_reason is None and fresh.best_epoch in (4, 5)


# -- the monitor hook ------------------------------------------------------------------------------

class Every:
    """Due every `n` steps; counts how often it is asked."""

    def __init__(self, n: int) -> None:
        self.n, self.asked, self.backward, self.stepped = n, 0, [], []

    def due(self, step: int) -> bool:
        self.asked += 1
        return step % self.n == 0

    def after_backward(self, model, step: int, loss=None) -> None:
        assert all(p.grad is not None for p in model.parameters())
        assert loss is not None and bool(torch.isfinite(loss))  # the step's loss, for training_stats
        self.backward.append(step)

    def after_step(self, model, optimizer, step: int, lr: float) -> None:
        self.stepped.append(step)


def test_the_monitor_is_called_on_due_steps_with_a_step_count_that_goes_on_across_epochs():
    monitor = Every(5)
    trained(3, monitor=monitor)
    steps_per_epoch = math.ceil(120 / 16)
    assert monitor.asked == 3 * steps_per_epoch  # asked once a step, every step of every epoch
    assert monitor.backward == monitor.stepped == list(range(0, 3 * steps_per_epoch, 5))


def test_a_run_without_monitor_trains_exactly_as_one_with_a_monitor_that_is_never_due():
    _, _, plain = trained(2)
    never = Every(1)
    never.due = lambda step: False
    _, _, watched = trained(2, monitor=never)
    for a, b in zip(weights(plain), weights(watched), strict=True):
        np.testing.assert_array_equal(a, b)
