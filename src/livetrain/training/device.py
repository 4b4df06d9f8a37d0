"""Which torch device a worker trains on, and moving what it saves back to the CPU.

A worker is started with `--device cpu|cuda|cuda:N|auto`; `resolve_device` turns that into a
`torch.device` or a ValueError that says why, before any job is taken. What a run writes
(checkpoints, weights) is CPU tensors, so a server or worker without a GPU can load it.
"""

from __future__ import annotations

import re
from typing import Any

import torch

CPU = torch.device("cpu")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")
_CUDA = re.compile(r"cuda(?::(\d+))?")


def resolve_device(name: str) -> torch.device:
    """The device `--device name` means: "cpu", "cuda", "cuda:N", or "auto" (CUDA when torch sees a GPU)."""
    text = name.strip().lower() if isinstance(name, str) else ""
    if text == "cpu":
        return CPU
    if text == "auto":
        return _cuda_device(None, name) if torch.cuda.is_available() else CPU
    match = _CUDA.fullmatch(text)
    if match is None:
        raise ValueError(f"unknown device {name!r}; one of {', '.join(DEVICE_CHOICES)}")
    if not torch.cuda.is_available():
        built = (f"built for CUDA {torch.version.cuda}, but no GPU or driver is visible" if torch.version.cuda
                 else "built for CPU")
        raise ValueError(f"--device {name}: torch sees no CUDA device (torch {torch.__version__}, {built}); "
                         "use --device cpu or auto")
    return _cuda_device(None if match.group(1) is None else int(match.group(1)), name)


def _cuda_device(index: int | None, name: str) -> torch.device:
    # Always with an index: tensors report "cuda:0", and an index-less "cuda" would not compare equal to it.
    count = torch.cuda.device_count()
    if index is None:
        index = torch.cuda.current_device()
    if index >= count:
        raise ValueError(f"--device {name}: torch sees {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return torch.device("cuda", index)


def describe(device: torch.device) -> str:
    """How a run reports its device: "cpu", or "cuda:0 (the GPU's name)"."""
    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def to_cpu(value: Any) -> Any:
    """`value` with every tensor in it (state dicts, optimizer state, nested) on the CPU.

    Tensors already there are returned as they are, not copied: on a CPU run this costs nothing.
    """
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        moved = type(value)((key, to_cpu(item)) for key, item in value.items())
        metadata = getattr(value, "_metadata", None)
        if metadata is not None:  # a module's state dict: load_state_dict reads layer versions from it
            moved._metadata = metadata
        return moved
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(item) for item in value)
    return value
