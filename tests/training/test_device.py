"""Devices: what `--device` resolves to, and a run's tensors, outputs and checkpoints on the engine's device.

Most machines that run these have no GPU: torch's "meta" device (shapes without data) stands in for a second
device where only placement matters; the tests marked `needs_cuda` run where torch sees a GPU.
Like the trainer's tests, these run on one torch thread (`one_torch_thread`): small models run fastest on one.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch

from livetrain.training.device import describe, resolve_device, to_cpu
from livetrain.training.examples import collect_examples
from livetrain.training.trainer import make_engine, train
from tests.training.test_trainer import IRIS_MLP, Recorder, setup, weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="torch sees no CUDA device")
without_cuda = pytest.mark.skipif(HAS_CUDA, reason="checks a machine where torch sees no CUDA device")

# Adam keeps per-parameter state; BatchNorm has buffers; Dropout draws from the global generator.
BN_DROPOUT = {"layers": [{"type": "Linear", "out_features": 16}, {"type": "BatchNorm1d"}, {"type": "Dropout", "p": 0.3},
                         {"type": "ReLU"}, {"type": "Linear", "out_features": 3}],
              "optimizer": "adam", "learning_rate": 0.01}


def tensors(value):
    """Every tensor in a nested checkpoint."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from tensors(item)


def train_on(device, body=BN_DROPOUT, epochs=3, **train_body):
    model, spec, hp, data = setup(body, "iris", epochs=epochs, mini_batch_size=16, **train_body)
    engine = make_engine(model, spec, hp, data, device=device)
    rec = Recorder()
    train(model, spec, hp, data, rec, engine=engine)
    return engine, rec, model


def history(rec: Recorder):
    return [(r.train_loss, r.val_loss, r.correct, r.extra) for r in rec.epochs]


# -- resolve_device, describe -------------------------------------------------------------------


@without_cuda
def test_auto_is_the_cpu_where_torch_sees_no_gpu():
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


@without_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_where_torch_sees_no_gpu_says_so(name):
    problem = rf"--device {name}: torch sees no CUDA device \(torch {re.escape(torch.__version__)}, "
    with pytest.raises(ValueError, match=problem):
        resolve_device(name)


@pytest.mark.parametrize("name", ["gpu", "tpu", "cuda:", "cuda:a", "cuda0", "cuda:-1", "", "auto cpu"])
def test_an_unknown_device_lists_the_choices(name):
    with pytest.raises(ValueError, match=rf"unknown device {name!r}; one of auto, cpu, cuda, cuda:N"):
        resolve_device(name)


@pytest.fixture
def two_gpus(monkeypatch):
    """Torch as it is on a machine with two GPUs, the second one current (only the device count is asked)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: f"Card {index}")


def test_with_gpus_auto_and_cuda_name_the_current_one_and_cuda_n_is_checked(two_gpus):
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"--device cuda:2: torch sees 2 CUDA device\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2")


def test_describe_names_the_gpu(two_gpus):
    assert describe(torch.device("cpu")) == "cpu"
    assert describe(torch.device("cuda", 0)) == "cuda:0 (Card 0)"
    assert describe(torch.device("cuda")) == "cuda:1 (Card 1)"


# -- placement ---------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["cpu", "meta"] + (["cuda"] if HAS_CUDA else []))
def test_the_model_data_and_optimizer_state_follow_the_engines_device(device):
    _, first, _ = train_on("cpu", epochs=1)
    optimizer_state = first.checkpoint()["optimizer"]
    model, spec, hp, data = setup(BN_DROPOUT, "iris")
    engine = make_engine(model, spec, hp, data, optimizer_state, device=torch.device(device))

    assert engine.device.type == device
    assert engine.X.device == engine.y.device == engine.targets.device == engine.device
    assert {t.device for t in model.state_dict().values()} == {engine.device}  # parameters and BatchNorm buffers
    moments = [s["exp_avg"] for s in engine.optimizer.state.values()]
    assert moments and {t.device for t in moments} == {engine.device}  # a checkpoint from elsewhere lands here


@without_cuda
def test_asking_for_cuda_without_a_gpu_fails_instead_of_training_on_the_cpu():
    model, spec, hp, data = setup({"layers": IRIS_MLP}, "iris")
    with pytest.raises((AssertionError, RuntimeError)):
        make_engine(model, spec, hp, data, device="cuda")


def test_a_layer_sizes_network_trains_on_the_cpu_whatever_device_is_asked():
    model, spec, hp, data = setup({"layer_sizes": [4, 10, 3]}, "iris", epochs=1)
    engine = make_engine(model, spec, hp, data, device=torch.device("cuda"))  # nothing on a GPU is touched
    assert engine.device == torch.device("cpu")
    assert train(model, spec, hp, data, Recorder(), engine=engine).epochs_done == 1


# -- the same run, numpy out, checkpoints that load anywhere -------------------------------------


@pytest.mark.parametrize("device", [torch.device("cpu"), "cpu"])
def test_an_explicit_cpu_device_changes_nothing(device):
    _, default, default_model = train_on(None)
    engine, explicit, explicit_model = train_on(device)
    assert engine.device == torch.device("cpu")
    assert history(explicit) == history(default)
    for a, b in zip(weights(explicit_model), weights(default_model), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if HAS_CUDA else []))
def test_outputs_examples_and_checkpoints_come_back_on_the_cpu(device):
    engine, rec, model = train_on(device, epochs=1)
    outputs = engine.predict_split("test")
    assert isinstance(outputs, np.ndarray) and outputs.shape == (30, 3)
    assert engine.evaluate()[1] == int((outputs.argmax(axis=1) == engine.data.y_test).sum())
    examples = collect_examples(engine, model, engine.data)
    assert len(examples["right"]) + len(examples["wrong"]) > 0
    assert all(len(e["output_weights"]) == 16 for e in examples["right"] + examples["wrong"])
    checkpoint = rec.checkpoint()  # torch.load(..., map_location="cpu")
    assert {t.device.type for t in tensors(checkpoint)} == {"cpu"}
    assert {t.device.type for t in tensors(engine.optimizer_state())} == {"cpu"}


def test_a_checkpoint_loaded_with_map_location_resumes_to_the_straight_runs_end():
    _, straight, straight_model = train_on("cpu", epochs=4)
    _, first, _ = train_on("cpu", epochs=2)
    saved = io.BytesIO()
    torch.save(first.checkpoint(), saved)
    checkpoint = torch.load(io.BytesIO(saved.getvalue()), map_location="cpu", weights_only=True)

    model, spec, hp, data = setup(BN_DROPOUT, "iris", epochs=2, mini_batch_size=16)
    model.load_state_dict(checkpoint["model"])
    engine = make_engine(model, spec, hp, data, checkpoint["optimizer"], device="cpu")
    second = Recorder()
    train(model, spec, hp, data, second, start_epoch=checkpoint["epoch"], engine=engine)

    assert [r.epoch for r in second.epochs] == [3, 4]
    assert history(second) == history(straight)[2:]
    for a, b in zip(weights(model), weights(straight_model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_to_cpu_keeps_a_state_dicts_layer_versions():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    state = model.state_dict()
    moved = to_cpu({"model": state, "steps": [torch.ones(1)]})
    assert moved["model"]._metadata == state._metadata  # BatchNorm's version decides how old checkpoints load
    assert list(moved["model"]) == list(state)
    assert torch.equal(moved["steps"][0], torch.ones(1))


@needs_cuda
def test_a_gpu_run_shuffles_as_the_cpu_run_and_ends_close_to_it():
    _, on_cpu, cpu_model = train_on("cpu", body={"layers": IRIS_MLP, "optimizer": "sgd", "learning_rate": 0.05})
    engine, on_gpu, gpu_model = train_on("cuda", body={"layers": IRIS_MLP, "optimizer": "sgd", "learning_rate": 0.05})
    assert engine.device.type == "cuda"
    # same seed, same order of examples: only the kernels' rounding differs
    for a, b in zip(history(on_gpu), history(on_cpu), strict=True):
        assert a[0] == pytest.approx(b[0], rel=1e-4) and a[1] == pytest.approx(b[1], rel=1e-4)
    for a, b in zip(weights(gpu_model), weights(cpu_model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
