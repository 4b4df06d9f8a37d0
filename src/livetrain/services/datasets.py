"""Datasets: what exists, and their arrays for the server's own predictions."""

from __future__ import annotations

from livetrain.data.sources import DatasetArrays, available_datasets, default_dataset_id, load_dataset
from livetrain.errors import NotFound, ValidationError
from livetrain.store import Dataset


class DatasetService:
    """Registers the built-in datasets and looks them up."""

    def __init__(self, *, store, settings) -> None:
        self.store = store
        self.settings = settings

    def register_builtins(self) -> list[Dataset]:
        """Record every built-in dataset available here (MNIST only when its files are present)."""
        found = available_datasets(self.settings.resolved_mnist_dir)
        return [self.store.upsert_dataset(d) for d in found]

    def default_id(self) -> str:
        """MNIST when present, otherwise digits."""
        return default_dataset_id(self.settings.resolved_mnist_dir)

    def list(self) -> list[Dataset]:
        """Every dataset."""
        return self.store.list_datasets()

    def get(self, dataset_id) -> Dataset:
        """The dataset, or 404."""
        if not isinstance(dataset_id, str):
            raise ValidationError("dataset must be given by its id (a string)")
        dataset = self.store.get_dataset(dataset_id)
        if dataset is None:
            known = ", ".join(d.id for d in self.store.list_datasets())
            raise NotFound(f"no dataset {dataset_id!r}; known: {known}")
        return dataset

    def arrays(self, dataset_id: str) -> DatasetArrays:
        """The dataset's arrays (cached)."""
        return load_dataset(dataset_id, self.settings.resolved_mnist_dir)
