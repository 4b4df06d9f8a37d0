"""Datasets: built-ins, CSV uploads, generated sets; schema, preview, download, delete."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response, current_app, request, send_file

from livetrain.errors import ValidationError

bp = APIBlueprint("datasets", __name__, url_prefix="/api/datasets", tag="Datasets")


def _svc():
    return current_app.extensions["livetrain"]


@bp.get("")
def list_datasets():
    """Every dataset with its shape, task and split sizes."""
    svc = _svc()
    return {"datasets": [svc.datasets.summary(d) for d in svc.datasets.list()], "default": svc.datasets.default_id()}


@bp.post("")
@bp.doc(responses={201: {"description": "the new dataset"}}, description=(
    "Either a multipart upload (field `file`: CSV in any common dialect, TSV, gzip-compressed CSV, .xlsx or "
    ".parquet; optional fields `name`, `target` (default: the last column), `task`, `types` (JSON object: "
    "column -> numeric|categorical|boolean|datetime|text|ignored), `split` (three fractions, default "
    "0.7,0.15,0.15), `seed`, `missing_target` (refuse|drop), the reading overrides `delimiter` "
    "(comma|semicolon|tab|pipe), `decimal` (.|,), `thousands` (,|.|space|'|none), `quote`, `encoding`, "
    "`sheet` (.xlsx), `format` (csv|tsv|xlsx|parquet), and `upload_id` to receive `dataset_progress` "
    "events), or a JSON body for a generator: "
    "`{\"generator\": \"moons\", \"params\": {...}, \"name\", \"split\", \"seed\"}`. "
    "A text dataset: the field `kind` (binary_classification, multiclass_classification, regression, "
    "question_answering, summarization, generation) with a CSV / JSONL file, or a JSON body "
    "`{\"kind\", \"samples\": [...], \"name\", \"vocabulary_id\", \"level\", \"max_len\", \"min_freq\", "
    "\"max_size\", \"split\", \"seed\"}` (docs/api.md)."))
def create_dataset():
    """Upload a CSV (multipart) or generate a dataset (JSON)."""
    svc = _svc()
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ValidationError("send the CSV in a multipart field named 'file'", code="bad_parameter",
                                  detail={"field": "file"})
        form = request.form.to_dict()
        if form.get("kind"):  # a text dataset (livetrain.services.text_datasets)
            dataset = svc.text_datasets.create_from_upload(upload.stream, upload.filename, form)
        else:
            dataset = svc.datasets.create_from_upload(upload.stream, upload.filename, form)
    else:
        body = request.get_json(silent=True) if request.content_length else None
        if not isinstance(body, dict):
            raise ValidationError("send a CSV as multipart/form-data, or a JSON object naming a 'generator'",
                                  code="bad_parameter")
        if "kind" in body:
            dataset = svc.text_datasets.create_from_samples(body)
        else:
            dataset = svc.datasets.create_generated(body)
    return svc.datasets.detail(dataset.id), 201


@bp.post("/<dataset_id>/samples")
@bp.doc(responses={201: {"description": "the dataset with the samples added"}},
        description="A text dataset only: JSON `{\"samples\": [...]}` or one sample object. Every sample is "
                    "encoded again with the dataset's own tokens and the whole split again (same seed).")
def add_samples(dataset_id: str):
    """Append samples to a text dataset (409 while a run trains on it)."""
    body = request.get_json(silent=True) if request.content_length else None
    return _svc().text_datasets.append(dataset_id, body), 201


@bp.get("/generators")
def list_generators():
    """The synthetic datasets the server can generate, with their parameters."""
    from livetrain.data.generators import generator_catalog

    return {"generators": generator_catalog()}


@bp.get("/<dataset_id>")
def get_dataset(dataset_id: str):
    """One dataset: schema, class balance, missing values, a preview of rows, split sizes."""
    return _svc().datasets.detail(dataset_id)


@bp.delete("/<dataset_id>")
def delete_dataset(dataset_id: str):
    """Delete an uploaded or generated dataset (not a built-in, not one a network or a run still uses)."""
    return _svc().datasets.delete(dataset_id)


@bp.get("/<dataset_id>/csv")
@bp.doc(responses={200: {"description": "text/csv"}})
def download_csv(dataset_id: str):
    """The dataset as CSV (UTF-8, comma-separated): the rows as read or generated; built-ins with a split column."""
    name, data = _svc().datasets.csv_bytes(dataset_id)
    return Response(data, mimetype="text/csv", headers={"Content-Disposition": _attachment(name)})


@bp.get("/<dataset_id>/file")
@bp.doc(responses={200: {"description": "the uploaded file, byte for byte"}})
def download_file(dataset_id: str):
    """The file as it was uploaded (any dialect or format), checked against its SHA-256; 404 for generated sets."""
    name, path = _svc().datasets.original_file(dataset_id)
    return send_file(path, as_attachment=True, download_name=name, mimetype="application/octet-stream")


def _attachment(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._- " else "_" for c in name)
    return f'attachment; filename="{safe}"'

