"""Devices: what `--device` resolves to, and what a run saves coming back to the CPU."""

from __future__ import annotations

import re

import pytest
import torch

from livetrain.training.device import describe, resolve_device, to_cpu

HAS_CUDA = torch.cuda.is_available()
without_cuda = pytest.mark.skipif(HAS_CUDA, reason="checks a machine where torch sees no CUDA device")


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



def test_to_cpu_keeps_a_state_dicts_layer_versions():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    state = model.state_dict()
    moved = to_cpu({"model": state, "steps": [torch.ones(1)]})
    assert moved["model"]._metadata == state._metadata  # BatchNorm's version decides how old checkpoints load
    assert list(moved["model"]) == list(state)
    assert torch.equal(moved["steps"][0], torch.ones(1))
