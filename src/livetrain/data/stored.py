"""Datasets users upload or generate: written once as checksummed artifacts, loaded by server and workers.

A stored dataset is these files under `datasets/{id}/` in the artifact store:
- `table.parquet`: the rows as read (typed columns), for download as CSV and for a later look;
- `upload.<csv|csv.gz|tsv|xlsx|parquet>`: the file as the user uploaded it, byte for byte
  (generated datasets have none; datasets stored before Parquet have `data.csv` instead);
- `arrays.npz`: the preprocessed train / validation / test arrays (no pickles inside);
- `pipeline.joblib`: the preprocessing fitted on the training split, for predictions on raw rows.
Each is loaded only after its SHA-256 matches the one recorded with the dataset.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

import numpy as np

from livetrain.data.sources import DatasetArrays, load_dataset
from livetrain.store.artifacts import ArtifactStore
from livetrain.store.entities import Dataset

SPLITS = ("train", "val", "test")


def dataset_dir(dataset_id: str) -> str:
    """Where a stored dataset's files live in the artifact store."""
    return f"datasets/{dataset_id}"


UPLOAD_SUFFIX = {("csv", None): ".csv", ("csv", "gzip"): ".csv.gz", ("xlsx", None): ".xlsx",
                 ("parquet", None): ".parquet"}


def write_dataset_files(store: ArtifactStore, dataset_id: str, prepared, frame) -> dict[str, Any]:
    """Write the table (Parquet), the split arrays and the fitted pipeline; return their refs for the dataset row."""
    return {"table": write_table_file(store, dataset_id, frame), **write_prepared_files(store, dataset_id, prepared)}


def write_table_file(store: ArtifactStore, dataset_id: str, frame) -> dict[str, Any]:
    """The table as read, as `table.parquet`; its ref."""
    ref = store.write(f"{dataset_dir(dataset_id)}/table.parquet", lambda fh: write_table(frame, fh))
    return {"path": ref.path, "sha256": ref.sha256}


def write_prepared_files(store: ArtifactStore, dataset_id: str, prepared) -> dict[str, Any]:
    """The split arrays (streamed into the file, never a second copy in memory) and the fitted pipeline."""
    import joblib

    base = dataset_dir(dataset_id)
    arrays = {f"{part}_{split}": getattr(prepared, f"{part}_{split}") for part in ("X", "y") for split in SPLITS}
    pipeline = io.BytesIO()
    joblib.dump(prepared.pipeline, pipeline)
    refs = {
        "arrays": store.write(f"{base}/arrays.npz", lambda fh: np.savez(fh, **arrays)),
        "pipeline": store.write_bytes(f"{base}/pipeline.joblib", pipeline.getvalue()),
    }
    return {key: {"path": ref.path, "sha256": ref.sha256} for key, ref in refs.items()}


def keep_upload(store: ArtifactStore, dataset_id: str, spool, dialect: dict[str, Any]) -> dict[str, Any]:
    """Move the received file beside the dataset's other files (a rename), named for its format; its ref."""
    suffix = ".tsv" if dialect["format"] == "csv" and dialect.get("delimiter") == "\t" else ""
    suffix = suffix + ".gz" if suffix and dialect.get("compression") else suffix
    suffix = suffix or UPLOAD_SUFFIX.get((dialect["format"], dialect.get("compression")), ".csv")
    ref = store.adopt(spool, f"{dataset_dir(dataset_id)}/upload{suffix}")
    return {"path": ref.path, "sha256": ref.sha256}


def write_table(frame, fh) -> None:
    """The table as read (typed columns, the file's row order) as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.PythonFile(fh, mode="w") as sink:
        pq.write_table(table, sink, compression="snappy")


def table_as_csv(path: Path, batch_rows: int = 65_536):
    """A stored Parquet table as UTF-8 CSV with a header, in pieces (a big table is never whole in memory)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    first = True
    for batch in parquet.iter_batches(batch_size=batch_rows):
        out = io.BytesIO()
        pacsv.write_csv(batch, out, write_options=pacsv.WriteOptions(include_header=first, quoting_style="needed"))
        first = False
        yield out.getvalue()
    if first:  # no rows: the header alone
        out = io.BytesIO()
        pacsv.write_csv(parquet.schema_arrow.empty_table(), out)
        yield out.getvalue()


def preprocessing_of(prepared) -> dict[str, Any]:
    """What `DatasetArrays.unscale_target` needs, from a prepared table."""
    if prepared.target_mean is None:
        return {}
    return {"target_mean": prepared.target_mean, "target_std": prepared.target_std}


def load_arrays(info: Dataset, mnist_dir: Path | str, store: ArtifactStore) -> DatasetArrays:
    """The split arrays of any dataset: a built-in by id, a stored one from its verified files."""
    if info.builtin:
        return load_dataset(info.id, mnist_dir)
    ref = info.files["arrays"]
    data = _load_npz(str(store.root), ref["path"], ref["sha256"])
    preprocessing = {k: info.meta[k] for k in ("target_mean", "target_std") if k in info.meta}
    # a text dataset's tokens and target texts (livetrain.services.text_datasets)
    preprocessing.update({k: v for k, v in data.items() if k.startswith("text_")})
    return DatasetArrays(info, data["X_train"], data["y_train"], data["X_test"], data["y_test"],
                         preprocessing, X_val=data["X_val"], y_val=data["y_val"])


@functools.lru_cache(maxsize=8)
def _load_npz(root: str, path: str, sha256: str) -> dict[str, np.ndarray]:
    """The split arrays of a stored dataset, read once per process (the SHA-256 names the content)."""
    with np.load(ArtifactStore(Path(root)).open_verified(path, sha256), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def load_pipeline(info: Dataset, store: ArtifactStore):
    """The fitted preprocessing of a stored dataset (written by this server; loaded after its checksum)."""
    import joblib

    ref = info.files["pipeline"]
    return joblib.load(store.open_verified(ref["path"], ref["sha256"]))
