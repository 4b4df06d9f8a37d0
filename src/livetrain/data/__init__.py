"""Dataset sources: scikit-learn built-ins and MNIST files, with deterministic splits."""

from livetrain.data.sources import (
    DatasetArrays,
    available_datasets,
    default_dataset_id,
    load_dataset,
)

__all__ = ["DatasetArrays", "available_datasets", "default_dataset_id", "load_dataset"]
