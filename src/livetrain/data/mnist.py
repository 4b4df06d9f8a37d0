"""Readers for MNIST as IDX files (gzipped or raw) and as Nielsen's `mnist.pkl.gz`."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path

import numpy as np

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
PICKLE_NAME = "mnist.pkl.gz"


class MnistFormatError(ValueError):
    """A file is not the MNIST file it claims to be."""


def find_idx(directory: Path, key: str) -> Path | None:
    """The IDX file for `key` in `directory`, gzipped or raw, or None."""
    for suffix in (".gz", ""):
        path = directory / (IDX_NAMES[key] + suffix)
        if path.is_file():
            return path
    return None


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def idx_count(path: Path) -> int:
    """The number of items an IDX file declares, read from its header alone."""
    with _open(path) as fh:
        header = fh.read(8)
    if len(header) < 8:
        raise MnistFormatError(f"{path.name}: truncated header")
    return struct.unpack(">I", header[4:8])[0]


def read_idx(path: Path) -> np.ndarray:
    """An IDX file as a uint8 array of its declared shape."""
    with _open(path) as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise MnistFormatError(f"{path.name}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise MnistFormatError(f"{path.name}: expected {expected} bytes of data, found {len(data) - offset}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers, nothing else: no code runs."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module.replace("numpy.core", "numpy._core"), name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in mnist.pkl.gz")


def read_nielsen_pickle(path: Path) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(train, validation, test) pairs of (images float32 in [0,1], labels int64)."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    try:
        parts = _ArraysOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise MnistFormatError(f"{path.name}: {exc}") from None
    if not (isinstance(parts, tuple) and len(parts) == 3):
        raise MnistFormatError(f"{path.name}: expected (training, validation, test)")
    out = []
    for images, labels in parts:
        out.append((np.asarray(images, dtype=np.float32).reshape(-1, 784), np.asarray(labels, dtype=np.int64)))
    return tuple(out)
