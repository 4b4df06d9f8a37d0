"""From a received file (or a generated table) to a stored dataset's files and description.

Pure data work, no web: the server runs it in a thread for a small upload, and a worker
process runs it for a big one (`job` below is what it is sent), so that the parts of pandas
and scikit-learn that hold the interpreter lock, and the memory a big table takes, stay out
of the process that serves requests. Either way the result is the same JSON-able dict: the
dataset's fields, the refs of the files written, and the dialect the file was read with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from livetrain.data.stored import (
    dataset_dir,
    preprocessing_of,
    write_dataset_files,
    write_prepared_files,
    write_table_file,
)
from livetrain.store.artifacts import ArtifactStore


def upload_job(*, dataset_id: str, spool_path: str, filename: str, overrides: dict[str, Any],
               options: dict[str, Any], missing_target: str, max_rows: int, models_dir: str) -> dict[str, Any]:
    """What `prepare_upload` needs, as a message a worker process can be sent."""
    return {"dataset_id": dataset_id, "spool_path": spool_path, "filename": filename, "overrides": overrides,
            "options": {k: options[k] for k in ("target", "types", "task", "seed")}
            | {"fractions": list(options["fractions"])},
            "missing_target": missing_target, "max_rows": max_rows, "models_dir": models_dir}


def prepare_upload(job: dict[str, Any], stage: Callable[[str], None] = lambda _: None, *,
                   overlap: bool = False) -> dict[str, Any]:
    """Detect, read, type, split, preprocess and write the files of one upload; its description.

    `overlap` (in a worker process, never under a green event loop): the table's Parquet file and
    its content hash are made in two threads while the table is prepared, on the other core.
    """
    from livetrain.data import reading, tabular

    store = ArtifactStore(Path(job["models_dir"]))
    path = store.resolve(job["spool_path"])
    stage("reading")
    dialect = reading.detect(path, job["filename"], job["overrides"])
    table = reading.read_table(path, dialect, max_rows=job["max_rows"])
    stage("preparing")
    options = job["options"]

    def prepare():
        return tabular.prepare_table(table.frame, target=options["target"], types=options["types"],
                                     task=options["task"], fractions=options["fractions"], seed=options["seed"],
                                     formats=table.formats, missing_target=job["missing_target"])

    if overlap:
        result = _prepare_overlapped(store, job["dataset_id"], table.frame, prepare, stage)
    else:
        prepared = prepare()
        stage("storing")
        result = store_prepared(store, job["dataset_id"], prepared, table.frame)
    result["dialect"] = table.dialect.to_dict()
    return result


def _prepare_overlapped(store: ArtifactStore, dataset_id: str, frame, prepare, stage) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from livetrain.data import tabular

    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="livetrain-prepare") as pool:
            # pyarrow's Parquet writer and pandas' hashing release the interpreter lock for most of their work
            table_ref = pool.submit(write_table_file, store, dataset_id, frame)
            digest = pool.submit(tabular.dataset_hash, frame)
            prepared = prepare()
            stage("storing")
            files = {"table": table_ref.result(), **write_prepared_files(store, dataset_id, prepared)}
            return {"fields": describe(prepared, digest.result()), "files": files}
    except BaseException:
        store.delete(dataset_dir(dataset_id))
        raise


def store_prepared(store: ArtifactStore, dataset_id: str, prepared, frame) -> dict[str, Any]:
    """Write a prepared table's files; the dataset's fields and the files' refs.

    On any error the dataset's folder is removed: nothing half-stored.
    """
    from livetrain.data import tabular

    try:
        files = write_dataset_files(store, dataset_id, prepared, frame)
        return {"fields": describe(prepared, tabular.dataset_hash(frame)), "files": files}
    except BaseException:
        store.delete(dataset_dir(dataset_id))
        raise


def describe(prepared, content_sha256: str) -> dict[str, Any]:
    """The dataset row's fields of a prepared table (its `meta` without origin and dialect)."""
    schema = prepared.schema
    width = int(prepared.X_train.shape[1])
    return {
        "task": schema.task,
        "n_features": width,
        "n_classes": len(prepared.classes) if prepared.classes is not None else 0,
        "input_shape": [width],
        "n_train": len(prepared.X_train), "n_val": len(prepared.X_val), "n_test": len(prepared.X_test),
        "content_sha256": content_sha256,
        "meta": {
            "schema": schema.to_dict(),
            "classes": prepared.classes,
            "feature_names": prepared.feature_names,
            "split": {"fractions": list(prepared.fractions), "seed": prepared.split_seed,
                      "stratified": schema.task == "classification"},
            "summary": prepared.summary,
            "n_outputs": len(schema.targets) if schema.task == "regression" else 1,
            "passthrough": schema.passthrough,
            "image": False,
            **preprocessing_of(prepared),
        },
    }
