"""Dataset pages: the list with upload and generate forms, and one dataset's schema, balance and rows."""

from __future__ import annotations

from typing import Any

from flask import render_template

from livetrain.dialect_words import dialect_facts, dropped_text
from livetrain.web import bp, page_of, svc

DATASETS_PER_PAGE = 20
RUNS_PER_PAGE = 10
ORIGINS = {"upload": "uploaded", "generator": "generated"}


def source_kind(dataset: dict[str, Any]) -> str:
    """Where a dataset (as the API describes it) came from: built-in, uploaded or generated."""
    if dataset.get("builtin"):
        return "built-in"
    return ORIGINS.get((dataset.get("meta") or {}).get("origin"), "uploaded")


@bp.get("/datasets")
def datasets_page():
    """Every dataset (paginated), with forms to upload a CSV or generate one."""
    from livetrain.data.generators import generator_catalog

    livetrain = svc()
    page = page_of("page", DATASETS_PER_PAGE, livetrain.store.count_datasets())
    datasets = [livetrain.datasets.summary(d)
                for d in livetrain.store.list_datasets(limit=page.size, offset=page.offset)]
    return render_template(
        "datasets.html",
        datasets=[{**d, "kind": source_kind(d)} for d in datasets], page=page,
        default_dataset=livetrain.datasets.default_id(), generators=generator_catalog(),
        max_upload_bytes=livetrain.settings.max_upload_bytes,
    )


@bp.get("/datasets/<dataset_id>")
def dataset_page(dataset_id: str):
    """One dataset: schema, how its file was read, class balance, missing values, a preview, and who trains on it."""
    livetrain = svc()
    detail = livetrain.datasets.detail(dataset_id)
    networks = [livetrain.store.get_network(i) for i in livetrain.store.networks_using(dataset_id)]
    run_page = page_of("runs_page", RUNS_PER_PAGE, livetrain.store.count_runs(dataset_id=dataset_id))
    runs = livetrain.store.list_runs(dataset_id=dataset_id, limit=run_page.size, offset=run_page.offset)
    schema = detail.get("schema") or {}
    return render_template(
        "dataset.html", dataset={**detail, "kind": source_kind(detail)},
        dialect=dialect_facts(schema.get("dialect")), dropped=dropped_text(schema.get("dropped_rows")),
        networks=[{"network_id": n.id, "name": n.name, "status": n.status, "architecture": n.architecture}
                  for n in sorted(filter(None, networks), key=lambda n: n.created_at)],
        runs=[r.to_dict() for r in runs], run_page=run_page, default_dataset=livetrain.datasets.default_id(),
    )
