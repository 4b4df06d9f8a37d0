"""Datasets: the built-ins, uploaded CSVs and generated sets; their arrays, schema and raw-row preprocessing."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from livetrain.concurrency import run_blocking
from livetrain.data.sources import DatasetArrays, available_datasets, default_dataset_id
from livetrain.data.stored import dataset_dir, keep_upload, load_arrays, load_pipeline, table_as_csv
from livetrain.errors import Conflict, NotFound, PayloadTooLarge, ValidationError
from livetrain.services.common import LruCache, numeric_rows, whole_number
from livetrain.store import Dataset
from livetrain.store.artifacts import Spool
from livetrain.store.entities import ACTIVE_STATUSES

PREVIEW_ROWS = 10
DETAIL_ONLY = ("schema", "summary", "feature_names")  # meta keys the detail shows as fields of their own
PIPELINE_CACHE_SIZE = 8
PROGRESS_INTERVAL = 0.2  # seconds between looks at an upload's stage


def _parse_json_field(value: Any, name: str, kind: type) -> Any:
    """A form field that carries JSON (types, split), or the value itself when it came as JSON."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and kind is not str:
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            if kind is list:  # "0.7,0.15,0.15" is accepted too
                try:
                    return [float(part) for part in value.split(",")]
                except ValueError:
                    pass
            raise ValidationError(f"{name} must be JSON ({kind.__name__})", code="bad_parameter",
                                  detail={"field": name}) from None
    if not isinstance(value, kind):
        raise ValidationError(f"{name} must be a {'list' if kind is list else 'JSON object'}",
                              code="bad_parameter", detail={"field": name})
    return value


def _seed(value: Any) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, str):  # a form field
        value = int(value) if value.strip().lstrip("-").isdigit() else value
    return whole_number(value, "seed", 0, 2**31 - 1)


SPLIT_HINT = "split must be three fractions (train, validation, test), e.g. [0.7, 0.15, 0.15] or 0.7,0.15,0.15"


def _fractions(value: Any) -> tuple[float, float, float]:
    try:
        parsed = _parse_json_field(value, "split", list)
    except ValidationError:
        raise ValidationError(SPLIT_HINT, code="bad_split", detail={"field": "split"}) from None
    if parsed is None:
        return (0.7, 0.15, 0.15)
    if len(parsed) != 3 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in parsed):
        raise ValidationError(SPLIT_HINT, code="bad_split", detail={"field": "split"})
    return tuple(float(v) for v in parsed)  # type: ignore[return-value]


class DatasetService:
    """Registers the built-ins; creates, describes and deletes user datasets."""

    def __init__(self, *, store, artifacts, settings, emitter=None, spawn=None, sleep=None) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        self.emitter = emitter
        self.spawn = spawn
        self.sleep = sleep
        # `(job, stage) -> result`: runs `prepare_upload` in a worker process (set by the container)
        self.prepare_in_worker: Callable[[dict[str, Any], Callable[[str], None]], dict[str, Any]] | None = None
        self._pipelines = LruCache(PIPELINE_CACHE_SIZE)  # pipeline SHA-256 -> fitted preprocessing
        self._summaries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.text = None  # the TextDatasetService, for text datasets (set by the container)

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

    def arrays(self, dataset: Dataset | str) -> DatasetArrays:
        """The dataset's split arrays (cached)."""
        info = self.get(dataset) if isinstance(dataset, str) else dataset
        return load_arrays(info, self.settings.resolved_mnist_dir, self.artifacts)

    # -- creating -------------------------------------------------------------
    def create_from_upload(self, spool: Spool, filename: str | None, form: dict[str, Any]) -> Dataset:
        """Read, type, split and preprocess an uploaded file (CSV of any dialect, TSV, gzip, .xlsx, .parquet)
        received into `spool`; store it (or nothing, on any error).

        The work runs off the event loop: in a thread for a file under `prepare_in_worker_bytes`, in a
        worker process for a bigger one. `dataset_progress` events report it to the uploader's `upload_id`.
        """
        from livetrain.data import reading, tabular
        from livetrain.data.prepare import prepare_upload, upload_job

        spool.finish()
        if spool.size > self.settings.max_upload_bytes:
            raise PayloadTooLarge(f"the file is {spool.size} bytes, over the limit of "
                                  f"{self.settings.max_upload_bytes} (LIVETRAIN_MAX_UPLOAD_BYTES)")
        options = self._options(form)
        overrides = reading.parse_options(form)
        missing_target = form.get("missing_target") or "refuse"
        if missing_target not in tabular.MISSING_TARGET:
            raise ValidationError("missing_target must be refuse (the default) or drop", code="bad_parameter",
                                  detail={"field": "missing_target"})
        filename = (filename or "upload.csv").replace("\\", "/").rsplit("/", 1)[-1][:200] or "upload.csv"
        name = options["name"] or _stem(filename) or "upload"
        dataset_id = uuid.uuid4().hex[:12]
        job = upload_job(dataset_id=dataset_id, spool_path=spool.path.relative_to(self.artifacts.root).as_posix(),
                         filename=filename, overrides=overrides, options=options, missing_target=missing_target,
                         max_rows=self.settings.max_upload_rows, models_dir=str(self.artifacts.root))
        progress = _Progress(self.emitter, form.get("upload_id"), self.spawn, self.sleep)
        try:
            if self.prepare_in_worker is not None and spool.size >= self.settings.prepare_in_worker_bytes:
                result = self.prepare_in_worker(job, progress.send_now)
            else:
                result = run_blocking(prepare_upload, job, progress.stage)
            result["files"]["upload"] = run_blocking(keep_upload, self.artifacts, dataset_id, spool,
                                                     result["dialect"])  # fsync: not on the event loop
            dataset = self._record(dataset_id, name, f"uploaded file {filename}", options["description"], result,
                                   {"origin": "upload", "filename": filename, "dialect": result["dialect"]})
        except BaseException as exc:
            self.artifacts.delete(dataset_dir(dataset_id))  # nothing half-stored
            progress.end("failed", getattr(exc, "message", None))
            raise
        progress.end("done", dataset_id=dataset.id)
        return dataset

    def create_generated(self, body: dict[str, Any]) -> Dataset:
        """Generate a synthetic dataset (factorization, blobs, moons, ...) and store it like an upload."""
        from livetrain.data import generators, tabular
        from livetrain.data.prepare import store_prepared

        kind = body.get("generator")
        if not isinstance(kind, str):
            raise ValidationError("send 'generator' (one of: "
                                  + ", ".join(g["key"] for g in generators.generator_catalog()) + ")",
                                  code="unknown_generator", detail={"field": "generator"})
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise ValidationError("params must be a JSON object", code="bad_parameter", detail={"field": "params"})
        for name, json_type in (("seed", "number"), ("split", "list")):
            # the upload form's fields are text by nature; a JSON body says what it means
            if isinstance(body.get(name), str):
                raise ValidationError(f"{name}: send a JSON {json_type}, not a string", code="bad_parameter",
                                      detail={"field": name})
        options = self._options(body)
        dataset_id = uuid.uuid4().hex[:12]

        def prepare():
            made = generators.generate(kind, params)
            prepared = tabular.prepare_table(made.frame, target=made.target, task=made.task,
                                             fractions=options["fractions"], seed=options["seed"],
                                             passthrough=made.passthrough)
            return made, store_prepared(self.artifacts, dataset_id, prepared, made.frame)

        made, result = run_blocking(prepare)
        name = options["name"] or f"{kind}-{uuid.uuid4().hex[:4]}"
        try:
            return self._record(dataset_id, name, f"generated: {kind}", options["description"] or made.description,
                                result, {"origin": "generator", "generator": kind, "params": params, **made.meta})
        except BaseException:
            self.artifacts.delete(dataset_dir(dataset_id))
            raise

    def _options(self, form: dict[str, Any]) -> dict[str, Any]:
        from livetrain.services.networks import check_name

        target = form.get("target")
        if isinstance(target, str) and target.startswith("["):
            target = _parse_json_field(target, "target", list)
        task = form.get("task") or None
        if task not in (None, "classification", "regression"):
            raise ValidationError("task must be classification or regression (or left out to infer it)",
                                  code="bad_parameter", detail={"field": "task"})
        description = form.get("description") or ""
        if not isinstance(description, str) or len(description) > 2000:
            raise ValidationError("description must be text of at most 2000 characters", code="bad_parameter",
                                  detail={"field": "description"})
        return {
            "name": check_name(form["name"]) if form.get("name") else None,
            "target": target or None,
            "types": _parse_json_field(form.get("types"), "types", dict),
            "task": task,
            "fractions": _fractions(form.get("split")),
            "seed": _seed(form.get("seed")),
            "description": description,
        }

    def _record(self, dataset_id: str, name: str, source: str, description: str, result: dict[str, Any],
                origin: dict[str, Any]) -> Dataset:
        """The dataset's row, from what preparing it wrote and found; announced to every client."""
        fields = result["fields"]
        meta = {**origin, **fields["meta"]}
        if "dialect" in origin:
            meta["schema"] = meta["schema"] | {"dialect": origin["dialect"]}
        dataset = Dataset(
            id=dataset_id, name=name, task=fields["task"], source=source[:200],
            n_features=fields["n_features"], n_classes=fields["n_classes"], input_shape=fields["input_shape"],
            n_train=fields["n_train"], n_test=fields["n_test"], n_val=fields["n_val"],
            description=description, meta=meta, builtin=False, content_sha256=fields["content_sha256"],
            files=result["files"],
        )
        dataset = self.store.upsert_dataset(dataset)
        if self.emitter is not None:
            self.emitter.resource("dataset_created", {"dataset_id": dataset.id, "name": dataset.name,
                                                      "task": dataset.task, "ts": time.time()})
        return dataset

    # -- describing -----------------------------------------------------------
    @staticmethod
    def summary(dataset: Dataset) -> dict[str, Any]:
        """The dataset for lists: its detail's top part (schema, preview and balance live in the detail)."""
        out = dataset.to_dict()
        out["meta"] = {k: v for k, v in out["meta"].items() if k not in DETAIL_ONLY}
        return out

    def detail(self, dataset_id: str) -> dict[str, Any]:
        """The dataset with its schema, class balance, missing values and a preview of rows."""
        dataset = self.get(dataset_id)
        out = self.summary(dataset)
        meta = dataset.meta
        if dataset.builtin:
            summary = self._builtin_summary(dataset)
            out.update(summary)
        else:
            summary = meta.get("summary", {})
            out.update(schema=meta.get("schema"), feature_names=meta.get("feature_names"),
                       class_balance=summary.get("class_balance"), missing=summary.get("missing"),
                       preview=summary.get("preview"), n_rows=summary.get("n_rows"))
            if meta.get("text"):  # what encoding found: samples cut at max_len, token counts, share of <unk>
                out.update(truncated=summary.get("truncated"), token_counts=summary.get("tokens"),
                           unknown_share=summary.get("unknown_share"))
        out["splits"] = {"train": dataset.n_train, "val": dataset.n_val, "test": dataset.n_test}
        return out

    def _builtin_summary(self, dataset: Dataset) -> dict[str, Any]:
        with self._lock:
            if dataset.id in self._summaries:
                return self._summaries[dataset.id]
        arrays = run_blocking(self.arrays, dataset)
        y = np.concatenate([arrays.y_train, arrays.y_test])
        if dataset.task == "classification":
            labels, counts = np.unique(y, return_counts=True)
            balance = {str(int(k)): int(v) for k, v in zip(labels, counts)}
        else:
            balance = None
        columns = [f"x{i}" for i in range(dataset.n_features)]
        preview = None
        if not arrays.is_image:  # pixels make a poor table; the page shows images for those
            preview = [dict(zip(columns, (round(float(v), 4) for v in row))) | {"target": _plain(t)}
                       for row, t in zip(arrays.X_train[:PREVIEW_ROWS], arrays.y_train[:PREVIEW_ROWS])]
        summary = {
            "schema": {"features": columns if not arrays.is_image else f"{dataset.n_features} pixels",
                       "targets": ["target"], "task": dataset.task,
                       "note": "built-in: features are already scaled as the preview shows"},
            "class_balance": balance,
            "missing": {},
            "preview": preview,
            "n_rows": int(len(y)),
        }
        with self._lock:
            self._summaries[dataset.id] = summary
        return summary

    def csv_bytes(self, dataset_id: str) -> tuple[str, bytes | Iterator[bytes]]:
        """(file name, CSV): an uploaded CSV as sent, other stored tables converted from Parquet (both streamed);
        built-ins as their arrays plus a split."""
        dataset = self.get(dataset_id)
        upload = dataset.files.get("upload")
        if upload is not None and upload["path"].endswith(".csv"):  # a CSV file comes back as it was sent
            path = run_blocking(self.artifacts.verified_path, upload["path"], upload["sha256"])
            return f"{dataset.name}.csv", _file_chunks(path)
        if "table" in dataset.files:
            ref = dataset.files["table"]
            path = run_blocking(self.artifacts.verified_path, ref["path"], ref["sha256"])
            return f"{dataset.name}.csv", table_as_csv(path)
        if "csv" in dataset.files:  # stored before tables were kept as Parquet
            ref = dataset.files["csv"]
            return f"{dataset.name}.csv", self.artifacts.open_verified(ref["path"], ref["sha256"]).getvalue()

        def build() -> bytes:
            import pandas as pd

            arrays = self.arrays(dataset)
            frames = []
            for split, X, y in (("train", arrays.X_train, arrays.y_train), ("test", arrays.X_test, arrays.y_test)):
                frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
                frame["target"] = arrays.unscale_target(y) if dataset.task == "regression" else y
                frame["split"] = split
                frames.append(frame)
            out = io.StringIO()
            pd.concat(frames).to_csv(out, index=False, float_format="%.6g")
            return out.getvalue().encode()

        return f"{dataset.id}.csv", run_blocking(build)

    def original_file(self, dataset_id: str) -> tuple[str, Path]:
        """(file name, path) of the file as it was uploaded, checked against its SHA-256."""
        dataset = self.get(dataset_id)
        ref = dataset.files.get("upload")
        if ref is None and dataset.meta.get("origin") == "upload":  # stored before uploads were kept as sent
            ref = dataset.files.get("csv")
        if ref is None:
            raise NotFound(f"dataset {dataset.id} was not uploaded from a file; GET /api/datasets/{dataset.id}/csv "
                           "gives its rows", code="no_file")
        path = run_blocking(self.artifacts.verified_path, ref["path"], ref["sha256"])
        suffix = "".join(Path(ref["path"]).suffixes)
        return f"{_stem(dataset.meta.get('filename') or dataset.name)}{suffix}", path

    def input_dataset(self, dataset: Dataset) -> Dataset:
        """The dataset whose raw rows a model trained on `dataset` takes: the original a derived dataset (a
        retraining's training set) was made from, else `dataset` itself."""
        parent_id = dataset.meta.get("parent_id")
        return self.get(parent_id) if parent_id else dataset

    # -- predictions on raw rows -------------------------------------------------
    def pipeline(self, dataset: Dataset):
        """The fitted preprocessing of a stored dataset (cached)."""
        return self._pipelines.get_or_load(dataset.files["pipeline"]["sha256"],
                                           lambda: load_pipeline(dataset, self.artifacts))

    def features(self, dataset: Dataset, rows: list) -> np.ndarray:
        """Raw rows (dicts by column name, or lists in column order) through the dataset's preprocessing."""
        from livetrain.data import tabular

        if dataset.builtin:
            X = numeric_rows(rows, dataset, noun="row", single=False, code="bad_input")
            return self.arrays(dataset).preprocess(X)
        if dataset.meta.get("text") and self.text is not None:
            return self.text.encode_inputs(dataset, rows)
        schema = tabular.Schema.from_dict(dataset.meta["schema"])
        return tabular.transform_rows(self.pipeline(dataset), schema, rows)

    # -- deleting ---------------------------------------------------------------
    def delete(self, dataset_id: str) -> dict[str, Any]:
        """Remove an uploaded or generated dataset and its files; built-ins and datasets in use stay."""
        dataset = self.get(dataset_id)
        if dataset.builtin:
            raise Conflict(f"{dataset.id} is a built-in dataset and cannot be deleted", code="builtin_dataset")
        networks = self.store.networks_using(dataset.id)
        if networks:
            raise Conflict(f"dataset {dataset.id} is used by network(s) {', '.join(networks)}; delete them first",
                           code="dataset_in_use", detail={"network_ids": networks})
        active = self.store.list_runs(dataset_id=dataset.id, statuses=ACTIVE_STATUSES)
        if active:
            raise Conflict(f"dataset {dataset.id} is being trained on by run(s) "
                           f"{', '.join(r.id for r in active)}; cancel them first",
                           code="dataset_in_use", detail={"run_ids": [r.id for r in active]})
        self.store.delete_dataset(dataset.id)
        on_disk = self.artifacts.delete(dataset_dir(dataset.id))
        if dataset.meta.get("text") and self.text is not None:  # its own vocabulary goes with it
            self.text.vocabularies.forget_dataset(dataset.id)
        if self.emitter is not None:
            self.emitter.resource("dataset_deleted", {"dataset_id": dataset.id, "ts": time.time()})
        return {"dataset_id": dataset.id, "deleted": True, "deleted_from_disk": on_disk}


def _file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        yield from iter(lambda: fh.read(size), b"")


def _stem(filename: str) -> str:
    name = filename
    for suffix in (".gz", ".csv", ".tsv", ".tab", ".txt", ".xlsx", ".parquet"):
        name = name.removesuffix(suffix).removesuffix(suffix.upper())
    return name


class _Progress:
    """`dataset_progress` events for one upload: the stage the off-loop work is in, pushed from the event loop.

    The work runs in an OS thread that must not emit; it only records its stage, and a green
    thread sends each change (and the end) to every client, keyed by the uploader's `upload_id`.
    """

    def __init__(self, emitter, upload_id: Any, spawn, sleep) -> None:
        ok = isinstance(upload_id, str) and 0 < len(upload_id) <= 64 and upload_id.isprintable()
        self.upload_id = upload_id if ok else None
        self.emitter = emitter
        self._stage: str | None = None
        self._sent: str | None = None
        self._ended = False
        self._sleep = sleep
        self._lock = threading.Lock()  # the end is always the last event sent
        if self.upload_id and emitter is not None and spawn is not None:
            spawn(self._watch)

    def stage(self, name: str) -> None:
        """Record the stage (from any thread); the watcher sends it."""
        self._stage = name

    def send_now(self, name: str) -> None:
        """Record and send the stage at once (from the event loop: a worker's report)."""
        with self._lock:
            self._stage = self._sent = name
            if self.upload_id and self.emitter is not None and not self._ended:
                self._send(name)

    def _send(self, stage: str, **extra: Any) -> None:
        self.emitter.resource("dataset_progress", {"upload_id": self.upload_id, "stage": stage, **extra,
                                                   "ts": time.time()})

    def _watch(self) -> None:
        while not self._ended:
            with self._lock:
                stage = self._stage
                if not self._ended and stage is not None and stage != self._sent:
                    self._sent = stage
                    self._send(stage)
            self._sleep(PROGRESS_INTERVAL)

    def end(self, stage: str, message: str | None = None, dataset_id: str | None = None) -> None:
        with self._lock:
            self._ended = True
            if self.upload_id and self.emitter is not None:
                extra = {"dataset_id": dataset_id} if dataset_id else {"message": message} if message else {}
                self._send(stage, **extra)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
