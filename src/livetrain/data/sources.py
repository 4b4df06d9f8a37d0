"""The built-in datasets: scikit-learn's bundled sets and MNIST from local files.

Every dataset has a fixed, seeded train/test split and preprocessing whose statistics
come from the training split alone. `load_dataset` is cached per process, so a warm
worker loads MNIST once.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from livetrain.data import mnist
from livetrain.errors import NotFound, ValidationError
from livetrain.store.entities import Dataset

log = logging.getLogger(__name__)

SPLIT_SEED = 0
TEST_FRACTION = 0.2
MNIST_TEST_ONLY_TRAIN = 8000  # first 8,000 of the 10k test set train, the last 2,000 are held out

_SKLEARN = {
    # id: (loader name, task, n_samples, n_features, n_classes, input_shape, scaling, description)
    "digits": ("load_digits", "classification", 1797, 64, 10, [1, 8, 8], "scale16",
               "8x8 handwritten digits bundled with scikit-learn (1,797 images)."),
    "iris": ("load_iris", "classification", 150, 4, 3, [4], "standardize",
             "Fisher's iris flowers: 4 measurements, 3 species."),
    "wine": ("load_wine", "classification", 178, 13, 3, [13], "standardize",
             "Chemical analysis of wines from 3 cultivars."),
    "breast_cancer": ("load_breast_cancer", "classification", 569, 30, 2, [30], "standardize",
                      "Wisconsin diagnostic breast cancer: 30 features, benign or malignant."),
    "diabetes": ("load_diabetes", "regression", 442, 10, 0, [10], "standardize",
                 "Disease progression one year after baseline, from 10 measurements."),
}


@dataclass
class DatasetArrays:
    """A dataset's split arrays, ready for training, and how raw inputs are preprocessed."""

    info: Dataset
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    preprocessing: dict[str, Any] = field(default_factory=dict)
    X_val: np.ndarray | None = None  # None when the dataset has no validation split (the built-ins)
    y_val: np.ndarray | None = None

    @property
    def has_val(self) -> bool:
        """True when the dataset has a validation split of its own."""
        return self.X_val is not None and len(self.X_val) > 0

    @property
    def n_outputs(self) -> int:
        """How many numbers a regression target has per row (1 but for multi-target sets)."""
        return int(self.info.meta.get("n_outputs", 1))

    @property
    def is_image(self) -> bool:
        """True when rows are images (input_shape is channels x height x width)."""
        return len(self.info.input_shape) == 3

    def preprocess(self, raw: np.ndarray) -> np.ndarray:
        """Apply the training-time preprocessing to raw feature rows."""
        raw = np.asarray(raw, dtype=np.float32)
        if "scale" in self.preprocessing:
            return raw / np.float32(self.preprocessing["scale"])
        if "mean" in self.preprocessing:
            mean = np.asarray(self.preprocessing["mean"], dtype=np.float32)
            std = np.asarray(self.preprocessing["std"], dtype=np.float32)
            return (raw - mean) / std
        return raw

    def unscale_target(self, y: np.ndarray) -> np.ndarray:
        """Map a regression output back to the target's own units."""
        if "target_mean" in self.preprocessing:
            std = np.asarray(self.preprocessing["target_std"], dtype=np.float64)
            mean = np.asarray(self.preprocessing["target_mean"], dtype=np.float64)
            return np.asarray(y, dtype=np.float64) * std + mean
        return y


def _mnist_layout(directory: Path) -> dict[str, Any] | None:
    """Which MNIST files are present and the split they give, or None."""
    test_images = mnist.find_idx(directory, "test_images")
    test_labels = mnist.find_idx(directory, "test_labels")
    train_images = mnist.find_idx(directory, "train_images")
    train_labels = mnist.find_idx(directory, "train_labels")
    if test_images and test_labels and train_images and train_labels:
        return {"kind": "idx", "n_train": mnist.idx_count(train_images), "n_test": mnist.idx_count(test_images),
                "source": f"MNIST IDX files in {directory}"}
    if (directory / mnist.PICKLE_NAME).is_file():
        return {"kind": "pickle", "n_train": 50000, "n_test": 10000,
                "source": f"{mnist.PICKLE_NAME} in {directory}"}
    if test_images and test_labels:
        n = mnist.idx_count(test_images)
        n_train = min(MNIST_TEST_ONLY_TRAIN, n * 4 // 5)
        return {"kind": "test-only", "n_train": n_train, "n_test": n - n_train,
                "source": f"MNIST test-set IDX files in {directory} (split {n_train}/{n - n_train})"}
    return None


def available_datasets(mnist_dir: Path) -> list[Dataset]:
    """Metadata of every built-in dataset that can be loaded here (cheap: reads no arrays)."""
    out = []
    try:
        layout = _mnist_layout(Path(mnist_dir))
    except (OSError, EOFError, mnist.MnistFormatError) as exc:
        # a damaged file must not keep the server from starting: MNIST is just not offered
        log.warning("MNIST files in %s are unreadable, MNIST is unavailable: %s", mnist_dir, exc)
        layout = None
    if layout:
        out.append(Dataset(
            id="mnist", name="MNIST", task="classification", source=layout["source"],
            n_features=784, n_classes=10, input_shape=[1, 28, 28],
            n_train=layout["n_train"], n_test=layout["n_test"],
            description="28x28 handwritten digits.", meta={"layout": layout["kind"], "image": True},
        ))
    for key, (_, task, n, n_features, n_classes, shape, scaling, text) in _SKLEARN.items():
        n_test = math.ceil(n * TEST_FRACTION)
        out.append(Dataset(
            id=key, name=key.replace("_", " "), task=task, source="scikit-learn (bundled, no download)",
            n_features=n_features, n_classes=n_classes, input_shape=shape,
            n_train=n - n_test, n_test=n_test, description=text,
            meta={"image": len(shape) == 3, "scaling": scaling},
        ))
    return out


def default_dataset_id(mnist_dir: Path) -> str:
    """MNIST when its files are present and readable, otherwise scikit-learn's digits."""
    return "mnist" if any(d.id == "mnist" for d in available_datasets(Path(mnist_dir))) else "digits"


def load_dataset(dataset_id: str, mnist_dir: Path | str) -> DatasetArrays:
    """The split arrays of a built-in dataset (cached per process)."""
    return _load_cached(dataset_id, str(mnist_dir), _mnist_stamp(Path(mnist_dir)) if dataset_id == "mnist" else None)


def _mnist_stamp(directory: Path) -> tuple:
    return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in directory.glob("*")) if directory.is_dir() else ())


@functools.lru_cache(maxsize=8)
def _load_cached(dataset_id: str, mnist_dir: str, _stamp) -> DatasetArrays:
    infos = {d.id: d for d in available_datasets(Path(mnist_dir))}
    if dataset_id not in infos:
        if dataset_id == "mnist":
            raise NotFound(f"MNIST files were not found in {mnist_dir}", code="dataset_unavailable")
        raise NotFound(f"no built-in dataset {dataset_id!r}")
    info = infos[dataset_id]
    if dataset_id == "mnist":
        return _load_mnist(info, Path(mnist_dir))
    return _load_sklearn(info)


def _load_mnist(info: Dataset, directory: Path) -> DatasetArrays:
    layout = info.meta["layout"]
    if layout == "pickle":
        (x_tr, y_tr), _validation, (x_te, y_te) = mnist.read_nielsen_pickle(directory / mnist.PICKLE_NAME)
    else:
        images = mnist.read_idx(mnist.find_idx(directory, "test_images")).reshape(-1, 784)
        labels = mnist.read_idx(mnist.find_idx(directory, "test_labels")).astype(np.int64)
        if len(images) != len(labels):
            raise ValidationError("MNIST test images and labels differ in count")
        if layout == "idx":
            train_images = mnist.read_idx(mnist.find_idx(directory, "train_images")).reshape(-1, 784)
            train_labels = mnist.read_idx(mnist.find_idx(directory, "train_labels")).astype(np.int64)
            x_tr, y_tr, x_te, y_te = train_images, train_labels, images, labels
        else:
            cut = info.n_train
            x_tr, y_tr, x_te, y_te = images[:cut], labels[:cut], images[cut:], labels[cut:]
        x_tr = x_tr.astype(np.float32) / np.float32(255)
        x_te = x_te.astype(np.float32) / np.float32(255)
    return DatasetArrays(info, np.ascontiguousarray(x_tr), y_tr, np.ascontiguousarray(x_te), y_te,
                         {"scale": 255.0})


def _load_sklearn(info: Dataset) -> DatasetArrays:
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    loader, task, *_rest, scaling, _text = _SKLEARN[info.id]
    bunch = getattr(sklearn.datasets, loader)()
    X = bunch.data.astype(np.float32)
    y = bunch.target.astype(np.int64 if task == "classification" else np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(
        X, y, test_size=info.n_test, random_state=SPLIT_SEED,
        stratify=y if task == "classification" else None,
    )
    prep: dict[str, Any]
    if scaling == "scale16":
        prep = {"scale": 16.0}
    else:
        mean = x_tr.mean(axis=0)
        std = x_tr.std(axis=0)
        std[std == 0] = 1.0
        prep = {"mean": mean.tolist(), "std": std.tolist()}
    arrays = DatasetArrays(info, x_tr, y_tr, x_te, y_te, prep)
    arrays.X_train = np.ascontiguousarray(arrays.preprocess(x_tr))
    arrays.X_test = np.ascontiguousarray(arrays.preprocess(x_te))
    if task == "regression":
        target_mean, target_std = float(y_tr.mean()), float(y_tr.std() or 1.0)
        prep.update(target_mean=target_mean, target_std=target_std)
        arrays.y_train = ((y_tr - target_mean) / target_std).astype(np.float32)
        arrays.y_test = ((y_te - target_mean) / target_std).astype(np.float32)
    return arrays
