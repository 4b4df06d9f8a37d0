"""Dataset sources: scikit-learn built-ins, MNIST IDX (raw and .gz) and the restricted mnist.pkl.gz reader."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from livetrain.data import mnist, sources
from livetrain.data.sources import available_datasets, default_dataset_id, load_dataset
from livetrain.errors import NotFound, ValidationError
from tests.conftest import MNIST_DIR, requires_mnist


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file of `array`."""
    array = np.asarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape) + array.tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    data = idx_bytes(array)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


def fake_mnist(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def write_test_set(directory: Path, n: int, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    directory.mkdir(parents=True, exist_ok=True)
    images, labels = fake_mnist(n)
    suffix = ".gz" if gz else ""
    write_idx(directory / f"t10k-images-idx3-ubyte{suffix}", images)
    write_idx(directory / f"t10k-labels-idx1-ubyte{suffix}", labels)
    return images, labels


# -- scikit-learn built-ins --------------------------------------------------------------


def test_without_mnist_the_builtins_are_listed_and_digits_is_the_default(tmp_path):
    found = {d.id: d for d in available_datasets(tmp_path / "empty")}
    assert set(found) == {"digits", "iris", "wine", "breast_cancer", "diabetes"}
    assert (found["digits"].n_features, found["digits"].n_classes, found["digits"].input_shape) == (64, 10, [1, 8, 8])
    iris = found["iris"]
    assert (iris.n_features, iris.n_classes, iris.n_train, iris.n_test) == (4, 3, 120, 30)
    assert found["diabetes"].task == "regression" and found["diabetes"].n_classes == 0
    assert default_dataset_id(tmp_path / "empty") == "digits"


@pytest.mark.parametrize("dataset_id", ["digits", "iris", "wine", "breast_cancer", "diabetes"])
def test_builtin_split_matches_its_metadata(dataset_id, tmp_path):
    data = load_dataset(dataset_id, tmp_path)
    assert len(data.X_train) == len(data.y_train) == data.info.n_train
    assert len(data.X_test) == len(data.y_test) == data.info.n_test
    assert data.X_train.shape[1] == data.X_test.shape[1] == data.info.n_features
    assert data.X_train.dtype == np.float32
    assert np.isfinite(data.X_train).all() and np.isfinite(data.X_test).all()


def test_the_split_is_the_same_every_time(tmp_path):
    first = load_dataset("wine", tmp_path)
    sources._load_cached.cache_clear()
    second = load_dataset("wine", tmp_path)
    assert first is not second
    np.testing.assert_array_equal(first.X_train, second.X_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)


def test_classification_split_is_stratified(tmp_path):
    data = load_dataset("iris", tmp_path)
    assert np.bincount(data.y_test).tolist() == [10, 10, 10]
    assert np.bincount(data.y_train).tolist() == [40, 40, 40]


def test_standardization_uses_the_training_rows_only(tmp_path):
    import sklearn.datasets

    data = load_dataset("breast_cancer", tmp_path)
    mean = np.asarray(data.preprocessing["mean"])
    # training rows are centred and scaled by their own statistics...
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1.0, atol=1e-3)
    # ...which are not those of all rows: the held-out rows did not leak into them
    everything = sklearn.datasets.load_breast_cancer().data
    assert not np.allclose(mean, everything.mean(axis=0), rtol=1e-6)
    # raw held-out rows preprocessed later come out exactly as in the split
    raw_test = data.X_test * np.asarray(data.preprocessing["std"], dtype=np.float32) + mean.astype(np.float32)
    np.testing.assert_allclose(data.preprocess(raw_test), data.X_test, atol=1e-4)


def test_digits_are_scaled_into_unit_range(tmp_path):
    data = load_dataset("digits", tmp_path)
    assert data.is_image
    assert data.X_train.min() == 0.0 and data.X_train.max() == 1.0
    np.testing.assert_array_equal(data.preprocess(np.full((1, 64), 16.0)), np.ones((1, 64), dtype=np.float32))


def test_regression_targets_are_standardized_and_map_back(tmp_path):
    import sklearn.datasets

    data = load_dataset("diabetes", tmp_path)
    assert data.info.task == "regression"
    assert abs(float(data.y_train.mean())) < 1e-4
    raw_targets = set(np.round(sklearn.datasets.load_diabetes().target, 3))
    assert set(np.round(data.unscale_target(data.y_test).astype(np.float64), 3)) <= raw_targets


def test_unknown_dataset_is_not_found(tmp_path):
    with pytest.raises(NotFound, match="no built-in dataset 'cifar'"):
        load_dataset("cifar", tmp_path)


def test_mnist_without_files_says_where_it_looked(tmp_path):
    with pytest.raises(NotFound, match="MNIST files were not found") as caught:
        load_dataset("mnist", tmp_path / "nothing-here")
    assert caught.value.code == "dataset_unavailable"


# -- MNIST from IDX files --------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_raw_and_gzipped(tmp_path, suffix):
    images, _ = fake_mnist(5)
    path = write_idx(tmp_path / f"images{suffix}", images)
    read = mnist.read_idx(path)
    assert read.shape == (5, 28, 28) and read.dtype == np.uint8
    np.testing.assert_array_equal(read, images)
    assert mnist.idx_count(path) == 5


def test_gzipped_idx_is_preferred_when_both_are_there(tmp_path):
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.ones(4))
    assert mnist.find_idx(tmp_path, "test_labels").name == "t10k-labels-idx1-ubyte.gz"
    assert mnist.find_idx(tmp_path, "train_labels") is None


@pytest.mark.parametrize("content, problem", [
    (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00\x00\x00\x00", "not an unsigned-byte IDX file"),  # float IDX
    (b"PK\x03\x04 this is a zip file", "not an unsigned-byte IDX file"),
    (idx_bytes(np.zeros((4, 28, 28)))[:-10], "expected 3136 bytes of data, found 3126"),
    (idx_bytes(np.zeros(4)) + b"extra", "expected 4 bytes of data, found 9"),
    (b"", "not an unsigned-byte IDX file"),
])
def test_malformed_idx_is_refused_with_the_reason(tmp_path, content, problem):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(mnist.MnistFormatError, match=problem):
        mnist.read_idx(path)


def test_truncated_header_is_refused(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08")
    with pytest.raises(mnist.MnistFormatError, match="truncated header"):
        mnist.idx_count(path)


def test_a_gz_file_that_is_not_gzip_is_not_read(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(idx_bytes(np.zeros((1, 28, 28))))  # raw bytes under a .gz name
    with pytest.raises((mnist.MnistFormatError, OSError)):
        mnist.read_idx(path)


@pytest.mark.parametrize("gz", [True, False])
def test_test_set_only_is_split_with_the_held_out_part_never_trained_on(tmp_path, gz):
    directory = tmp_path / f"mnist-{gz}"
    images, labels = write_test_set(directory, 50, gz=gz)
    info = {d.id: d for d in available_datasets(directory)}["mnist"]
    assert (info.n_train, info.n_test, info.input_shape, info.meta["layout"]) == (40, 10, [1, 28, 28], "test-only")
    assert default_dataset_id(directory) == "mnist"

    data = load_dataset("mnist", directory)
    assert data.X_train.shape == (40, 784) and data.X_test.shape == (10, 784)
    np.testing.assert_allclose(data.X_test * 255, images[40:].reshape(10, 784), atol=1e-3)
    np.testing.assert_allclose(data.X_train * 255, images[:40].reshape(40, 784), atol=1e-3)
    np.testing.assert_array_equal(data.y_test, labels[40:])
    assert 0.0 <= data.X_train.min() and data.X_train.max() <= 1.0
    np.testing.assert_allclose(data.preprocess(images[40:].reshape(10, 784)), data.X_test)


def test_full_idx_layout_uses_the_train_files(tmp_path):
    write_test_set(tmp_path, 20)
    train_images, train_labels = fake_mnist(30, seed=1)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train_images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", train_labels)
    data = load_dataset("mnist", tmp_path)
    assert (data.info.meta["layout"], data.info.n_train, data.info.n_test) == ("idx", 30, 20)
    assert data.X_train.shape == (30, 784) and data.X_test.shape == (20, 784)
    np.testing.assert_array_equal(data.y_train, train_labels)


def test_images_and_labels_of_different_counts_are_refused(tmp_path):
    images, _ = fake_mnist(10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(9))
    with pytest.raises(ValidationError, match="differ in count"):
        load_dataset("mnist", tmp_path)


def test_changed_files_are_read_again(tmp_path):
    write_test_set(tmp_path, 20)
    assert load_dataset("mnist", tmp_path).info.n_test == 4
    images, labels = fake_mnist(30)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    stamp = os.stat(tmp_path / "t10k-images-idx3-ubyte.gz").st_mtime_ns
    os.utime(tmp_path / "t10k-images-idx3-ubyte.gz", ns=(stamp + 10**9, stamp + 10**9))
    assert load_dataset("mnist", tmp_path).info.n_test == 6


@requires_mnist
def test_real_mnist_test_set_splits_8000_and_2000():
    data = load_dataset("mnist", MNIST_DIR)
    assert data.X_train.shape == (8000, 784) and data.X_test.shape == (2000, 784)
    assert sorted(set(data.y_test.tolist())) == list(range(10))
    raw = mnist.read_idx(mnist.find_idx(MNIST_DIR, "test_images")).reshape(-1, 784)
    np.testing.assert_allclose(data.X_test, raw[8000:] / 255.0, atol=1e-6)


# -- Nielsen's mnist.pkl.gz ------------------------------------------------------------


def write_pickle(path: Path, obj, protocol: int = 4) -> Path:
    with gzip.open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)
    return path


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2's cPickle wrote `str` (BINSTRING), as in Nielsen's original file."""

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes


def python2_pickle(obj) -> bytes:
    """Protocol 2 as Python 2 wrote it, with numpy 1's module names."""
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    data = buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"_codecs" not in data and b"numpy.core.multiarray" in data
    return data


def nielsen_parts(n: int = 6):
    rng = np.random.default_rng(0)
    part = lambda k: (rng.random((k, 784), dtype=np.float32), (np.arange(k) % 10).astype(np.int64))  # noqa: E731
    return part(n), part(2), part(3)


def assert_same_parts(read, parts) -> None:
    """(train, validation, test) read back exactly, as float32 images and int64 labels."""
    assert len(read) == 3
    for (images, labels), (want_images, want_labels) in zip(read, parts, strict=True):
        assert images.dtype == np.float32 and labels.dtype == np.int64
        np.testing.assert_array_equal(images, want_images)
        np.testing.assert_array_equal(labels, want_labels)


def test_nielsen_pickle_as_python_2_wrote_it_is_read(tmp_path):
    parts = nielsen_parts()
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(python2_pickle(parts))
    read = mnist.read_nielsen_pickle(path)
    assert_same_parts(read, parts)


def test_nielsen_pickle_saved_again_by_python_3_is_read(tmp_path):
    parts = nielsen_parts()
    read = mnist.read_nielsen_pickle(write_pickle(tmp_path / "mnist.pkl.gz", parts))
    assert_same_parts(read, parts)


def test_nielsen_pickle_is_used_as_mnist(tmp_path):
    (train_x, train_y), _, (test_x, test_y) = parts = nielsen_parts()
    write_pickle(tmp_path / mnist.PICKLE_NAME, parts)
    assert {d.id: d for d in available_datasets(tmp_path)}["mnist"].meta["layout"] == "pickle"
    data = load_dataset("mnist", tmp_path)
    np.testing.assert_array_equal(data.X_train, train_x)
    np.testing.assert_array_equal(data.y_test, test_y)


class _RunsCode:
    """Unpickling this would call os.system: the reader must refuse before that happens."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickle_naming_a_callable_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = write_pickle(tmp_path / "mnist.pkl.gz", (nielsen_parts()[0], _RunsCode(marker), None))
    with pytest.raises(mnist.MnistFormatError, match="system is not allowed"):
        mnist.read_nielsen_pickle(path)
    assert not marker.exists()


def test_pickle_naming_another_class_is_refused(tmp_path):
    from collections import OrderedDict

    path = write_pickle(tmp_path / "mnist.pkl.gz", (OrderedDict(a=1), None, None))
    with pytest.raises(mnist.MnistFormatError, match="collections.OrderedDict is not allowed"):
        mnist.read_nielsen_pickle(path)


@pytest.mark.parametrize("obj, problem", [
    ([1, 2, 3], "expected \\(training, validation, test\\)"),
    ((np.zeros(3), np.zeros(3)), "expected \\(training, validation, test\\)"),
])
def test_pickle_of_the_wrong_shape_is_refused(tmp_path, obj, problem):
    path = write_pickle(tmp_path / "mnist.pkl.gz", obj)
    with pytest.raises(mnist.MnistFormatError, match=problem):
        mnist.read_nielsen_pickle(path)


def test_truncated_pickle_is_refused(tmp_path):
    data = pickle.dumps(nielsen_parts(), protocol=2)
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
    with pytest.raises(mnist.MnistFormatError):
        mnist.read_nielsen_pickle(path)


def test_a_damaged_mnist_file_leaves_the_other_datasets_available(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(struct.pack(">II", 2049, 0)))
    ids = [d.id for d in available_datasets(tmp_path)]
    assert "mnist" not in ids
    assert {"digits", "iris", "wine", "breast_cancer", "diabetes"} <= set(ids)
    assert default_dataset_id(tmp_path) == "digits"
